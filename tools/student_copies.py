"""Student copies of the notebooks: solutions replaced by a stub, outputs removed.

    python tools/student_copies.py [--out student] [notebooks/NN_name.ipynb ...]   # default: every notebook
    python tools/student_copies.py --check                                         # markers only, exit 1 if bad

An exercise cell holds its solution between two marker lines::

    ### BEGIN SOLUTION
    answer = 42
    ### END SOLUTION

In the student copy the markers and everything between them become one line
at the indentation of the BEGIN marker (so a solution inside a function body
stays inside the function) that names what the student must write::

    raise NotImplementedError("define answer_bpp and answer_ratio")
    raise NotImplementedError("write the body of zigzag")

The names are the exercise's **answers** (:func:`answer_names`): the names the
solution defines and its self-check (the next code cell) reads. The prompt in
the markdown above must name them too (tests/test_student_copies.py checks it).
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
import ast
import copy
import textwrap
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


def _bound_names(code: str) -> list[tuple[str, str]]:
    """(name, kind) of every name that top-level statements of ``code`` bind, in order; kind: function/class/value."""
    found = []
    for node in ast.parse(textwrap.dedent(code)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append((node.name, "function"))
        elif isinstance(node, ast.ClassDef):
            found.append((node.name, "class"))
        else:
            targets = {ast.Assign: lambda n: n.targets, ast.AnnAssign: lambda n: [n.target],
                       ast.AugAssign: lambda n: [n.target], ast.For: lambda n: [n.target],
                       ast.With: lambda n: [item.optional_vars for item in n.items if item.optional_vars]}
            for target in targets.get(type(node), lambda n: [])(node):
                found += [(name.id, "value") for name in ast.walk(target)
                          if isinstance(name, ast.Name) and isinstance(name.ctx, ast.Store)]
    unique = {}
    for name, kind in found:
        unique.setdefault(name, kind)
    return list(unique.items())


def read_names(source: str) -> set[str]:
    """Names that ``source`` (a self-check cell) reads without defining them itself."""
    tree = ast.parse(source)
    loaded = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    stored = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    stored |= {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    return loaded - stored


def _enclosing_function(source: str, line: int) -> str | None:
    """The innermost function of ``source`` whose body holds line ``line`` (0-based), or None."""
    best = None
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno <= line < node.end_lineno:
            if best is None or node.lineno > best.lineno:
                best = node
    return best.name if best else None


def answers(source: str, check_source: str | None = None) -> list[tuple[list[tuple[str, str]], bool]]:
    """For each solution region of an exercise cell: its answers [(name, kind)] and whether it is a function body.

    A region inside a function body answers with that function. A top-level region answers with the names it
    binds that ``check_source`` reads (all names it binds when no check is given or the check reads none).
    """
    lines = source.split("\n")
    result = []
    for start, end in solution_regions(source):
        function = _enclosing_function(source, start)
        if function is not None:
            result.append(([(function, "function")], True))
            continue
        bound = _bound_names("\n".join(lines[start + 1:end]))
        if check_source is not None:
            read = read_names(check_source)
            bound = [(name, kind) for name, kind in bound if name in read] or bound
        result.append((bound, False))
    return result


def answer_names(source: str, check_source: str | None = None) -> list[str]:
    """Every answer name of an exercise cell (see :func:`answers`), in order."""
    return [name for names, _ in answers(source, check_source) for name, _ in names]


def stub(names: list[tuple[str, str]], in_function: bool) -> str:
    """The line that replaces a solution: ``raise NotImplementedError("define x and y")``."""
    if in_function:
        return f'raise NotImplementedError("write the body of {names[0][0]}")'
    shown = [f"{name}(...)" if kind == "function" else f"class {name}" if kind == "class" else name
             for name, kind in names]
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return f'raise NotImplementedError("define {listed}")'


def strip_solutions(source: str, check_source: str | None = None) -> str:
    """The cell source with every solution region replaced by the indented stub that names its answers."""
    lines = source.split("\n")
    regions = solution_regions(source)
    found = answers(source, check_source)
    for (start, end), (names, in_function) in reversed(list(zip(regions, found))):
        lines[start:end + 1] = [_indent(lines[start]) + (stub(names, in_function) if names else STUB)]
    return "\n".join(lines)


def student_notebook(notebook: dict) -> dict:
    """A copy of ``notebook`` without solutions and without outputs."""
    problems = check_notebook(notebook)
    if problems:
        raise MarkerError("; ".join(problems))
    copied = copy.deepcopy(notebook)
    cells = copied["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = cell_source(cell)
        if BEGIN in source:
            check = cell_source(notebook["cells"][index + 1])
            cell["source"] = strip_solutions(source, check).splitlines(keepends=True)
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
