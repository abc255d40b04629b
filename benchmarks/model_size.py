"""What a smaller codec gives up: codecs of several widths trained alike, compared on rate, quality and time.

    python benchmarks/model_size.py --runs RUN [RUN ...] --data DIR [--json PATH] [--plot PATH] [--limit N]

Each RUN is a folder written by ``python -m course_lib.train`` (its
``config.json``, ``history.json`` and ``codec.weights.h5``). The runs should
differ only in ``--channels`` / ``--latent-channels``: same data, λs, steps,
crop and schedule, so that the comparison is at an equal training budget (the
script warns when they are not). For each run, and for the shipped codec as a
reference trained for longer:

* parameters, and multiply-accumulates per pixel (``course_lib.complexity``);
* the time of ``compress`` and of ``decompress`` on the first image (median
  of 3 after a warm-up), and its ratio to the widest run's time *in the same
  run of this script*;
* the RD curve on ``--data`` from real files (``evaluate.learned_rd_curve``),
  the BD-rate against the widest run and against JPEG 4:2:0 measured on the
  same images in the same run (PCHIP, RGB PSNR).

Prints a table; ``--json`` keeps everything, including each run's training
command. Notebook 10 reads the JSON that ``docs/results/model_size.json``
holds (its command is in that file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

#: Settings that must agree between runs for "equal budget" to hold.
BUDGET_KEYS = ("data", "lmbdas", "steps", "batch_size", "crop", "learning_rate", "lr_drop_at", "seed")


def median_seconds(function, repeats: int = 3) -> float:
    function()  # warm-up: graph tracing and caches are not what we time
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def measure(codec, images, first) -> dict:
    from course_lib import complexity
    from course_lib.evaluate import learned_rd_curve

    middle = (codec.num_rates - 1) / 2
    data = codec.compress(first, middle)
    return {"channels": codec.channels, "latent_channels": codec.latent_channels,
            "parameters": int(codec.encoder.count_params() + codec.decoder.count_params()),
            "macs_per_pixel": complexity.macs_per_pixel(codec),
            "encode_seconds": median_seconds(lambda: codec.compress(first, middle)),
            "decode_seconds": median_seconds(lambda: codec.decompress(data)),
            "curve": learned_rd_curve(codec, images)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, help="training run folders (course_lib.train --out)")
    parser.add_argument("--data", required=True, help="test images (e.g. Kodak; never the training photos)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--plot", help="save the RD curves here")
    parser.add_argument("--limit", type=int, help="use only the first N images")
    parser.add_argument("--no-shipped", action="store_true", help="leave out the shipped codec's reference row")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from course_lib.baselines import rd_curve
    from course_lib.json_files import nan_to_none
    from course_lib.models import WeightsError, load_codec
    from course_lib.data import ImageLoadError, load_folder
    from course_lib.rd import bd_rate
    from course_lib.training import load_run, training_command

    try:
        images = load_folder(args.data, limit=args.limit)
        loaded = [(Path(run).name, *load_run(run)) for run in args.runs]
    except (FileNotFoundError, ImageLoadError, WeightsError, OSError, json.JSONDecodeError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    budgets = {name: {key: getattr(config, key) for key in BUDGET_KEYS} for name, _, config, _ in loaded}
    if len({json.dumps(b, sort_keys=True) for b in budgets.values()}) > 1:
        print("warning: the runs were not trained alike, so this is not an equal-budget comparison:")
        for name, budget in budgets.items():
            print(f"  {name}: {budget}")
    first = next(iter(images.values()))
    load = os.getloadavg()[0]
    started = time.perf_counter()
    rows = {}
    for name, codec, config, record in loaded:
        print(f"{name}: N={config.channels}, M={config.latent_channels} ...", flush=True)
        rows[name] = {**measure(codec, images, first), "command": training_command(config),
                      "steps": record["steps"], "wall_seconds": round(record["wall_seconds"]),
                      "lmbdas": config.lmbdas}
    if not args.no_shipped:
        try:
            shipped = load_codec()
            print("shipped codec ...", flush=True)
            rows["shipped"] = measure(shipped, images, first)
        except WeightsError as exc:
            print(f"note: no shipped codec ({exc}); reference row skipped")
    jpeg = rd_curve(images, "jpeg420", msssim=False)
    widest = max((name for name, *_ in loaded), key=lambda name: rows[name]["macs_per_pixel"])
    reference = rows[widest]

    def bd(anchor, curve):
        try:
            return bd_rate(anchor["bpp"], anchor["psnr"], curve["bpp"], curve["psnr"])
        except ValueError:  # no overlap in PSNR, or a curve that is not increasing: undefined
            return float("nan")

    for row in rows.values():
        row["bd_rate_vs_widest"] = bd(reference["curve"], row["curve"])
        row["bd_rate_vs_jpeg420"] = bd(jpeg, row["curve"])
        row["time_vs_widest"] = ((row["encode_seconds"] + row["decode_seconds"])
                                 / (reference["encode_seconds"] + reference["decode_seconds"]))
    elapsed = time.perf_counter() - started

    print(f"\n{len(images)} images from {args.data}; times on the first ({first.shape[1]}x{first.shape[0]}), "
          f"load average {load:.1f} at the start; reference: {widest}")
    print(f"{'model':>10} {'N':>3} {'M':>4} {'params':>9} {'kMAC/px':>8} {'enc ms':>7} {'dec ms':>7} "
          f"{'time x':>7} {'BD vs ref %':>12} {'BD vs JPEG %':>13}")
    for name, row in rows.items():
        print(f"{name:>10} {row['channels']:>3} {row['latent_channels']:>4} {row['parameters']:>9,} "
              f"{row['macs_per_pixel'] / 1e3:>8.1f} {row['encode_seconds'] * 1e3:>7.0f} "
              f"{row['decode_seconds'] * 1e3:>7.0f} {row['time_vs_widest']:>7.2f} "
              f"{row['bd_rate_vs_widest']:>+12.1f} {row['bd_rate_vs_jpeg420']:>+13.1f}")
    print(f"{elapsed:.0f} s")

    if args.plot:
        from course_lib.plots import rd_plot

        curves = {f"{name} (N={row['channels']})": row["curve"] for name, row in rows.items()}
        fig = rd_plot({**curves, "jpeg420": jpeg}, title=f"{len(images)} images: codecs of several widths")
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")
    if args.json:
        result = {"what": "codecs of several widths trained alike (same data, λs, steps, schedule), measured on "
                          "the same images in one run; the shipped codec (trained longer) for reference",
                  "command": "python benchmarks/model_size.py " + " ".join(sys.argv[1:] if argv is None else argv),
                  "images": len(images), "data": args.data, "reference": widest, "models": rows,
                  "jpeg420": jpeg, "seconds": round(elapsed, 1), "load_average_at_start": round(load, 2),
                  "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, {platform.system()}, "
                             f"TensorFlow {tf.__version__}"}
        Path(args.json).write_text(json.dumps(nan_to_none(result), indent=2, allow_nan=False) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
