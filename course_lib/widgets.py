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

* :class:`SliderDemo` (:func:`build_demo`) is a thin ipywidgets layer: a
  level slider, a codec menu, an image picker (course photos, Kodak when
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
    if base in LEARNED_MODELS or match_bpp:
        learned = base if base in LEARNED_MODELS else reference_codec()
        if learned is None:
            raise ValueError("match_bpp needs a learned codec, and none is available here (weights missing?)")
        top = learned_codec(learned).num_rates - 1
        return LevelRange(0.0, float(top), 0.1, min(2.0, float(top)),
                          "learned rate" + (" (match)" if base not in LEARNED_MODELS else ""))
    return _CLASSICAL_LEVELS[base]


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
_encoded = _LRU(ENCODED_CACHE_SIZE)
_matched = _LRU(4 * POINT_CACHE_SIZE)
_curves = _LRU(64)


def clear_caches() -> None:
    """Forget every cached point, encoding and curve (the models stay loaded)."""
    for cache in (_points, _encoded, _matched, _curves):
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


def _learned_point(key: str, image: np.ndarray, base: str, rate_byte: int) -> _Point:
    from .hyperprior import HyperpriorCodec

    codec = learned_codec(base)
    rate = codec.byte_to_rate(rate_byte)
    encoded = _encoded.get((key, base), lambda: codec.encode(image))
    data = codec.compress(image, rate, encoded=encoded)
    # decompress(compress(x)) equals the synthesis of the quantized latents bit for bit (notebooks 06 and 12),
    # and skipping the range decoder saves a third of the time of a first visit.
    if isinstance(codec, HyperpriorCodec):
        latents = codec.analyse_all(image, rate, encoded)["y_hat"]
    else:
        latents = codec.analyse(image, rate, encoded=encoded)
    return _measure(image, codec.synthesise(latents, rate, *image.shape[:2]), len(data), rate)


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
    """The classical codec's quality whose file is closest to (not above) the ``learned`` codec's at this rate."""
    reference = _point(key, image, learned, rate_byte)
    target = metrics.bits_per_pixel(reference.num_bytes, image.shape)

    def search():
        try:
            return _knob(base, baselines.match_bpp(image, base, target, msssim=False).quality), ""
        except ValueError:  # the codec cannot make a file this small: show its smallest one
            low = baselines.QUALITY_RANGE[base][0]
            return _knob(base, low), (f"{CODEC_LABELS[base]} cannot make a file as small as the "
                                      f"{CODEC_LABELS[learned]} codec's ({target:.3f} bpp) on this image; "
                                      "showing its lowest quality")

    knob, note = _matched.get((key, base, learned, rate_byte), search)
    return knob, note, reference


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
    if state.match_bpp and base not in LEARNED_MODELS:
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


def _panel(image: np.ndarray, crop, width: int) -> np.ndarray:
    """The image scaled to ``width`` for display, with the zoom square outlined in cyan."""
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
    return small


def _zoomed(crop: np.ndarray, width: int) -> np.ndarray:
    """A crop enlarged by an integer factor with nearest neighbours, so pixels and 8x8 blocks stay visible."""
    factor = max(1, width // max(crop.shape[:2]))
    return np.repeat(np.repeat(crop, factor, axis=0), factor, axis=1)


class RDPlot:
    """The RD plot of the demo: curves drawn once, a marker that moves; :meth:`png` gives PNG bytes.

    Matplotlib draws the curves (about 50 ms); each slider move only paints the
    marker onto a copy of that picture (a few ms), unless the point leaves the
    axes, which then widen to include it.
    """

    def __init__(self, size=(5.6, 3.8), dpi=90):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=size, dpi=dpi, layout="constrained")
        self.canvas = FigureCanvasAgg(self.figure)
        self.axes = self.figure.add_subplot()
        self.curves: dict = {}
        self.colours: dict[str, str] = {}
        self.point = None  # (codec, bpp, psnr, reference)
        self._limits = None
        self._background = None

    def set_curves(self, curves: Mapping[str, Mapping[str, list]] | None):
        """Replace the curves: ``{codec: {"bpp": [...], "psnr": [...]}}`` (``None``: none)."""
        from matplotlib.colors import to_hex

        self.curves = dict(curves or {})
        self.axes.clear()
        self.colours = {}
        for index, (name, curve) in enumerate(self.curves.items()):
            order = np.argsort(curve["bpp"])
            line, = self.axes.plot(np.asarray(curve["bpp"])[order], np.asarray(curve["psnr"])[order],
                                   marker=".", linewidth=1.8, label=CODEC_LABELS[name],
                                   color=codec_colour(name) or f"C{index}")
            self.colours[name] = to_hex(line.get_color())  # a colour name PIL understands too
        self.axes.set_xlabel("rate (bits per pixel)")
        self.axes.set_ylabel("PSNR (dB, RGB)")
        self.axes.grid(True, alpha=0.3)
        if self.curves:
            self.axes.legend(fontsize=9, loc="lower right")
        self._limits = self._background = None

    def set_point(self, codec: str, bpp: float, psnr: float, reference: Mapping | None = None):
        """Move the marker to (bpp, psnr); ``reference`` (``{"codec", "bpp", "psnr"}``) also marks the reference
        learned codec's point (a square)."""
        self.point = (codec, float(bpp), float(psnr), reference)

    def _wanted_limits(self):
        """Axes that show the interesting part of the curves and always the current points."""
        points = [(b, p) for c in self.curves.values() for b, p in zip(c["bpp"], c["psnr"])]
        learned = [c for name, c in self.curves.items() if BASE_CODEC[name] in LEARNED_MODELS]
        if learned:  # JPEG's high-quality tail would squeeze the learned curves
            right = max(1.0, 2.5 * max(b for c in learned for b in c["bpp"]))
            points = [(b, p) for b, p in points if b <= right] or points
        if self.point:
            _, bpp, psnr, reference = self.point
            points.append((bpp, psnr))
            if reference:
                points.append((reference["bpp"], reference["psnr"]))
        points = [(b, p) for b, p in points if math.isfinite(p)]  # a lossless point has PSNR = inf
        if not points:
            return (0.0, 1.0), (20.0, 40.0)
        bpp, psnr = np.array(points, dtype=float).T
        low, high = psnr.min(), psnr.max()
        pad = max(0.5, 0.06 * (high - low))
        return (0.0, 1.06 * bpp.max() + 0.02), (math.floor(low - pad), math.ceil(high + pad))

    def png(self) -> bytes:
        from PIL import ImageDraw

        limits = self._wanted_limits()
        if limits != self._limits or self._background is None:
            self.axes.set_xlim(*limits[0])
            self.axes.set_ylim(*limits[1])
            self.canvas.draw()
            self._background = Image.fromarray(np.asarray(self.canvas.buffer_rgba())[..., :3].copy())
            self._limits = limits
        frame = self._background.copy()
        if self.point:
            codec, bpp, psnr, reference = self.point
            draw = ImageDraw.Draw(frame)
            height = frame.size[1]

            def pixel(x, y):
                px, py = self.axes.transData.transform((x, y))
                return px, height - py

            if reference and math.isfinite(reference["psnr"]):
                x, y = pixel(reference["bpp"], reference["psnr"])
                draw.rectangle((x - 7, y - 7, x + 7, y + 7),
                               outline=self.colours.get(reference.get("codec"), "black"), width=2)
            if math.isfinite(psnr):
                x, y = pixel(bpp, psnr)
                draw.ellipse((x - 9, y - 9, x + 9, y + 9), outline=self.colours.get(codec, "black"), width=3)
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill="black")
        return png_bytes(np.asarray(frame))


# --------------------------------------------------------------------------- the widgets
class SliderDemo:
    """The interactive demo: a thin ipywidgets layer over :func:`update`.

    Controls (each an ipywidgets object whose ``.value`` can also be set from code,
    which is how the tests drive it): ``image`` (Dropdown), ``upload``
    (FileUpload), ``codec`` (Dropdown), ``match_bpp`` (Checkbox), ``level``
    (FloatSlider), ``crop_x`` and ``crop_y`` (FloatSliders, zoom position as a
    fraction of the width and height). Views: ``pictures`` (original,
    reconstruction, error map), ``zooms`` (their crops), ``readout`` (HTML),
    ``plot`` (the RD plot), ``message`` (HTML: notes and errors). ``result`` is
    the last :class:`Result`. Display the demo with ``display(demo)`` or as a
    cell's last value. Introduced in notebook 09.

    Args:
        image: the first image (a course photo name, a Kodak file name, or an array).
        codec, level: the first codec and level (default: the reference learned codec at rate 2,
            or JPEG when no learned codec is available).
        max_side: pictures larger than this are downscaled (uploads and arrays).
        panel_width: width in pixels of each picture in the browser.
    """

    def __init__(self, image="astronaut", codec: str | None = None, level: float | None = None,
                 max_side: int = MAX_SIDE, panel_width: int = 270):
        import ipywidgets as w

        self.max_side, self.panel_width = int(max_side), int(panel_width)
        self._images: dict[str, np.ndarray] = {}  # picker value -> picture, for uploads and arrays
        self._plotted = None  # (image key, curve names) the plot currently shows
        self._original_view = None  # (image key, crop) the original's pictures show
        self._quiet = False   # set while the code (not the user) rearranges controls
        self.result: Result | None = None
        self.refreshes = 0  # finished redraws (shown hidden in the readout for browser tests)
        codecs = available_codecs()
        codec = codec or reference_codec() or "jpeg420"

        options = [(f"{name} (course photo)", name) for name in COURSE_PHOTOS]
        options += [(f"{name.removesuffix('.png')} (Kodak)", name) for name in kodak_names()]
        first = image
        if not isinstance(image, str):
            options = [self._add_picture("your image", fit_within(to_rgb8(image), self.max_side)[0])] + options
            first = options[0][1]
        elif image not in [value for _, value in options]:
            named_image(image)  # an unknown name fails here, with the list of known ones
            options = [(image, image)] + options
        wide = w.Layout(width="auto")
        self.image = w.Dropdown(options=options, value=first, description="Image", layout=wide)
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="Upload your image",
                                   layout=w.Layout(width="auto"))
        self.codec = w.Dropdown(options=[(CODEC_LABELS[c], c) for c in codecs], value=codec,
                                description="Codec", layout=wide)
        reference = reference_codec()
        self.match_bpp = w.Checkbox(value=False, description=(f"match the {CODEC_LABELS[reference]} codec's size"
                                                              if reference else "match the learned codec's size"),
                                    disabled=reference is None, indent=False, layout=wide)
        levels = level_range(codec)
        self.level = w.FloatSlider(value=levels.default if level is None else level, min=levels.low,
                                   max=levels.high, step=levels.step, description=levels.label,
                                   continuous_update=False, readout_format=self._format(levels),
                                   style={"description_width": "160px"}, layout=w.Layout(width="640px"))
        self.crop_x = w.FloatSlider(value=0.5, min=0, max=1, step=0.01, description="zoom ← →",
                                    continuous_update=False, layout=w.Layout(width="280px"))
        self.crop_y = w.FloatSlider(value=0.5, min=0, max=1, step=0.01, description="zoom ↑ ↓",
                                    continuous_update=False, layout=w.Layout(width="280px"))
        self.message = w.HTML(layout=w.Layout(min_height="1.6em"))
        picture = w.Layout(width=f"{self.panel_width}px", height="auto")
        self.pictures = [w.Image(format="png", layout=picture) for _ in range(3)]
        self.zooms = [w.Image(format="png", layout=picture) for _ in range(3)]
        self.titles = [w.HTML() for _ in range(3)]
        self.readout = w.HTML(layout=w.Layout(width="430px"))
        self.plot = w.Image(format="png", layout=w.Layout(width="430px", height="auto"))
        self._rd = RDPlot(size=(4.8, 3.3))

        columns = [w.VBox([title, picture_, zoom]) for title, picture_, zoom in
                   zip(self.titles, self.pictures, self.zooms)]
        # Pictures on the left, numbers and the RD plot on the right: fits a 1280-pixel-wide projector.
        self.widget = w.VBox([
            w.HBox([self.image, self.upload]),
            w.HBox([self.codec, self.match_bpp]),
            self.level,
            self.message,
            w.HBox([w.VBox([w.HBox(columns), w.HBox([self.crop_x, self.crop_y, w.HTML(
                        f"zoom ×{ZOOM} on the cyan square")])]),
                    w.VBox([self.readout, self.plot])]),
        ])
        # Class names for the browser test and the screenshot script to find their way.
        self.widget.add_class("course-slider-demo")
        self.level.add_class("level-slider")
        self.pictures[1].add_class("reconstruction-picture")
        self.plot.add_class("rd-plot")
        self.image.observe(self._on_change, "value")
        self.upload.observe(self._on_upload, "value")
        self.codec.observe(self._on_codec, "value")
        self.match_bpp.observe(self._on_codec, "value")
        for control in (self.level, self.crop_x, self.crop_y):
            control.observe(self._on_change, "value")
        self._guarded(self.refresh)

    # ------------------------------------------------------------------ plumbing
    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    @staticmethod
    def _format(levels: LevelRange) -> str:
        return ".0f" if levels.step >= 1 else (".1f" if levels.step >= 0.1 else ".2f")

    def _add_picture(self, label: str, picture: np.ndarray) -> tuple[str, str]:
        value = f"{label}#{len(self._images) + 1}"
        taken = {existing for existing, _ in self.image.options} if hasattr(self, "image") else set()
        if label in taken:  # the same file name uploaded again: keep the labels apart
            label = f"{label} #{len(self._images) + 1}"
        picture.setflags(write=False)
        self._images[value] = picture
        return label, value

    def _say(self, text: str, kind: str = "note"):
        colour = {"note": "#8a5a00", "error": "#b00020", "info": "#555"}[kind]
        # Escaped: messages can quote a file name chosen by the user.
        self.message.value = f"<span style='color:{colour}'>{html.escape(text)}</span>" if text else ""

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

    def state(self) -> State:
        """The :class:`State` the controls show now."""
        return State(image=self._picture(self.image.value), codec=self.codec.value, level=self.level.value,
                     match_bpp=self.match_bpp.value, crop_center=(self.crop_y.value, self.crop_x.value),
                     crop_size=max(16, self.panel_width // ZOOM), curves=False)

    # ------------------------------------------------------------------ events
    def _on_change(self, _change):
        self._guarded(self.refresh)

    def _on_codec(self, change):
        def switch():
            levels = level_range(self.codec.value, self.match_bpp.value)
            if change["owner"] is self.codec:
                old = level_range(change["old"], self.match_bpp.value)
            else:
                old = level_range(self.codec.value, change["old"])
            same = (old.low, old.high, old.step) == (levels.low, levels.high, levels.step)
            value = self.level.value if same else levels.default
            self._quiet = True
            try:
                # Widen first, then narrow, so that the slider never clamps the value on the way.
                self.level.min, self.level.max = min(self.level.min, levels.low), max(self.level.max, levels.high)
                self.level.value = value
                self.level.min, self.level.max, self.level.step = levels.low, levels.high, levels.step
                self.level.readout_format = self._format(levels)
                self.level.description = levels.label
            finally:
                self._quiet = False
            self.refresh()

        self._guarded(switch)

    def _on_upload(self, change):
        files = change["new"]
        if not files:
            return

        def receive():
            item = files[-1]
            name = str(item.get("name", "upload"))
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
            self.refresh()
            self._say(f"{name}: {picture.shape[1]}×{picture.shape[0]} pixels" + (f"; {note}" if note else ""),
                      "info")

        self._guarded(receive)
        self._quiet = True
        try:
            self.upload.value = ()  # so that the same file can be uploaded again
        finally:
            self._quiet = False

    # ------------------------------------------------------------------ drawing
    def refresh(self):
        """Recompute :func:`update` for the controls' state and redraw everything."""
        state = self.state()
        result = update(state)
        self.result = result
        width = self.panel_width
        original_view = (result.image_key, result.crop)
        if self._original_view != original_view:  # the original changes only with the image or the zoom
            self.pictures[0].value = png_bytes(_panel(result.original, result.crop, width))
            self.zooms[0].value = png_bytes(_zoomed(result.zoom()[0], width))
            self._original_view = original_view
        self.pictures[1].value = png_bytes(_panel(result.reconstruction, result.crop, width))
        self.pictures[2].value = png_bytes(_panel(error_image(result.error), result.crop, width))
        self.zooms[1].value = png_bytes(_zoomed(result.zoom()[1], width))
        self.zooms[2].value = png_bytes(_zoomed(error_image(result.zoom()[2]), width))
        height, width_px = result.original.shape[:2]
        self.titles[0].value = f"<b>original</b> {width_px}×{height}"
        self.titles[1].value = f"<b>{CODEC_LABELS[result.codec]}</b>, {self._setting(result)}"
        self.titles[2].value = f"<b>|error|</b>, yellow ≥ {ERROR_SCALE:.0f} of 255"
        self._say(result.note)  # also clears an earlier message
        self._draw_plot(state, result)
        self.readout.value = self._readout_html(result)  # last: its hidden count says "all redrawn"

    def _draw_plot(self, state: State, result: Result):
        wanted = (result.image_key, curve_names(state.codec))
        if self._plotted != wanted:
            note = self.message.value
            self._say("computing the RD curves of this image (once per image and codec)…", "info")
            curves = update(dataclasses.replace(state, curves=True)).curves
            self._rd.set_curves(curves)
            self._plotted = wanted
            self.message.value = note
        self._rd.set_point(result.codec, result.bpp, result.psnr, result.reference)
        self.plot.value = self._rd.png()

    @staticmethod
    def _setting(result: Result) -> str:
        base = BASE_CODEC[result.codec]
        if base in LEARNED_MODELS:
            return f"rate {result.quality:.2f}"
        if base == "jpeg2000":
            return f"target {result.quality:g} dB"
        return f"quality {result.quality:g}"

    def _readout_html(self, result: Result) -> str:
        rows = [("setting", self._setting(result)),
                ("file size", f"{result.num_bytes:,} bytes"),
                ("rate", f"<span class='bpp'>{result.bpp:.3f}</span> bits per pixel"),
                ("compression", f"{result.compression_ratio:.0f} : 1"),
                ("PSNR", f"{result.psnr:.2f} dB"),
                ("MS-SSIM", f"{result.msssim:.4f} ({metrics.ms_ssim_db(result.msssim):.1f} dB)")]
        if result.reference:
            rows.append((f"{CODEC_LABELS[result.reference['codec']]}, same rate",
                         f"{result.reference['bpp']:.3f} bpp, {result.reference['psnr']:.2f} dB"))
        cells = "".join(f"<tr><td style='padding:2px 12px 2px 0;color:#555'>{name}</td>"
                        f"<td style='padding:2px 0'><b>{value}</b></td></tr>" for name, value in rows)
        # The hidden count tells a browser test that the kernel has finished redrawing after a change.
        self.refreshes += 1
        return (f"<table class='readout' style='font-size:15px'>{cells}</table>"
                f"<span class='refresh-count' style='display:none'>{self.refreshes}</span>")


def build_demo(image="astronaut", codec: str | None = None, level: float | None = None,
               max_side: int = MAX_SIDE, panel_width: int = 270) -> SliderDemo:
    """Build the slider demo (see :class:`SliderDemo` for the arguments); display it as a cell's value.

    Introduced in notebook 09.
    """
    return SliderDemo(image=image, codec=codec, level=level, max_side=max_side, panel_width=panel_width)
