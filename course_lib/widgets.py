"""The compression-level slider demo in ipywidgets: controls around the pure layers below (notebook 09).

:class:`SliderDemo` (:func:`build_demo`) is a thin controller with two modes (one codec; two codecs at the same
file size, side by side and as a wipe), lesson presets, a projector mode, and a background worker in which the
newest input wins: a level slider, a codec menu, an image picker (course photos, Kodak when
:func:`course_lib.data.kodak_dir` finds it, and an upload box), panels original | reconstruction | error map
with a zoomed crop below each, the readouts, and an RD plot on which the current point moves. Pictures travel as
PNG bytes in ``ipywidgets.Image``, which renders the same in JupyterLab and in Voilà. A bad upload or any
failure shows as a message in the demo, never as a traceback.

The layers it reads, each importable and testable without a browser (only the last imports ipywidgets):

======================  ==========================================================================
``demo_codecs``         the codecs, what the level means for each, the shipped models loaded once
``demo``                ``State`` -> ``update()`` -> ``Result``: compress, decode, measure (cached)
``compare``             ``CompareState`` -> ``compare()`` -> ``Comparison``: two codecs at one size
``demo_render``         PNG panels, zoomed crops, error maps, readouts, the RD plot (``Frame``)
``demo_worker``         the background worker in which the newest input wins
``demo_controls``       the ipywidgets controls and their layout, without behaviour
======================  ==========================================================================

The names notebook 09 and the app read as ``widgets.X`` (``update``, ``State``, ``level_range``, ...) are
re-exported here; they are defined, documented and tested in those modules.

Introduced in notebook 09; ``make demo`` serves it as a standalone Voilà app.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from .compare import CompareState, Comparison, compare
from .data import COURSE_PHOTOS, ImageLoadError, to_rgb8
from .demo import (MAX_SIDE, MAX_UPLOAD_MB, Result, State, curve_names, fit_within, kodak_names, named_image,
                   rd_curve_points, read_upload, update)
from .demo_codecs import (BASE_CODEC, CODEC_LABELS, LEARNED_MODELS, PRESETS, LevelRange, available_codecs,
                          available_presets, can_match, learned_codec, level_range, reference_codec)
from .demo_controls import DemoControls, level_slider
from .demo_render import ZOOM, RDPlot, comparison_frame, error_image, message_html, result_frame, status_html
from .demo_worker import NewestInputWins

__all__ = ["SliderDemo", "build_demo",
           # Re-exported for notebook 09, the app and the benchmarks (defined in the modules above):
           "State", "Result", "update", "CODEC_LABELS", "LEARNED_MODELS", "available_codecs", "reference_codec",
           "learned_codec", "level_range", "kodak_names", "error_image", "MAX_UPLOAD_MB"]


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where the demo computes in a background thread)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class SliderDemo(DemoControls):
    """The interactive demo: a thin ipywidgets layer over :func:`course_lib.demo.update` and
    :func:`course_lib.compare.compare`; its controls are :class:`course_lib.demo_controls.DemoControls`.

    Two modes (``mode``, ToggleButtons): "single" shows original | reconstruction | error map of one codec;
    "compare" shows two codecs at the same file size, left | wipe | right (the wipe composes the two
    reconstructions at ``split``), the zoom square the same on all three.

    Controls (each an ipywidgets object whose ``.value`` can also be set from code,
    which is how the tests drive it): ``mode``, ``presets`` (Buttons, :data:`course_lib.demo_codecs.PRESETS`),
    ``projector`` (Checkbox: large text), ``image`` (Dropdown), ``upload`` (FileUpload), ``codec`` (Dropdown) and
    ``match_bpp`` (Checkbox, disabled where matching changes nothing), ``left`` and ``right`` (Dropdowns of
    compare mode), ``level`` (FloatSlider: the codec's knob, or in compare mode the reference codec's rate,
    which sets the file size; it is *replaced* by a new slider when its range changes, so that the browser's
    keyboard Home/End use the new range), ``split`` (the wipe), ``crop_x`` and ``crop_y`` (zoom position:
    fraction of the width from the left, and of the height from the bottom, a vertical slider). Views:
    ``pictures`` and ``zooms`` (three each), ``titles``, ``readout``, ``plot``, ``message`` and ``status``
    (busy while computing). ``result`` is the last shown :class:`course_lib.demo.Result` of the single mode,
    ``comparison`` the last :class:`course_lib.compare.Comparison`.

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
        self.max_side, self.panel_width = int(max_side), int(panel_width)
        background = _in_kernel() if background is None else bool(background)
        self._worker = NewestInputWins(self._draw, on_request=self._busy, on_done=self._done,
                                       background=background, name="slider-demo")
        self._images: dict = {}  # picker value -> picture (uint8 array), for uploads and arrays
        self._plotted = None  # (image key, curve names, font) the plot's curves belong to
        self._rd = None       # the RDPlot, made for the current text size
        self._quiet = False   # set while the code (not the user) rearranges controls
        self._result: Result | None = None
        self._comparison: Comparison | None = None
        self.refreshes = 0  # finished redraws (shown hidden in the status for browser tests)
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
        levels = _slider_levels(mode, codec, False)
        super().__init__(options, first, available_codecs(), codec, reference, can_match(codec), levels,
                         levels.default if level is None else level, available_presets(), mode, projector)
        self._set_projector(self.projector.value)
        self.mode.observe(self._on_mode, "value")
        self.projector.observe(lambda change: self._set_projector(change["new"]), "value")
        for button in self.presets:
            button.on_click(lambda button: self._guarded(self.apply_preset, button.description))
        self.upload.observe(self._on_upload, "value")
        self.codec.observe(self._on_codec, "value")
        self.match_bpp.observe(self._on_codec, "value")
        for control in (self.image, self.level, self.left, self.right, self.split, self.crop_x, self.crop_y):
            control.observe(self._on_change, "value")
        self._request()

    @property
    def result(self) -> Result | None:
        """The single mode's last drawn :class:`course_lib.demo.Result`; code that reads it waits for the newest
        request first, so that ``demo.level.value = 3; demo.result`` gives rate 3's result in a kernel too."""
        self._wait_unless_worker()
        return self._result

    @property
    def comparison(self) -> Comparison | None:
        """The compare mode's last drawn :class:`Comparison` (waits like :attr:`result`)."""
        self._wait_unless_worker()
        return self._comparison

    @property
    def dropped(self) -> int:
        """Computations dropped because a newer input came while they ran."""
        return self._worker.dropped

    def _wait_unless_worker(self):
        if not self._worker.in_worker():
            self.wait()

    # ------------------------------------------------------------------ plumbing
    def _levels(self) -> LevelRange:
        """The level slider's range for the current mode and codec."""
        return _slider_levels(self.mode.value, self.codec.value, self.match_bpp.value)

    @contextlib.contextmanager
    def _quietly(self):
        """The code, not the user, rearranges controls: their events ask for no redraw."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def _set_level_range(self, levels: LevelRange, value: float):
        """Give the level slider a range and a value (no redraw). A new range gets a new slider: ipywidgets 8's
        noUiSlider keeps its first range for the keyboard's Home/End, so re-ranging the old one is not enough."""
        value = min(max(float(value), levels.low), levels.high)
        old = self.level
        if (old.min, old.max, old.step) == (levels.low, levels.high, levels.step):
            with self._quietly():
                old.value, old.description = value, levels.label
            return
        self.level = level_slider(levels, value)
        self.level.observe(self._on_change, "value")
        self.level_box.children = (self.level,)
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

    def _say(self, text: str, kind: str = "note"):
        self.message.value = message_html(text, kind)

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

    def _set_projector(self, on: bool):
        (self.widget.add_class if on else self.widget.remove_class)("projector")
        with self._worker.lock:
            self._plotted = None  # the plot is redrawn with its text size
        if self._worker.submitted:
            self._guarded(self._request)

    # ------------------------------------------------------------------ events
    def _on_change(self, _change=None):
        self._guarded(self._request)

    def _on_mode(self, _change):
        def switch():
            self.show_mode()
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
                with self._quietly():
                    self.match_bpp.value = False
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
        """Set the controls to one of :data:`course_lib.demo_codecs.PRESETS` and redraw once."""
        preset = PRESETS[name]
        with self._quietly():
            self.mode.value = preset["mode"]
            self.show_mode()
            if preset["mode"] == "compare":
                self.left.value = preset.get("left") or reference_codec()
                self.right.value = preset["right"]
            else:
                self.codec.value = preset["codec"]
                self.match_bpp.value = bool(preset.get("match_bpp")) and can_match(preset["codec"])
                self.match_bpp.disabled = not can_match(preset["codec"])
            if "zoom" in preset:
                self.crop_x.value, self.crop_y.value = preset["zoom"][0], 1.0 - preset["zoom"][1]
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
            try:
                picture, note = read_upload(item["content"], name, self.max_side)
            except ImageLoadError as exc:
                self._say(f"Could not use this upload: {exc}", "error")
                return
            label, value = self._add_picture(f"{name} (upload)", picture)
            with self._quietly():  # new options can move the selection on their own: redraw once, below
                self.image.options = [(label, value)] + list(self.image.options)
                self.image.value = value
            self._request(notice=f"{name}: {picture.shape[1]}×{picture.shape[0]} pixels"
                                 + (f"; {note}" if note else ""))

        self._guarded(receive)
        with self._quietly():
            self.upload.value = ()  # so that the same file can be uploaded again

    # ------------------------------------------------------------------ computing: the newest input wins
    def refresh(self):
        """Recompute for the controls' state and redraw everything (in a kernel: in the background)."""
        self._request()

    def _request(self, notice: str = ""):
        """Ask for the controls' current state to be shown; a request still waiting is replaced."""
        if self._quiet:
            return
        mode = self.mode.value
        self._worker.submit((mode, self.compare_state() if mode == "compare" else self.state(), notice))

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the newest request is drawn (for tests and scripts); False on timeout."""
        return self._worker.wait(timeout)

    def _busy(self):
        # Everything shown now belongs to an older state: grey it until it is replaced.
        self.views.add_class("stale")
        self.plot.add_class("stale")
        self.status.value = status_html(busy=True, refreshes=self.refreshes)

    def _draw(self, request):
        """Compute one request, yielding what shows it: the pictures, then the RD plot (run by the worker)."""
        mode, state, notice = request
        try:
            frame = self._render(mode, state)
        except Exception as exc:  # the demo must survive whatever a user does
            message = f"Something went wrong: {type(exc).__name__}: {exc}"
            yield lambda: self._say(message, "error")
            return
        yield lambda: self._apply(frame, notice)
        try:
            plot = self._render_plot(frame)
        except Exception as exc:
            message = f"Something went wrong: {type(exc).__name__}: {exc}"
            yield lambda: self._say(message, "error")
            return
        yield lambda: setattr(self.plot, "value", plot)

    def _done(self, _request):
        self.plot.remove_class("stale")
        self.refreshes += 1
        self.status.value = status_html(busy=False, refreshes=self.refreshes)

    # ------------------------------------------------------------------ drawing
    def _render(self, mode: str, state) -> dict:
        """Everything the views show for one state, computed without touching a widget."""
        if mode == "compare":
            comparison = compare(state)
            return {"mode": mode, "state": state, "comparison": comparison,
                    "view": comparison_frame(comparison, state.split, self.panel_width)}
        result = update(state)
        return {"mode": mode, "state": state, "result": result, "view": result_frame(result, self.panel_width)}

    def _apply(self, frame: dict, notice: str):
        """Show a rendered frame (pictures, titles, readout, message); the plot follows in :meth:`_render_plot`."""
        view = frame["view"]
        for widget, value in zip(self.pictures + self.zooms, view.pictures + view.zooms):
            if widget.value != value:
                widget.value = value
        for widget, value in zip(self.titles, view.titles):
            widget.value = value
        self.readout.value = view.readout
        self._say(view.note or notice, "note" if view.note else "info")
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
            # The state's image (a name or an array) is what update() resolved: the same cache key.
            self._rd.set_curves({name: rd_curve_points(frame["state"].image, name) for name in names},
                                pixels=image.shape[0] * image.shape[1])
            self._plotted = wanted
        if frame["mode"] == "compare":
            self._rd.set_points([(r.codec, r.bpp, r.psnr) for r in (comparison.left, comparison.right)])
        else:
            self._rd.set_point(result.codec, result.bpp, result.psnr, result.reference)
        return self._rd.png()


def build_demo(image="astronaut", codec: str | None = None, level: float | None = None,
               max_side: int = MAX_SIDE, panel_width: int = 270, mode: str = "single",
               projector: bool = False, background: bool | None = None) -> SliderDemo:
    """Build the slider demo (see :class:`SliderDemo` for the arguments); display it as a cell's value.

    Introduced in notebook 09.
    """
    return SliderDemo(image=image, codec=codec, level=level, max_side=max_side, panel_width=panel_width,
                      mode=mode, projector=projector, background=background)


def _slider_levels(mode: str, codec: str, match_bpp: bool) -> LevelRange:
    """The level slider's range: in compare mode the reference codec's rates (they set the file size)."""
    if mode == "compare":
        levels = level_range(reference_codec())
        return dataclasses.replace(levels, label=f"file size: {CODEC_LABELS[reference_codec()]} at rate")
    return level_range(codec, match_bpp and can_match(codec))
