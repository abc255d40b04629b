"""The slider demo in a real browser: Voilà serves it, headless Chromium (Playwright) moves the slider.

Skips, saying why, where Debian's Chromium (/usr/bin/chromium), the ``playwright``
package or Voilà is missing; ``.ci/run`` installs Chromium so that CI runs it.
The Voilà server is always stopped, with its kernel (see benchmarks/demo_screenshot.py).
"""

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from course_lib.data import course_photo
from course_lib.demo import MAX_UPLOAD_MB

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from demo_screenshot import (CHROMIUM, VOILA_ARGS, chromium_page, refresh_count, voila_server,  # noqa: E402
                             wait_for_demo, wait_for_refresh)

if not CHROMIUM.exists():
    pytest.skip(f"Chromium not found at {CHROMIUM} (Debian: apt-get install chromium)", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not Path(sys.executable).with_name("voila").exists():
    pytest.skip("voila is not installed in this environment", allow_module_level=True)


def shown(page) -> tuple[str, str, str]:
    """The bpp readout and the sources of the reconstruction and the RD plot."""
    return (page.locator(".course-slider-demo .bpp").inner_text(),
            page.locator(".course-slider-demo .reconstruction-picture").get_attribute("src"),
            page.locator(".course-slider-demo .rd-plot").get_attribute("src"))


def choose_file(page, path):
    """Click the demo's upload button and pick a file in the browser's file dialog."""
    with page.expect_file_chooser() as chooser:
        page.locator(".course-slider-demo .widget-upload").click()
    chooser.value.set_files(str(path))


@pytest.fixture(scope="module")
def demo_url():
    """One Voilà server for the module (each page gets its own kernel). Fast mode: the demo shows 256-pixel
    pictures, so that every first visit is quick."""
    with voila_server(env={"COURSE_FAST": "1"}) as url:
        yield url


def idle(page) -> None:
    """Wait until the demo is not computing (its status has no busy spinner)."""
    page.wait_for_function("() => document.querySelector('.course-slider-demo .demo-status') &&"
                           " !document.querySelector('.course-slider-demo .demo-status.busy')", timeout=120_000)


def test_moving_the_slider_redraws_the_picture_the_readout_and_the_plot(tmp_path, demo_url):
    url = demo_url
    with playwright_api.sync_playwright() as playwright, chromium_page(playwright) as page:
        page_errors = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        wait_for_demo(page, url)
        handle = page.locator(".course-slider-demo .level-slider .noUi-handle")
        start = shown(page)

        count = refresh_count(page)  # keyboard: one step to the right, a higher rate
        handle.focus()
        page.keyboard.press("ArrowRight")
        wait_for_refresh(page, count)
        right = shown(page)
        assert page.locator(".level-slider .widget-readout").inner_text() == "2.1"
        assert float(right[0]) > float(start[0]), (start[0], right[0])
        assert right[1] != start[1] and right[2] != start[2]  # a new picture, and the point moved

        count = refresh_count(page)  # mouse: drag the handle to the left end, the lowest rate
        box = handle.bounding_box()
        track = page.locator(".course-slider-demo .level-slider .noUi-base").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(track["x"] - 20, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
        wait_for_refresh(page, count)
        left = shown(page)
        assert page.locator(".level-slider .widget-readout").inner_text() == "0.0"
        assert float(left[0]) < float(start[0]) and left[1] != start[1]

        # An upload travels through the browser as binary: a photo joins the picker, a text file gives a message.
        photo, not_a_photo = tmp_path / "mine.png", tmp_path / "notes.png"
        Image.fromarray(course_photo("coffee")[100:260, 200:440]).save(photo)
        not_a_photo.write_text("these are my notes, not a picture")
        count = refresh_count(page)
        choose_file(page, photo)
        wait_for_refresh(page, count)
        picker = page.locator(".course-slider-demo select").first
        assert picker.input_value() == "mine.png (upload)"
        assert "240×160" in page.locator(".course-slider-demo").inner_text()
        choose_file(page, not_a_photo)
        page.wait_for_function("() => document.body.innerText.includes('Could not use this upload')")
        assert picker.input_value() == "mine.png (upload)"

        text = page.locator("body").inner_text()
        assert "Error displaying widget" not in text
        assert "Something went wrong" not in text and "Traceback" not in text
        assert not page_errors, page_errors


def test_codec_switch_then_end_a_burst_of_inputs_and_compare_mode_at_equal_size(demo_url):
    with playwright_api.sync_playwright() as playwright, chromium_page(playwright) as page:
        page_errors, requests = [], []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.on("request", lambda request: requests.append(request.url))
        wait_for_demo(page, demo_url)
        demo = page.locator(".course-slider-demo")
        title = demo.locator(".widget-html").filter(has_text="JPEG 4:2:0")

        # A codec switch, then End: the whole new range (quality 100), not the first codec's end.
        count = refresh_count(page)
        demo.locator("select").nth(1).select_option(label="JPEG 4:2:0")
        wait_for_refresh(page, count)
        count = refresh_count(page)
        demo.locator(".level-slider .noUi-handle").focus()
        page.keyboard.press("End")
        wait_for_refresh(page, count)
        assert demo.locator(".level-slider .widget-readout").inner_text() == "100"
        assert "quality 100" in title.first.inner_text()

        # A burst of seven inputs settles on the last one, and the status is busy meanwhile.
        for _ in range(7):
            page.keyboard.press("ArrowLeft")
        # The status can read idle before the kernel has seen the first key press (under load it did), so wait
        # for the last input's picture, then for the kernel to finish: nothing older may replace it.
        page.wait_for_function("() => [...document.querySelectorAll('.course-slider-demo .widget-html')]"
                               ".some(e => e.innerText.includes('quality 93'))", timeout=120_000)
        idle(page)
        assert demo.locator(".level-slider .widget-readout").inner_text() == "93"
        assert "quality 93" in title.first.inner_text()

        # Compare mode: the learned codec and JPEG, both files no larger than the target.
        count = refresh_count(page)
        demo.locator(".widget-toggle-buttons button", has_text="same file size").click()
        wait_for_refresh(page, count)
        idle(page)

        def number(name):
            return int(demo.locator(f".{name}").first.inner_text().replace(",", ""))

        target, left, right = number("target-bytes"), number("left-bytes"), number("right-bytes")
        assert left <= target and right <= target and right > 0.8 * target, (target, left, right)
        text = demo.inner_text()
        assert "learned (hyperprior)" in text and "JPEG 4:2:0" in text and "wipe" in text
        wipe = demo.locator(".reconstruction-picture").get_attribute("src")
        count = refresh_count(page)
        split = demo.locator(".split-slider")
        split.locator(".widget-readout").click()
        page.keyboard.press("Control+A")
        page.keyboard.type("0.2")
        page.keyboard.press("Enter")
        wait_for_refresh(page, count)
        assert demo.locator(".reconstruction-picture").get_attribute("src") != wipe

        body = page.locator("body").inner_text()
        assert "Error displaying widget" not in body and "Something went wrong" not in body
        assert not page_errors, page_errors
        # Nothing but the local server (and inline data) is asked for: the course template drops Voilà's Font
        # Awesome stylesheets from a CDN, and the upload button's icon is still drawn with Font Awesome, which
        # Voilà's own bundle serves from the local server.
        outside = [u for u in requests if not u.startswith((demo_url, "data:", "blob:"))]
        assert not outside, outside
        assert page.evaluate("() => [...document.fonts].some(f => f.family.includes('Font Awesome')"
                             " && f.status === 'loaded')")
        icon = demo.locator(".widget-upload i")
        assert icon.evaluate("i => getComputedStyle(i).fontFamily").strip('"').startswith("Font Awesome")
        assert icon.bounding_box()["width"] > 0


def test_make_demo_and_the_tests_serve_the_demo_alike():
    """The Makefile's demo recipe passes every Voilà setting the tests use, and the page's upload limit is the
    demo's (course_lib.demo.MAX_UPLOAD_MB)."""
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    recipe = " ".join(recipe.replace("\\\n", " ").split())
    missing = [arg for arg in VOILA_ARGS if arg not in recipe and f"'{arg}'" not in recipe]
    assert not missing, missing
    resources = next(arg for arg in VOILA_ARGS if arg.startswith("--VoilaConfiguration.resources="))
    assert json.loads(resources.split("=", 1)[1]) == {"upload_limit_mb": MAX_UPLOAD_MB}


def test_an_upload_over_the_limit_gets_a_message_and_the_next_upload_still_works(tmp_path, demo_url):
    """The class-breaking case of issue 17: a big file used to drop the connection, and every later upload failed
    until a reload. A file larger than the server's message limit (100 MiB) is refused in the page, at once, with
    the message naming the demo's limit, and the next upload is shown. (Had the file been sent, the connection
    would have dropped and the second upload would never show.)"""
    big, small = tmp_path / "huge.jpg", tmp_path / "small.png"
    big_mb = 150  # > 104,857,600 bytes, make demo's websocket_max_message_size
    with big.open("wb") as f:  # the size is all that matters: it is refused before anything reads it
        f.truncate(big_mb * 1_000_000)
    Image.fromarray(course_photo("coffee")[:120, :200]).save(small)
    with playwright_api.sync_playwright() as playwright, chromium_page(playwright) as page:
        page_errors = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        wait_for_demo(page, demo_url)
        demo = page.locator(".course-slider-demo")
        picker = demo.locator("select").first
        first = picker.input_value()

        choose_file(page, big)
        page.wait_for_function("(text) => document.querySelector('.course-slider-demo').innerText.includes(text)",
                               arg=f"huge.jpg has {big_mb} MB; the demo takes files up to {MAX_UPLOAD_MB} MB",
                               timeout=30_000)
        assert picker.input_value() == first

        count = refresh_count(page)
        choose_file(page, small)
        wait_for_refresh(page, count)
        assert picker.input_value() == "small.png (upload)"
        assert "200×120" in demo.inner_text()
        idle(page)
        assert "huge.jpg" not in demo.inner_text()  # the message went with the next picture
        body = page.locator("body").inner_text()
        assert "Connection lost" not in body and "Something went wrong" not in body
        assert not page_errors, page_errors
