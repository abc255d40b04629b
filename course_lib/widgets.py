"""The compression-level slider: one photo, one knob, what it costs and what it shows (notebook 09).

Two layers, kept apart so that the first can be tested without a browser:

* :func:`update` is a pure function from a :class:`State` (image, codec,
  level, "match bpp", zoom position) to a :class:`Result` (reconstruction,
  error map, bytes, bpp, compression ratio, PSNR, MS-SSIM, RD curves). It holds
  no widget code. Everything slow is cached on the image's content hash, the
  codec and the level, so moving the slider back and forth is instant:

  - each learned codec is loaded once per process, and each image is encoded
    once per codec (``y = E(x)`` does not depend on the rate; only the gain
    does, see :meth:`course_lib.codec.LearnedCodec.encode`);
  - every (image, codec, level) point is compressed, decoded and measured once;
  - RD curves are computed the first time a plot needs them, from the same
    cached points.

* :func:`compare` is the same for two codecs at one file size (:class:`CompareState` ->
  :class:`Comparison`): both matched to the reference learned codec's file at a rate, and a
  wipe composed from the two reconstructions (:func:`wipe_image`).

* :class:`SliderDemo` (:func:`build_demo`) is a thin ipywidgets layer with two
  modes (one codec; two codecs at the same file size, side by side and as a
  wipe), lesson presets, a projector mode, and a background worker in which the
  newest input wins: a level slider, a codec menu, an image picker (course photos, Kodak when
  :func:`course_lib.data.kodak_dir` finds it, and an upload box), panels
  original | reconstruction | error map with a zoomed crop below each, the
  readouts, and an RD plot on which the current point moves. Pictures travel
  as PNG bytes in ``ipywidgets.Image``, which renders the same in JupyterLab
  and in Voilà. A bad upload or any failure shows as a message in the demo,
  never as a traceback.

Codecs (:data:`CODECS`) and what the level means for each:

=======================  ================================================
``hyperprior``           rate of the shipped scale-hyperprior codec
                         (``learned_hyperprior``, notebook 12), continuous
                         in [0, num_rates - 1] (stored in steps of 1/51)
``learned``              rate of the shipped factorized codec
                         (``learned_codec``, notebooks 03-07), likewise
``jpeg420``              JPEG quality 1-100 (4:2:0 chroma)
``webp``                 WebP quality 0-100
``jpeg2000``             JPEG 2000 target PSNR in dB (OpenJPEG's knob)
``learned+restoration``  learned codec, then the network trained on its
                         artefacts (``restoration_learned``)
``jpeg+restoration``     JPEG 4:2:0, then the network trained on JPEG
                         artefacts (``restoration``)
=======================  ================================================

With ``match_bpp`` the classical codecs take the *reference* learned codec's
rate as their level (:func:`reference_codec`: the best one shipped, the
hyperprior when its weights are present) and pick the highest quality whose
file is no larger than the learned codec's at that rate
(:func:`course_lib.baselines.match_bpp`): the same size, side by side.
Restoration adds no bytes: it runs after decoding.

Introduced in notebook 09; ``make demo`` serves it as a standalone Voilà app.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import html
import io
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
from PIL import Image

from . import baselines, metrics
from .data import COURSE_PHOTOS, OTHER_IMAGES, ImageLoadError, course_photo, kodak_dir, load_image, to_rgb8
from .plots import codec_colour

#: Codec names accepted by :func:`update`, in menu order (the best learned codec first).
CODECS = ("hyperprior", "learned", "jpeg420", "webp", "jpeg2000", "learned+restoration", "jpeg+restoration")
#: The learned codecs: name in the demo -> shipped model in ``data/weights/manifest.json``, best first.
LEARNED_MODELS = {"hyperprior": "learned_hyperprior", "learned": "learned_codec"}
CODEC_LABELS = {
    "hyperprior": "learned (hyperprior)",
    "learned": "learned (factorized)",
    "jpeg420": "JPEG (4:2:0)",
    "webp": "WebP",
    "jpeg2000": "JPEG 2000",
    "learned+restoration": "learned (factorized) + restoration",
    "jpeg+restoration": "JPEG + restoration",
}
#: The codec that does the compressing, for each name (restoration runs after its decoder).
BASE_CODEC = {"hyperprior": "hyperprior", "learned": "learned", "jpeg420": "jpeg420", "webp": "webp",
              "jpeg2000": "jpeg2000", "learned+restoration": "learned", "jpeg+restoration": "jpeg420"}
#: Absolute error (0-255, mean over RGB) shown at full brightness in the error map. Fixed, not
#: rescaled per image, so that the map visibly darkens as the level rises.
ERROR_SCALE = 32.0
#: Largest side of a picture in the demo: uploads above it are downscaled (the Kodak size).
MAX_SIDE = 768
#: Zoom factor of the crops under the pictures (nearest neighbour, so pixels stay square).
ZOOM = 4
#: How many compressed points (and encoded images) the caches keep: about 1.2 MB per Kodak point.
POINT_CACHE_SIZE = 160
ENCODED_CACHE_SIZE = 8


# --------------------------------------------------------------------------- levels
@dataclass(frozen=True)
class LevelRange:
    """What the level slider means for a codec: ``low``..``high`` in steps of ``step``."""

    low: float
    high: float
    step: float
    default: float
    label: str


_CLASSICAL_LEVELS = {
    "jpeg420": LevelRange(1, 100, 1, 20, "JPEG quality"),
    "webp": LevelRange(0, 100, 1, 30, "WebP quality"),
    "jpeg2000": LevelRange(20, 50, 0.5, 30, "target PSNR (dB)"),
}


def level_range(codec: str, match_bpp: bool = False) -> LevelRange:
    """The slider range of ``codec``; with ``match_bpp``, classical codecs follow the reference codec's rate.

    Learned codecs span their whole range, [0, num_rates - 1]. Introduced in notebook 09.
    """
    _check_codec_name(codec)
    base = BASE_CODEC[codec]
    matched = match_bpp and base != reference_codec()
    if base in LEARNED_MODELS or match_bpp:
        learned = reference_codec() if matched else base
        if learned is None:
            raise ValueError("match_bpp needs a learned codec, and none is available here (weights missing?)")
        top = learned_codec(learned).num_rates - 1
        return LevelRange(0.0, float(top), 0.1, min(2.0, float(top)),
                          "learned rate" + (" (match)" if matched else ""))
    return _CLASSICAL_LEVELS[base]


def can_match(codec: str) -> bool:
    """Whether "match the size" changes anything for ``codec``: every codec but the reference learned one
    (:func:`reference_codec`, whose size is the target) can be matched. Introduced in notebook 09."""
    reference = reference_codec()
    return reference is not None and BASE_CODEC[codec] != reference


# --------------------------------------------------------------------------- models, loaded once
@functools.lru_cache(maxsize=len(LEARNED_MODELS))
def learned_codec(name: str = "learned"):
    """The shipped learned codec ``name`` (a key of :data:`LEARNED_MODELS`), loaded once per process."""
    from .codec import load_codec

    if name not in LEARNED_MODELS:
        raise ValueError(f"unknown learned codec {name!r}; choose one of {tuple(LEARNED_MODELS)}")
    return load_codec(LEARNED_MODELS[name])


def reference_codec() -> str | None:
    """The learned codec the others are compared with (match the size, the plot's reference curve): the first
    of :data:`LEARNED_MODELS` that is available, or None."""
    return next((name for name in LEARNED_MODELS if name in available_codecs()), None)


@functools.lru_cache(maxsize=2)
def restorer(codec: str = "jpeg"):
    """The shipped restoration network for ``codec`` ("jpeg" or "learned"), loaded once.

    See :func:`course_lib.restoration.model_for`: each codec has its own
    network, trained on its artefacts.
    """
    from .restoration import load_restorer, model_for

    return load_restorer(model_for(codec))


@functools.lru_cache(maxsize=1)
def available_codecs() -> tuple[str, ...]:
    """The names of :data:`CODECS` this installation can run (weights present, Pillow codecs built in)."""
    from .codec import WeightsError

    usable = set(baselines.available_codecs())
    for name in LEARNED_MODELS:
        try:
            learned_codec(name)
            usable.add(name)
        except (WeightsError, OSError):
            pass
    from .restoration import is_shipped, model_for

    # Checked without loading the networks (that takes a second each).
    usable |= {f"restoration:{kind}" for kind in ("jpeg", "learned") if is_shipped(model_for(kind))}
    needs = {"learned": {"learned"}, "learned+restoration": {"learned", "restoration:learned"},
             "jpeg+restoration": {"jpeg420", "restoration:jpeg"}}
    return tuple(c for c in CODECS if needs.get(c, {c}) <= usable)


def _check_codec_name(codec: str) -> None:
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose one of {CODECS}")


# --------------------------------------------------------------------------- images
def image_key(image: np.ndarray) -> str:
    """A content fingerprint of an image array: equal pixels, shape and dtype give equal keys (notebook 09)."""
    a = np.ascontiguousarray(image)
    digest = hashlib.blake2b(a.tobytes(), digest_size=16)
    digest.update(repr((a.shape, a.dtype.str)).encode())
    return "array:" + digest.hexdigest()


def kodak_names() -> list[str]:
    """File names of the Kodak images when a Kodak folder is found (else [])."""
    try:
        folder = kodak_dir()
    except FileNotFoundError:  # KODAK_DIR set to a folder without Kodak
        return []
    return sorted(p.name for p in folder.glob("kodim*.png")) if folder else []


@functools.lru_cache(maxsize=16)
def named_image(name: str) -> np.ndarray:
    """A course photo (``"astronaut"``) or a Kodak file (``"kodim01.png"``) as uint8 RGB."""
    if name in COURSE_PHOTOS + OTHER_IMAGES:
        image = course_photo(name)
    elif name in kodak_names():
        image = load_image(kodak_dir() / name)
    else:
        raise KeyError(f"unknown image {name!r}: use a course photo {COURSE_PHOTOS}, a Kodak file name, or an array")
    image.setflags(write=False)  # shared by the cache: nobody may change it
    return image


def fit_within(image: np.ndarray, max_side: int = MAX_SIDE) -> tuple[np.ndarray, str]:
    """Downscale so that neither side exceeds ``max_side`` (Lanczos); returns (image, note or "")."""
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
    anything else (not an image, damaged, above 50 Mpx).
    """
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
        codec: one of :data:`CODECS`.
        level: the codec's knob (see :func:`level_range`): learned rate, quality, or target dB.
        match_bpp: classical codecs take ``level`` as the reference codec's rate (:func:`reference_codec`) and
            match its file size.
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
        reference: with ``match_bpp``, the reference codec's point ``{"codec", "bpp", "psnr"}`` at that rate.
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
    """Forget every cached point, encoding and curve (the models stay loaded)."""
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
    encoded = _encoded(key, image, base)
    data = codec.compress(image, rate, encoded=encoded)
    # decompress(compress(x)) equals quantized_forward(x) bit for bit (notebooks 06 and 12), and skipping
    # the range decoder saves a third of the time of a first visit.
    return _measure(image, codec.quantized_forward(image, rate, encoded), len(data), rate)


def _point(key: str, image: np.ndarray, codec: str, knob) -> _Point:
    """One compressed, decoded and measured point (cached)."""

    def compute():
        base = BASE_CODEC[codec]
        if codec != base:  # restoration after the base codec's decoder: same bytes, repaired pixels
            from .restoration import restore

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
    _check_codec_name(codec)
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
    """Which curves the RD plot shows with ``codec``: the reference learned codec and JPEG, plus ``codec``."""
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
    :func:`level_range`, ``KeyError`` for an unknown image name. No widgets are
    involved; results are cached (see the module docstring), so a revisit costs
    only the error map. Introduced in notebook 09.
    """
    if isinstance(state, Mapping):
        state = State(**state)
    _check_codec_name(state.codec)
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
        reference = {"codec": learned, "bpp": metrics.bits_per_pixel(point.num_bytes, image.shape),
                     "psnr": point.psnr}
    else:
        knob = _knob(base, level)
    point = _point(key, image, state.codec, knob)
    if point.msssim is None:
        point.msssim = metrics.ms_ssim(image, point.reconstruction)
    error = np.abs(image.astype(np.float32) - point.reconstruction.astype(np.float32)).mean(axis=2)
    # The image is resolved (and an array hashed) once per move, not again for each curve.
    curves = {name: _curve(key, image, name) for name in curve_names(state.codec)} if state.curves else None
    return Result(
        original=image, reconstruction=point.reconstruction, error=error,
        crop=_crop_box(image.shape, state.crop_center, state.crop_size),
        codec=state.codec, level=level, quality=float(point.quality), num_bytes=point.num_bytes,
        bpp=metrics.bits_per_pixel(point.num_bytes, image.shape),
        compression_ratio=metrics.compression_ratio(point.num_bytes, image.shape),
        psnr=point.psnr, msssim=point.msssim, curves=curves, reference=reference, note=note, image_key=key)


# --------------------------------------------------------------------------- two codecs at the same size
@dataclass(frozen=True, eq=False)
class CompareState:
    """What the compare view's controls say: two codecs at the file size of the reference codec at ``level``.

    Attributes:
        image: as in :class:`State`.
        left, right: codec names of :data:`CODECS` (``left=None``: the reference learned codec,
            :func:`reference_codec`).
        level: the reference codec's rate; its file size is the target both sides are matched to.
        split: where the wipe view changes from left to right, as a fraction of the width (0: all right).
        crop_center, crop_size: the zoom square, the same on both sides.

    Introduced in notebook 09.
    """

    image: object = "astronaut"
    left: str | None = None
    right: str = "jpeg420"
    level: float = 2.0
    split: float = 0.5
    crop_center: tuple[float, float] = (0.5, 0.5)
    crop_size: int = 96


@dataclass(eq=False)
class Comparison:
    """Two codecs at the same file size (:func:`compare`).

    Attributes:
        left, right: the two :class:`Result` s (same image, same crop), each no larger than the target when the
            codec can make a file that small (else its ``note`` says so).
        target_bytes, target_bpp: the reference codec's file at the chosen rate.
        reference: the reference codec's name.
        wipe: uint8 RGB (H, W, 3): the left reconstruction on columns ``< split_column``, the right one after.
        split_column: the first column taken from the right reconstruction.
    """

    left: Result
    right: Result
    target_bytes: int
    target_bpp: float
    reference: str
    wipe: np.ndarray = field(repr=False)
    split_column: int

    @property
    def crop(self) -> tuple[int, int, int]:
        return self.left.crop

    def label(self, side: str) -> str:
        """One line for a side ("left" or "right"): codec, bytes, bpp and PSNR."""
        return result_label(getattr(self, side))


def result_label(result: Result) -> str:
    """``"JPEG (4:2:0): 12,345 bytes, 0.251 bpp, 29.14 dB"``: what a panel's caption says. Notebook 09."""
    return (f"{CODEC_LABELS[result.codec]}: {result.num_bytes:,} bytes, {result.bpp:.3f} bpp, "
            f"{result.psnr:.2f} dB")


def wipe_image(left: np.ndarray, right: np.ndarray, split: float) -> tuple[np.ndarray, int]:
    """Compose two pictures of the same shape: ``left`` before column ``round(split * W)``, ``right`` after.

    Returns (picture, that column). ``split`` is clipped to [0, 1]. Introduced in notebook 09.
    """
    if left.shape != right.shape:
        raise ValueError(f"the two pictures differ in shape: {left.shape} and {right.shape}")
    column = round(min(max(float(split), 0.0), 1.0) * left.shape[1])
    wiped = np.array(right)
    wiped[:, :column] = left[:, :column]
    return wiped, column


def compare(state: CompareState | Mapping) -> Comparison:
    """Two codecs at the same file size: each side matched to the reference codec's file at ``state.level``.

    The reference codec itself is shown at that rate; every other codec takes the largest setting whose file
    is not larger (:func:`update` with ``match_bpp``). Both sides share the image and the zoom square.
    Cached like :func:`update`, so moving the wipe costs only the composition. Introduced in notebook 09.
    """
    if isinstance(state, Mapping):
        state = CompareState(**state)
    reference = reference_codec()
    if reference is None:
        raise ValueError("comparing at the same size needs a learned codec, and none is available here")
    sides = []
    for codec in (state.left or reference, state.right):
        sides.append(update(State(image=state.image, codec=codec, level=state.level, match_bpp=can_match(codec),
                                  crop_center=state.crop_center, crop_size=state.crop_size, curves=False)))
    left, right = sides
    image, key = left.original, left.image_key  # resolved once by update()
    target = _point(key, image, reference, _knob(reference, float(state.level)))
    wiped, column = wipe_image(left.reconstruction, right.reconstruction, state.split)
    return Comparison(left=left, right=right, target_bytes=target.num_bytes,
                      target_bpp=metrics.bits_per_pixel(target.num_bytes, image.shape), reference=reference,
                      wipe=wiped, split_column=column)


def ratio_text(ratio: float) -> str:
    """A compression ratio for people: ``"24 : 1"``, ``"3.5 : 1"``, or for a file larger than its pixels
    (a tiny image: headers dominate) ``"0.01 : 1 (the file is larger than the raw pixels)"``."""
    if not math.isfinite(ratio):
        return "∞ : 1"
    if ratio >= 10:
        return f"{ratio:.0f} : 1"
    if ratio >= 1:
        return f"{ratio:.1f} : 1"
    return f"{ratio:.2g} : 1 (the file is larger than the raw pixels)"


# --------------------------------------------------------------------------- pictures as PNG bytes
def png_bytes(image: np.ndarray) -> bytes:
    """PNG file of a uint8 image (fast, lossless: what the demo sends to the browser)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@functools.lru_cache(maxsize=1)
def _error_colours() -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps["inferno"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def error_image(error: np.ndarray, scale: float = ERROR_SCALE) -> np.ndarray:
    """An error map (H, W) in 0-255 units as a uint8 RGB picture (H, W, 3), inferno colours, ``scale`` brightest.

    Introduced in notebook 09.
    """
    index = np.clip(error * (255.0 / scale), 0, 255).astype(np.uint8)
    return _error_colours()[index]


def _display_size(shape, width: int) -> tuple[int, int]:
    height, image_width = shape[:2]
    scale = min(1.0, width / image_width)
    return max(1, round(image_width * scale)), max(1, round(height * scale))


def _split_line(picture: np.ndarray, split: float | None) -> np.ndarray:
    """Draw the wipe's boundary (white, outlined in black) at ``split`` (a fraction of the width), in place."""
    if split is None or not 0.0 < split < 1.0:
        return picture
    column = min(max(round(split * picture.shape[1]), 1), picture.shape[1] - 2)
    picture[:, column - 1:column + 2] = 0
    picture[:, column] = 255
    return picture


def _panel(image: np.ndarray, crop, width: int, split: float | None = None) -> np.ndarray:
    """The image scaled to ``width`` for display, with the zoom square outlined in cyan (and a wipe's line)."""
    size = _display_size(image.shape, width)
    small = np.array(Image.fromarray(image).resize(size, Image.BILINEAR) if size[0] != image.shape[1] else image)
    scale = size[0] / image.shape[1]
    y, x, side = crop
    top, left = round(y * scale), round(x * scale)
    bottom = min(size[1] - 1, top + max(2, round(side * scale)))
    right = min(size[0] - 1, left + max(2, round(side * scale)))
    cyan = np.array([0, 255, 255], np.uint8)
    for row in (top, bottom):
        small[row, left:right + 1] = cyan
    for column in (left, right):
        small[top:bottom + 1, column] = cyan
    return _split_line(small, split)


def _zoomed(crop: np.ndarray, width: int, split: float | None = None) -> np.ndarray:
    """A crop enlarged by an integer factor with nearest neighbours, so pixels and 8x8 blocks stay visible."""
    factor = max(1, width // max(crop.shape[:2]))
    return _split_line(np.repeat(np.repeat(crop, factor, axis=0), factor, axis=1), split)


def error_colour_bar_html(scale: float = ERROR_SCALE, stops: int = 9) -> str:
    """The error map's colour scale as HTML (a CSS gradient of the same inferno colours, 0 to ``scale``).

    It stretches with its container, so it scales with the window like the pictures. Introduced in notebook 09.
    """
    colours = _error_colours()[np.linspace(0, 255, stops).round().astype(int)]
    gradient = ", ".join("#%02x%02x%02x" % tuple(int(v) for v in c) for c in colours)
    return (f"<div class='error-colour-bar' style='height:0.8em;border:1px solid #888;"
            f"background:linear-gradient(to right, {gradient})'></div>"
            f"<div style='display:flex;justify-content:space-between'><span>0</span>"
            f"<span>{scale / 2:g}</span><span>≥ {scale:g} of 255</span></div>")


class RDPlot:
    """The RD plot of the demo: curves drawn once, markers that move; :meth:`png` gives PNG bytes.

    Matplotlib draws the curves (about 50 ms); each slider move only paints the
    markers onto a copy of that picture (a few ms). The bpp axis is framed on
    the part of the bpp range the learned codecs and JPEG share (JPEG's
    high-quality tail would squeeze the learned curves into a dot); a point
    beyond the frame is drawn at its edge as an arrow with its bpp written
    beside it, so the axes never jump. A second axis on top gives the file size
    in kilobytes for the image (:meth:`set_curves` with ``pixels``).
    """

    def __init__(self, size=(5.6, 3.8), dpi=90, font_size: float = 11):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=size, dpi=dpi, layout="constrained")
        self.canvas = FigureCanvasAgg(self.figure)
        self.font_size = float(font_size)
        self.axes = None
        self.curves: dict = {}
        self.colours: dict[str, str] = {}
        self.pixels = 0
        self.points: list = []  # (codec, bpp, psnr, shape): shape "circle" or "square"
        self._limits = None
        self._background = None

    def set_curves(self, curves: Mapping[str, Mapping[str, list]] | None, pixels: int = 0):
        """Replace the curves: ``{codec: {"bpp": [...], "psnr": [...]}}`` (``None``: none); ``pixels``: H × W of
        the image, for the kilobyte axis (0: no such axis)."""
        from matplotlib.colors import to_hex

        self.curves, self.pixels = dict(curves or {}), int(pixels)
        self.figure.clear()
        self.axes = self.figure.add_subplot()
        self.colours = {}
        small = self.font_size
        for index, (name, curve) in enumerate(self.curves.items()):
            order = np.argsort(curve["bpp"])
            line, = self.axes.plot(np.asarray(curve["bpp"])[order], np.asarray(curve["psnr"])[order],
                                   marker=".", linewidth=1.8, label=CODEC_LABELS[name],
                                   color=codec_colour(name) or f"C{index}")
            self.colours[name] = to_hex(line.get_color())  # a colour name PIL understands too
        self.axes.set_xlabel("rate (bits per pixel)", fontsize=small)
        self.axes.set_ylabel("PSNR (dB, RGB)", fontsize=small)
        self.axes.tick_params(labelsize=small)
        self.axes.grid(True, alpha=0.3)
        if self.pixels:
            kilobytes = self.pixels / 8 / 1000  # kB per bpp for this image
            top = self.axes.secondary_xaxis("top", functions=(lambda b: b * kilobytes, lambda k: k / kilobytes))
            top.set_xlabel("file size of this image (kB)", fontsize=small)
            top.tick_params(labelsize=small)
        if self.curves:
            self.axes.legend(fontsize=small, loc="lower right")
        self._limits = self._background = None

    def set_point(self, codec: str, bpp: float, psnr: float, reference: Mapping | None = None):
        """Move the marker to (bpp, psnr); ``reference`` (``{"codec", "bpp", "psnr"}``) also marks the reference
        learned codec's point (a square)."""
        self.points = [(codec, float(bpp), float(psnr), "circle")]
        if reference:
            self.points.append((reference["codec"], float(reference["bpp"]), float(reference["psnr"]), "square"))

    def set_points(self, points):
        """Several markers at once: ``[(codec, bpp, psnr), ...]`` (circles), e.g. both sides of a comparison."""
        self.points = [(codec, float(bpp), float(psnr), "circle") for codec, bpp, psnr in points]

    def _wanted_limits(self):
        """Axes framed on the curves' common bpp range (and the PSNR they reach there); they do not follow a
        point that leaves them, so the picture stays still while the slider moves."""
        curves = [c for c in self.curves.values() if c["bpp"]]
        if not curves:
            points = [(b, p) for _, b, p, _ in self.points if math.isfinite(p)]
            if not points:
                return (0.0, 1.0), (20.0, 40.0)
            bpp, psnr = np.array(points, dtype=float).T
            return (0.0, 1.06 * bpp.max() + 0.02), (math.floor(psnr.min() - 1), math.ceil(psnr.max() + 1))
        # The bpp range every curve covers, widened a little; at least up to 1 bpp, where the lesson is.
        common_top = min(max(c["bpp"]) for c in curves)
        right = max(1.0, 1.25 * common_top)
        inside = [(b, p) for c in curves for b, p in zip(c["bpp"], c["psnr"]) if b <= right and math.isfinite(p)]
        inside += [(b, p) for _, b, p, _ in self.points if b <= right and math.isfinite(p)]
        psnr = np.array([p for _, p in inside] or [20.0, 40.0], dtype=float)
        low, high = psnr.min(), psnr.max()
        pad = max(0.5, 0.06 * (high - low))
        return (0.0, right), (math.floor(low - pad), math.ceil(high + pad))

    def png(self) -> bytes:
        from PIL import ImageDraw

        if self.axes is None:
            self.set_curves(None)
        limits = self._wanted_limits()
        if limits != self._limits or self._background is None:
            self.axes.set_xlim(*limits[0])
            self.axes.set_ylim(*limits[1])
            self.canvas.draw()
            self._background = Image.fromarray(np.asarray(self.canvas.buffer_rgba())[..., :3].copy())
            self._limits = limits
        frame = self._background.copy()
        draw = ImageDraw.Draw(frame)
        height = frame.size[1]
        (_, right), (bottom, top) = self._limits

        def pixel(x, y):
            px, py = self.axes.transData.transform((x, y))
            return px, height - py

        for codec, bpp, psnr, shape in self.points:
            if not math.isfinite(psnr):
                continue
            colour = self.colours.get(codec, "black")
            x, y = pixel(min(bpp, right), min(max(psnr, bottom), top))
            if bpp > right:  # beyond the frame: an arrow at the edge, and the value
                draw.polygon([(x, y), (x - 14, y - 8), (x - 14, y + 8)], fill=colour)
                draw.text((x - 16, y + 10), f"{bpp:.1f} bpp →", fill=colour, anchor="ra",
                          font_size=round(self.font_size * self.figure.dpi / 72))
            elif shape == "square":
                draw.rectangle((x - 7, y - 7, x + 7, y + 7), outline=colour, width=2)
            else:
                draw.ellipse((x - 9, y - 9, x + 9, y + 9), outline=colour, width=3)
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill="black")
        return png_bytes(np.asarray(frame))


# --------------------------------------------------------------------------- the widgets
#: Lessons a teacher can click: what each sets. ``left=None`` is the reference learned codec; "upload" asks for a
#: photo. Presets whose codecs this installation lacks are not offered.
PRESETS: dict[str, dict] = {
    "JPEG's blocks at low quality": {"mode": "single", "codec": "jpeg420", "match_bpp": False, "level": 8,
                                     "zoom": (0.5, 0.5)},
    "learned vs JPEG at the same size": {"mode": "compare", "left": None, "right": "jpeg420", "level": 1.0},
    "restoration at quality 10": {"mode": "single", "codec": "jpeg+restoration", "match_bpp": False, "level": 10},
    "your own photo": {"mode": "compare", "left": None, "right": "jpeg420", "level": 1.0, "upload": True},
}
#: Largest upload the demo takes, in MB. ``make demo`` raises the server's message limit (Tornado's default is
#: 10 MiB) above this, and the page refuses a larger file before sending it (see apps/slider_demo.ipynb).
MAX_UPLOAD_MB = 40

_STYLE = """<style>
.course-slider-demo { --demo-text: 15px; font-size: var(--demo-text); --jp-widgets-font-size: var(--demo-text);
  max-width: 100%; box-sizing: border-box; }
.course-slider-demo.projector { --demo-text: 20px; --jp-widgets-inline-height: 36px; }
.course-slider-demo .widget-label, .course-slider-demo .widget-readout, .course-slider-demo select,
.course-slider-demo button, .course-slider-demo .widget-html-content, .course-slider-demo label,
.course-slider-demo .widget-label-basic { font-size: var(--demo-text) !important; line-height: 1.35; }
.course-slider-demo .demo-views img, .course-slider-demo img.rd-plot { width: 100%; height: auto;
  image-rendering: auto; }
.course-slider-demo .demo-views .zoom-picture { image-rendering: pixelated; }
.course-slider-demo .stale img, .course-slider-demo img.stale { opacity: 0.4; transition: opacity 0.15s; }
.course-slider-demo .demo-status.busy::before { content: ""; display: inline-block; width: 0.8em;
  height: 0.8em; margin-right: 0.4em; border: 0.15em solid #888; border-top-color: transparent;
  border-radius: 50%; animation: course-demo-spin 0.8s linear infinite; vertical-align: middle; }
@keyframes course-demo-spin { to { transform: rotate(360deg); } }
.course-slider-demo table.readout td { padding: 2px 12px 2px 0; }
.course-slider-demo table.readout td.name { color: #555; }
</style>"""


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where the demo computes in a background thread)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class SliderDemo:
    """The interactive demo: a thin ipywidgets layer over :func:`update` and :func:`compare`.

    Two modes (``mode``, ToggleButtons): "single" shows original | reconstruction | error map of one codec;
    "compare" shows two codecs at the same file size, left | wipe | right (the wipe composes the two
    reconstructions at ``split``), the zoom square the same on all three.

    Controls (each an ipywidgets object whose ``.value`` can also be set from code,
    which is how the tests drive it): ``mode``, ``presets`` (Buttons, :data:`PRESETS`), ``projector``
    (Checkbox: large text), ``image`` (Dropdown), ``upload`` (FileUpload), ``codec`` (Dropdown) and
    ``match_bpp`` (Checkbox, disabled where matching changes nothing), ``left`` and ``right`` (Dropdowns of
    compare mode), ``level`` (FloatSlider: the codec's knob, or in compare mode the reference codec's rate,
    which sets the file size; it is *replaced* by a new slider when its range changes, so that the browser's
    keyboard Home/End use the new range), ``split`` (the wipe), ``crop_x`` and ``crop_y`` (zoom position:
    fraction of the width from the left, and of the height from the bottom, a vertical slider). Views:
    ``pictures`` and ``zooms`` (three each), ``titles``, ``readout``, ``plot``, ``message`` and ``status``
    (busy while computing). ``result`` is the last shown :class:`Result` of the single mode, ``comparison``
    the last :class:`Comparison`.

    Newest input wins: in a kernel the pictures are computed in a background thread, inputs that arrive
    meanwhile only replace the wanted state, and a finished computation whose state is no longer wanted is
    dropped, never shown. Views that belong to an older state are greyed until replaced. Outside a kernel
    (tests, benchmarks) everything happens synchronously on ``.value`` changes. Introduced in notebook 09.

    Args:
        image: the first image (a course photo name, a Kodak file name, or an array).
        codec, level: the first codec and level (default: the reference learned codec at rate 2,
            or JPEG when no learned codec is available).
        max_side: pictures larger than this are downscaled (uploads and arrays).
        panel_width: width in pixels of the pictures sent to the browser (they are shown scaled to the window).
        mode: "single" or "compare"; projector: start with large text.
        background: compute in a background thread (default: when running in a kernel).
    """

    def __init__(self, image="astronaut", codec: str | None = None, level: float | None = None,
                 max_side: int = MAX_SIDE, panel_width: int = 270, mode: str = "single",
                 projector: bool = False, background: bool | None = None):
        import threading

        import ipywidgets as w

        self._w = w
        self.max_side, self.panel_width = int(max_side), int(panel_width)
        self.background = _in_kernel() if background is None else bool(background)
        self._images: dict[str, np.ndarray] = {}  # picker value -> picture, for uploads and arrays
        self._plotted = None  # (image key, curve names, font) the plot's curves belong to
        self._quiet = False   # set while the code (not the user) rearranges controls
        self._lock = threading.Lock()
        self._generation = 0  # counts requests; a computation for an older one is dropped
        self._wanted = None   # (generation, mode, state, notice) the newest request
        self._working = False
        self._idle = threading.Event()
        self._idle.set()
        self._result: Result | None = None
        self._comparison: Comparison | None = None
        self.refreshes = 0  # finished redraws (shown hidden in the status for browser tests)
        self.dropped = 0    # computations dropped because a newer input came
        codecs = available_codecs()
        reference = reference_codec()
        codec = codec or reference or "jpeg420"
        if mode == "compare" and reference is None:
            mode = "single"

        options = [(f"{name} (course photo)", name) for name in COURSE_PHOTOS]
        options += [(f"{name.removesuffix('.png')} (Kodak)", name) for name in kodak_names()]
        first = image
        if not isinstance(image, str):
            options = [self._add_picture("your image", fit_within(to_rgb8(image), self.max_side)[0])] + options
            first = options[0][1]
        elif image not in [value for _, value in options]:
            named_image(image)  # an unknown name fails here, with the list of known ones
            options = [(image, image)] + options
        initial = {"description_width": "initial"}
        self.mode = w.ToggleButtons(options=[("one codec", "single"), ("two codecs, same file size", "compare")],
                                    value=mode, disabled=reference is None, style={"button_width": "auto"})
        self.projector = w.Checkbox(value=bool(projector), description="projector (large text)", indent=False,
                                    layout=w.Layout(width="auto"))
        self.presets = [w.Button(description=name, layout=w.Layout(width="auto"))
                        for name, preset in PRESETS.items() if self._preset_available(preset)]
        self.image = w.Dropdown(options=options, value=first, description="Image", style=initial,
                                layout=w.Layout(width="auto", max_width="100%"))
        self.upload = w.FileUpload(accept="image/*", multiple=False,
                                   description=f"Upload your image (≤ {MAX_UPLOAD_MB} MB)",
                                   layout=w.Layout(width="auto"))
        menu = [(CODEC_LABELS[c], c) for c in codecs]
        self.codec = w.Dropdown(options=menu, value=codec, description="Codec", style=initial,
                                layout=w.Layout(width="auto"))
        self.match_bpp = w.Checkbox(value=False, description=(f"match the {CODEC_LABELS[reference]} codec's size"
                                                              if reference else "match the learned codec's size"),
                                    disabled=not can_match(codec), indent=False, layout=w.Layout(width="auto"))
        self.left = w.Dropdown(options=menu, value=reference or codec, description="left", style=initial,
                               layout=w.Layout(width="auto"))
        self.right = w.Dropdown(options=menu, value="jpeg420" if "jpeg420" in codecs else codec,
                                description="right", style=initial, layout=w.Layout(width="auto"))
        levels = self._levels()
        self.level = self._level_slider(levels, levels.default if level is None else level)
        self._level_box = w.Box([self.level], layout=w.Layout(width="100%"))
        self.split = w.FloatSlider(value=0.5, min=0, max=1, step=0.01, description="wipe: left ← → right",
                                   continuous_update=True, readout_format=".2f", style=initial,
                                   layout=w.Layout(width="100%"))
        self.crop_x = w.FloatSlider(value=0.5, min=0, max=1, step=0.01, description="zoom ← →",
                                    continuous_update=False, style=initial, layout=w.Layout(width="100%"))
        self.crop_y = w.FloatSlider(value=0.5, min=0, max=1, step=0.01, description="zoom ↑ ↓",
                                    orientation="vertical", continuous_update=False, style=initial,
                                    layout=w.Layout(width="auto", height="auto", min_height="240px"))
        self.message = w.HTML(layout=w.Layout(min_height="1.6em", flex="1 1 auto"))
        self.status = w.HTML(layout=w.Layout(flex="0 0 auto"))
        self.pictures = [w.Image(format="png") for _ in range(3)]
        self.zooms = [w.Image(format="png") for _ in range(3)]
        self.titles = [w.HTML() for _ in range(3)]
        self.readout = w.HTML(layout=w.Layout(width="100%"))
        self.plot = w.Image(format="png")
        self._rd = None  # the RDPlot, made for the current text size

        column = w.Layout(flex="1 1 0", min_width="0", margin="0 4px")
        columns = [w.VBox([title, picture, zoom], layout=column)
                   for title, picture, zoom in zip(self.titles, self.pictures, self.zooms)]
        self.views = w.VBox([w.HBox(columns, layout=w.Layout(width="100%")), self.crop_x, self.split,
                             w.HTML(f"zoom ×{ZOOM} on the cyan square; the same square on every picture")],
                            layout=w.Layout(flex="1 1 0", min_width="0"))
        self._single_controls = w.HBox([self.codec, self.match_bpp], layout=w.Layout(flex_flow="row wrap"))
        self._compare_controls = w.HBox([self.left, w.HTML("&nbsp;vs&nbsp;"), self.right],
                                        layout=w.Layout(flex_flow="row wrap"))
        wrap = w.Layout(flex_flow="row wrap", align_items="center")
        # Pictures on the left, numbers and the RD plot on the right; every width is a share of the window.
        self.widget = w.VBox([
            w.HTML(_STYLE),
            w.HBox([self.mode, self.projector], layout=wrap),
            w.HBox([w.HTML("lessons:&nbsp;"), *self.presets], layout=wrap),
            w.HBox([self.image, self.upload], layout=wrap),
            self._single_controls, self._compare_controls,
            self._level_box,
            w.HBox([self.message, self.status], layout=w.Layout(width="100%")),
            w.HBox([w.HBox([self.crop_y, self.views], layout=w.Layout(flex="2 1 560px", min_width="0")),
                    w.VBox([self.readout, self.plot], layout=w.Layout(flex="1 1 320px", min_width="0",
                                                                       max_width="640px"))],
                   layout=w.Layout(flex_flow="row wrap", width="100%")),
        ], layout=w.Layout(width="100%"))
        # Class names for the CSS, the browser test and the screenshot script.
        self.widget.add_class("course-slider-demo")
        self.views.add_class("demo-views")
        self.pictures[1].add_class("reconstruction-picture")
        for zoom in self.zooms:
            zoom.add_class("zoom-picture")
        self.plot.add_class("rd-plot")
        self.split.add_class("split-slider")
        self.readout.add_class("demo-readout")
        self._show_mode()
        self._set_projector(self.projector.value)
        self.mode.observe(self._on_mode, "value")
        self.projector.observe(lambda change: self._set_projector(change["new"]), "value")
        for button in self.presets:
            button.on_click(lambda button: self._guarded(self.apply_preset, button.description))
        self.image.observe(self._on_change, "value")
        self.upload.observe(self._on_upload, "value")
        self.codec.observe(self._on_codec, "value")
        self.match_bpp.observe(self._on_codec, "value")
        for control in (self.left, self.right, self.split, self.crop_x, self.crop_y):
            control.observe(self._on_change, "value")
        self._request()

    @property
    def result(self) -> Result | None:
        """The single mode's last drawn :class:`Result`; code that reads it waits for the newest request first,
        so that ``demo.level.value = 3; demo.result`` gives rate 3's result in a kernel too."""
        self._wait_unless_worker()
        return self._result

    @property
    def comparison(self) -> Comparison | None:
        """The compare mode's last drawn :class:`Comparison` (waits like :attr:`result`)."""
        self._wait_unless_worker()
        return self._comparison

    def _wait_unless_worker(self):
        import threading

        if threading.current_thread().name != "slider-demo":
            self.wait()

    # ------------------------------------------------------------------ plumbing
    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    @staticmethod
    def _format(levels: LevelRange) -> str:
        return ".0f" if levels.step >= 1 else (".1f" if levels.step >= 0.1 else ".2f")

    @staticmethod
    def _preset_available(preset: Mapping) -> bool:
        wanted = {preset.get("codec"), preset.get("right"), preset.get("left") or reference_codec()} - {None}
        return wanted <= set(available_codecs()) and (preset["mode"] == "single" or reference_codec() is not None)

    def _levels(self) -> LevelRange:
        """The level slider's range for the current mode and codec."""
        if self.mode.value == "compare":
            levels = level_range(reference_codec())
            return dataclasses.replace(levels, label=f"file size: {CODEC_LABELS[reference_codec()]} at rate")
        return level_range(self.codec.value, self.match_bpp.value and can_match(self.codec.value))

    def _level_slider(self, levels: LevelRange, value: float):
        slider = self._w.FloatSlider(value=min(max(float(value), levels.low), levels.high), min=levels.low,
                                     max=levels.high, step=levels.step, description=levels.label,
                                     continuous_update=False, readout_format=self._format(levels),
                                     style={"description_width": "initial"}, layout=self._w.Layout(width="100%"))
        slider.add_class("level-slider")
        slider.observe(self._on_change, "value")
        return slider

    def _set_level_range(self, levels: LevelRange, value: float):
        """Give the level slider a range and a value (no redraw). A new range gets a new slider: ipywidgets 8's
        noUiSlider keeps its first range for the keyboard's Home/End, so re-ranging the old one is not enough."""
        value = min(max(float(value), levels.low), levels.high)
        old = self.level
        if (old.min, old.max, old.step) == (levels.low, levels.high, levels.step):
            self._quiet = True
            try:
                old.value, old.description = value, levels.label
            finally:
                self._quiet = False
            return
        self.level = self._level_slider(levels, value)
        self._level_box.children = (self.level,)
        old.unobserve(self._on_change, "value")
        old.close()

    def _add_picture(self, label: str, picture: np.ndarray) -> tuple[str, str]:
        value = f"{label}#{len(self._images) + 1}"
        taken = {existing for existing, _ in self.image.options} if hasattr(self, "image") else set()
        if label in taken:  # the same file name uploaded again: keep the labels apart
            label = f"{label} #{len(self._images) + 1}"
        picture.setflags(write=False)
        self._images[value] = picture
        return label, value

    @staticmethod
    def _message_html(text: str, kind: str = "note") -> str:
        colour = {"note": "#8a5a00", "error": "#b00020", "info": "#555"}[kind]
        # Escaped: messages can quote a file name chosen by the user.
        return f"<span style='color:{colour}'>{html.escape(text)}</span>" if text else ""

    def _say(self, text: str, kind: str = "note"):
        self.message.value = self._message_html(text, kind)

    def _guarded(self, action, *args):
        """Run an action; any failure becomes a message in the demo instead of a traceback."""
        if self._quiet:
            return
        try:
            action(*args)
        except Exception as exc:  # the demo must survive whatever a user does
            self._say(f"Something went wrong: {type(exc).__name__}: {exc}", "error")

    def _picture(self, value: str):
        """The picture behind a picker value: an upload's array, or a name (an array when downscaled)."""
        if value in self._images:
            return self._images[value]
        picture = named_image(value)
        if max(picture.shape[:2]) <= self.max_side:
            return value  # update() caches named images by name: no hashing per move
        return self._images.setdefault(value, fit_within(picture, self.max_side)[0])

    def _crop(self) -> tuple[tuple[float, float], int]:
        # crop_y is a vertical slider: its top (1) is the top of the picture.
        return (1.0 - self.crop_y.value, self.crop_x.value), max(16, self.panel_width // ZOOM)

    def state(self) -> State:
        """The :class:`State` the controls show now (single mode)."""
        center, size = self._crop()
        return State(image=self._picture(self.image.value), codec=self.codec.value, level=self.level.value,
                     match_bpp=self.match_bpp.value and can_match(self.codec.value), crop_center=center,
                     crop_size=size, curves=False)

    def compare_state(self) -> CompareState:
        """The :class:`CompareState` the controls show now (compare mode)."""
        center, size = self._crop()
        return CompareState(image=self._picture(self.image.value), left=self.left.value, right=self.right.value,
                            level=self.level.value, split=self.split.value, crop_center=center, crop_size=size)

    def _show_mode(self):
        compare = self.mode.value == "compare"
        self._single_controls.layout.display = "none" if compare else "flex"
        self._compare_controls.layout.display = "flex" if compare else "none"
        self.split.layout.display = "flex" if compare else "none"

    def _set_projector(self, on: bool):
        (self.widget.add_class if on else self.widget.remove_class)("projector")
        with self._lock:
            self._plotted = None  # the plot is redrawn with its text size
        if hasattr(self, "_wanted") and self._wanted is not None:
            self._guarded(self._request)

    # ------------------------------------------------------------------ events
    def _on_change(self, _change=None):
        self._guarded(self._request)

    def _on_mode(self, _change):
        def switch():
            self._show_mode()
            levels = self._levels()
            # Keep the rate when both ranges are the reference codec's rates (learned <-> compare).
            same = (self.level.min, self.level.max, self.level.step) == (levels.low, levels.high, levels.step)
            self._set_level_range(levels, self.level.value if same else levels.default)
            self._request()

        self._guarded(switch)

    def _on_codec(self, change):
        def switch():
            matchable = can_match(self.codec.value)
            if not matchable and self.match_bpp.value:
                self._quiet = True
                try:
                    self.match_bpp.value = False
                finally:
                    self._quiet = False
            self.match_bpp.disabled = not matchable
            levels = self._levels()
            value = levels.default
            if (self.level.min, self.level.max, self.level.step) == (levels.low, levels.high, levels.step):
                value = self.level.value  # the slider keeps its meaning: keep its value
            elif change["owner"] is self.match_bpp and not change["new"] and self._result is not None \
                    and self._result.codec == self.codec.value:
                value = self._result.quality  # unticked: stay at the quality that matched the size
            if levels.step >= 1 or BASE_CODEC[self.codec.value] == "jpeg2000":
                value = round(value / levels.step) * levels.step
            self._set_level_range(levels, value)
            self._request()

        self._guarded(switch)

    def apply_preset(self, name: str):
        """Set the controls to one of :data:`PRESETS` and redraw once."""
        preset = PRESETS[name]
        self._quiet = True
        try:
            self.mode.value = preset["mode"]
            self._show_mode()
            if preset["mode"] == "compare":
                self.left.value = preset.get("left") or reference_codec()
                self.right.value = preset["right"]
            else:
                self.codec.value = preset["codec"]
                self.match_bpp.value = bool(preset.get("match_bpp")) and can_match(preset["codec"])
                self.match_bpp.disabled = not can_match(preset["codec"])
            if "zoom" in preset:
                self.crop_x.value, self.crop_y.value = preset["zoom"][0], 1.0 - preset["zoom"][1]
        finally:
            self._quiet = False
        self._set_level_range(self._levels(), preset["level"])
        self._request(notice=("Click 'Upload your image' above and choose a photo: it is compared at the "
                              "same file size.") if preset.get("upload") else "")

    def _on_upload(self, change):
        files = change["new"]
        if not files:
            return

        def receive():
            item = files[-1]
            name = str(item.get("name", "upload"))
            size = len(item["content"])
            if size > MAX_UPLOAD_MB * 1_000_000:
                self._say(f"Could not use this upload: {name} has {size / 1e6:.0f} MB; the demo takes files up to "
                          f"{MAX_UPLOAD_MB} MB", "error")
                return
            try:
                picture, note = read_upload(item["content"], name, self.max_side)
            except ImageLoadError as exc:
                self._say(f"Could not use this upload: {exc}", "error")
                return
            label, value = self._add_picture(f"{name} (upload)", picture)
            self._quiet = True
            try:  # new options can move the selection on their own: redraw once, below
                self.image.options = [(label, value)] + list(self.image.options)
                self.image.value = value
            finally:
                self._quiet = False
            self._request(notice=f"{name}: {picture.shape[1]}×{picture.shape[0]} pixels"
                                 + (f"; {note}" if note else ""))

        self._guarded(receive)
        self._quiet = True
        try:
            self.upload.value = ()  # so that the same file can be uploaded again
        finally:
            self._quiet = False

    # ------------------------------------------------------------------ computing: the newest input wins
    def refresh(self):
        """Recompute for the controls' state and redraw everything (in a kernel: in the background)."""
        self._request()

    def _request(self, notice: str = ""):
        """Ask for the controls' current state to be shown; a request still waiting is replaced."""
        if self._quiet:
            return
        mode = self.mode.value
        state = self.compare_state() if mode == "compare" else self.state()
        with self._lock:
            self._generation += 1
            self._wanted = (self._generation, mode, state, notice)
            start = not self._working
            self._working = True
            self._idle.clear()
            # Everything shown now belongs to an older state: grey it until it is replaced.
            self.views.add_class("stale")
            self.plot.add_class("stale")
            self.status.value = self._status_html(busy=True)
        if not start:
            return  # the running worker picks the newest request when it finishes
        if self.background:
            import threading

            threading.Thread(target=self._work, name="slider-demo", daemon=True).start()
        else:
            self._work()

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the newest request is drawn (for tests and scripts); False on timeout."""
        return self._idle.wait(timeout)

    def _work(self):
        """Draw the newest request; whatever was asked meanwhile replaces it (the worker loop)."""
        while True:
            with self._lock:
                generation, mode, state, notice = self._wanted
            try:
                frame = self._render(mode, state)
            except Exception as exc:  # the demo must survive whatever a user does
                frame = {"error": f"Something went wrong: {type(exc).__name__}: {exc}"}
            with self._lock:
                if generation != self._generation:
                    self.dropped += 1
                    continue  # a newer input came while computing: never show this one
                self._apply(frame, notice)
            if "error" not in frame:
                try:
                    plot = self._render_plot(frame)
                except Exception as exc:
                    plot, frame["error"] = None, f"Something went wrong: {type(exc).__name__}: {exc}"
            with self._lock:
                if generation != self._generation:
                    self.dropped += 1
                    continue
                if "error" in frame:
                    self._say(frame["error"], "error")
                elif plot is not None:
                    self.plot.value = plot
                self.plot.remove_class("stale")
                self.refreshes += 1
                self._working = False
                self.status.value = self._status_html(busy=False)
                self._idle.set()
                return

    def _status_html(self, busy: bool) -> str:
        # The hidden count tells a browser test that the kernel has finished redrawing after a change.
        return (f"<span class='demo-status{' busy' if busy else ''}'>{'computing…' if busy else ''}</span>"
                f"<span class='refresh-count' style='display:none'>{self.refreshes}</span>")

    # ------------------------------------------------------------------ drawing
    def _render(self, mode: str, state) -> dict:
        """Everything the views show for one state, computed without touching a widget."""
        width = self.panel_width
        if mode == "compare":
            comparison = compare(state)
            left, right = comparison.left, comparison.right
            y, x, size = comparison.crop
            wiped_zoom = comparison.wipe[y:y + size, x:x + size]
            pictures = [_panel(left.reconstruction, left.crop, width),
                        _panel(comparison.wipe, left.crop, width, split=state.split),
                        _panel(right.reconstruction, right.crop, width)]
            zooms = [_zoomed(left.zoom()[1], width),
                     _zoomed(wiped_zoom, width, split=(comparison.split_column - x) / size),
                     _zoomed(right.zoom()[1], width)]
            side = ("<b>{}</b><br><span class='{}-label'>{:,} bytes, {:.3f} bpp, {:.2f} dB</span>")
            titles = [side.format(CODEC_LABELS[left.codec], "left", left.num_bytes, left.bpp, left.psnr),
                      f"<b>wipe</b>: left ← {state.split:.2f} → right<br>"
                      f"target ≤ {comparison.target_bytes:,} bytes",
                      side.format(CODEC_LABELS[right.codec], "right", right.num_bytes, right.bpp, right.psnr)]
            note = " ".join(n for n in (left.note, right.note) if n)
            return {"mode": mode, "comparison": comparison, "pictures": [png_bytes(p) for p in pictures],
                    "zooms": [png_bytes(z) for z in zooms], "titles": titles, "note": note,
                    "readout": self._compare_html(comparison)}
        result = update(state)
        pictures = [_panel(result.original, result.crop, width),
                    _panel(result.reconstruction, result.crop, width),
                    _panel(error_image(result.error), result.crop, width)]
        original, reconstruction, error = result.zoom()
        zooms = [_zoomed(original, width), _zoomed(reconstruction, width), _zoomed(error_image(error), width)]
        height, width_px = result.original.shape[:2]
        titles = [f"<b>original</b> {width_px}×{height}",
                  f"<b>{CODEC_LABELS[result.codec]}</b>, {self._setting(result)}",
                  f"<b>|error|</b> (mean over R, G, B){error_colour_bar_html()}"]
        return {"mode": mode, "state": state, "result": result, "pictures": [png_bytes(p) for p in pictures],
                "zooms": [png_bytes(z) for z in zooms], "titles": titles, "note": result.note,
                "readout": self._readout_html(result)}

    def _apply(self, frame: dict, notice: str):
        """Show a rendered frame (pictures, titles, readout, message); the plot follows in :meth:`_render_plot`."""
        if "error" in frame:
            self._say(frame["error"], "error")
            return
        for widget, value in zip(self.pictures + self.zooms, frame["pictures"] + frame["zooms"]):
            if widget.value != value:
                widget.value = value
        for widget, value in zip(self.titles, frame["titles"]):
            widget.value = value
        self.readout.value = frame["readout"]
        self._say(frame["note"] or notice, "note" if frame["note"] else "info")
        if frame["mode"] == "compare":
            self._comparison = frame["comparison"]
        else:
            self._result = frame["result"]
        self.views.remove_class("stale")

    def _render_plot(self, frame: dict) -> bytes:
        """The RD plot's picture: its curves (computed once per image and codec) and the frame's points."""
        font = 15 if self.projector.value else 11
        if frame["mode"] == "compare":
            comparison = frame["comparison"]
            result = comparison.left
            names = tuple(dict.fromkeys(curve_names(comparison.left.codec) + (comparison.right.codec,)))
        else:
            result = frame["result"]
            names = curve_names(result.codec)
        wanted = (result.image_key, names, font)
        if self._plotted != wanted:
            self._rd = RDPlot(size=(4.8, 3.6), font_size=font)
            image = result.original
            self._rd.set_curves({name: _curve(result.image_key, image, name) for name in names},
                                pixels=image.shape[0] * image.shape[1])
            self._plotted = wanted
        if frame["mode"] == "compare":
            self._rd.set_points([(r.codec, r.bpp, r.psnr) for r in (comparison.left, comparison.right)])
        else:
            self._rd.set_point(result.codec, result.bpp, result.psnr, result.reference)
        return self._rd.png()

    def _setting(self, result: Result) -> str:
        """The setting in the slider's own terms (so the title and the slider say the same number)."""
        base = BASE_CODEC[result.codec]
        level = format(result.level, self.level.readout_format)
        if result.reference:  # matched to the reference codec's size at the slider's rate
            knob = f"rate {result.quality:.2f}" if base in LEARNED_MODELS else (
                f"target {result.quality:g} dB" if base == "jpeg2000" else f"quality {result.quality:g}")
            return f"{knob}, the size of rate {level}"
        if base in LEARNED_MODELS:
            return f"rate {level}"
        if base == "jpeg2000":
            return f"target {result.quality:g} dB"
        return f"quality {result.quality:g}"

    @staticmethod
    def _table(rows) -> str:
        cells = "".join(f"<tr><td class='name'>{name}</td><td><b>{value}</b></td></tr>" for name, value in rows)
        return f"<table class='readout'>{cells}</table>"

    def _readout_html(self, result: Result) -> str:
        rows = [("setting", self._setting(result)),
                ("file size", f"{result.num_bytes:,} bytes ({result.num_bytes / 1000:.1f} kB)"),
                ("rate", f"<span class='bpp'>{result.bpp:.3f}</span> bits per pixel"),
                ("compression", ratio_text(result.compression_ratio)),
                ("PSNR", f"{result.psnr:.2f} dB"),
                ("MS-SSIM", f"{result.msssim:.4f} ({metrics.ms_ssim_db(result.msssim):.1f} dB)")]
        if result.reference:
            rows.append((f"{CODEC_LABELS[result.reference['codec']]}, same rate",
                         f"{result.reference['bpp']:.3f} bpp, {result.reference['psnr']:.2f} dB"))
        return self._table(rows)

    def _compare_html(self, comparison: Comparison) -> str:
        left, right = comparison.left, comparison.right
        rows = [("target size", f"<span class='target-bytes'>{comparison.target_bytes:,}</span> bytes "
                                f"({comparison.target_bpp:.3f} bpp): {CODEC_LABELS[comparison.reference]}"),
                ("", f"<u>left</u>: {CODEC_LABELS[left.codec]} &nbsp; <u>right</u>: {CODEC_LABELS[right.codec]}")]
        rows += [(name, f"{a} &nbsp;|&nbsp; {b}") for name, a, b in (
            ("file size", f"<span class='left-bytes'>{left.num_bytes:,}</span> bytes",
             f"<span class='right-bytes'>{right.num_bytes:,}</span> bytes"),
            ("rate", f"<span class='bpp'>{left.bpp:.3f}</span> bpp", f"{right.bpp:.3f} bpp"),
            ("PSNR", f"{left.psnr:.2f} dB", f"{right.psnr:.2f} dB"),
            ("MS-SSIM", f"{metrics.ms_ssim_db(left.msssim):.1f} dB", f"{metrics.ms_ssim_db(right.msssim):.1f} dB"),
            ("setting", self._setting(left), self._setting(right)))]
        return self._table(rows)


def build_demo(image="astronaut", codec: str | None = None, level: float | None = None,
               max_side: int = MAX_SIDE, panel_width: int = 270, mode: str = "single",
               projector: bool = False, background: bool | None = None) -> SliderDemo:
    """Build the slider demo (see :class:`SliderDemo` for the arguments); display it as a cell's value.

    Introduced in notebook 09.
    """
    return SliderDemo(image=image, codec=codec, level=level, max_side=max_side, panel_width=panel_width,
                      mode=mode, projector=projector, background=background)
