"""Latency and memory of the slider demo's update() on a 768x512 image.

    python benchmarks/slider_latency.py [--json PATH] [--moves 200]

Prints one JSON object:

* ``p50_ms``, ``p95_ms``: one slider move after warm-up, i.e. ``update(state)``
  for a level and codec shown before (the cached path: error map, crop,
  lookups), over a seeded random walk of ``--moves`` moves through learned
  rates, JPEG qualities and zoom positions;
* ``first_visit_ms``: median time of ``update`` at a learned rate not seen
  before (the image is already encoded: gain, rounding, range coding, decoder,
  PSNR, MS-SSIM); ``first_visit_max_ms`` the slowest of them, and
  ``first_visit_jpeg_ms`` the same for new JPEG qualities;
* ``first_visit_parts_ms``: where a first visit's time goes, medians at
  three more new rates: ``file`` (``compress``: gain, rounding, for the
  hyperprior h_a and h_s, range coding), ``file_and_picture``
  (``compress_and_reconstruct``, what the demo calls: the file plus the
  decoder), ``ms_ssim`` and ``psnr`` of the picture;
* ``first_image_ms``: the very first ``update`` of the image (encoder, the
  point, and the RD curves of the learned codec and JPEG);
* ``widget_p50_ms``, ``widget_p95_ms``: the same cached moves through the
  widget layer (setting ``SliderDemo.level.value``: update, PNG pictures and
  the RD plot), which is what a user waits for;
* ``peak_rss_mb``: peak resident memory of this process (TensorFlow, the
  models, the caches and the demo's widgets).

The image is Kodak's kodim01.png when the Kodak folder is found, else a course
photo (china) resized and cropped to 768x512. No thresholds are checked
here: the numbers depend on the machine and on what else runs on it (the
load average at the start is printed too).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def benchmark_image() -> tuple[np.ndarray, str]:
    """A 768x512 test image: kodim01 when Kodak is present, else a course photo cropped to that size."""
    from PIL import Image

    from course_lib import data

    folder = data.kodak_dir()
    if folder is not None:
        image = data.load_image(folder / "kodim01.png")
        if image.shape[:2] == (512, 768):
            return image, "kodim01.png (Kodak)"
    photo = data.course_photo("china")
    height, width = photo.shape[:2]
    scale = max(768 / width, 512 / height)  # cover 768x512, then crop the centre
    size = (round(width * scale), round(height * scale))
    resized = np.asarray(Image.fromarray(photo).resize(size, Image.LANCZOS))
    top, left = (size[1] - 512) // 2, (size[0] - 768) // 2
    return resized[top:top + 512, left:left + 768], "china (course photo) resized and cropped to 768x512"


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    value = function(*args)
    return (time.perf_counter() - start) * 1000.0, value


def first_visit_parts(codec, image: np.ndarray, rates) -> dict[str, float]:
    """Median milliseconds of the steps of a first visit at ``rates`` (the image already encoded)."""
    from course_lib import metrics

    encoded = codec.encode(image)
    times = {"file": [], "file_and_picture": [], "ms_ssim": [], "psnr": []}
    for rate in rates:
        times["file"].append(timed(codec.compress, image, rate, encoded)[0])
        milliseconds, (_, picture) = timed(codec.compress_and_reconstruct, image, rate, encoded)
        times["file_and_picture"].append(milliseconds)
        times["ms_ssim"].append(timed(metrics.ms_ssim, image, picture)[0])
        times["psnr"].append(timed(metrics.psnr, image, picture)[0])
    return {name: round(float(np.median(values)), 1) for name, values in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="also write the result to this file")
    parser.add_argument("--moves", type=int, default=200, help="cached slider moves to time (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    load_average = os.getloadavg()[0]
    from course_lib import widgets
    from course_lib.demo import State, update

    image, image_name = benchmark_image()
    assert image.shape == (512, 768, 3), image.shape
    learned = widgets.reference_codec()  # the learned codec the demo opens with (the best one shipped)
    if learned is None:
        print("error: no learned codec's weights found (data/weights)", file=sys.stderr)
        return 2
    top = widgets.learned_codec(learned).num_rates - 1

    # Warm-up: models loaded, TensorFlow's first calls done (on another image, so that
    # the first visit of the benchmark image is still measured).
    update(State(image=image[:64, :64].copy(), codec=learned, level=0.0, curves=False))
    update(State(image=image[:64, :64].copy(), codec="jpeg420", level=50, curves=False))

    first_image_ms, _ = timed(update, State(image=image, codec=learned, level=2.0))
    new_rates = tuple(r + 0.5 for r in range(top))[:5]
    first_learned = [timed(update, State(image=image, codec=learned, level=r))[0] for r in new_rates]
    parts = first_visit_parts(widgets.learned_codec(learned), image, tuple(r + 0.25 for r in range(top))[:3])
    new_qualities = (15, 25, 35, 45, 55)
    first_jpeg = [timed(update, State(image=image, codec="jpeg420", level=q))[0] for q in new_qualities]

    # Cached moves: a seeded random walk over levels shown once before, and zoom moves.
    rng = np.random.default_rng(args.seed)
    learned_levels = [float(r) for r in range(top + 1)] + list(new_rates)
    jpeg_levels = [5, 10, 20, 30, 50, 70, 85, 90, *new_qualities]
    for codec, levels in ((learned, learned_levels), ("jpeg420", jpeg_levels)):
        for level in levels:  # the RD curves compressed these, but MS-SSIM waits for a first showing
            update(State(image=image, codec=codec, level=level))
    states = []
    for _ in range(args.moves):
        codec = learned if rng.random() < 0.5 else "jpeg420"
        level = float(rng.choice(learned_levels if codec == learned else jpeg_levels))
        center = (float(rng.choice([0.3, 0.5, 0.7])), float(rng.choice([0.3, 0.5, 0.7])))
        states.append(State(image=image, codec=codec, level=level, crop_center=center))
    moves = [timed(update, state)[0] for state in states]

    # The same kind of moves through the widget layer (update + PNG pictures + RD plot).
    demo = widgets.build_demo(image)
    widget_moves = []
    for level in rng.choice(learned_levels, size=max(20, args.moves // 4)):
        widget_moves.append(timed(setattr, demo.level, "value", float(level))[0])
    assert demo.message.value == "", demo.message.value

    result = {
        "p50_ms": round(float(np.percentile(moves, 50)), 1),
        "p95_ms": round(float(np.percentile(moves, 95)), 1),
        "first_visit_ms": round(float(np.median(first_learned)), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "first_visit_max_ms": round(max(first_learned), 1),
        "first_visit_jpeg_ms": round(float(np.median(first_jpeg)), 1),
        "first_visit_parts_ms": parts,
        "first_image_ms": round(first_image_ms, 1),
        "widget_p50_ms": round(float(np.percentile(widget_moves, 50)), 1),
        "widget_p95_ms": round(float(np.percentile(widget_moves, 95)), 1),
        "image": image_name,
        "learned_codec": widgets.LEARNED_MODELS[learned],
        "moves": len(moves),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average_at_start": round(load_average, 2),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
