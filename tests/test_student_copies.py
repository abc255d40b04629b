"""Student copies (tools/student_copies.py, ``make student``).

Every notebook: its solution markers are well formed, and its copy keeps every cell but the solutions, which become
a ``raise NotImplementedError`` stub naming the answers, with no outputs. Every exercise: the self-check reads only
the exercise's answers, the prompt and the stub name each of them, and each is checked by a ``course_lib.checks``
helper called with its name.

Executing the copies is part of tests/test_notebooks.py, which runs every notebook anyway: there, each stub must
raise, each self-check must fail with a message naming the answer when that answer is wrong, and pass with the
solution.
"""

import ast
import importlib.util
import json
import re
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
            assert new.count("raise NotImplementedError(") == len(regions)
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
    assert stripped == 'def area(r):\n    raise NotImplementedError("write the body of area")\n\nx = 1'
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


# --------------------------------------------------------------------------- answers, stubs and self-checks
def exercises_of(path):
    """(exercise cell index, its source, its self-check's source, the prompt: the markdown cell above it)."""
    cells = student_copies.read_notebook(path)["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code" and BEGIN in source_of(cell):
            above = index - 1
            while cells[above]["cell_type"] != "markdown":
                above -= 1
            yield index, source_of(cell), source_of(cells[index + 1]), source_of(cells[above])


ALL_EXERCISES = [(path, index, exercise, check, prompt) for path in WITH_EXERCISES
                 for index, exercise, check, prompt in exercises_of(path)]
EXERCISE_IDS = [f"{path.stem[:2]}-cell{index}" for path, index, *_ in ALL_EXERCISES]


@pytest.mark.parametrize("path, index, exercise, check, prompt", ALL_EXERCISES, ids=EXERCISE_IDS)
def test_prompt_and_stub_name_every_answer(path, index, exercise, check, prompt):
    """The check reads only answers, and the prompt and the stub name each of them (in a `code span`)."""
    names = student_copies.answer_names(exercise, check)
    assert names, "the self-check reads nothing the solution defines"
    stub = student_copies.strip_solutions(exercise, check)
    spans = re.findall(r"`([^`]*)`", prompt)
    for name in names:
        assert name in stub, f"the stub does not name {name}"
        assert any(re.search(rf"\b{re.escape(name)}\b", span) for span in spans), f"the prompt does not name `{name}`"


@pytest.mark.parametrize("path, index, exercise, check, prompt", ALL_EXERCISES, ids=EXERCISE_IDS)
def test_every_answer_has_a_named_check(path, index, exercise, check, prompt):
    """Each answer is checked by a course_lib.checks helper called with its name (so failures name it)."""
    named = set()
    for node in ast.walk(ast.parse(check)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "").startswith("expect_") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                named.add(first.value)
            elif isinstance(first, ast.Name):  # a loop over (name, value) pairs: the names are string constants
                named |= {c.value for c in ast.walk(ast.parse(check)) if isinstance(c, ast.Constant)
                          and isinstance(c.value, str)}
    for name in student_copies.answer_names(exercise, check):
        assert name in named, f"no expect_*({name!r}, ...) in the self-check"
    assert "print(" not in check.split("passed(")[0] or "exercise" not in check, "use checks.passed to report success"


def test_answers_of_each_kind_of_solution():
    check = "expect_close('a', a + b + f(1) + Net + zigzag(2), 0)"
    assert student_copies.answers(f"{BEGIN}\na, b = 1, 2\nhelper = 3\n{END}", check) == \
        [([("a", "value"), ("b", "value")], False)]
    assert student_copies.answers(f"{BEGIN}\ndef f(x):\n    return x\n\n\nclass Net:\n    pass\n{END}", check) == \
        [([("f", "function"), ("Net", "class")], False)]
    assert student_copies.answers(f"def zigzag(n):\n    {BEGIN}\n    return n\n    {END}", check) == \
        [([("zigzag", "function")], True)]
    # The check's own names do not count: it defines `c` before reading it.
    assert student_copies.answer_names(f"{BEGIN}\nc = 1\nd = 2\n{END}", "c = 0\nexpect_close('d', d + c, 2)") == ["d"]


def test_stubs_name_the_answers():
    exercise = f"given = 1\n\n{BEGIN}\nanswer_bpp = 8\nanswer_ratio = 3\nscratch = 0\n{END}"
    check = "expect_close('answer_bpp', answer_bpp, 1)\nexpect_close('answer_ratio', answer_ratio, 1)"
    assert student_copies.strip_solutions(exercise, check) == \
        'given = 1\n\nraise NotImplementedError("define answer_bpp and answer_ratio")'
    function = f"def zigzag(n=8):\n    {BEGIN}\n    return n\n    {END}"
    assert student_copies.strip_solutions(function, "zigzag(8)") == \
        'def zigzag(n=8):\n    raise NotImplementedError("write the body of zigzag")'
    classes = f"{BEGIN}\nclass Net:\n    pass\n\n\ndef f():\n    pass\n{END}"
    assert student_copies.strip_solutions(classes, "Net, f") == 'raise NotImplementedError("define class Net and f(...)")'
