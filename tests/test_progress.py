"""course_lib.progress and fitting.ProgressCallback: one plain-text line in a notebook, tqdm in a terminal (issue 14)."""
import json
import re
import types

import IPython.display
import pytest

from course_lib import progress as progress_module
from course_lib.progress import StatusLine, format_seconds, in_jupyter_kernel, progress


class FakeDisplay:
    """IPython's ``display(bundle, raw=True, display_id=True)`` and the handle it returns, recorded."""

    def __init__(self):
        self.shown, self.texts = 0, []

    def __call__(self, bundle, raw=False, display_id=None):
        assert raw and display_id is True, "the line must be drawn raw, with a display handle"
        self.shown += 1
        self.texts.append(bundle["text/plain"])
        return self

    def update(self, bundle, raw=False):
        assert raw
        self.texts.append(bundle["text/plain"])


@pytest.fixture
def kernel(monkeypatch):
    """Pretend to run in a Jupyter kernel; returns the fake display."""
    fake = FakeDisplay()
    monkeypatch.setattr(progress_module, "in_jupyter_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", fake)
    return fake


@pytest.fixture
def clock(monkeypatch):
    """A clock that advances 0.1 s each time it is read, so throttling is deterministic."""
    now = [0.0]

    def monotonic():
        now[0] += 0.1
        return now[0]

    monkeypatch.setattr(progress_module, "time", types.SimpleNamespace(monotonic=monotonic))
    return now


def test_not_a_kernel_under_pytest():
    assert in_jupyter_kernel() is False


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 4.4, 59.4, 125, 3720)] == ["0 s", "4 s", "59 s", "2 min 05 s", "1 h 02 min"]


def test_kernel_line_yields_every_item_and_ends_done(kernel):
    assert list(progress(range(12), desc="photos")) == list(range(12))
    assert kernel.shown == 1, "one output, redrawn in place"
    assert kernel.texts[0] == "photos: 0/12"
    assert kernel.texts[-1].startswith("photos: 12/12 done in ") and kernel.texts[-1].endswith(" s")
    assert all(text.startswith("photos: ") for text in kernel.texts)


def test_kernel_line_is_throttled(kernel, clock):
    assert len(list(progress(range(200), desc="steps"))) == 200
    # 200 items at >= 0.1 s each is >= 20 s: about 2 redraws a second, far fewer than 200.
    assert 10 <= len(kernel.texts) <= 60, len(kernel.texts)
    assert kernel.texts[-1].startswith("steps: 200/200 done in ")
    middle = kernel.texts[len(kernel.texts) // 2]
    assert middle.startswith("steps: ") and middle.endswith(" s)"), middle


def test_kernel_line_without_a_length(kernel):
    assert list(progress((i for i in range(3)), desc="photos")) == [0, 1, 2]
    assert kernel.texts[0] == "photos: 0"
    assert kernel.texts[-1].startswith("photos: 3 done in ")


def test_total_overrides_the_length(kernel):
    list(progress((i for i in range(4)), desc="crops", total=4))
    assert kernel.texts[-1].startswith("crops: 4/4 done in ")


def test_kernel_line_left_early_says_stopped(kernel):
    items = progress(range(10), desc="photos")
    for item in items:
        if item == 3:
            break
    items.close()
    assert kernel.texts[-1].startswith("photos: 3/10, stopped after ")
    assert kernel.shown == 1


def test_kernel_line_when_the_iterable_raises(kernel):
    def broken():
        yield 1
        raise ValueError("bad photo")

    seen = []
    with pytest.raises(ValueError, match="bad photo"):
        for item in progress(broken(), desc="photos"):
            seen.append(item)
    assert seen == [1]
    assert kernel.texts[-1].startswith("photos: 1, failed after ")


def test_disabled_yields_silently_in_a_kernel(kernel):
    assert list(progress(range(5), desc="photos", enabled=False)) == [0, 1, 2, 3, 4]
    assert kernel.shown == 0 and kernel.texts == []


def test_disabled_yields_silently_in_a_terminal(capsys):
    assert list(progress(range(5), desc="photos", enabled=False)) == [0, 1, 2, 3, 4]
    assert capsys.readouterr() == ("", "")


def test_terminal_is_a_tqdm_bar_on_stderr(capsys):
    assert list(progress(range(5), desc="photos")) == [0, 1, 2, 3, 4]
    out, err = capsys.readouterr()
    assert out == "" and "photos" in err and "/5 " in err and err.endswith("\r"), err  # leave=False: erased


def test_status_line_closes_once():
    fake = FakeDisplay()
    line = StatusLine(display=fake, interval=0)
    line.show("a: 1")
    line.close("a: done")
    line.show("a: 2")
    line.close("a: again")
    assert fake.texts == ["a: 1", "a: done"] and fake.shown == 1


def test_progress_callback_ends_on_the_last_epoch_metrics(kernel, clock):
    import keras
    import numpy as np

    from course_lib.fitting import ProgressCallback

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x, y = np.ones((16, 3), "float32"), np.zeros((16, 1), "float32")
    history = model.fit(x, y, batch_size=4, epochs=3, validation_data=(x, y), verbose=0,
                        callbacks=[ProgressCallback("tiny")])
    assert kernel.shown == 1
    assert kernel.texts[0] == "tiny: starting"
    final = kernel.texts[-1]
    assert final.startswith("tiny: 3 epochs done in "), final
    last = {name: values[-1] for name, values in history.history.items()}
    assert f"loss {last['loss']:.4g}" in final and f"val_mae {last['val_mae']:.4g}" in final, final
    assert final.index(" mae ") < final.index("val_loss"), "training metrics first, then validation"
    running = [text for text in kernel.texts[1:-1]]
    assert running and all(re.fullmatch(r"tiny: epoch [1-3]/3 · step [1-4]/4 · loss \S+ · \d+ s", text)
                           for text in running), running


@pytest.mark.slow
def test_a_real_kernel_saves_plain_text(tmp_path):
    """What a saved notebook keeps: one text/plain output with the final line, no widget."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from course_lib.progress import progress\n"
        "total = sum(progress(range(7), desc='photos'))\n"
        "print(total)")])
    root = progress_module.__file__.rsplit("/course_lib/", 1)[0]
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": root}}).execute()
    outputs = notebook.cells[0].outputs
    data = [o for o in outputs if o["output_type"] == "display_data"]
    assert len(data) == 1, json.dumps(outputs)[:500]
    assert set(data[0]["data"]) == {"text/plain"}
    assert data[0]["data"]["text/plain"].startswith("photos: 7/7 done in ")
    assert [o.get("text") for o in outputs if o["output_type"] == "stream"] == ["21\n"]
