"""The slider demo in a real browser: Voilà serves it, headless Chromium (Playwright) moves the slider.

Skips, saying why, where Debian's Chromium (/usr/bin/chromium), the ``playwright``
package or Voilà is missing; ``.ci/run`` installs Chromium so that CI runs it.
The Voilà server is always stopped, with its kernel (see benchmarks/demo_screenshot.py).
"""

import sys
from pathlib import Path

import pytest
from PIL import Image

from course_lib.data import course_photo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from demo_screenshot import (CHROMIUM, chromium_page, refresh_count, voila_server, wait_for_demo,  # noqa: E402
                             wait_for_refresh)

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


def test_moving_the_slider_redraws_the_picture_the_readout_and_the_plot(tmp_path):
    # Fast mode: the demo shows 256-pixel pictures, so that every first visit is quick.
    with voila_server(env={"COURSE_FAST": "1"}) as url, playwright_api.sync_playwright() as playwright, \
            chromium_page(playwright) as page:
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
