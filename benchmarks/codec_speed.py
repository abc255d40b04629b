"""Encode + decode time of the shipped learned codecs, as a ratio to the factorized codec measured in the same run.

    python benchmarks/codec_speed.py [--image PATH] [--repeats 3] [--models learned_codec learned_hyperprior]
                                     [--json PATH]

Times ``compress`` and ``decompress`` of one 768 x 512 photo (default: the
first Kodak image when ``KODAK_DIR`` or ``../shared/kodak`` is present,
otherwise the course photo "coffee" resized to 768 x 512) at each model's
middle rate point: the median of ``--repeats`` runs after one warm-up call
(graph tracing and caches are not what we time). The first model is the
baseline; the table prints every model's time and its ratio to the baseline.
Timings move by tens of percent when other jobs share the CPU; the ratio,
measured back to back, moves less.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from model_size import median_seconds  # noqa: E402  (same folder: one timing protocol for the benchmarks)


def test_photo(path=None) -> tuple[np.ndarray, str]:
    from PIL import Image

    from course_lib import data

    if path:
        return data.load_image(path), str(path)
    folder = data.kodak_dir()
    if folder is not None:
        first = data.image_paths(folder)[0]
        return data.load_image(first), first.name
    photo = Image.fromarray(data.course_photo("coffee")).resize((768, 512), Image.LANCZOS)
    return np.asarray(photo), "coffee resized to 768x512"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", help="photo to time (default: see above)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["learned_codec", "learned_hyperprior"],
                        help="shipped model names; the first is the baseline")
    parser.add_argument("--json", help="write the table here")
    args = parser.parse_args(argv)

    from course_lib.models import WeightsError, load_codec
    from course_lib.data import ImageLoadError

    try:
        image, label = test_photo(args.image)
        codecs = {name: load_codec(name) for name in args.models}
    except (OSError, ImageLoadError, WeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = {}
    for name, codec in codecs.items():
        rate = (codec.num_rates - 1) // 2
        compressed = codec.compress(image, rate)
        rows[name] = {"rate": rate, "bytes": len(compressed),
                      "compress": median_seconds(lambda: codec.compress(image, rate), args.repeats),
                      "decompress": median_seconds(lambda: codec.decompress(compressed), args.repeats)}
    base = rows[args.models[0]]
    print(f"{label}, {image.shape[1]}x{image.shape[0]}; median of {args.repeats} after a warm-up; "
          f"{platform.machine()}, {os.cpu_count()} cores")
    print(f"  {'model':>20} {'rate':>5} {'bytes':>8} {'encode s':>9} {'decode s':>9} {'total s':>8} {'ratio':>6}")
    for name, row in rows.items():
        total = row["compress"] + row["decompress"]
        row["ratio"] = total / (base["compress"] + base["decompress"])
        print(f"  {name:>20} {row['rate']:>5} {row['bytes']:>8,} {row['compress']:9.3f} {row['decompress']:9.3f} "
              f"{total:8.3f} {row['ratio']:5.2f}x")
    if args.json:
        from course_lib.json_files import write_json

        write_json(args.json, {"command": "python benchmarks/codec_speed.py " + " ".join(argv or sys.argv[1:]),
                               "image": label, "repeats": args.repeats,
                               "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                               "baseline": args.models[0], "models": rows})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
