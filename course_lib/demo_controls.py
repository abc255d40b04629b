"""The slider demo's controls and their layout in ipywidgets, without behaviour (notebook 09).

:class:`DemoControls` makes every control and view of the demo and lays them out so that they scale with the
window (every width is a share of it; :data:`STYLESHEET` sizes the text, larger in projector mode).
:class:`course_lib.widgets.SliderDemo` adds the behaviour: what each control does, and the drawing. ipywidgets is
imported when the controls are made, so that importing this module stays light.
"""

from __future__ import annotations

from .demo import MAX_UPLOAD_MB
from .demo_codecs import CODEC_LABELS, LevelRange
from .demo_render import ZOOM

__all__ = ["STYLESHEET", "level_slider", "DemoControls"]

#: The demo's style sheet: text that scales with projector mode, pictures as wide as their column, greyed views
#: while a newer state computes, the busy spinner, and the upload button's label (ipywidgets 8 writes a file
#: count, "(0)", after the description and has no option to hide it: the text is made invisible and the label,
#: from the button's tooltip, drawn instead).
STYLESHEET = """<style>
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
.course-slider-demo button.widget-upload.demo-upload { font-size: 0 !important; }
.course-slider-demo button.widget-upload.demo-upload::after { content: attr(title); font-size: var(--demo-text); }
.course-slider-demo button.widget-upload.demo-upload i { font-size: var(--demo-text); margin-right: 0.4em; }
</style>"""


def level_slider(levels: LevelRange, value: float):
    """A level slider over ``levels`` at ``value`` (clipped into the range), writing as many decimals as the step.

    Used by the demo: a new range gets a new slider, because ipywidgets 8's slider keeps its first range for the
    keyboard's Home/End.
    """
    import ipywidgets as w

    slider = w.FloatSlider(value=min(max(float(value), levels.low), levels.high), min=levels.low,
                           max=levels.high, step=levels.step, description=levels.label, continuous_update=False,
                           readout_format=levels.readout_format, style={"description_width": "initial"},
                           layout=w.Layout(width="100%"))
    slider.add_class("level-slider")
    return slider


class DemoControls:
    """Every control and view of the slider demo, laid out in :attr:`widget`; no behaviour. Used by the demo.

    Controls: ``mode`` (ToggleButtons "single" / "compare"), ``projector`` (Checkbox), ``presets`` (Buttons),
    ``image`` (Dropdown), ``upload`` (FileUpload), ``codec`` (Dropdown) and ``match_bpp`` (Checkbox), ``left``
    and ``right`` (Dropdowns of compare mode), ``level`` (FloatSlider, inside ``level_box``), ``split`` (the
    wipe), ``crop_x`` and ``crop_y`` (zoom position; ``crop_y`` is vertical, its top the picture's top). Views:
    ``pictures``, ``zooms`` and ``titles`` (three each), ``readout``, ``plot``, ``message``, ``status``.

    Args:
        image_options, image: the picker's (label, value) pairs and the chosen value.
        codecs, codec: the codec menu's names and the chosen one; ``reference``: the reference learned codec or
            None; ``matchable``: whether the first codec can be matched.
        levels, level: the level slider's range and value.
        presets: the names of the lesson buttons; ``mode``: "single" or "compare"; ``projector``: large text.
    """

    def __init__(self, image_options, image, codecs, codec: str, reference: str | None, matchable: bool,
                 levels: LevelRange, level: float, presets, mode: str = "single", projector: bool = False):
        import ipywidgets as w

        initial, auto = {"description_width": "initial"}, w.Layout(width="auto")
        self.mode = w.ToggleButtons(options=[("one codec", "single"), ("two codecs, same file size", "compare")],
                                    value=mode, disabled=reference is None, style={"button_width": "auto"})
        self.projector = w.Checkbox(value=bool(projector), description="projector (large text)", indent=False,
                                    layout=auto)
        self.presets = [w.Button(description=name, layout=w.Layout(width="auto")) for name in presets]
        self.image = w.Dropdown(options=image_options, value=image, description="Image", style=initial,
                                layout=w.Layout(width="auto", max_width="100%"))
        label = f"Upload your image (≤ {MAX_UPLOAD_MB} MB)"  # the style sheet draws it without the "(0)"
        self.upload = w.FileUpload(accept="image/*", multiple=False, description=label, tooltip=label, layout=auto)
        menu = [(CODEC_LABELS[c], c) for c in codecs]
        self.codec = w.Dropdown(options=menu, value=codec, description="Codec", style=initial, layout=auto)
        self.match_bpp = w.Checkbox(value=False, description=(f"match the {CODEC_LABELS[reference]} codec's size"
                                                              if reference else "match the learned codec's size"),
                                    disabled=not matchable, indent=False, layout=auto)
        self.left = w.Dropdown(options=menu, value=reference or codec, description="left", style=initial,
                               layout=auto)
        self.right = w.Dropdown(options=menu, value="jpeg420" if "jpeg420" in codecs else codec,
                                description="right", style=initial, layout=auto)
        self.level = level_slider(levels, level)
        self.level_box = w.Box([self.level], layout=w.Layout(width="100%"))
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

        column = w.Layout(flex="1 1 0", min_width="0", margin="0 4px")
        columns = [w.VBox([title, picture, zoom], layout=column)
                   for title, picture, zoom in zip(self.titles, self.pictures, self.zooms)]
        self.views = w.VBox([w.HBox(columns, layout=w.Layout(width="100%")), self.crop_x, self.split,
                             w.HTML(f"zoom ×{ZOOM} on the cyan square; the same square on every picture")],
                            layout=w.Layout(flex="1 1 0", min_width="0"))
        self.single_controls = w.HBox([self.codec, self.match_bpp], layout=w.Layout(flex_flow="row wrap"))
        self.compare_controls = w.HBox([self.left, w.HTML("&nbsp;vs&nbsp;"), self.right],
                                       layout=w.Layout(flex_flow="row wrap"))
        wrap = w.Layout(flex_flow="row wrap", align_items="center")
        # Pictures on the left, numbers and the RD plot on the right; every width is a share of the window.
        self.widget = w.VBox([
            w.HTML(STYLESHEET),
            w.HBox([self.mode, self.projector], layout=wrap),
            w.HBox([w.HTML("lessons:&nbsp;"), *self.presets], layout=wrap),
            w.HBox([self.image, self.upload], layout=wrap),
            self.single_controls, self.compare_controls,
            self.level_box,
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
        self.upload.add_class("demo-upload")
        self.show_mode()

    def show_mode(self):
        """Show the controls of the mode ``mode`` says (codec menu, or left/right menus and the wipe)."""
        compare = self.mode.value == "compare"
        self.single_controls.layout.display = "none" if compare else "flex"
        self.compare_controls.layout.display = "flex" if compare else "none"
        self.split.layout.display = "flex" if compare else "none"

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
