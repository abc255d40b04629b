"""How far can more bits take a shipped codec? The transforms' ceiling: x_hat = D(E(x)) without quantization.

    python benchmarks/transform_ceiling.py [--data DIR] [--models learned_hyperprior] [--rates 0 7] [--json PATH]

For each image of ``--data`` (default: Kodak when ``KODAK_DIR`` or ``../shared/kodak`` is
present, else the course photos) and each rate point, two reconstructions from the same
gained latents y = E(x) * g:

* **rounded**: what the codec really shows (``quantized_forward``: y rounded, around the
  hyperprior's means for ``learned_hyperprior``), the PSNR of its files;
* **unquantized**: D(y * g') from the float latents, i.e. infinitely many bits.

The gap says what quantization costs at that rate; the unquantized PSNR is an upper bound
no amount of rate can pass for these transforms. When the top rate point is already close
to it, the codec is limited by the width of its transforms, not by its entropy model or by
how long it trained (issue 13: the shipped hyperprior's curve flattens near 32 dB).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def images(folder=None) -> dict[str, np.ndarray]:
    from course_lib import data

    folder = folder or data.kodak_dir()
    if folder is None:
        return data.course_photos()
    return {path.name: data.load_image(path) for path in data.image_paths(folder)}


def ceiling(codec, photos: dict[str, np.ndarray], rates) -> list[dict]:
    """Mean PSNR (dB) over ``photos`` of the rounded and the unquantized reconstruction, per rate point."""
    from course_lib.metrics import psnr

    rows = []
    for rate in rates:
        rounded, unquantized = [], []
        for image in photos.values():
            height, width = image.shape[:2]
            latents = codec.analyse(image, rate, round_latents=False)
            unquantized.append(psnr(image, codec.synthesise(latents, rate, height, width)))
            rounded.append(psnr(image, codec.quantized_forward(image, rate)))
        rows.append({"rate": rate, "rounded_psnr": float(np.mean(rounded)),
                     "unquantized_psnr": float(np.mean(unquantized)),
                     "per_image_unquantized": [float(v) for v in unquantized]})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="folder of test photos (default: Kodak if present, else the course photos)")
    parser.add_argument("--models", nargs="+", default=["learned_hyperprior"], help="shipped model names")
    parser.add_argument("--rates", nargs="+", type=int, default=None,
                        help="rate points (default: the lowest and the highest)")
    parser.add_argument("--json", help="write the table here")
    args = parser.parse_args(argv)

    from course_lib.data import ImageLoadError
    from course_lib.models import WeightsError, load_codec
    from course_lib.registry import find_entry

    try:
        photos = images(args.data)
        codecs = {name: load_codec(name) for name in args.models}
    except (OSError, ImageLoadError, WeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not photos:
        print(f"error: no images in {args.data}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    results = {}
    print(f"{len(photos)} images; mean RGB PSNR in dB")
    print(f"{'model':>20} {'rate':>5} {'rounded':>8} {'unquantized':>12} {'gap':>6}")
    for name, codec in codecs.items():
        rates = args.rates if args.rates is not None else [0, codec.num_rates - 1]
        bad = [r for r in rates if not 0 <= r < codec.num_rates]
        if bad:
            print(f"error: {name} has rate points 0-{codec.num_rates - 1}, not {bad}", file=sys.stderr)
            return 2
        rows = ceiling(codec, photos, rates)
        for row in rows:
            print(f"{name:>20} {row['rate']:>5} {row['rounded_psnr']:8.2f} {row['unquantized_psnr']:12.2f} "
                  f"{row['unquantized_psnr'] - row['rounded_psnr']:6.2f}")
        results[name] = {"weights_sha256": find_entry(name)[2]["sha256"], "rows": rows}
    seconds = time.perf_counter() - started
    print(f"{seconds:.0f} s")
    if args.json:
        record = {"command": "python benchmarks/transform_ceiling.py " + " ".join(argv if argv is not None
                                                                               else sys.argv[1:]),
                  "images": sorted(photos), "models": results, "seconds": seconds}
        with open(args.json, "w") as handle:
            json.dump(record, handle, indent=2)
            handle.write("\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
