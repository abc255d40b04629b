"""Every notebook runs top to bottom in a fresh kernel, and every exercise's self-check is tested as it goes.

Mode: notebooks that train run in fast mode (``COURSE_FAST=1``: a few steps on tiny data), all others in full mode,
the mode students use (``TRAINING_NOTEBOOKS`` below), and without Kodak (``KODAK_DIR=off``), as in a student's
clone, unless ``KODAK_DIR`` or ``COURSE_NOTEBOOK_MODE`` is set. ``COURSE_NOTEBOOK_MODE=full`` runs every notebook in full
mode (``make test-full``), ``COURSE_NOTEBOOK_MODE=fast`` every one in fast mode. ``COURSE_NOTEBOOKS=00,05`` runs
only those notebooks. ``COURSE_NOTEBOOK_OUTPUTS=folder`` keeps the executed notebooks there (to look at the figures).

A failing cell fails the test with the cell's index, its first lines and the error. Cells check themselves with
asserts; outputs are not compared.

The exercise protocol runs on every exercise (a code cell with ``### BEGIN SOLUTION``, followed by its self-check):

1. the student copy's version of the cell (tools/student_copies.py) raises ``NotImplementedError`` naming every
   answer; for a solution inside a function body, the self-check then fails instead;
2. with the solution, the self-check passes;
3. for each answer the self-check reads (``student_copies.answer_names``), a wrong value is bound in its place
   (numbers x -> 1.5x + 1, integers x + 1, booleans negated, arrays, lists, tuples and dicts element by element,
   functions wrapped so that their results are wrong, any other object None): the self-check must raise
   ``CheckFailed`` with a message naming the answer;
4. with every answer restored, the self-check passes again.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
# Notebooks that train a network: fast mode in `make test` (in full mode each trains for 3 to 15 minutes).
TRAINING_NOTEBOOKS = {"02", "06", "07", "08"}

_spec = importlib.util.spec_from_file_location("student_copies", ROOT / "tools" / "student_copies.py")
student_copies = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student_copies)

_selected = os.environ.get("COURSE_NOTEBOOKS", "").strip()
SELECTED = [path for path in NOTEBOOKS if not _selected or path.name[:2] in _selected.split(",")]


def mode_of(path: Path) -> str:
    """"fast" or "full": COURSE_NOTEBOOK_MODE if set, else fast for the training notebooks only."""
    forced = os.environ.get("COURSE_NOTEBOOK_MODE", "").strip().lower()
    if forced in ("fast", "full"):
        return forced
    if forced:
        raise ValueError(f"COURSE_NOTEBOOK_MODE must be 'fast' or 'full', not {forced!r}")
    return "fast" if path.name[:2] in TRAINING_NOTEBOOKS else "full"


# Defined in the kernel once, before the first exercise: the wrong value that replaces an answer.
PERTURB = r'''
def _course_wrong(value):
    import types
    import numpy as np
    if isinstance(value, (bool, np.bool_)):
        return not value
    if isinstance(value, (int, np.integer)):
        return value + 1
    if isinstance(value, (float, np.floating)):
        wrong = 1.5 * value + 1
        return wrong if wrong != value else value + 1
    if isinstance(value, np.ndarray) or (hasattr(value, "numpy") and hasattr(value, "shape")):
        array = np.asarray(value)
        if array.dtype == bool:
            return ~array
        if np.issubdtype(array.dtype, np.number):
            return array + 1 if np.issubdtype(array.dtype, np.integer) else 1.5 * array + 1
        return None
    if isinstance(value, (list, tuple)):
        return type(value)(_course_wrong(item) for item in value)
    if isinstance(value, dict):
        return {key: _course_wrong(item) for key, item in value.items()}
    if isinstance(value, types.FunctionType):
        def wrong_function(*args, **kwargs):
            return _course_wrong(value(*args, **kwargs))
        return wrong_function
    return None
'''


def test_wrong_values_differ_from_every_kind_of_answer():
    import numpy as np

    namespace = {}
    exec(PERTURB, namespace)
    wrong = namespace["_course_wrong"]
    assert wrong(True) is False and wrong(3) == 4 and wrong(2.0) == 4.0 and wrong(-2.0) == -1.0
    assert wrong((1, 19)) == (2, 20) and wrong({"a": False}) == {"a": True} and wrong("text") is None
    assert np.array_equal(wrong(np.array([1, 2])), [2, 3]) and np.allclose(wrong(np.zeros(2)), 1)
    assert wrong(lambda x: 2 * x)(1) == 3 and wrong(type) is None


def test_training_notebooks_exist():
    assert TRAINING_NOTEBOOKS <= {path.name[:2] for path in NOTEBOOKS}


# What a cell must not print (issue 14, quiet outputs): raw terminal codes (Keras' verbose=1 progress bar writes
# them), NumPy 2 scalar reprs (a list or dict of np.float64 printed as such), and Python warnings.
NOISE = re.compile(r"\x1b\[|\bnp\.(?:float|int|uint|bool|complex|str)\w*\(|\bnp\.(?:True|False)_|\b\w+Warning: ")


def noisy_outputs(outputs) -> list[str]:
    """The noise (NOISE) in a cell's outputs: its streams and the text of its results, each hit with its context."""
    found = []
    for output in outputs:
        text = output.get("text", "") if output.get("output_type") == "stream" else \
            output.get("data", {}).get("text/plain", "")
        text = "".join(text) if isinstance(text, list) else text
        found += [repr(text[max(0, m.start() - 40):m.end() + 20]) for m in NOISE.finditer(text)]
    return found


def test_noisy_outputs_finds_each_kind():
    outputs = [{"output_type": "stream", "name": "stdout", "text": "\x1b[1m3/3\x1b[0m loss 1.0\n"},
               {"output_type": "stream", "name": "stdout", "text": "{'psnr': np.float64(29.311)} [np.True_]\n"},
               {"output_type": "stream", "name": "stderr", "text": "model.py:1: UserWarning: shuffle ignored\n"},
               {"output_type": "execute_result", "data": {"text/plain": "np.int64(3)"}},
               {"output_type": "stream", "name": "stdout", "text": "29.31 dB, [True, False], np.float64 is a type"}]
    assert len(noisy_outputs(outputs)) == 6
    assert noisy_outputs(outputs[-1:]) == []


def unrendered_figures(outputs) -> list[str]:
    """Each result of a cell that is a matplotlib Figure shown as its text ("<Figure size 1200x400 with 3 Axes>")
    with no picture: what a bare Figure returned before pyplot's inline backend is on looks like (issue 14)."""
    found = []
    for output in outputs:
        data = output.get("data", {})
        text = data.get("text/plain", "")
        text = "".join(text) if isinstance(text, list) else text
        if text.startswith("<Figure size") and "image/png" not in data:
            found.append(text)
    return found


def test_unrendered_figures_finds_a_figure_without_its_picture():
    bare = {"output_type": "execute_result", "data": {"text/plain": "<Figure size 1200x400 with 3 Axes>"}}
    drawn = {"output_type": "display_data", "data": {"text/plain": ["<Figure size 1200x400 with 3 Axes>"],
                                                       "image/png": "iVBORw0KGgo="}}
    assert unrendered_figures([bare, drawn]) == ["<Figure size 1200x400 with 3 Axes>"]
    assert unrendered_figures([drawn, {"output_type": "stream", "name": "stdout", "text": "<Figure size"}]) == []


def fit_calls_without_quiet_keras(source: str) -> list[str]:
    """Each ``.fit(...)`` call in ``source`` that lets Keras print its own progress: a call must pass ``verbose=0``
    (its progress bar writes terminal codes into a notebook's outputs; the course's cells use fitting.ProgressCallback)."""
    found = []
    for match in re.finditer(r"\.fit\(", source):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(source)):
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            if depth == 0:
                break
        call = source[match.start():end + 1]
        if not re.search(r"\bverbose\s*=\s*0\b", call):
            found.append(call[:80])
    return found


def test_fit_calls_without_quiet_keras_finds_loud_calls():
    assert fit_calls_without_quiet_keras("h = model.fit(x, epochs=2, verbose=0, callbacks=[bar])") == []
    assert len(fit_calls_without_quiet_keras("model.fit(x, y(1), verbose=config.pick(full=1, fast=0))\n"
                                             "model.fit(data)")) == 2


def test_notebooks_train_with_keras_quiet():
    # Issue 14: Keras' verbose=1 bar fills full-mode outputs with terminal codes, and fast mode (verbose=0 there)
    # would not show it, so the sources are checked.
    import json

    loud = {}
    for path in NOTEBOOKS:
        for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            if cell["cell_type"] == "code" and fit_calls_without_quiet_keras("".join(cell["source"])):
                loud[f"{path.name} cell {index}"] = fit_calls_without_quiet_keras("".join(cell["source"]))
    assert not loud, loud


def exercise_indices(cells) -> list[int]:
    return [index for index, cell in enumerate(cells)
            if cell.cell_type == "code" and student_copies.BEGIN in cell.source]


@pytest.mark.slow
@pytest.mark.parametrize("path", SELECTED, ids=lambda p: p.stem)
def test_notebook(path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    mode = mode_of(path)
    if mode == "fast":
        monkeypatch.setenv("COURSE_FAST", "1")  # the kernel inherits the environment
    else:
        monkeypatch.delenv("COURSE_FAST", raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    if not os.environ.get("COURSE_NOTEBOOK_MODE") and not os.environ.get("KODAK_DIR"):
        # make test: what a student's clone sees, which has no Kodak (make test-full uses it where found).
        monkeypatch.setenv("KODAK_DIR", "off")
    notebook = nbformat.read(path, as_version=4)
    cells = notebook.cells
    # execute_cell stores the cell it ran in the notebook, so the original sources are kept here.
    sources = [cell.source for cell in cells]
    kinds = [cell.cell_type for cell in cells]
    exercises = set(exercise_indices(cells))
    client = NotebookClient(notebook, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    where = f"{path.name} ({mode} mode)"

    def run(index, source=None):
        """Run cell ``index`` (or ``source`` in its place); CellExecutionError propagates."""
        cell = nbformat.v4.new_code_cell(sources[index] if source is None else source)
        notebook.cells[index] = cell  # in place before it runs: nbclient redraws a display handle's output there
        client.execute_cell(cell, index)

    def must_pass(index, source=None, what="cell"):
        try:
            run(index, source)
        except CellExecutionError as error:
            text = sources[index] if source is None else source
            head = "\n".join(text.split("\n")[:6])
            trace = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().split("\n")
            pytest.fail(f"{where}: {what} {index} failed with {error.ename}: {error.evalue}\n--- its first lines:\n"
                        f"{head}\n--- the end of the traceback:\n" + "\n".join(trace[-12:]), pytrace=False)

    def must_fail(index, source, what):
        try:
            run(index, source)
        except CellExecutionError as error:
            return error
        pytest.fail(f"{where}: cell {index}: {what} passed", pytrace=False)

    started = time.perf_counter()
    try:
        with client.setup_kernel():
            if exercises:  # executed in place of the first exercise, which runs (and replaces it) later
                must_pass(min(exercises), PERTURB, "the test's helper before cell")
            for index, kind in enumerate(kinds):
                if kind != "code":
                    continue
                if index in exercises:
                    check_source = sources[index + 1]
                    names = student_copies.answer_names(sources[index], check_source)
                    student = student_copies.strip_solutions(sources[index], check_source)
                    in_function = any(body for _, body in student_copies.answers(sources[index], check_source))
                    # 1. The student copy: the stub raises NotImplementedError naming the answers.
                    if in_function:
                        must_pass(index, student, "the student copy of exercise cell")
                        error = must_fail(index + 1, check_source, "the self-check after the student copy's stub")
                    else:
                        error = must_fail(index, student, "the student copy's stub")
                        assert error.ename == "NotImplementedError", \
                            f"{where}: cell {index}: the stub raised {error.ename}: {error.evalue}"
                    for name in names:
                        assert name in error.evalue, f"{where}: cell {index}: the stub's message does not name {name}"
                must_pass(index)
                noise = noisy_outputs(notebook.cells[index].outputs)
                if noise:
                    pytest.fail(f"{where}: cell {index} printed noise (terminal codes, NumPy reprs or warnings): "
                                + "; ".join(noise[:5]), pytrace=False)
                bare = unrendered_figures(notebook.cells[index].outputs)
                if bare:
                    pytest.fail(f"{where}: cell {index} shows a figure as its text {bare[0]!r} and no picture: "
                                "pyplot's inline backend was not on (config.set_seed turns it on; call it in the "
                                "notebook's first cell)", pytrace=False)
                if index - 1 in exercises:
                    for name in student_copies.answer_names(sources[index - 1], sources[index]):
                        # 3. One wrong answer at a time: the check fails and names it.
                        must_pass(index, f"_course_saved = {name}\n{name} = _course_wrong({name})", "binding a wrong")
                        error = must_fail(index, sources[index], f"the self-check with a wrong {name}")
                        must_pass(index, f"{name} = _course_saved\ndel _course_saved", "restoring")
                        assert error.ename == "CheckFailed" and name in error.evalue, \
                            f"{where}: cell {index}: a wrong {name} raised {error.ename}: {error.evalue}"
                    must_pass(index, what="the self-check, answers restored,")  # 4.
    finally:
        if os.environ.get("COURSE_NOTEBOOK_OUTPUTS"):  # keep the executed notebook (each cell as it last ran)
            out = Path(os.environ["COURSE_NOTEBOOK_OUTPUTS"])
            out.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, out / path.name)
    print(f"{path.name}: {mode} mode, {time.perf_counter() - started:.0f} s", flush=True)
