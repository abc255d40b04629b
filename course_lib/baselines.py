"""Classical image codecs through Pillow: JPEG, WebP, JPEG 2000, AVIF (notebook 01).

Every learned codec in the course is measured against these baselines. Each
codec is a name, and its ``quality`` knob means what the codec means by it:

==========  ======================================================  ==============
name        what Pillow is asked for                                quality
==========  ======================================================  ==============
jpeg420     JPEG (libjpeg), chroma subsampled 4:2:0 (``subsampling=2``)   1..100
jpeg444     JPEG (libjpeg), full-resolution chroma (``subsampling=0``)    1..100
webp        lossy WebP (libwebp, VP8), ``method=6``: slowest, smallest    0..100
jpeg2000    JPEG 2000 (OpenJPEG), 9/7 wavelet (``irreversible=True``),    target PSNR
            colour transform (``mct=1``), fixed-quality mode              in dB
            (``quality_mode="dB"``, ``quality_layers=[quality]``)
avif        AVIF (libavif, AV1 intra), Pillow's default speed and 4:2:0   0..100
==========  ======================================================  ==============

JPEG uses Pillow's defaults otherwise (standard Huffman tables, no
``optimize``), as in the published Pillow benchmarks (e.g. CompressAI's Kodak
results), so numbers here can be compared with those. WebP uses ``method=6``
because a benchmark should give each codec its best effort; it is about 3x
slower than the default ``method=4`` and saves a few percent. AVIF is only
offered where ``PIL.features.check("avif")`` is true; see :func:`available_codecs`.

Rates count the whole file (headers included) in bits per pixel; PSNR is on
RGB per image; averages over a set of images are taken per quality setting
(mean bpp, mean PSNR, mean MS-SSIM), which is the field's convention.

Command line (writes an RD table, BD-rates against jpeg420, and optionally JSON; the benchmark
itself is :func:`course_lib.evaluate.classical_benchmark`)::

    python -m course_lib baselines --data /path/to/kodak --json results.json
"""

from __future__ import annotations

if __name__ == "__main__":  # `python -m course_lib.baselines ARGS`: an alias of `python -m course_lib baselines ARGS`
    import runpy
    import sys

    sys.argv[1:1] = ["baselines"]
    runpy.run_module("course_lib", run_name="__main__", alter_sys=True)  # exits

import io
import math
import multiprocessing
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, features

from . import metrics
from .data import load_folder, load_image, to_rgb8
from .json_files import nan_to_none, write_json  # noqa: F401  (nan_to_none: benchmarks/model_size.py imports it here)
from .progress import progress as progress_line
from .rd import bd_rate, rd_table

__all__ = ["ALL_CODECS", "DEFAULT_QUALITIES", "QUALITY_RANGE", "QUALITY_STEPS_PER_UNIT", "CodecResult",
           "available_codecs", "classical_benchmark", "compress_with", "decode", "encode", "match_bpp", "rd_curve", "snap_quality"]

ALL_CODECS = ("jpeg420", "jpeg444", "webp", "jpeg2000", "avif")

#: Quality ladders spanning roughly 0.1-2.5 bpp on Kodak (measured, Pillow 13):
#: jpeg420 0.22-2.35 bpp, jpeg444 0.31-2.80, webp 0.22-2.34, jpeg2000 0.15-2.1,
#: avif 0.10-2.1. JPEG cannot go much below 0.2 bpp: even quality 1 costs ~0.15.
DEFAULT_QUALITIES: dict[str, tuple] = {
    "jpeg420": (5, 10, 20, 30, 50, 70, 85, 90),
    "jpeg444": (5, 10, 20, 30, 50, 70, 85, 90),
    "webp": (5, 15, 30, 50, 70, 80, 88, 92),
    "jpeg2000": (26.0, 28.0, 30.0, 32.0, 34.0, 36.0, 38.0, 41.0),
    "avif": (10, 25, 40, 50, 60, 70, 80, 88),
}

#: Quality range searched by :func:`match_bpp` (lowest, highest).
QUALITY_RANGE: dict[str, tuple] = {
    "jpeg420": (1, 100),
    "jpeg444": (1, 100),
    "webp": (0, 100),
    "jpeg2000": (15.0, 70.0),
    "avif": (0, 100),
}


#: How many knob settings per unit of ``quality``: integers, except JPEG 2000's target PSNR (0.05 dB).
QUALITY_STEPS_PER_UNIT: dict[str, int] = {"jpeg420": 1, "jpeg444": 1, "webp": 1, "jpeg2000": 20, "avif": 1}


def snap_quality(codec: str, quality):
    """``quality`` rounded to the codec's knob: an int, or for ``jpeg2000`` a multiple of 0.05 dB.

    Snapping a value that is already on the knob returns it unchanged, so the
    quality :func:`match_bpp` returns, snapped again (as the slider demo does),
    encodes to the same file. Introduced in notebook 09.
    """
    _check_codec(codec)
    steps = QUALITY_STEPS_PER_UNIT[codec]
    if steps == 1:
        return int(round(float(quality)))
    return round(float(quality) * steps) / steps


def available_codecs() -> tuple[str, ...]:
    """Names of the codecs this Pillow build can encode, in :data:`ALL_CODECS` order. Introduced in notebook 01."""
    needs = {"jpeg420": "jpg", "jpeg444": "jpg", "webp": "webp", "jpeg2000": "jpg_2000", "avif": "avif"}
    return tuple(name for name in ALL_CODECS if features.check(needs[name]))


def _check_codec(codec: str) -> None:
    if codec not in ALL_CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose one of {ALL_CODECS}")
    if codec not in available_codecs():
        raise ValueError(f"codec {codec!r} is not available in this Pillow build "
                         f"(available: {available_codecs()})")


def _jpeg2000_resolutions(height: int, width: int) -> int:
    # OpenJPEG's default of 6 resolution levels (5 wavelet decompositions) needs
    # a shorter side of at least 2**5 px; small images get fewer levels.
    return min(6, int(math.log2(min(height, width))) + 1)


def encode(image, codec: str, quality) -> bytes:
    """Compress one image; returns the complete file as bytes.

    Args:
        image: uint8 RGB (H, W, 3); gray or RGBA arrays are converted to RGB first.
        codec: one of :func:`available_codecs`.
        quality: the codec's own knob (see the module table). For ``jpeg2000``
            it is the target PSNR in dB that OpenJPEG aims for.

    Introduced in notebook 01.
    """
    _check_codec(codec)
    rgb = to_rgb8(image)
    pil = Image.fromarray(rgb)
    buffer = io.BytesIO()
    if codec in ("jpeg420", "jpeg444"):
        pil.save(buffer, format="JPEG", quality=int(quality), subsampling=2 if codec == "jpeg420" else 0)
    elif codec == "webp":
        pil.save(buffer, format="WEBP", quality=int(quality), method=6)
    elif codec == "jpeg2000":
        pil.save(buffer, format="JPEG2000", irreversible=True, mct=1, quality_mode="dB",
                 quality_layers=[float(quality)],
                 num_resolutions=_jpeg2000_resolutions(*rgb.shape[:2]))
    else:  # avif
        pil.save(buffer, format="AVIF", quality=int(quality))
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    """Decode a compressed file (any format Pillow reads) to uint8 RGB (H, W, 3). Introduced in notebook 01."""
    return load_image(bytes(data))


@dataclass
class CodecResult:
    """One compressed image and how good it is.

    Attributes:
        codec, quality: what was asked for.
        data: the compressed file (``num_bytes`` long).
        decoded: the reconstruction, uint8 RGB (H, W, 3).
        bpp: 8 * num_bytes / (H * W), whole file.
        psnr: RGB PSNR in dB (peak 255) against the original.
        msssim: MS-SSIM in [0, 1] on RGB, or ``nan`` when not computed.

    Introduced in notebook 01.
    """

    codec: str
    quality: float
    data: bytes = field(repr=False)
    decoded: np.ndarray = field(repr=False)
    bpp: float
    psnr: float
    msssim: float

    @property
    def num_bytes(self) -> int:
        return len(self.data)


def compress_with(image, codec: str, quality, msssim: bool = True) -> CodecResult:
    """Encode, decode and measure one image: a :class:`CodecResult`.

    ``msssim=False`` skips MS-SSIM (the slowest part, ~0.1 s per Kodak image).
    Introduced in notebook 01.
    """
    rgb = to_rgb8(image)
    data = encode(rgb, codec, quality)
    decoded = decode(data)
    return CodecResult(
        codec=codec, quality=quality, data=data, decoded=decoded,
        bpp=metrics.bits_per_pixel(len(data), rgb.shape),
        psnr=metrics.psnr(rgb, decoded),
        msssim=metrics.ms_ssim(rgb, decoded) if msssim else float("nan"),
    )


def _encode_decode(job):
    """Worker task (picklable): encode and decode one (image, codec, quality)."""
    image, codec, quality = job
    data = encode(image, codec, quality)
    return len(data), decode(data)


def image_list(images) -> list[np.ndarray]:
    """A set of images as a list of uint8 RGB arrays: a list, a ``{name: image}`` dict or one image.

    Gray and RGBA arrays become RGB (:func:`course_lib.data.to_rgb8`); no images is a ValueError.
    The one conversion behind every RD measurement (library plumbing).
    """
    if isinstance(images, Mapping):
        images = list(images.values())
    elif isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    out = [to_rgb8(im) for im in images]
    if not out:
        raise ValueError("no images given")
    return out


def rd_curve(images, codec: str, qualities: Sequence | None = None, msssim: bool = True,
             workers: int = 1, progress: bool = True) -> dict[str, list]:
    """The average RD curve of ``codec`` over a set of images.

    Args:
        images: a list of uint8 RGB arrays, a ``{name: image}`` dict, or one image.
        codec: one of :func:`available_codecs`.
        qualities: quality settings (default :data:`DEFAULT_QUALITIES`).
        msssim: also compute MS-SSIM (otherwise ``nan``).
        workers: processes used for encoding/decoding (metrics stay in this process).
        progress: show progress (:func:`course_lib.progress.progress`: a line in a notebook, a tqdm bar in a terminal).

    Returns:
        ``{"quality": [...], "bpp": [...], "psnr": [...], "msssim": [...]}``, one
        entry per quality: the mean over images of bpp, RGB PSNR (dB) and MS-SSIM.
    Introduced in notebook 01.
    """
    _check_codec(codec)
    images = image_list(images)
    qualities = list(DEFAULT_QUALITIES[codec] if qualities is None else qualities)
    jobs = [(im, codec, q) for q in qualities for im in images]
    bpp = np.zeros(len(jobs))
    psnr = np.zeros(len(jobs))
    ssim = np.full(len(jobs), np.nan)

    def measure(outputs):
        for i, (num_bytes, decoded) in enumerate(progress_line(outputs, desc=codec, total=len(jobs), enabled=progress)):
            original = jobs[i][0]
            bpp[i] = metrics.bits_per_pixel(num_bytes, original.shape)
            psnr[i] = metrics.psnr(original, decoded)
            if msssim:
                ssim[i] = metrics.ms_ssim(original, decoded)

    if workers > 1:
        # "spawn" keeps TensorFlow's threads out of the workers, which only run Pillow.
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            measure(pool.imap(_encode_decode, jobs))
    else:
        measure(map(_encode_decode, jobs))
    shape = (len(qualities), len(images))
    return {
        "quality": qualities,
        "bpp": bpp.reshape(shape).mean(axis=1).tolist(),
        "psnr": psnr.reshape(shape).mean(axis=1).tolist(),
        "msssim": ssim.reshape(shape).mean(axis=1).tolist(),
    }


def match_bpp(image, codec: str, target_bpp: float, msssim: bool = True) -> CodecResult:
    """The highest-quality result whose rate is at most ``target_bpp``.

    Bisection on the quality knob over :data:`QUALITY_RANGE`, assuming the rate
    grows with quality. The search only visits settings on the knob's own grid
    (:func:`snap_quality`: integers for JPEG/WebP/AVIF, 0.05 dB for JPEG 2000),
    so the quality returned is one that was encoded and measured, not a value
    that still needs rounding (rounding after the search could land on a
    larger file). If even the highest quality stays below the target, that
    result is returned. If even the lowest quality is above the target (the
    codec cannot make a file that small, e.g. JPEG below ~0.15 bpp), ValueError
    is raised, naming the smallest rate reachable.
    Introduced in notebook 01.
    """
    _check_codec(codec)
    rgb = to_rgb8(image)
    steps = QUALITY_STEPS_PER_UNIT[codec]
    # Bisect on integer indices of the grid: quality = index / steps.
    low, high = (round(q * steps) for q in QUALITY_RANGE[codec])

    def quality(index):
        return snap_quality(codec, index / steps)

    def rate(index):
        return metrics.bits_per_pixel(len(encode(rgb, codec, quality(index))), rgb.shape)

    if rate(high) <= target_bpp:
        return compress_with(rgb, codec, quality(high), msssim=msssim)
    smallest = rate(low)
    if smallest > target_bpp:
        raise ValueError(f"{codec} cannot reach {target_bpp:.4g} bpp on this image: its lowest "
                         f"quality ({quality(low)}) already costs {smallest:.4g} bpp")
    # Invariant: rate(low) <= target < rate(high).
    while high - low > 1:
        middle = (low + high) // 2
        if rate(middle) <= target_bpp:
            low = middle
        else:
            high = middle
    return compress_with(rgb, codec, quality(low), msssim=msssim)


# --------------------------------------------------------------------------- the benchmark of the command line
def classical_benchmark(data, json_path=None, limit: int | None = None, codecs: Sequence[str] | None = None,
                        workers: int = 2, msssim: bool = True) -> dict:
    """``python -m course_lib baselines``: RD curves of the classical codecs, BD-rates against JPEG 4:2:0.

    ``codecs`` default to every codec this Pillow build offers; ``jpeg420``, the anchor, is always
    measured. Prints the tables, writes ``json_path`` when given, returns the results.
    Used by the command line (notebook 01 measures the same curves with :func:`rd_curve`).
    """
    start = time.perf_counter()
    images = load_folder(data, limit=limit)
    codecs = list(codecs or available_codecs())
    if "jpeg420" not in codecs:
        codecs.insert(0, "jpeg420")  # the anchor of every BD-rate
    print(f"{len(images)} images from {data}; codecs: {', '.join(codecs)}")
    curves = {c: rd_curve(images, c, msssim=msssim, workers=workers) for c in codecs}
    for name, curve in curves.items():
        print(name)
        print(rd_table(curve, "quality"))
    anchor = curves["jpeg420"]
    bd = {method: {c: bd_rate(anchor["bpp"], anchor["psnr"], curve["bpp"], curve["psnr"], method)
                   for c, curve in curves.items()} for method in ("pchip", "cubic")}
    print("\nBD-rate vs jpeg420 on RGB PSNR (negative = fewer bits)")
    print(f"  {'codec':>9} {'pchip %':>8} {'cubic %':>8}")
    for c in curves:
        print(f"  {c:>9} {bd['pchip'][c]:>8.1f} {bd['cubic'][c]:>8.1f}")
    elapsed = time.perf_counter() - start
    print(f"\n{elapsed:.0f} s")
    result = {"codecs": {c: {k: curve[k] for k in ("bpp", "psnr", "msssim")} for c, curve in curves.items()},
              "bd_rate_vs_jpeg420": bd["pchip"], "bd_rate_vs_jpeg420_cubic": bd["cubic"],
              "qualities": {c: curve["quality"] for c, curve in curves.items()},
              "images": len(images), "seconds": round(elapsed, 1)}
    if json_path:
        write_json(json_path, result)  # skipped MS-SSIM values are nan: written as null
        print(f"wrote {json_path}")
    return result
