"""Slides: every notebook carries slide metadata from tools/slides.py, and a notebook converts to reveal.js slides."""

import copy
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("slides", ROOT / "tools" / "slides.py")
slides = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(slides)

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def read(path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_has_current_slide_metadata(path):
    notebook = read(path)
    kinds = [cell.get("metadata", {}).get("slideshow", {}).get("slide_type") for cell in notebook["cells"]]
    assert all(kind in slides.SLIDE_TYPES for kind in kinds), "run: python tools/slides.py"
    assert kinds[0] == "slide"
    assert not slides.set_slide_types(copy.deepcopy(notebook)), "slide metadata is stale: python tools/slides.py"


def cell(kind, source):
    return {"cell_type": kind, "metadata": {}, "source": source}


def test_rules():
    cells = [cell("markdown", "# Title\n\ntext"), cell("code", "import os"), cell("markdown", "## Part\ntext"),
             cell("code", "x = 1"), cell("code", "print(x)"), cell("markdown", "How to read it."),
             cell("markdown", "More text."), cell("markdown", "#hashtag is not a heading"),
             cell("markdown", "### Detail"), cell("code", "y = 2")]
    assert slides.slide_types(cells) == ["slide", "skip", "slide", "fragment", "subslide", "subslide", "-", "-",
                                         "subslide", "fragment"]


def test_only_the_slideshow_key_changes_and_it_is_idempotent():
    notebook = {"cells": [cell("markdown", "# Title"), {**cell("code", "x = 1"), "outputs": [],
                                                         "execution_count": None,
                                                         "metadata": {"lines_to_next_cell": 2}}]}
    before = copy.deepcopy(notebook)
    assert slides.set_slide_types(notebook)
    assert notebook["cells"][1]["metadata"] == {"lines_to_next_cell": 2, "slideshow": {"slide_type": "skip"}}
    for old, new in zip(before["cells"], notebook["cells"]):
        assert {k: v for k, v in new.items() if k != "metadata"} == {k: v for k, v in old.items() if k != "metadata"}
    assert not slides.set_slide_types(notebook)


@pytest.fixture(scope="module")
def converted():
    """The first notebook and its slides, converted as `make slides` does (without executing)."""
    import nbformat
    from nbconvert import SlidesExporter

    notebook = nbformat.read(NOTEBOOKS[0], as_version=4)
    html, _ = SlidesExporter(reveal_scroll=True).from_notebook_node(notebook)
    return notebook, html


def test_a_notebook_converts_to_slides(converted):
    notebook, html = converted
    slide_cells = sum(c.metadata["slideshow"]["slide_type"] == "slide" for c in notebook.cells)
    assert html.count("<section") >= slide_cells > 1
    title = notebook.cells[0].source.split("\n")[0].lstrip("# ").strip()
    assert title.split()[0] in html
    # The skipped set-up cell does not appear on any slide.
    skipped = next(c for c in notebook.cells if c.metadata["slideshow"]["slide_type"] == "skip")
    assert "TF_CPP_MIN_LOG_LEVEL" in skipped.source and "TF_CPP_MIN_LOG_LEVEL" not in html


def test_asset_urls_are_what_a_page_loads_not_what_it_links_to():
    html = """<link rel="stylesheet" href="https://a.example/x.css"><script src="https://b.example/y.js"></script>
    <script src="local.js"></script><a href="https://c.example/paper">a paper</a> see https://d.example/in-text
    <script type="module">import mermaid from 'https://e.example/m.mjs';</script>
    <script>require({ waitSeconds: 15 }, ["https://f.example/dist/reveal.js", "https://f.example/notes.js"],
    function () {});</script>"""
    assert slides.asset_urls(html) == {"https://a.example/x.css", "https://b.example/y.js", "https://e.example/m.mjs",
                                       "https://f.example/dist/reveal.js", "https://f.example/notes.js"}
    assert slides.online_hosts(html) == {"a.example", "b.example", "e.example", "f.example"}


def test_the_slides_need_the_internet_for_the_hosts_the_docs_name(converted):
    """What the README and the instructor guide say about viewing the slides offline: the hosts they name are
    exactly those the converted slides load from, reveal.js's style sheet and MathJax among them."""
    _, html = converted
    urls = slides.asset_urls(html)
    assert slides.online_hosts(html) == set(slides.ONLINE_ASSETS), sorted(urls)
    assert any(url.endswith("/dist/reveal.css") for url in urls) and any("mathjax" in url for url in urls)
    for doc in (ROOT / "README.md", ROOT / "docs" / "instructor_guide.md"):
        text = " ".join(doc.read_text(encoding="utf-8").split())
        for host in slides.ONLINE_ASSETS:
            assert host in text, f"{doc.name} does not say that the slides load from {host}"
        assert "Presentation Mode" in text, f"{doc.name} does not give the offline alternative"
