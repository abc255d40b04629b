"""Serve the slider demo with Voilà and take a screenshot of it in headless Chromium.

    python benchmarks/demo_screenshot.py [--out docs/img/slider_demo.png] [--image kodim23.png]

The same machinery drives the browser test (``tests/test_browser.py`` imports
:func:`voila_server`, :func:`chromium_page` and :func:`wait_for_demo` from
here): Voilà on a free port of 127.0.0.1 in a subprocess, killed on exit;
Debian's ``/usr/bin/chromium`` through Playwright, with a fresh profile.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "apps" / "slider_demo.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


#: Server settings of ``make demo`` (keep the two in step): a kernel without a connection for 10 minutes is shut
#: down (a closed tab or a reload no longer leaves a 1 GB kernel behind), and messages up to 100 MiB are accepted
#: (Tornado's default of 10 MiB closed the connection on a phone photo; the demo itself refuses files above
#: course_lib.widgets.MAX_UPLOAD_MB with a message). The page uses apps/jupyter/voila/templates/course, Voilà's
#: lab template without its Font Awesome stylesheets from cdn.jsdelivr.net (Voilà's bundle serves Font Awesome
#: itself) and with a check in the page that refuses an upload over ``upload_limit_mb`` (MAX_UPLOAD_MB) before it
#: is sent: Voilà finds it through JUPYTER_PATH (:func:`voila_env`).
VOILA_ARGS = ["--template=course", '--VoilaConfiguration.resources={"upload_limit_mb": 40}',
              "--MappingKernelManager.cull_idle_timeout=600", "--MappingKernelManager.cull_interval=60",
              "--MappingKernelManager.cull_connected=False",
              '--Voila.tornado_settings={"websocket_max_message_size": 104857600}']
TEMPLATES = ROOT / "apps" / "jupyter"


def voila_env(env: dict | None = None) -> dict:
    """The environment Voilà runs in: ours, plus ``env``, with apps/jupyter first on JUPYTER_PATH."""
    merged = {**os.environ, **(env or {})}
    merged["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(TEMPLATES), merged.get("JUPYTER_PATH")) if p)
    return merged


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def voila_server(notebook: Path = APP, env: dict | None = None, startup_s: float = 60.0):
    """Run Voilà on ``notebook`` at a free localhost port; yields the page's URL. Always stops it.

    Voilà runs in its own process group, so that its kernel goes with it.
    """
    port = free_port()
    log = tempfile.TemporaryFile()
    voila = Path(sys.executable).with_name("voila")
    process = subprocess.Popen(
        [str(voila), str(notebook), f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1", *VOILA_ARGS],
        cwd=ROOT, env=voila_env(env), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"voila exited with {process.returncode}:\n{log.read().decode()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"voila did not listen on port {port} within {startup_s:.0f} s")
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@contextlib.contextmanager
def chromium_page(playwright, width: int = 1320, height: int = 1000):
    """A page of headless Debian Chromium with a fresh, temporary profile."""
    profile = tempfile.mkdtemp(prefix="slider-demo-chromium-")
    context = playwright.chromium.launch_persistent_context(
        profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        viewport={"width": width, "height": height})
    try:
        yield context.pages[0] if context.pages else context.new_page()
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for_demo(page, url: str, timeout_s: float = 120.0) -> None:
    """Open the demo and wait until its pictures, readout and RD plot are drawn."""
    page.goto(url, timeout=timeout_s * 1000)
    page.wait_for_function(
        """() => {
            const demo = document.querySelector('.course-slider-demo');
            if (!demo) return false;
            const pictures = [...demo.querySelectorAll('img')];
            return pictures.length >= 7 && pictures.every(p => p.complete && p.naturalWidth > 0)
                && demo.querySelector('.bpp') !== null;
        }""", timeout=timeout_s * 1000)


def refresh_count(page) -> int:
    """How many redraws the demo has finished (a hidden number in its readout)."""
    return int(page.locator(".course-slider-demo .refresh-count").inner_text() or 0)


def wait_for_refresh(page, after: int, timeout_s: float = 120.0) -> None:
    """Wait until the kernel has finished a redraw that started after the count was ``after``."""
    page.wait_for_function(
        """(after) => {
            const count = document.querySelector('.course-slider-demo .refresh-count');
            return count && Number(count.textContent) > after;
        }""", arg=after, timeout=timeout_s * 1000)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img" / "slider_demo.png"))
    parser.add_argument("--image", default=None,
                        help="a course photo name or a Kodak file name (kodim23.png); default: the demo's first")
    parser.add_argument("--codec", default=None, help="a codec name of course_lib.widgets.CODECS")
    parser.add_argument("--match", action="store_true", help="tick 'match the learned codec's size'")
    parser.add_argument("--level", type=float, default=None, help="slider value to show")
    parser.add_argument("--zoom", type=float, nargs=2, metavar=("X", "Y"), default=None,
                        help="zoom position as fractions of the width and height (from the top left)")
    parser.add_argument("--compare", action="store_true",
                        help="compare mode: the reference learned codec against --codec (default JPEG) at the same "
                             "file size, --level being the reference codec's rate")
    parser.add_argument("--split", type=float, default=None, help="compare mode: the wipe's position (0-1)")
    parser.add_argument("--size", default="1320x1000", help="browser window WIDTHxHEIGHT (default 1320x1000)")
    parser.add_argument("--page", action="store_true", help="shoot the whole page, not only the demo")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from course_lib.widgets import CODEC_LABELS, kodak_names

    width, height = (int(v) for v in args.size.lower().split("x"))
    with voila_server() as url, sync_playwright() as playwright, \
            chromium_page(playwright, width=width, height=height) as page:
        wait_for_demo(page, url)
        demo = page.locator(".course-slider-demo")
        selects = demo.locator("select")

        def change(action):
            if action is None:  # the control shows that value already: nothing to wait for
                return
            count = refresh_count(page)
            action()
            wait_for_refresh(page, count)

        def choose(select, label):
            # ipywidgets writes the options' spaces as non-breaking ones
            if select.evaluate("s => s.options[s.selectedIndex].text.replace(/\\u00a0/g, ' ')") == label:
                return None
            return lambda: select.select_option(label=label)

        if args.image and args.image.startswith("kodim") and args.image not in kodak_names():
            print(f"Kodak not found: showing the demo's first image instead of {args.image}")
        elif args.image:
            label = (f"{args.image.removesuffix('.png')} (Kodak)" if args.image.startswith("kodim")
                     else f"{args.image} (course photo)")
            change(choose(selects.nth(0), label))
        if args.compare:
            change(lambda: demo.locator(".widget-toggle-buttons button", has_text="same file size").click())
            if args.codec:  # the menus in order: image, codec (hidden), left, right
                change(choose(selects.nth(3), CODEC_LABELS[args.codec]))
        elif args.codec:
            change(choose(selects.nth(1), CODEC_LABELS[args.codec]))
        if args.match and not args.compare:
            change(lambda: demo.locator(".widget-checkbox", has_text="match").locator("input").check())
        def type_into(slider, value):  # the slider's readout is editable
            readout = slider.locator(".widget-readout").inner_text()
            if float(readout) == float(f"{value:g}"):
                return None

            def action():
                slider.locator(".widget-readout").click()
                page.keyboard.press("Control+A")
                page.keyboard.type(f"{value:g}")
                page.keyboard.press("Enter")
                page.evaluate("document.activeElement.blur()")
            return action

        if args.level is not None:
            change(type_into(demo.locator(".level-slider"), args.level))
        if args.split is not None:
            change(type_into(demo.locator(".split-slider"), args.split))
        if args.zoom:
            zoom_x = demo.locator(".widget-hslider:not(.level-slider):not(.split-slider)").first
            change(type_into(zoom_x, args.zoom[0]))
            change(type_into(demo.locator(".widget-vslider").first, round(1 - args.zoom[1], 2)))  # bottom = 0
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        (page if args.page else demo).screenshot(path=str(out))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
