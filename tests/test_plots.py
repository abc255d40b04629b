"""Plot helpers return figures with the expected axes, on any image kind."""
import matplotlib

matplotlib.use("Agg")

import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from course_lib import data, plots


@pytest.fixture(scope="module")
def photo():
    return data.course_photo("chelsea")[:96, :128]


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def test_show_images_one_axes_per_image(photo):
    gray = photo.mean(axis=2).astype(np.uint8)
    fig = plots.show_images({"colour": photo, "gray": gray, "float": photo / 255.0}, ncols=2)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["colour", "gray", "float"]
    fig = plots.show_images([photo, photo], titles=["a", "b"])
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="titles"):
        plots.show_images([photo], titles=["a", "b"])


def test_compare_shows_three_panels_and_their_crops(photo):
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 8, photo.shape), 0, 255).astype(np.uint8)
    gray = photo.mean(axis=2).astype(np.uint8)
    fig = plots.compare(gray, noisy.mean(axis=2).astype(np.uint8), crop=(10, 20, 32))
    assert isinstance(fig, Figure)
    assert len(_image_axes(fig)) == 6
    assert len(fig.axes) == 7  # plus the error colour bar
    # The crop rectangle is drawn on each panel of the top row, where asked.
    for ax in _image_axes(fig)[:3]:
        (patch,) = ax.patches
        assert (patch.get_x(), patch.get_y(), patch.get_width()) == (19.5, 9.5, 32)
    # Crops are clipped to the image instead of failing.
    fig = plots.compare(photo, noisy, crop=(90, 120, 64))
    assert _image_axes(fig)[3].images[0].get_array().shape[:2] == (64, 64)
    with pytest.raises(ValueError, match="shape"):
        plots.compare(photo, photo[:50])


def test_rd_plot_draws_each_curve():
    curves = {"jpeg": {"bpp": [0.3, 0.6, 1.2], "psnr": [27, 30, 33], "msssim": [0.9, 0.95, 0.98]},
              "webp": {"bpp": [0.25, 0.5, 1.0], "psnr": [28, 31, 34], "msssim": [0.92, 0.96, 0.985]}}
    fig = plots.rd_plot(curves, highlight="webp")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["jpeg", "WebP"]
    assert lines[1].get_linewidth() > lines[0].get_linewidth()
    fig = plots.rd_plot(curves, metric="msssim")
    assert fig.axes[0].get_lines()[0].get_ydata()[0] == pytest.approx(10.0)  # 1 - 0.9 -> 10 dB
    with pytest.raises(ValueError, match="metric"):
        plots.rd_plot(curves, metric="ssim")
    with pytest.raises(ValueError, match="highlight"):
        plots.rd_plot(curves, highlight="avif")


def test_rd_plot_into_existing_axes():
    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    out = plots.rd_plot({"a": {"bpp": [1, 2], "psnr": [30, 33]}}, ax=ax2)
    assert out is fig and len(ax2.get_lines()) == 1 and not ax1.get_lines()


def test_figures_have_text_of_11_pt_or_more_after_set_seed(photo):
    # Issue 14: figures readable on a projector. Every notebook's first cell calls config.set_seed.
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    from course_lib import config

    with matplotlib.rc_context():
        config.set_seed(0)
        assert matplotlib.rcParams["font.size"] >= 11
        figures = [plots.show_images({"a photo": photo}), plots.compare(photo, photo[::-1], crop=(0, 0, 32)),
                   plots.rd_plot({"jpeg420": {"bpp": [0.5, 1.0], "psnr": [30, 33]},
                                  "learned": {"bpp": [0.4, 0.8], "psnr": [30, 32]}}, title="RD")]
        for fig in figures:
            FigureCanvasAgg(fig).draw()  # lays out the tick labels
            sizes = {text.get_text(): text.get_fontsize() for text in fig.findobj(Text) if text.get_text()}
            assert sizes and min(sizes.values()) >= 11, sizes
        legend = figures[2].axes[0].get_legend()
        assert legend is not None and [t.get_text() for t in legend.get_texts()] == ["JPEG 4:2:0", "learned"]


def test_rd_plot_legend_says_what_the_prose_says():
    # Issue 14: legends showed code names ("jpeg420", "factorized (learned_codec)") where the prose says "JPEG 4:2:0".
    curve = {"bpp": [0.5, 1.0], "psnr": [30, 33]}
    names = ["learned_hyperprior", "learned_codec", "jpeg420", "jpeg444", "webp", "jpeg2000", "avif", "our 8x8 DCT"]
    fig = plots.rd_plot({name: curve for name in names}, highlight="jpeg420")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "learned (hyperprior)", "learned (factorized)", "JPEG 4:2:0", "JPEG 4:4:4", "WebP", "JPEG 2000", "AVIF",
        "our 8x8 DCT"]
    # Colours still follow the codec, not its display name; highlight still takes the code name.
    colours = [line.get_color() for line in ax.get_lines()]
    assert colours == ["tab:orange", "tab:blue", "tab:red", "tab:pink", "tab:green", "tab:purple", "tab:olive",
                       "black"]
    assert ax.get_lines()[2].get_linewidth() > ax.get_lines()[3].get_linewidth()
    # Panels that share one legend below the figure.
    fig = plots.rd_plot({name: curve for name in names[:3]}, legend=False)
    assert fig.axes[0].get_legend() is None
    assert fig.axes[0].get_legend_handles_labels()[1] == ["learned (hyperprior)", "learned (factorized)", "JPEG 4:2:0"]


def test_the_demo_calls_codecs_what_the_figures_call_them():
    from course_lib.demo_codecs import CODEC_LABELS, LEARNED_MODELS

    for demo_name, model in LEARNED_MODELS.items():
        assert CODEC_LABELS[demo_name] == plots.display_name(model)
    for codec in ("jpeg420", "webp", "jpeg2000"):
        assert CODEC_LABELS[codec] == plots.display_name(codec)


def test_image_colorbar_is_as_tall_as_a_wide_image():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(6, 6))
    ax = fig.add_subplot()
    shown = ax.imshow(np.zeros((20, 80)))              # 4:1, much flatter than its square layout box
    bar = plots.image_colorbar(shown, label="bits")
    FigureCanvasAgg(fig).draw()
    image_box, bar_box = ax.get_window_extent(), bar.ax.get_window_extent()
    assert bar_box.height == pytest.approx(image_box.height, rel=0.01)
    assert bar_box.x0 > image_box.x1 and bar.ax.get_ylabel() == "bits"


def test_rd_plot_gives_each_codec_its_colour_and_other_curves_none_of_them():
    # Issue 14: one colour per codec in every figure; a curve that is no codec must not borrow one.
    curve = {"bpp": [0.5, 1.0], "psnr": [30, 33]}
    names = ["our 8x8 DCT", "jpeg444", "jpeg420", "learned (shipped)", "factorized (learned_codec)",
             "hyperprior (learned_hyperprior)", "webp", "jpeg2000", "another curve"]
    fig = plots.rd_plot({name: curve for name in names})
    colours = dict(zip(names, (line.get_color() for line in fig.axes[0].get_lines())))
    assert colours["jpeg420"] == "tab:red" and colours["jpeg444"] == "tab:pink"
    assert colours["learned (shipped)"] == "tab:blue" and colours["hyperprior (learned_hyperprior)"] == "tab:orange"
    assert colours["webp"] == "tab:green" and colours["jpeg2000"] == "tab:purple"
    palette = {colour for _, colour in plots.CODEC_COLOURS}
    # Not codecs, and the factorized codec's curve after the learned one (the same codec colour): other colours.
    for name in ("our 8x8 DCT", "another curve", "factorized (learned_codec)"):
        assert colours[name] not in palette, (name, colours[name])
    assert len(set(colours.values())) == len(names)
    assert plots.codec_colour("JPEG 4:2:0") == "tab:red" and plots.codec_colour("JPEG + restoration") == "tab:brown"


# Text sizes set in notebook code: fontsize=9, labelsize=8, {"font.size": 10}, set_fontsize(7), fontsize="small"
# (not other sizes: {"markersize": 7} is no text).
_SIZE_LITERAL = re.compile(r"""(?:fontsize|labelsize|set_fontsize\("""
                           r"""|["'][\w.]*(?:font\.?size|labelsize|titlesize)["']\s*:)\s*=?\s*"""
                           r"""(\d+(?:\.\d+)?|["'](?:xx-small|x-small|small|smaller)["'])""")


def small_text_literals(source: str) -> list[str]:
    """Each text-size literal below 11 pt in ``source`` (relative sizes below 'medium' count as small)."""
    found = []
    for match in _SIZE_LITERAL.finditer(source):
        value = match.group(1)
        if not value[0].isdigit() or float(value) < 11:
            found.append(match.group(0))
    return found


def test_small_text_literals_finds_each_kind():
    source = ('ax.set_title("t", fontsize=9)\nax.tick_params(labelsize = 8)\nplt.rcParams.update({"font.size": 10})\n'
              'text.set_fontsize(7)\nax.legend(fontsize="small")\nax.set_title("u", fontsize=11)\n'
              'font = ImageFont.load_default(size=16)\nplt.rcParams["legend.fontsize"] = 12\n'
              'plt.rcParams.update({"xtick.labelsize": 9, "axes.titlesize": 10})\n'
              'ax.plot(x, y, **{"markersize": 7}); style = {"figure.figsize": 5}')
    assert small_text_literals(source) == ["fontsize=9", "labelsize = 8", '"font.size": 10', "set_fontsize(7",
                                           'fontsize="small"', '"xtick.labelsize": 9', '"axes.titlesize": 10']


def test_notebooks_set_no_text_below_11_pt():
    # Issue 14: every text of every figure readable on a projector. The course's style (config.FIGURE_STYLE) is
    # 11 pt or more; a notebook may enlarge a text, never shrink one below it.
    import json
    from pathlib import Path

    notebooks = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    small = {}
    for path in notebooks:
        for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            if cell["cell_type"] == "code":
                found = small_text_literals("".join(cell["source"]))
                if found:
                    small[f"{path.name} cell {index}"] = found
    assert not small, f"text below 11 pt: {small}"
