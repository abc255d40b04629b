"""The slider demo's pure layer: one photo, one knob, what it costs and what it shows (notebook 09).

:func:`update` is a pure function from a :class:`State` (image, codec, level, "match the size", zoom position)
to a :class:`Result` (reconstruction, error map, bytes, bpp, compression ratio, PSNR, MS-SSIM, RD curves). It
holds no widget code, so it is tested without a browser; :mod:`course_lib.widgets` is the thin ipywidgets
layer on top, :mod:`course_lib.compare` puts two codecs side by side at one file size. The codecs and what
their level means are in :mod:`course_lib.demo_codecs`.

Everything slow is cached on the image's content hash, the codec and the level, so moving the slider back and
forth is instant:

- each learned codec is loaded once per process, and each image is encoded once per codec (``y = E(x)`` does
  not depend on the rate; only the gain does, see :meth:`course_lib.codec.LearnedCodec.encode`);
- every (image, codec, level) point is compressed, decoded and measured once;
- RD curves are computed the first time a plot needs them, from the same cached points.

With ``match_bpp`` the other codecs take the reference learned codec's rate as their level
(:func:`course_lib.demo_codecs.reference_codec`) and pick the highest quality whose file is no larger than the
learned codec's at that rate (:func:`course_lib.baselines.match_bpp`): the same size, side by side.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
from PIL import Image

from . import baselines, metrics
from .data import COURSE_PHOTOS, OTHER_IMAGES, ImageLoadError, course_photo, kodak_dir, load_image, to_rgb8
from .demo_codecs import (BASE_CODEC, CODEC_LABELS, LEARNED_MODELS, available_codecs, can_match, check_codec,
                          learned_codec, level_range, reference_codec, restorer)
from .restoration import restore

__all__ = ["MAX_SIDE", "POINT_CACHE_SIZE", "ENCODED_CACHE_SIZE", "MAX_UPLOAD_MB", "image_key", "kodak_names",
           "named_image", "fit_within", "read_upload", "State", "Result", "clear_caches", "rd_curve_points",
           "curve_names", "update"]

#: Largest side of a picture in the demo: uploads above it are downscaled (the Kodak size).
MAX_SIDE = 768
#: How many compressed points (and encoded images) the caches keep: about 1.2 MB per Kodak point.
POINT_CACHE_SIZE = 160
ENCODED_CACHE_SIZE = 8
#: Largest upload the demo takes, in MB. ``make demo`` raises the server's message limit (Tornado's default is
#: 10 MiB) above this, and the Voilà page refuses a larger file before sending it
#: (apps/jupyter/voila/templates/course).
MAX_UPLOAD_MB = 40



# --------------------------------------------------------------------------- images
def image_key(image: np.ndarray) -> str:
    """A content fingerprint of an image array: equal pixels, shape and dtype give equal keys (notebook 09)."""
    a = np.ascontiguousarray(image)
    digest = hashlib.blake2b(a.tobytes(), digest_size=16)
    digest.update(repr((a.shape, a.dtype.str)).encode())
    return "array:" + digest.hexdigest()


def kodak_names() -> list[str]:
    """File names of the Kodak images when a Kodak folder is found (else []). Introduced in notebook 09."""
    try:
        folder = kodak_dir()
    except FileNotFoundError:  # KODAK_DIR set to a folder without Kodak
        return []
    return sorted(p.name for p in folder.glob("kodim*.png")) if folder else []


@functools.lru_cache(maxsize=16)
def named_image(name: str) -> np.ndarray:
    """A course photo (``"astronaut"``) or a Kodak file (``"kodim01.png"``) as uint8 RGB, read-only (cached).

    Introduced in notebook 09.
    """
    if name in COURSE_PHOTOS + OTHER_IMAGES:
        image = course_photo(name)
    elif name in kodak_names():
        image = load_image(kodak_dir() / name)
    else:
        raise KeyError(f"unknown image {name!r}: use a course photo {COURSE_PHOTOS}, a Kodak file name, or an array")
    image.setflags(write=False)  # shared by the cache: nobody may change it
    return image


def fit_within(image: np.ndarray, max_side: int = MAX_SIDE) -> tuple[np.ndarray, str]:
    """Downscale so that neither side exceeds ``max_side`` (Lanczos); returns (image, note or "").

    Used by the demo for uploads and large pictures.
    """
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image, ""
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS))
    return small, f"resized from {width}×{height} to {size[0]}×{size[1]} for the demo"


def read_upload(content: bytes, name: str = "upload", max_side: int = MAX_SIDE) -> tuple[np.ndarray, str]:
    """Decode an uploaded file: (uint8 RGB no larger than ``max_side``, note).

    Gray, RGBA, palette and 16-bit images become RGB (:func:`course_lib.data.load_image`);
    raises :class:`course_lib.data.ImageLoadError` with a readable message for
    anything else (not an image, damaged, above 50 Mpx, a file over :data:`MAX_UPLOAD_MB`). Used by the demo's
    upload box.
    """
    if len(content) > MAX_UPLOAD_MB * 1_000_000:
        raise ImageLoadError(f"{name} has {len(content) / 1e6:.0f} MB; the demo takes files up to "
                             f"{MAX_UPLOAD_MB} MB")
    try:
        image = load_image(bytes(content))
    except ImageLoadError as exc:
        raise ImageLoadError(str(exc).replace("bytes:", f"{name}:", 1)) from None
    return fit_within(image, max_side)


# --------------------------------------------------------------------------- state and result
@dataclass(frozen=True, eq=False)
class State:
    """Everything the demo's controls say.

    Attributes:
        image: a course photo name, a Kodak file name (``"kodim01.png"``) or a uint8 array (H, W, 3).
        codec: one of :data:`course_lib.demo_codecs.CODECS`.
        level: the codec's knob (see :func:`course_lib.demo_codecs.level_range`): learned rate, quality, or
            target dB.
        match_bpp: the other codecs take ``level`` as the reference codec's rate
            (:func:`course_lib.demo_codecs.reference_codec`) and match its file size.
        crop_center: (row, column) of the zoom crop's centre, as fractions of the height and width.
        crop_size: side of the zoom crop in pixels (clipped to the image).
        curves: also return the RD curves (computed once per image and codec, then cached).

    Introduced in notebook 09.
    """

    image: object = "astronaut"
    codec: str = "hyperprior"
    level: float = 2.0
    match_bpp: bool = False
    crop_center: tuple[float, float] = (0.5, 0.5)
    crop_size: int = 96
    curves: bool = True


@dataclass(eq=False)
class Result:
    """What the demo shows for one :class:`State`.

    Attributes:
        original, reconstruction: uint8 RGB (H, W, 3), read-only (they live in the caches).
        error: float32 (H, W), |original - reconstruction| averaged over RGB, 0-255 units.
        crop: (y, x, size) of the zoom square in pixels.
        codec: the codec name; ``level``: the level asked for; ``quality``: the knob
            the codec actually used (the matched quality with ``match_bpp``, the
            snapped rate for the learned codec).
        num_bytes, bpp, compression_ratio: size of the whole file; bpp = 8 bytes / (H W);
            ratio = 24 bpp / bpp.
        psnr (dB, RGB) and msssim (in [0, 1]) against the original.
        curves: ``{codec: {"level": [...], "bpp": [...], "psnr": [...]}}`` for the RD plot, or
            ``None`` when ``State.curves`` is false.
        reference: with ``match_bpp``, the reference codec's point ``{"codec", "num_bytes", "bpp", "psnr"}`` at
            that rate (its file size is the target).
        note: a remark for the user ("" when none), e.g. JPEG cannot reach the learned size.
        image_key: content fingerprint of the image (the caches' key).

    Introduced in notebook 09.
    """

    original: np.ndarray = field(repr=False)
    reconstruction: np.ndarray = field(repr=False)
    error: np.ndarray = field(repr=False)
    crop: tuple[int, int, int]
    codec: str
    level: float
    quality: float
    num_bytes: int
    bpp: float
    compression_ratio: float
    psnr: float
    msssim: float
    curves: dict | None = field(repr=False)
    reference: dict | None
    note: str
    image_key: str

    def __repr__(self) -> str:
        # What a student reads under print(result): no arrays, no cache key.
        knob = f" (knob used: {self.quality:.4g})" if self.quality != self.level else ""
        text = (f"Result({self.codec} at level {self.level:g}{knob}: {self.num_bytes:,} bytes, "
                f"{self.bpp:.3f} bpp, ratio {self.compression_ratio:.1f}:1, PSNR {self.psnr:.2f} dB, "
                f"MS-SSIM {self.msssim:.4f}, zoom y={self.crop[0]} x={self.crop[1]} {self.crop[2]} px")
        if self.reference:
            text += f", size of {self.reference['codec']}: {self.reference['num_bytes']:,} bytes"
        return text + (f", note: {self.note}" if self.note else "") + ")"

    def zoom(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The crop of original, reconstruction and error map (views, no copies)."""
        y, x, size = self.crop
        window = (slice(y, y + size), slice(x, x + size))
        return self.original[window], self.reconstruction[window], self.error[window]


# --------------------------------------------------------------------------- caches
class _LRU:
    """A small least-recently-used cache (a dict that forgets its oldest entries)."""

    def __init__(self, size: int):
        self.size, self.items = size, OrderedDict()

    def get(self, key, compute: Callable):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = compute()
        self.items[key] = value
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return value

    def __contains__(self, key):
        return key in self.items


@dataclass
class _Point:
    reconstruction: np.ndarray
    num_bytes: int
    psnr: float
    quality: float
    msssim: float | None = None  # computed only when a point is shown (it is the slow metric)
    note: str = ""


_points = _LRU(POINT_CACHE_SIZE)
_encodings = _LRU(ENCODED_CACHE_SIZE)
_matched = _LRU(4 * POINT_CACHE_SIZE)
_curves = _LRU(64)


def clear_caches() -> None:
    """Forget every cached point, encoding and curve (the models stay loaded). Used by the demo's tests."""
    for cache in (_points, _encodings, _matched, _curves):
        cache.items.clear()


def _knob(base: str, level: float):
    """The cache key of a level: the stored rate byte for a learned codec, the codec's knob otherwise."""
    if base in LEARNED_MODELS:
        return learned_codec(base).rate_to_byte(float(level))
    # The same grid match_bpp searches on, so a matched quality keys (and encodes) to the file it measured.
    return baselines.snap_quality(base, level)


def _measure(original, reconstruction, num_bytes, quality, note="") -> _Point:
    reconstruction.setflags(write=False)
    return _Point(reconstruction, num_bytes, metrics.psnr(original, reconstruction), quality, note=note)


def _encoded(key: str, image: np.ndarray, base: str) -> np.ndarray:
    """E(x) of an image by the learned codec ``base``, computed once per image and codec (cached)."""
    return _encodings.get((key, base), lambda: learned_codec(base).encode(image))


def _learned_point(key: str, image: np.ndarray, base: str, rate_byte: int) -> _Point:
    codec = learned_codec(base)
    rate = codec.byte_to_rate(rate_byte)
    # The reconstruction is what the file decodes to, bit for bit (notebooks 06 and 12), made from the latents
    # the file codes: no range decoder, and the latents (y, z and h_s in float64) are computed once.
    data, reconstruction = codec.compress_and_reconstruct(image, rate, encoded=_encoded(key, image, base))
    return _measure(image, reconstruction, len(data), rate)


def _point(key: str, image: np.ndarray, codec: str, knob) -> _Point:
    """One compressed, decoded and measured point (cached)."""

    def compute():
        base = BASE_CODEC[codec]
        if codec != base:  # restoration after the base codec's decoder: same bytes, repaired pixels
            plain = _point(key, image, base, knob)
            network = restorer("learned" if base == "learned" else "jpeg")
            return _measure(image, restore(plain.reconstruction, network), plain.num_bytes, plain.quality)
        if base in LEARNED_MODELS:
            return _learned_point(key, image, base, knob)
        data = baselines.encode(image, base, knob)
        return _measure(image, baselines.decode(data), len(data), knob)

    return _points.get((key, codec, knob), compute)


def _matched_knob(key: str, image: np.ndarray, base: str, learned: str,
                  rate_byte: int) -> tuple[object, str, _Point]:
    """The knob of ``base`` whose file is closest to (not above) the ``learned`` codec's at this rate.

    A classical codec searches its quality (:func:`course_lib.baselines.match_bpp`); another learned codec
    bisects its stored rate bytes, assuming its file grows with the rate.
    """
    reference = _point(key, image, learned, rate_byte)
    target = metrics.bits_per_pixel(reference.num_bytes, image.shape)

    def search():
        if base in LEARNED_MODELS:
            knob, fits = _matched_rate_byte(key, image, base, reference.num_bytes)
        else:
            try:
                knob, fits = _knob(base, baselines.match_bpp(image, base, target, msssim=False).quality), True
            except ValueError:  # the codec cannot make a file this small: show its smallest one
                knob, fits = _knob(base, baselines.QUALITY_RANGE[base][0]), False
        return knob, "" if fits else (f"{CODEC_LABELS[base]} cannot make a file as small as the "
                                      f"{CODEC_LABELS[learned]} codec's ({target:.3f} bpp) on this image; showing "
                                      f"its lowest {'rate' if base in LEARNED_MODELS else 'quality'}")

    knob, note = _matched.get((key, base, learned, rate_byte), search)
    return knob, note, reference


def _matched_rate_byte(key: str, image: np.ndarray, base: str, target_bytes: int) -> tuple[int, bool]:
    """(The highest rate byte of the learned codec ``base`` whose file has at most ``target_bytes``, True),
    or (0, False) when even its lowest rate is larger.

    Only file sizes are measured (the analysis is cached; no decoder runs): about eight compressions.
    """
    codec = learned_codec(base)
    encoded = _encoded(key, image, base)

    def size(rate_byte):
        return len(codec.compress(image, codec.byte_to_rate(rate_byte), encoded=encoded))

    low, high = 0, codec.rate_to_byte(codec.num_rates - 1)
    if size(high) <= target_bytes:
        return high, True
    if size(low) > target_bytes:
        return low, False
    while high - low > 1:  # invariant: size(low) <= target < size(high)
        middle = (low + high) // 2
        if size(middle) <= target_bytes:
            low = middle
        else:
            high = middle
    return low, True


def _ladder(codec: str) -> list:
    base = BASE_CODEC[codec]
    if base in LEARNED_MODELS:
        return list(range(learned_codec(base).num_rates))
    return list(baselines.DEFAULT_QUALITIES[base])


def rd_curve_points(image, codec: str) -> dict[str, list]:
    """The RD curve of ``codec`` on one image: ``{"level", "bpp", "psnr"}`` at its standard levels.

    Learned codecs: every integer rate; classical codecs: :data:`course_lib.baselines.DEFAULT_QUALITIES`.
    Cached per image and codec; the points also fill the slider's cache. Introduced in notebook 09.
    """
    check_codec(codec)
    image, key = _resolve(image)
    return _curve(key, image, codec)


def _curve(key: str, image: np.ndarray, codec: str) -> dict[str, list]:
    """:func:`rd_curve_points` for an image already resolved to its array and cache key."""

    def compute():
        levels = _ladder(codec)
        points = [_point(key, image, codec, _knob(BASE_CODEC[codec], level)) for level in levels]
        return {"level": levels,
                "bpp": [metrics.bits_per_pixel(p.num_bytes, image.shape) for p in points],
                "psnr": [p.psnr for p in points]}

    return _curves.get((key, codec), compute)


def curve_names(codec: str) -> tuple[str, ...]:
    """Which curves the RD plot shows with ``codec``: the reference learned codec and JPEG, plus ``codec``.

    Used by the demo's RD plot.
    """
    names = [c for c in (reference_codec(), "jpeg420") if c in available_codecs()]
    if codec not in names:
        names.append(codec)
    return tuple(names)


def _resolve(image) -> tuple[np.ndarray, str]:
    if isinstance(image, str):
        return named_image(image), "name:" + image
    array = np.asarray(image)
    if not (array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3):
        array = to_rgb8(array)  # gray, RGBA, float...: converted once, then keyed by content
    return array, image_key(array)


def _crop_box(shape, center, size) -> tuple[int, int, int]:
    height, width = shape[:2]
    size = max(1, min(int(size), height, width))
    fy, fx = (min(max(float(v), 0.0), 1.0) for v in center)
    y = min(max(round(fy * height - size / 2), 0), height - size)
    x = min(max(round(fx * width - size / 2), 0), width - size)
    return y, x, size


# --------------------------------------------------------------------------- the pure function
def update(state: State | Mapping) -> Result:
    """Compress, decode and measure one state of the demo: a :class:`Result`.

    ``state`` is a :class:`State` or a dict of its fields (missing fields take the defaults).
    Raises ``ValueError`` for an unknown or unavailable codec or a level outside
    :func:`course_lib.demo_codecs.level_range`, ``KeyError`` for an unknown image name. No widgets are
    involved; results are cached (see the module docstring), so a revisit costs
    only the error map. Introduced in notebook 09.
    """
    if isinstance(state, Mapping):
        state = State(**state)
    check_codec(state.codec)
    if state.codec not in available_codecs():
        raise ValueError(f"codec {state.codec!r} is not available here (weights missing?); "
                         f"available: {available_codecs()}")
    levels = level_range(state.codec, state.match_bpp)
    level = float(state.level)
    if not levels.low <= level <= levels.high:
        raise ValueError(f"level {level} is outside [{levels.low}, {levels.high}] for {state.codec}"
                         + (" with match_bpp" if state.match_bpp else ""))
    image, key = _resolve(state.image)
    base = BASE_CODEC[state.codec]
    note, reference = "", None
    if state.match_bpp and can_match(state.codec):
        learned = reference_codec()
        knob, note, point = _matched_knob(key, image, base, learned, _knob(learned, level))
        reference = {"codec": learned, "num_bytes": point.num_bytes,
                     "bpp": metrics.bits_per_pixel(point.num_bytes, image.shape), "psnr": point.psnr}
    else:
        knob = _knob(base, level)
    point = _point(key, image, state.codec, knob)
    if point.msssim is None:
        point.msssim = metrics.ms_ssim(image, point.reconstruction)
    # |original - reconstruction| averaged over RGB, float32: the sum of three integers is exact in int16 and in
    # float32, so this is mean(axis=2) in float32 bit for bit, in about two thirds of the time.
    error = np.abs(image.astype(np.int16) - point.reconstruction).sum(axis=2, dtype=np.int16).astype(np.float32)
    error /= np.float32(3)
    # The image is resolved (and an array hashed) once per move, not again for each curve.
    curves = {name: _curve(key, image, name) for name in curve_names(state.codec)} if state.curves else None
    return Result(
        original=image, reconstruction=point.reconstruction, error=error,
        crop=_crop_box(image.shape, state.crop_center, state.crop_size),
        codec=state.codec, level=level, quality=float(point.quality), num_bytes=point.num_bytes,
        bpp=metrics.bits_per_pixel(point.num_bytes, image.shape),
        compression_ratio=metrics.compression_ratio(point.num_bytes, image.shape),
        psnr=point.psnr, msssim=point.msssim, curves=curves, reference=reference, note=note, image_key=key)
