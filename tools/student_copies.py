"""Student copies of the notebooks: solutions replaced by a stub, outputs removed.

    python tools/student_copies.py [--out student] [notebooks/NN_name.ipynb ...]   # default: every notebook
    python tools/student_copies.py --check                                         # markers only, exit 1 if bad

An exercise cell holds its solution between two marker lines::

    ### BEGIN SOLUTION
    answer = 42
    ### END SOLUTION

In the student copy the markers and everything between them become one line,
``raise NotImplementedError("your answer here")``, at the indentation of the
BEGIN marker (so a solution inside a function body stays inside the function).
Every code cell loses its outputs; everything else (markdown, self-check
cells, metadata) is copied unchanged. ``make student`` writes the copies to
``student/`` (git-ignored).

Markers are well formed when, in code cells only, each BEGIN line is followed
by an END line at the same indentation before the next BEGIN, each marker
stands alone on its line, a region is not empty, and the exercise cell is
followed by a code cell (its self-check).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = 'raise NotImplementedError("your answer here")'
ROOT = Path(__file__).resolve().parent.parent


class MarkerError(ValueError):
    """A solution marker is malformed; the message names the notebook cell and the line."""


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def solution_regions(source: str) -> list[tuple[int, int]]:
    """(BEGIN line, END line) index pairs of a cell's solution regions; MarkerError if malformed."""
    regions, start = [], None
    lines = source.split("\n")
    for number, line in enumerate(lines):
        text = line.strip()
        if BEGIN in text or END in text:
            if text not in (BEGIN, END):
                raise MarkerError(f"line {number + 1}: a marker must stand alone on its line: {line!r}")
            if text == BEGIN:
                if start is not None:
                    raise MarkerError(f"line {number + 1}: BEGIN SOLUTION inside the region opened on line {start + 1}")
                start = number
            else:
                if start is None:
                    raise MarkerError(f"line {number + 1}: END SOLUTION without BEGIN SOLUTION")
                if _indent(line) != _indent(lines[start]):
                    raise MarkerError(f"lines {start + 1} and {number + 1}: BEGIN and END are indented differently")
                if not any(lines[k].strip() for k in range(start + 1, number)):
                    raise MarkerError(f"lines {start + 1}-{number + 1}: empty solution")
                regions.append((start, number))
                start = None
    if start is not None:
        raise MarkerError(f"line {start + 1}: BEGIN SOLUTION is never closed")
    return regions


def cell_source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def check_notebook(notebook: dict) -> list[str]:
    """Problems with the solution markers of a notebook (empty list: well formed)."""
    problems = []
    cells = notebook["cells"]
    for index, cell in enumerate(cells):
        source = cell_source(cell)
        if BEGIN not in source and END not in source:
            continue
        if cell["cell_type"] != "code":
            problems.append(f"cell {index}: solution markers in a {cell['cell_type']} cell")
            continue
        try:
            solution_regions(source)
        except MarkerError as error:
            problems.append(f"cell {index}: {error}")
            continue
        following = cells[index + 1] if index + 1 < len(cells) else None
        if following is None or following["cell_type"] != "code":
            problems.append(f"cell {index}: an exercise cell must be followed by its self-check code cell")
    return problems


def strip_solutions(source: str) -> str:
    """The cell source with every solution region replaced by the indented stub."""
    lines = source.split("\n")
    for start, end in reversed(solution_regions(source)):
        lines[start:end + 1] = [_indent(lines[start]) + STUB]
    return "\n".join(lines)


def student_notebook(notebook: dict) -> dict:
    """A copy of ``notebook`` without solutions and without outputs."""
    problems = check_notebook(notebook)
    if problems:
        raise MarkerError("; ".join(problems))
    copied = copy.deepcopy(notebook)
    for cell in copied["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = cell_source(cell)
        if BEGIN in source:
            cell["source"] = strip_solutions(source).splitlines(keepends=True)
        cell["outputs"] = []
        cell["execution_count"] = None
    return copied


def read_notebook(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_notebook(notebook: dict, path) -> None:
    # The repository's formatting (indent 1, UTF-8 kept as is), so copies diff cleanly against the originals.
    Path(path).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="default: notebooks/*.ipynb")
    parser.add_argument("--out", default=str(ROOT / "student"), help="folder for the copies (default: student/)")
    parser.add_argument("--check", action="store_true", help="only check the markers")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    failed = False
    for path in paths:
        notebook = read_notebook(path)
        problems = check_notebook(notebook)
        exercises = sum(BEGIN in cell_source(cell) for cell in notebook["cells"])
        if problems:
            failed = True
            print(f"{path.name}: " + "; ".join(problems), file=sys.stderr)
            continue
        if args.check:
            print(f"{path.name}: {exercises} exercise cell(s), markers well formed")
            continue
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_notebook(student_notebook(notebook), out / path.name)
        print(f"{path.name}: {exercises} exercise cell(s) -> {out / path.name}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
