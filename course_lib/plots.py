"""Pictures for the notebooks: image grids, zoomed comparisons, RD plots (notebook 01).

Every function returns a ``matplotlib.figure.Figure`` built with the
object-oriented API (no ``pyplot`` state), so it works the same under the
inline backend of a notebook and the headless ``Agg`` backend of the tests.
Text sizes come from matplotlib's settings, which
:func:`course_lib.config.set_seed` (every notebook's first call) sets to the
course's style, :data:`course_lib.config.FIGURE_STYLE` (11 pt or more).
In a notebook the figure shows when it is the last value of a cell, or with
``display(fig)``.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .data import to_rgb8
from .metrics import ms_ssim_db

__all__ = ["CODEC_COLOURS", "OTHER_COLOURS", "CODEC_NAMES", "codec_colour", "display_name", "show_images",
           "compare", "image_colorbar", "rd_plot"]

#: One colour per codec in every figure of the course (first match wins, on the lower-cased name). JPEG 4:2:0,
#: the course's JPEG, is red; JPEG 4:4:4, its variant without chroma subsampling, pink.
CODEC_COLOURS = (("hyperprior", "tab:orange"), ("restoration", "tab:brown"), ("learned", "tab:blue"),
                 ("factorized", "tab:blue"), ("jpeg2000", "tab:purple"), ("jpeg 2000", "tab:purple"),
                 ("webp", "tab:green"), ("avif", "tab:olive"), ("jpeg444", "tab:pink"), ("4:4:4", "tab:pink"),
                 ("jpeg", "tab:red"))

#: What figures and the demo call each codec: the codec names of :mod:`course_lib.baselines` and the shipped
#: learned models (``data/weights/manifest.json``) -> the names the prose uses. The one list: the slider demo's
#: labels (:data:`course_lib.demo_codecs.CODEC_LABELS`) are built from it.
CODEC_NAMES = {"jpeg420": "JPEG 4:2:0", "jpeg444": "JPEG 4:4:4", "webp": "WebP", "jpeg2000": "JPEG 2000",
               "avif": "AVIF", "learned_codec": "learned (factorized)", "learned_hyperprior": "learned (hyperprior)"}

#: Colours for curves that are not a codec of the palette (e.g. "our 8x8 DCT"), in order: none is a codec's colour.
OTHER_COLOURS = ("black", "tab:gray", "tab:cyan", "0.6")


def codec_colour(name: str) -> str | None:
    """The course's colour for a codec named ``name`` (e.g. "jpeg420", "learned hyperprior"), or None.

    Introduced in notebook 08 (the palette of every RD plot from notebook 01 on).
    """
    lowered = str(name).lower()
    return next((colour for key, colour in CODEC_COLOURS if key in lowered), None)


def display_name(name: str) -> str:
    """What a legend calls the curve ``name``: "JPEG 4:2:0" for "jpeg420" (:data:`CODEC_NAMES`), any other name as is.

    Introduced in notebook 01 (the legends of its RD plots).
    """
    return CODEC_NAMES.get(name, name)


# MS-SSIM in dB is -10 log10(1 - MS-SSIM): rd_plot's docstring and notebook 01's prose give the formula.
_METRIC_LABELS = {"psnr": "PSNR (dB, RGB)", "msssim": "MS-SSIM (dB)"}


def _named(images, titles) -> tuple[list[np.ndarray], list[str]]:
    if isinstance(images, Mapping):
        names, images = list(images.keys()), list(images.values())
    else:
        images = list(images)
        names = [""] * len(images)
    if titles is not None:
        names = list(titles)
        if len(names) != len(images):
            raise ValueError(f"{len(images)} images but {len(names)} titles")
    if not images:
        raise ValueError("no images to show")
    return [to_rgb8(im) for im in images], [str(n) for n in names]


def show_images(images, titles: Sequence[str] | None = None, ncols: int = 4,
                size: float = 3.0) -> Figure:
    """A grid of images without axes ticks.

    Args:
        images: a ``{title: image}`` dict or a list of images (uint8 RGB, gray or float in [0, 1]).
        titles: one per image; overrides the dict keys.
        ncols: images per row (fewer when there are fewer images).
        size: inches per grid cell.

    Returns a Figure with exactly one axes per image. Introduced in notebook 01.
    """
    images, names = _named(images, titles)
    ncols = max(1, min(ncols, len(images)))
    nrows = math.ceil(len(images) / ncols)
    fig = Figure(figsize=(size * ncols, size * nrows), layout="constrained")
    for i, (image, name) in enumerate(zip(images, names)):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(image)
        ax.set_title(name)
        ax.set_axis_off()
    return fig


def _crop_box(shape, crop) -> tuple[int, int, int]:
    h, w = shape[:2]
    if crop is None:
        size = max(8, min(h, w) // 4)
        return (h - size) // 2, (w - size) // 2, size
    y, x, size = (int(v) for v in crop)
    size = min(size, h, w)
    y, x = min(max(0, y), h - size), min(max(0, x), w - size)
    return y, x, size


def compare(original, reconstruction, crop: tuple[int, int, int] | None = None,
            titles: Sequence[str] = ("original", "reconstruction", "|error|"),
            error_scale: float | None = None) -> Figure:
    """Original | reconstruction | error map on top, the same zoomed crop below.

    Args:
        original, reconstruction: images of the same shape (uint8 RGB or gray).
        crop: ``(y, x, size)`` of the square to zoom into, in pixels; default:
            a square of a quarter of the shorter side in the centre. Clipped
            to the image. A rectangle marks it in the top row.
        titles: three titles; the PSNR is appended to the reconstruction's.
        error_scale: absolute error (0-255) shown as full brightness; default:
            the 99th percentile of the error, so small errors stay visible.

    Returns a Figure with 6 axes (2 rows x 3) plus a colour bar for the error.
    Introduced in notebook 01.
    """
    from .metrics import psnr

    a, b = to_rgb8(original), to_rgb8(reconstruction)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if len(titles) != 3:
        raise ValueError("titles must hold three strings: original, reconstruction, error")
    error = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)
    scale = error_scale or max(float(np.percentile(error, 99)), 1.0)
    y, x, size = _crop_box(a.shape, crop)
    panels = (a, b, error)
    names = (titles[0], f"{titles[1]}  ({psnr(a, b):.2f} dB)", f"{titles[2]} (mean over RGB)")

    fig = Figure(figsize=(11, 7.4), layout="constrained")   # 11 in at most: wider images are shrunk on screen
    axes = fig.subplots(2, 3)
    for col, (panel, name) in enumerate(zip(panels, names)):
        style = dict(cmap="inferno", vmin=0, vmax=scale) if panel.ndim == 2 else {}
        shown = axes[0, col].imshow(panel, **style)
        axes[0, col].set_title(name)
        axes[0, col].add_patch(Rectangle((x - 0.5, y - 0.5), size, size, fill=False,
                                         edgecolor="cyan", linewidth=1.5))
        # Nearest-neighbour zoom so that individual pixels (and 8x8 blocks) stay visible.
        axes[1, col].imshow(panel[y:y + size, x:x + size], interpolation="nearest", **style)
        axes[1, col].set_title(f"crop y={y}, x={x}, {size} px")
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(shown, ax=axes[:, 2], shrink=0.6, label="|error| (0-255)")
    return fig


def image_colorbar(image, label: str | None = None):
    """A colour bar beside the image drawn by ``image = ax.imshow(...)``, exactly as tall as the picture.

    ``fig.colorbar(image, ax=ax)`` takes the height of the axes' layout box, which for a wide image is taller than
    the picture; this one sits in an inset of the image's own axes, so it follows the picture's aspect.
    Returns the Colorbar. Introduced in notebook 12.
    """
    ax = image.axes
    bar = ax.figure.colorbar(image, cax=ax.inset_axes([1.03, 0.0, 0.045, 1.0]))
    if label:
        bar.set_label(label)
    return bar


def rd_plot(curves: Mapping[str, Mapping[str, Sequence[float]]], metric: str = "psnr", ax=None,
            highlight: str | Sequence[str] | None = None, title: str | None = None, legend: bool = True) -> Figure:
    """Rate-distortion curves: bits per pixel against PSNR or MS-SSIM.

    Args:
        curves: ``{name: {"bpp": [...], "psnr": [...], "msssim": [...]}}``, e.g. from
            :func:`course_lib.baselines.rd_curve`; only ``bpp`` and the chosen metric are used.
        metric: ``"psnr"`` (dB) or ``"msssim"`` (plotted in dB, -10 log10(1 - MS-SSIM),
            which spreads out the values near 1 where codecs differ).
        ax: draw into this Axes (its figure is returned); default: a new figure.
        highlight: a name (or names) drawn thick; the others are drawn thin.
        title: the axes title.
        legend: draw the legend in the axes; False for a figure whose panels share one legend
            (``fig.legend(*ax.get_legend_handles_labels())``).

    The legend calls each curve by :func:`display_name` ("JPEG 4:2:0" for "jpeg420"). Each codec's curve takes its
    colour from :func:`codec_colour`; any other curve (and a second curve of the same codec) one of
    :data:`OTHER_COLOURS`, so no curve borrows a codec's colour.

    Returns the Figure. Introduced in notebook 01.
    """
    if metric not in _METRIC_LABELS:
        raise ValueError(f"metric must be one of {tuple(_METRIC_LABELS)}, got {metric!r}")
    if not curves:
        raise ValueError("no curves to plot")
    if ax is None:
        fig = Figure(figsize=(6.5, 4.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    highlighted = {highlight} if isinstance(highlight, str) else set(highlight or ())
    unknown = highlighted - set(curves)
    if unknown:
        raise ValueError(f"highlight names {sorted(unknown)} are not among the curves {list(curves)}")
    used, others = set(), iter(OTHER_COLOURS * len(curves))
    for name, curve in curves.items():
        colour = codec_colour(name)
        if colour is None or colour in used:  # not a codec, or a second curve of the same codec
            colour = next(others)
        used.add(colour)
        bpp = np.asarray(curve["bpp"], dtype=float)
        values = np.asarray(curve[metric], dtype=float)
        if metric == "msssim":
            values = np.array([ms_ssim_db(v) for v in values])
        order = np.argsort(bpp)
        thick = name in highlighted or not highlighted
        # Thin curves stay opaque enough to keep their codec's colour on a projector (at alpha 0.6 JPEG's red
        # read as salmon and JPEG 2000's purple as lavender): emphasis comes from the width.
        ax.plot(bpp[order], values[order], marker="o", markersize=4 if thick else 3.5,
                linewidth=2.4 if thick else 1.4, alpha=1.0 if thick else 0.9, label=display_name(name),
                color=colour)
    ax.set_xlabel("rate (bits per pixel)")
    ax.set_ylabel(_METRIC_LABELS[metric])
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend()
    if title:
        ax.set_title(title)
    return fig
