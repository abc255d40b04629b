"""Student copies (tools/student_copies.py, ``make student``).

Every notebook: its solution markers are well formed, and its copy keeps every cell but the solutions, which become
``raise NotImplementedError``, with no outputs. Executed in a kernel (fast mode): the copy runs up to its first
exercise, the exercise raises NotImplementedError, and the self-check after it fails on an empty answer and passes
on the solution.

Every notebook already runs top to bottom with its solutions under nbval, so executing copies is only about the
exercise protocol; it is the slow part. By default it runs for notebook 00 only; set
``COURSE_STUDENT_NOTEBOOKS=all`` (every notebook with exercises, several minutes) or a comma-separated list of
number prefixes (``COURSE_STUDENT_NOTEBOOKS=00,10,11``).
"""

import ast
import importlib.util
import json
import os
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("student_copies", ROOT / "tools" / "student_copies.py")
student_copies = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student_copies)
BEGIN, END, STUB = student_copies.BEGIN, student_copies.END, student_copies.STUB
source_of = student_copies.cell_source

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def has_exercises(path):
    return any(BEGIN in source_of(cell) for cell in student_copies.read_notebook(path)["cells"])


WITH_EXERCISES = [path for path in NOTEBOOKS if has_exercises(path)]
_selected = os.environ.get("COURSE_STUDENT_NOTEBOOKS", "00")
EXECUTED = [path for path in WITH_EXERCISES
            if _selected == "all" or path.name.split("_")[0] in _selected.split(",")]


def test_the_course_has_exercises():
    assert len(WITH_EXERCISES) >= 10


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markers_are_well_formed(path):
    assert student_copies.check_notebook(student_copies.read_notebook(path)) == []


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.stem)
def test_copy_has_no_solution_and_no_outputs(path):
    original = student_copies.read_notebook(path)
    copy = student_copies.student_notebook(original)
    assert len(copy["cells"]) == len(original["cells"])
    for before, after in zip(original["cells"], copy["cells"]):
        old, new = source_of(before), source_of(after)
        if BEGIN in old:
            regions = student_copies.solution_regions(old)
            lines = old.split("\n")
            solution = {line.strip() for start, end in regions for line in lines[start + 1:end] if line.strip()}
            assert "SOLUTION" not in new
            assert new.count(STUB) == len(regions)
            assert not solution & {line.strip() for line in new.split("\n")}, "solution text left in the copy"
            ast.parse(new)  # still valid Python
        else:
            assert new == old and after["metadata"] == before["metadata"]
        if after["cell_type"] == "code":
            assert after["outputs"] == [] and after["execution_count"] is None


def notebook_of(*cells):
    return {"cells": [{"cell_type": kind, "metadata": {}, "source": source, "outputs": [], "execution_count": None}
                      if kind == "code" else {"cell_type": kind, "metadata": {}, "source": source}
                      for kind, source in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_stub_keeps_the_indentation_of_the_marker():
    exercise = f"def area(r):\n    {BEGIN}\n    return 3.14159 * r * r\n    {END}\n\nx = 1"
    stripped = student_copies.strip_solutions(exercise)
    assert stripped == f'def area(r):\n    {STUB}\n\nx = 1'
    namespace = {}
    exec(stripped, namespace)  # the cell itself runs; calling the function raises
    with pytest.raises(NotImplementedError):
        namespace["area"](2)


@pytest.mark.parametrize("source, message", [
    (f"{BEGIN}\nx = 1\n{BEGIN}\nx = 2\n{END}", "inside the region"),
    (f"x = 1\n{END}", "without BEGIN"),
    (f"{BEGIN}\nx = 1", "never closed"),
    (f"def f():\n    {BEGIN}\n    return 1\n{END}", "indented differently"),
    (f"{BEGIN}\n\n{END}", "empty solution"),
    (f"x = 1  {BEGIN}\nx = 2\n{END}", "stand alone"),
])
def test_malformed_markers_are_reported(source, message):
    problems = student_copies.check_notebook(notebook_of(("code", source), ("code", "assert x")))
    assert len(problems) == 1 and message in problems[0]


def test_exercises_need_a_code_cell_after_them():
    good = notebook_of(("code", f"{BEGIN}\nx = 1\n{END}"), ("code", "assert x == 1"))
    assert student_copies.check_notebook(good) == []
    for bad in (notebook_of(("code", f"{BEGIN}\nx = 1\n{END}")),
                notebook_of(("code", f"{BEGIN}\nx = 1\n{END}"), ("markdown", "text")),
                notebook_of(("markdown", f"{BEGIN}\nx = 1\n{END}"), ("code", "assert x"))):
        assert student_copies.check_notebook(bad), bad
    with pytest.raises(student_copies.MarkerError):
        student_copies.student_notebook(notebook_of(("code", f"{BEGIN}\nx = 1")))


def test_command_line_writes_the_copies(tmp_path):
    path = WITH_EXERCISES[0]
    assert student_copies.main(["--out", str(tmp_path), str(path)]) == 0
    written = json.loads((tmp_path / path.name).read_text(encoding="utf-8"))
    assert written == student_copies.student_notebook(student_copies.read_notebook(path))
    assert student_copies.main(["--check", str(path)]) == 0


# --------------------------------------------------------------------------- executed in a kernel
def empty_answer(solution: str, indent: str) -> str:
    """The solution's definitions kept but empty: names bound to None, functions that return None, empty classes.

    Statements that do work instead of defining an answer (calls, loops) are dropped. Inside a function body
    (``indent`` not empty) the empty answer is ``return None``.
    """
    if indent:
        return indent + "return None"
    lines = []
    for node in ast.parse(textwrap.dedent(solution)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines.append(f"def {node.name}(*args, **kwargs):\n    return None")
        elif isinstance(node, ast.ClassDef):
            lines.append(f"class {node.name}:\n    pass")
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)]
            lines += [f"{name} = None" for name in names]
    return "\n".join(lines) or "pass"


def with_region_replaced(source: str, replacement) -> str:
    """``source`` with its (first) solution region replaced by ``replacement(solution, indent)``."""
    lines = source.split("\n")
    start, end = student_copies.solution_regions(source)[0]
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    return "\n".join(lines[:start] + [replacement("\n".join(lines[start + 1:end]), indent)] + lines[end + 1:])


def test_empty_answer_keeps_names_and_drops_work():
    solution = "class Net:\n    x = 1\n\n\nmine = Net()\nmine.build()\nfor k in range(3):\n    pass\na, b = 1, 2"
    assert empty_answer(solution, "") == "class Net:\n    pass\nmine = None\na = None\nb = None"
    assert empty_answer("    return 42", "    ") == "    return None"


@pytest.mark.slow
@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: p.stem)
def test_student_copy_runs_to_the_first_exercise(path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("COURSE_FAST", "1")  # the kernel inherits the environment
    original = student_copies.read_notebook(path)
    notebook = nbformat.from_dict(student_copies.student_notebook(original))
    for cell in notebook.cells:
        cell.source = source_of(cell)                     # nbclient wants one string per cell, as nbformat.read gives
    exercise = next(i for i, cell in enumerate(notebook.cells) if STUB in cell.source)
    self_check = exercise + 1
    solution_source = source_of(original["cells"][exercise])
    begin_line = solution_source.split("\n")[student_copies.solution_regions(solution_source)[0][0]]
    in_function = begin_line[:1].isspace()                # the solution is a function body
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})

    def run(index, source=None):
        if source is not None:
            notebook.cells[index].source = source
        client.execute_cell(notebook.cells[index], index)

    with client.setup_kernel():
        for index in range(exercise):
            run(index)                                   # everything before the first exercise runs
        if in_function:                                  # the stub sits in a function: calling it raises
            run(exercise)
            with pytest.raises(CellExecutionError) as raised:
                run(self_check)
        else:
            with pytest.raises(CellExecutionError) as raised:
                run(exercise)
        assert raised.value.ename == "NotImplementedError"
        run(exercise, with_region_replaced(solution_source, empty_answer))
        with pytest.raises(CellExecutionError):
            run(self_check)                              # an empty answer must not pass the self-check
        run(exercise, solution_source)
        run(self_check)                                  # the solution passes
