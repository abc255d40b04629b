"""Slide metadata for the notebooks, derived from their headings; re-run whenever a notebook changes.

    python tools/slides.py [notebooks/NN_name.ipynb ...]   # default: every notebook; rewrites only changed files
    python tools/slides.py --check                         # exit 1 if any notebook's slide metadata is stale

Each cell gets ``metadata.slideshow.slide_type``, which JupyterLab's property
inspector, the RISE / jupyterlab-rise extensions and ``jupyter nbconvert --to
slides`` (``make slides``) read. The rules, applied in order:

* the first cell (the title) and every markdown cell that starts with a ``#``
  or ``##`` heading start a new **slide**;
* a markdown cell that starts with a ``###`` (or deeper) heading starts a
  **subslide** (a vertical slide under the current one);
* the first code cell, the environment set-up every notebook starts with, is
  **skip**ped;
* a code cell right after a markdown cell is a **fragment**: it appears on
  the same (sub)slide as the text that introduces it, on the next click;
* a code cell right after another code cell, and a markdown cell without a
  heading right after a code cell, start a **subslide**, so that outputs and
  the text that reads them get room;
* anything else continues the current (sub)slide (``-``).

Only this metadata key is touched; sources and outputs are left as they are.
A script that regenerates notebooks (e.g. from jupytext sources, which drop
this metadata) should call :func:`set_slide_types` on each one afterwards.

Viewing the slides needs the internet: nbconvert's reveal.js pages load their
scripts and style sheets from CDNs (:data:`ONLINE_ASSETS`), and no installed
package ships reveal.js's style sheets or a stand-alone MathJax to point them
at. Offline, a slide file is one long page with raw TeX; project the notebooks
in JupyterLab instead (View > Appearance > Presentation Mode), which needs
nothing from the network. ``tests/test_slides.py`` checks that the converted
slides ask for exactly these hosts and that the README and the instructor
guide name them.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from student_copies import cell_source, read_notebook, write_notebook  # noqa: E402  (a sibling tool)

ROOT = Path(__file__).resolve().parent.parent
SLIDE_TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")

#: What the slides of ``make slides`` load from the internet when opened, by host (nbconvert 7's reveal template).
ONLINE_ASSETS = {
    "unpkg.com": "reveal.js (the slides themselves: offline, one long page)",
    "cdnjs.cloudflare.com": "MathJax (equations: offline, raw TeX), jQuery, require.js and mermaid",
}

# Where a page names what it loads: <script src>, <link href>, `import ... from '...'`, and the quoted URLs that
# the reveal template hands to require({...}, [...]).
_ASSET_PATTERNS = (r"""<script[^>]*\ssrc=["']([^"']+)""", r"""<link[^>]*\shref=["']([^"']+)""",
                   r"""\bimport\s+\w+\s+from\s+["']([^"']+)""")
_REQUIRE_LIST = r"require\(\s*\{[^}]*\},\s*\[([^\]]*)\]"


def asset_urls(html: str) -> set[str]:
    """The absolute http(s) URLs that a converted page loads (scripts, style sheets, modules), not its links."""
    found = {url for pattern in _ASSET_PATTERNS for url in re.findall(pattern, html)}
    for listed in re.findall(_REQUIRE_LIST, html):
        found.update(re.findall(r"""["']([^"']+)["']""", listed))
    return {url for url in found if url.startswith(("http://", "https://"))}


def online_hosts(html: str) -> set[str]:
    """The hosts a converted page needs the internet for."""
    return {urlparse(url).hostname for url in asset_urls(html)}


def _heading_level(cell) -> int:
    """1 for '# ...', 2 for '## ...', 3+ for deeper headings; 0 if the markdown cell does not start with one."""
    if cell["cell_type"] != "markdown":
        return 0
    first = cell_source(cell).lstrip("\n").split("\n", 1)[0]
    level = len(first) - len(first.lstrip("#"))
    return level if level and first[level:level + 1] == " " else 0


def slide_types(cells) -> list[str]:
    """The slide type of every cell, by the rules of the module docstring."""
    types = []
    first_code = next((i for i, cell in enumerate(cells) if cell["cell_type"] == "code"), None)
    for index, cell in enumerate(cells):
        previous = cells[index - 1]["cell_type"] if index else None
        level = _heading_level(cell)
        if index == 0 or level in (1, 2):
            kind = "slide"
        elif level >= 3:
            kind = "subslide"
        elif index == first_code:
            kind = "skip"
        elif cell["cell_type"] == "code":
            kind = "fragment" if previous == "markdown" else "subslide"
        elif previous == "code":
            kind = "subslide"
        else:
            kind = "-"
        types.append(kind)
    return types


def set_slide_types(notebook: dict) -> bool:
    """Set every cell's slideshow metadata in place; True if anything changed."""
    changed = False
    for cell, kind in zip(notebook["cells"], slide_types(notebook["cells"])):
        metadata = cell.setdefault("metadata", {})
        wanted = {"slide_type": kind}
        if metadata.get("slideshow") != wanted or list(metadata)[-1] != "slideshow":
            # Always the last key, so that the file does not depend on the order of earlier runs.
            metadata.pop("slideshow", None)
            metadata["slideshow"] = wanted
            changed = True
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="default: notebooks/*.ipynb")
    parser.add_argument("--check", action="store_true", help="report stale notebooks instead of fixing them")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    stale = []
    for path in paths:
        notebook = read_notebook(path)
        if not set_slide_types(notebook):
            continue
        stale.append(path.name)
        if not args.check:
            write_notebook(notebook, path)
    if args.check and stale:
        print("slide metadata missing or stale (run python tools/slides.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    print(("stale: " if args.check else "updated: ") + (", ".join(stale) or "none"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
