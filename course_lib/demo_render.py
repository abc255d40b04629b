"""What the slider demo shows, as pictures and HTML: panels, zoomed crops, error maps, readouts, the RD plot.

Everything here turns a :class:`course_lib.demo.Result` (or a :class:`course_lib.compare.Comparison`) into what
travels to the browser: PNG bytes (:func:`png_bytes`) and HTML strings, collected in a :class:`Frame`. No widgets
here, so a frame is tested like any function; :mod:`course_lib.widgets` only puts frames into its controls.
Introduced in notebook 09.
"""

from __future__ import annotations

import functools
import html
import io
import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from PIL import Image, ImageDraw

from . import metrics
from .compare import Comparison
from .demo import Result
from .demo_codecs import BASE_CODEC, CODEC_LABELS, LEARNED_MODELS, level_range
from .plots import codec_colour

__all__ = ["ERROR_SCALE", "ZOOM", "png_bytes", "error_image", "error_colour_bar_html", "panel_picture",
           "zoomed_crop", "ratio_text", "RDPlot", "Frame", "setting_text", "result_frame", "comparison_frame",
           "message_html", "status_html"]

#: Absolute error (0-255, mean over RGB) shown at full brightness in the error map. Fixed, not
#: rescaled per image, so that the map visibly darkens as the level rises.
ERROR_SCALE = 32.0
#: Zoom factor of the crops under the pictures (nearest neighbour, so pixels stay square).
ZOOM = 4


# --------------------------------------------------------------------------- pictures as PNG bytes
def png_bytes(image: np.ndarray) -> bytes:
    """PNG file of a uint8 image (fast, lossless: what the demo sends to the browser). Used by the demo."""
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


def panel_picture(image: np.ndarray, crop, width: int, split: float | None = None) -> np.ndarray:
    """The image scaled to ``width`` for display, with the zoom square ``crop`` = (y, x, size) outlined in cyan
    (and a wipe's line at ``split``, a fraction of the width). Used by the demo."""
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


def zoomed_crop(crop: np.ndarray, width: int, split: float | None = None) -> np.ndarray:
    """A crop enlarged by an integer factor with nearest neighbours to about ``width``, so pixels and 8x8 blocks
    stay visible (and a wipe's line at ``split``). Used by the demo."""
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
    in kilobytes for the image (:meth:`set_curves` with ``pixels``). Used by the demo.
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
        """The plot with its markers as PNG bytes (the curves are drawn again only when the axes change)."""

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


# --------------------------------------------------------------------------- text
def ratio_text(ratio: float) -> str:
    """A compression ratio for people: ``"24 : 1"``, ``"3.5 : 1"``, or for a file larger than its pixels
    (a tiny image: headers dominate) ``"0.01 : 1 (the file is larger than the raw pixels)"``. Introduced in
    notebook 09."""
    if not math.isfinite(ratio):
        return "∞ : 1"
    if ratio >= 10:
        return f"{ratio:.0f} : 1"
    if ratio >= 1:
        return f"{ratio:.1f} : 1"
    return f"{ratio:.2g} : 1 (the file is larger than the raw pixels)"




def setting_text(result: Result) -> str:
    """The setting in the slider's own terms, so that a title and the slider say the same number: ``"rate 2.3"``,
    ``"quality 40"``, ``"target 30 dB"``, or matched ``"quality 37, the size of rate 2.3"``. Used by the demo."""
    base = BASE_CODEC[result.codec]
    level = format(result.level, level_range(result.codec, result.reference is not None).readout_format)
    if result.reference:  # matched to the reference codec's size at the slider's rate
        knob = f"rate {result.quality:.2f}" if base in LEARNED_MODELS else (
            f"target {result.quality:g} dB" if base == "jpeg2000" else f"quality {result.quality:g}")
        return f"{knob}, the size of rate {level}"
    if base in LEARNED_MODELS:
        return f"rate {level}"
    if base == "jpeg2000":
        return f"target {result.quality:g} dB"
    return f"quality {result.quality:g}"


def _table(rows) -> str:
    cells = "".join(f"<tr><td class='name'>{name}</td><td><b>{value}</b></td></tr>" for name, value in rows)
    return f"<table class='readout'>{cells}</table>"


def _readout_html(result: Result) -> str:
    rows = [("setting", setting_text(result)),
            ("file size", f"{result.num_bytes:,} bytes ({result.num_bytes / 1000:.1f} kB)"),
            ("rate", f"<span class='bpp'>{result.bpp:.3f}</span> bits per pixel"),
            ("compression", ratio_text(result.compression_ratio)),
            ("PSNR", f"{result.psnr:.2f} dB"),
            ("MS-SSIM", f"{result.msssim:.4f} ({metrics.ms_ssim_db(result.msssim):.1f} dB)")]
    if result.reference:
        rows.append((f"{CODEC_LABELS[result.reference['codec']]}, same rate",
                     f"{result.reference['bpp']:.3f} bpp, {result.reference['psnr']:.2f} dB"))
    return _table(rows)


def _comparison_html(comparison: Comparison) -> str:
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
        ("setting", setting_text(left), setting_text(right)))]
    return _table(rows)


# --------------------------------------------------------------------------- frames
@dataclass
class Frame:
    """What the demo's views show for one state. Used by the demo.

    Attributes:
        pictures, zooms: three PNG files each (the panels, and the zoomed crops under them).
        titles: three HTML captions, one above each panel.
        readout: an HTML table of the numbers (bytes, bpp, ratio, PSNR, MS-SSIM).
        note: a remark in plain text ("" when none), e.g. a codec cannot reach the target size.
    """

    pictures: list[bytes]
    zooms: list[bytes]
    titles: list[str]
    readout: str
    note: str


def result_frame(result: Result, width: int) -> Frame:
    """One codec: original | reconstruction | error map, ``width`` pixels wide each, zoomed crops below.

    Used by the demo's single mode.
    """
    pictures = [panel_picture(result.original, result.crop, width),
                panel_picture(result.reconstruction, result.crop, width),
                panel_picture(error_image(result.error), result.crop, width)]
    original, reconstruction, error = result.zoom()
    zooms = [zoomed_crop(original, width), zoomed_crop(reconstruction, width),
             zoomed_crop(error_image(error), width)]
    height, width_px = result.original.shape[:2]
    titles = [f"<b>original</b> {width_px}×{height}",
              f"<b>{CODEC_LABELS[result.codec]}</b>, {setting_text(result)}",
              f"<b>|error|</b> (mean over R, G, B){error_colour_bar_html()}"]
    return Frame(pictures=[png_bytes(p) for p in pictures], zooms=[png_bytes(z) for z in zooms], titles=titles,
                 readout=_readout_html(result), note=result.note)


def comparison_frame(comparison: Comparison, split: float, width: int) -> Frame:
    """Two codecs at one size: left | wipe at ``split`` | right, ``width`` pixels wide each, zoomed crops below.

    Used by the demo's compare mode.
    """
    left, right = comparison.left, comparison.right
    y, x, size = comparison.crop
    wiped_zoom = comparison.wipe[y:y + size, x:x + size]
    pictures = [panel_picture(left.reconstruction, left.crop, width),
                panel_picture(comparison.wipe, left.crop, width, split=split),
                panel_picture(right.reconstruction, right.crop, width)]
    zooms = [zoomed_crop(left.zoom()[1], width),
             zoomed_crop(wiped_zoom, width, split=(comparison.split_column - x) / size),
             zoomed_crop(right.zoom()[1], width)]
    side = "<b>{}</b><br><span class='{}-label'>{:,} bytes, {:.3f} bpp, {:.2f} dB</span>"
    titles = [side.format(CODEC_LABELS[left.codec], "left", left.num_bytes, left.bpp, left.psnr),
              f"<b>wipe</b>: left ← {split:.2f} → right<br>target ≤ {comparison.target_bytes:,} bytes",
              side.format(CODEC_LABELS[right.codec], "right", right.num_bytes, right.bpp, right.psnr)]
    return Frame(pictures=[png_bytes(p) for p in pictures], zooms=[png_bytes(z) for z in zooms], titles=titles,
                 readout=_comparison_html(comparison), note=" ".join(n for n in (left.note, right.note) if n))


def message_html(text: str, kind: str = "note") -> str:
    """The demo's message line: ``text`` escaped (it can quote a file name chosen by the user) and coloured by
    ``kind``, "note", "error" or "info"; "" for no text. Used by the demo."""
    colour = {"note": "#8a5a00", "error": "#b00020", "info": "#555"}[kind]
    return f"<span style='color:{colour}'>{html.escape(text)}</span>" if text else ""


def status_html(busy: bool, refreshes: int) -> str:
    """The demo's status: a spinner and "computing…" while ``busy``, and the count of finished redraws, hidden
    (it tells a browser test that the kernel has finished redrawing after a change). Used by the demo."""
    return (f"<span class='demo-status{' busy' if busy else ''}'>{'computing…' if busy else ''}</span>"
            f"<span class='refresh-count' style='display:none'>{refreshes}</span>")
