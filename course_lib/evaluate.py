"""Rate-distortion evaluation of the learned codec against the classical codecs (notebook 07).

    python -m course_lib.evaluate --data DIR [--weights NAME_OR_PATH] [--json PATH] [--plot PATH]
    python -m course_lib.evaluate --restoration [NAME_OR_PATH] --data DIR [--json PATH]
                                  [--learned-restoration NAME_OR_PATH]

For every rate point of the codec, each image is compressed to a real
``.rcz`` file and decompressed from it; the rate is the file's size (header
included), the distortion is measured on the decoded pixels. JPEG 4:2:0,
WebP and JPEG 2000 are measured on the same images in the same run, and the
Bjøntegaard delta rate (PCHIP) of the learned codec against each is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Sequence

import numpy as np

#: Classical codecs the learned codec is compared with (jpeg420 is the anchor).
COMPARED = ("jpeg420", "webp", "jpeg2000")


def learned_rd_curve(codec, images, rates: Sequence[float] | None = None, msssim: bool = True,
                     progress: bool = True) -> dict[str, list]:
    """Mean bpp / PSNR / MS-SSIM per rate point, from real files.

    ``images``: list or ``{name: image}`` dict of uint8 RGB arrays. ``rates``
    default to the codec's trained levels 0 .. num_rates - 1. Each image is
    compressed with ``codec.compress`` and decoded with ``codec.decompress``.
    Introduced in notebook 07.
    """
    from tqdm.auto import tqdm

    from . import metrics

    images = list(images.values()) if isinstance(images, dict) else list(images)
    rates = list(range(codec.num_rates)) if rates is None else list(rates)
    curve = {"rate": rates, "bpp": [], "psnr": [], "msssim": []}
    bar = tqdm(total=len(rates) * len(images), desc="learned codec", disable=not progress, leave=False)
    for rate in rates:
        bpp, psnr, ssim = [], [], []
        for image in images:
            data = codec.compress(image, rate)
            decoded = codec.decompress(data)
            bpp.append(metrics.bits_per_pixel(len(data), image.shape))
            psnr.append(metrics.psnr(image, decoded))
            ssim.append(metrics.ms_ssim(image, decoded) if msssim else np.nan)
            bar.update()
        curve["bpp"].append(float(np.mean(bpp)))
        curve["psnr"].append(float(np.mean(psnr)))
        curve["msssim"].append(float(np.mean(ssim)))
    bar.close()
    return curve


#: Quality ladders that differ from ``baselines.DEFAULT_QUALITIES`` here: WebP's lowest default
#: (quality 5) gives 28.1 dB on Kodak, so quality 0 is added for BD-rates over windows from 28 dB.
EVALUATE_QUALITIES = {"webp": (0, 5, 15, 30, 50, 70, 80, 88, 92)}

#: The PSNR window (dB) of the course's headline BD-rates on Kodak (issue 13: from below
#: the factorized codec's lowest point to where photos are stored).
BD_WINDOW = (28.0, 35.0)


def compare_with_baselines(learned: dict, baseline_curves: dict, window=None) -> dict[str, float]:
    """BD-rate (PCHIP, percent) of the learned curve against each baseline curve.

    Over the curves' PSNR overlap, or over ``window`` (dB) when given.
    ``nan`` where the curves do not overlap in PSNR or do not span ``window``
    (BD-rate is undefined there). :func:`bd_windows` gives the intervals.
    """
    from .rd import bd_rate

    out = {}
    for name, curve in baseline_curves.items():
        try:
            out[name] = bd_rate(curve["bpp"], curve["psnr"], learned["bpp"], learned["psnr"], "pchip", window)
        except ValueError:
            out[name] = float("nan")
    return out


def bd_windows(learned: dict, baseline_curves: dict, window=None) -> dict[str, list | None]:
    """The PSNR interval [low, high] (dB) behind each BD-rate of :func:`compare_with_baselines`; None if undefined."""
    from .rd import bd_window

    out = {}
    for name, curve in baseline_curves.items():
        try:
            out[name] = list(bd_window(curve["psnr"], learned["psnr"], window))
        except ValueError:
            out[name] = None
    return out


def name_of(weights) -> str:
    """The model a ``--weights`` argument names (the default model when None)."""
    from .codec import DEFAULT_MODEL

    return DEFAULT_MODEL if weights is None else str(weights)


def weights_sha256(weights) -> str:
    """The SHA-256 of the weights file a ``--weights`` argument names (from its manifest entry),
    so that a results file can be matched to the weights that produced it."""
    from .codec import find_entry

    return find_entry(weights)[2]["sha256"]


def _table(curve: dict) -> str:
    rows = [f"  {'rate':>6} {'bpp':>7} {'PSNR dB':>8} {'MS-SSIM':>8}"]
    for r, b, p, s in zip(curve["rate"], curve["bpp"], curve["psnr"], curve["msssim"]):
        rows.append(f"  {r:>6g} {b:>7.4f} {p:>8.3f} {s:>8.4f}")
    return "\n".join(rows)


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(prog="python -m course_lib.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of test images (e.g. Kodak)")
    parser.add_argument("--weights", default=None, help="model name in data/weights/manifest.json or a .weights.h5 path")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--plot", help="save the RD plot here (default: rd_plot.png beside --json, or none)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--workers", type=int, default=2, help="processes for the classical codecs")
    parser.add_argument("--restoration", nargs="?", const=True, default=None, metavar="NAME_OR_PATH",
                        help="instead: Delta PSNR of the restoration network (notebook 08) on JPEG q=10..40 "
                             "and the codec of --weights; default network: the shipped one")
    parser.add_argument("--learned-restoration", metavar="NAME_OR_PATH",
                        help="with --restoration: the network for the learned codec's rows "
                             "(default: restoration_learned when shipped, else the JPEG network)")
    args = parser.parse_args(argv)
    if args.restoration is not None:
        from .restoration import run_benchmark

        return run_benchmark(args.data, None if args.restoration is True else args.restoration,
                             codec_weights=args.weights, json_path=args.json, limit=args.limit,
                             learned_restoration=args.learned_restoration)

    from .baselines import nan_to_none, rd_curve
    from .codec import WeightsError, load_codec
    from .data import ImageLoadError, load_folder

    try:
        images = load_folder(args.data, limit=args.limit)
        codec = load_codec(args.weights)
    except (FileNotFoundError, ImageLoadError, WeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    print(f"{len(images)} images from {args.data}")
    learned = learned_rd_curve(codec, images)
    baselines = {name: rd_curve(images, name, qualities=EVALUATE_QUALITIES.get(name), workers=args.workers)
                 for name in COMPARED}
    bd = compare_with_baselines(learned, baselines)
    windows = bd_windows(learned, baselines)
    bd_fixed = compare_with_baselines(learned, baselines, BD_WINDOW)
    print("learned codec (bpp from the real files)")
    print(_table(learned))
    for name, curve in baselines.items():
        print(name)
        print(_table({"rate": curve["quality"], **curve}))
    print(f"\nBD-rate of {name_of(args.weights)} (PCHIP, RGB PSNR; negative = fewer bits for the same quality)")
    print(f"  {'':>12} {'overlap':>8}  {'PSNR window':>15}   {f'{BD_WINDOW[0]:g}-{BD_WINDOW[1]:g} dB':>9}")
    for name, value in bd.items():
        window = "none" if windows[name] is None else f"{windows[name][0]:.2f}-{windows[name][1]:.2f} dB"
        fixed = "n/a" if np.isnan(bd_fixed[name]) else f"{bd_fixed[name]:+.1f} %"
        overlap = "n/a" if np.isnan(value) else f"{value:+.1f} %"
        print(f"  vs {name:>9}: {overlap:>9}  {window:>15}   {fixed:>9}")
    if any(np.isnan(v) for v in bd_fixed.values()):
        print(f"  (n/a: a curve does not span {BD_WINDOW[0]:g}-{BD_WINDOW[1]:g} dB; no extrapolation)")
    elapsed = time.perf_counter() - started
    print(f"{elapsed:.0f} s")

    plot_path = args.plot or (os.path.join(os.path.dirname(args.json) or ".", "rd_plot.png") if args.json else None)
    if plot_path:
        from .plots import rd_plot

        label = name_of(args.weights).replace("_", " ")
        fig = rd_plot({label: learned, **baselines}, highlight=label,
                      title=f"{len(images)} images from {os.path.basename(os.path.normpath(args.data))}")
        fig.savefig(plot_path, dpi=120)
        print(f"wrote {plot_path}")
    if args.json:
        result = {"command": "python -m course_lib.evaluate " + " ".join(sys.argv[1:] if argv is None else argv),
                  "points": [{"rate": r, "bpp": b, "psnr": p, "msssim": s} for r, b, p, s in
                             zip(learned["rate"], learned["bpp"], learned["psnr"], learned["msssim"])],
                  "model": name_of(args.weights), "weights_sha256": weights_sha256(args.weights),
                  "bd_rate": bd, "bd_rate_psnr_window": windows,
                  f"bd_rate_{BD_WINDOW[0]:g}_{BD_WINDOW[1]:g}_db": bd_fixed,
                  "baselines": baselines, "images": len(images), "seconds": round(elapsed, 1)}
        with open(args.json, "w") as f:
            # BD-rates of non-overlapping curves are nan, which JSON cannot hold: write null.
            json.dump(nan_to_none(result), f, indent=2, allow_nan=False)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
