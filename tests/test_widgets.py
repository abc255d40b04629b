"""The slider demo's widgets, driven through .value as a browser would (the layers below: test_demo.py)."""

import datetime
import io
import os
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from PIL import Image

from course_lib import demo_codecs, widgets
from course_lib.demo_codecs import CODEC_LABELS, PRESETS, learned_codec
from course_lib.demo import update
from course_lib.demo_controls import STYLESHEET
from demo_fixtures import REFERENCE, medium, needs_learned, photo, png  # noqa: F401  (fixtures)


# --------------------------------------------------------------------------- the widgets
@pytest.fixture()
def demo():
    return widgets.build_demo("astronaut", max_side=160, panel_width=160)


def bpp_shown(demo) -> float:
    return float(demo.readout.value.split("class='bpp'>")[1].split("<")[0])


def upload(demo, name, content):
    """What the browser sends when a file is chosen (the format FileUpload deserialises to)."""
    demo.upload.value = ({"name": name, "type": "", "size": len(content), "content": memoryview(content),
                          "last_modified": datetime.datetime.now(datetime.timezone.utc)},)


@needs_learned
def test_the_slider_moves_bpp_psnr_and_the_pictures(demo):
    assert demo.message.value == "" and demo.result.original.shape == (160, 160, 3)  # astronaut downscaled
    top = learned_codec(REFERENCE).num_rates - 1
    assert demo.codec.value == REFERENCE and (demo.level.min, demo.level.max) == (0, top)
    demo.level.value = 0.0
    low = (bpp_shown(demo), demo.result.psnr, demo.pictures[1].value, demo.plot.value)
    demo.level.value = float(top)
    high = (bpp_shown(demo), demo.result.psnr, demo.pictures[1].value, demo.plot.value)
    assert high[0] > low[0] and high[1] > low[1]
    assert high[2] != low[2] and high[3] != low[3]  # new reconstruction and a moved point
    assert bytes(demo.pictures[0].value).startswith(b"\x89PNG")


@needs_learned
def test_codec_menu_match_toggle_zoom_and_image_picker(demo):
    demo.codec.value = "jpeg420"
    assert (demo.level.min, demo.level.max, demo.level.step) == (1, 100, 1)
    demo.level.value = 10
    at_10 = bpp_shown(demo)
    demo.level.value = 60
    assert bpp_shown(demo) > at_10 and demo.result.quality == 60
    demo.match_bpp.value = True
    assert (demo.level.min, demo.level.max) == (0, learned_codec(REFERENCE).num_rates - 1)
    assert "match" in demo.level.description
    assert demo.result.reference is not None and demo.result.bpp <= demo.result.reference["bpp"]
    demo.codec.value = "webp"  # the slider keeps its meaning (learned rate) and its value
    assert demo.result.codec == "webp" and demo.result.reference is not None
    zoom = demo.zooms[1].value
    demo.crop_x.value, demo.crop_y.value = 0.1, 0.9
    assert demo.result.crop[1] == 0 and demo.zooms[1].value != zoom
    demo.image.value = "chelsea"
    assert demo.result.original.shape[:2] == (106, 160) and demo.message.value == ""


@pytest.mark.parametrize("kind", ["png", "jpeg", "gray", "rgba", "large"])
def test_uploads_of_real_images_join_the_picker(demo, photo, kind):
    if kind == "png":
        content = png(photo)
    elif kind == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(photo).save(buffer, format="JPEG", quality=90)
        content = buffer.getvalue()
    elif kind == "gray":
        content = png(photo[..., 1])
    elif kind == "rgba":
        content = png(np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)]))
    else:
        content = png(np.zeros((800, 1200, 3), np.uint8))
    upload(demo, f"mine.{kind}", content)
    assert demo.image.value.startswith(f"mine.{kind} (upload)")
    assert demo.result.original.shape == ((107, 160, 3) if kind == "large" else (96, 128, 3))
    assert "Could not" not in demo.message.value and "wrong" not in demo.message.value
    if kind == "large":
        assert "resized from 1200×800 to 160×107" in demo.message.value
    assert demo.upload.value == ()  # cleared, so that the same file can be chosen again


def test_the_same_file_twice_gets_two_entries_and_names_are_shown_as_text(demo, photo):
    upload(demo, "<b>twice</b>.png", png(photo))
    upload(demo, "<b>twice</b>.png", png(photo[::-1]))
    labels = [label for label, _ in demo.image.options]
    assert labels[0] != labels[1] and all(label.startswith("<b>twice</b>.png (upload)") for label in labels[:2])
    assert "&lt;b&gt;twice" in demo.message.value  # escaped in the HTML message
    upload(demo, "<i>bad</i>.png", b"no")
    assert "&lt;i&gt;bad" in demo.message.value and "<i>" not in demo.message.value


@pytest.mark.parametrize("kind", ["text", "truncated", "empty", "too many pixels"])
def test_bad_uploads_become_a_message_not_a_traceback(demo, photo, kind):
    content = {"text": b"this is not an image\n", "truncated": png(photo)[:300], "empty": b""}.get(kind)
    if content is None:  # 8000 x 7000 = 56 Mpx, above course_lib.data.MAX_PIXELS; tiny as a 1-bit PNG
        buffer = io.BytesIO()
        Image.new("1", (8000, 7000)).save(buffer, format="PNG")
        content = buffer.getvalue()
    before = (demo.image.value, list(demo.image.options))
    upload(demo, f"bad.{kind}", content)
    assert "Could not use this upload" in demo.message.value and f"bad.{kind}" in demo.message.value
    assert (demo.image.value, list(demo.image.options)) == before  # the demo goes on with the same image


def test_any_failure_inside_the_demo_is_shown_as_a_message(demo, monkeypatch):
    def broken(state):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(widgets, "update", broken)  # what the controller calls
    demo.crop_x.value = 0.3
    assert "Something went wrong" in demo.message.value and "disk on fire" in demo.message.value


@needs_learned
def test_compare_mode_in_the_widgets_shows_both_sides_and_moves_the_wipe(demo):
    demo.mode.value = "compare"
    comparison = demo.comparison
    assert comparison.left.codec == REFERENCE and comparison.right.codec == "jpeg420"
    assert comparison.right.num_bytes <= comparison.target_bytes == comparison.left.num_bytes
    assert CODEC_LABELS["jpeg420"] in demo.titles[2].value and "bytes" in demo.titles[2].value
    assert f"{comparison.right.psnr:.2f} dB" in demo.titles[2].value
    assert "left-bytes" in demo.readout.value and "right-bytes" in demo.readout.value
    wipe = demo.pictures[1].value
    demo.split.value = 0.9
    assert demo.comparison.split_column == round(0.9 * comparison.left.original.shape[1])
    assert demo.pictures[1].value != wipe and demo.comparison.left.reconstruction is comparison.left.reconstruction
    demo.right.value = "webp"
    assert demo.comparison.right.codec == "webp" and demo.comparison.right.num_bytes <= comparison.target_bytes
    demo.mode.value = "single"
    assert demo.result is not None and demo.codec.value == REFERENCE


@needs_learned
def test_presets_set_every_control_at_once(demo):
    for name in PRESETS:
        if not any(button.description == name for button in demo.presets):
            continue
        before = demo.refreshes
        demo.apply_preset(name)
        preset = PRESETS[name]
        assert demo.mode.value == preset["mode"] and demo.refreshes == before + 1, name  # one redraw
        assert "wrong" not in demo.message.value
        if preset["mode"] == "single":
            assert demo.codec.value == preset["codec"] and demo.result.quality == preset["level"]
        else:
            assert demo.comparison.right.codec == preset["right"]
    assert "Upload" in demo.message.value  # the last one, "your own photo", asks for one


@needs_learned
def test_a_codec_switch_gives_a_new_slider_with_the_whole_range_and_the_match_box_follows(demo):
    first = demo.level
    assert demo.match_bpp.disabled  # the reference codec: matching it to itself would change nothing
    demo.codec.value = "jpeg420"
    assert demo.level is not first and (demo.level.min, demo.level.max) == (1, 100)
    assert "level-slider" in demo.level._dom_classes and demo.level in demo.level_box.children
    assert not demo.match_bpp.disabled
    demo.level.value = 100  # what End does in the browser
    assert demo.result.quality == 100
    demo.match_bpp.value = True
    matched = demo.result.quality
    demo.match_bpp.value = False  # unticked: stays at the quality that matched, not the default
    assert demo.level.value == matched and demo.result.quality == matched
    demo.codec.value = REFERENCE
    demo.level.value = 2.3
    assert "rate 2.3" in demo.titles[1].value  # the title says what the slider says
    demo.crop_y.value = 1.0  # a vertical slider: its top is the picture's top
    assert demo.result.crop[0] == 0


def test_the_newest_input_wins_and_intermediate_states_are_never_computed(monkeypatch):
    demo = widgets.build_demo("astronaut", codec="jpeg420", level=50, max_side=96, panel_width=96,
                              background=True)
    assert demo.wait(120) and demo.result.quality == 50
    gate, computed = threading.Event(), []

    def slow(state):
        computed.append(state.level)
        gate.wait(60)  # the first computation is still running while the other inputs arrive
        return update(state)

    monkeypatch.setattr(widgets, "update", slow)  # what the controller calls
    levels = [10, 20, 30, 40, 60, 70, 80]
    for level in levels:  # a burst of seven inputs
        demo.level.value = level
    assert "busy" in demo.status.value and "stale" in demo.views._dom_classes
    gate.set()
    assert demo.wait(120)
    assert computed == [10, 80]  # the running one, then the newest: 20-70 were dropped before computing
    assert demo.result.quality == 80 and demo.dropped == 1  # the finished 10 was never shown
    assert "busy" not in demo.status.value and "stale" not in demo.views._dom_classes


def test_an_upload_over_the_limit_is_refused_naming_the_limit_and_the_next_one_works(demo, photo, monkeypatch):
    monkeypatch.setattr("course_lib.demo.MAX_UPLOAD_MB", 0.001)  # 1,000 bytes, so that the test file stays small
    before = demo.image.value
    upload(demo, "huge.png", png(photo))
    assert "Could not use this upload" in demo.message.value and "up to 0.001 MB" in demo.message.value
    assert demo.image.value == before and demo.upload.value == ()
    monkeypatch.setattr("course_lib.demo.MAX_UPLOAD_MB", 40)
    upload(demo, "small.png", png(photo))
    assert demo.image.value.startswith("small.png (upload)") and "Could not" not in demo.message.value


def test_the_upload_button_shows_its_label_without_the_file_count(demo):
    # ipywidgets 8 writes "<description> (<number of files>)" on the button and cannot leave the count out: the
    # style sheet hides the button's own text and draws its tooltip instead, so the tooltip must be the label.
    assert demo.upload.tooltip == demo.upload.description == "Upload your image (≤ 40 MB)"
    assert "demo-upload" in demo.upload._dom_classes
    assert ".demo-upload { font-size: 0 !important; }" in STYLESHEET and "content: attr(title)" in STYLESHEET
    assert demo.widget.children[0].value == STYLESHEET


def test_a_demo_built_on_an_array_offers_it_first_in_the_picker(photo):
    demo = widgets.build_demo(photo, codec="jpeg420", level=30, max_side=64, panel_width=64)
    assert demo.image.options[0][0] == "your image" and demo.image.value == demo.image.options[0][1]
    assert demo.result.original.shape == (48, 64, 3)  # 96 x 128, downscaled to max_side
    assert demo.result.codec == "jpeg420" and demo.result.quality == 30
