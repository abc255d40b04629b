"""The one resumable fit loop, shared by the codec's and the restoration network's training (notebooks 07, 08).

Both trainers hand :func:`fit_resumable` a compiled Keras model, a stream of batches and a run
folder (:mod:`course_lib.runs`). ``keras.Model.fit`` runs with three callbacks:

* ``BackupAndRestore`` (``RUN/backup``): running the same command again resumes after the last
  finished epoch, even in another session;
* ``CSVLogger`` (``RUN/history.csv``, appended across resumed runs);
* :class:`RunRecorder`: after every epoch, the weights and ``RUN/history.json`` (metrics, steps,
  wall time summed over resumed runs, machine, date), so that a run stopped at any moment still
  says how far it got and how long it took.

:class:`ProgressCallback` shows a notebook's training as one line of text that a saved notebook keeps
(notebooks 02, 06-08 fit with ``verbose=0`` and this callback).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import keras
import tensorflow as tf

from .json_files import write_json
from .progress import StatusLine, format_seconds
from .runs import machine, read_history

__all__ = ["ProgressCallback", "RunRecorder", "fit_resumable", "start_run"]


def start_run(config) -> Path:
    """Create the run folder ``config.out``, write ``config.json`` (the dataclass ``config``) and seed Keras.

    Returns the folder. Used by the command line (``train``, ``train-restoration``).
    """
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2))
    keras.utils.set_random_seed(config.seed)
    return out


class RunRecorder(keras.callbacks.Callback):
    """After each epoch: save the weights (``save(out)``) and write ``out/history.json``.

    The record: ``history`` (per-epoch metrics from ``history.csv``), ``steps`` (finished epochs
    times ``steps_per_epoch``), ``wall_seconds`` (summed over resumed runs), ``machine``, ``date``
    and the entries of ``extra`` (e.g. the command) and of ``first``: ``{key: function}``, entries
    measured once when the run begins (``function()``) and kept from the previous record when it
    resumes, without calling ``function`` again. Runs after ``CSVLogger`` (callbacks run in list
    order), so the epoch's row is there. Used by the command line's training runs.
    """

    def __init__(self, out, save: Callable[[Path], None], steps_per_epoch: int, extra: dict | None = None,
                 first: dict[str, Callable[[], object]] | None = None):
        super().__init__()
        self.out, self.save, self.steps_per_epoch = Path(out), save, steps_per_epoch
        path = self.out / "history.json"
        self.previous = json.loads(path.read_text()) if path.exists() else {}
        self.extra = {k: v for k, v in (extra or {}).items() if v is not None}
        self.extra.update({k: measure() for k, measure in (first or {}).items() if k not in self.previous})
        self.started = time.time()

    def record(self) -> dict:
        """The run's record as it stands now (what ``history.json`` holds)."""
        csv_path = self.out / "history.csv"
        history = read_history(csv_path) if csv_path.exists() else {"epoch": []}
        return {**self.previous, **self.extra, "history": history,
                "steps": len(history["epoch"]) * self.steps_per_epoch,
                "wall_seconds": self.previous.get("wall_seconds", 0.0) + time.time() - self.started,
                "machine": machine(tf.__version__), "date": time.strftime("%Y-%m-%d")}

    def on_epoch_end(self, epoch, logs=None):
        self.save(self.out)
        write_json(self.out / "history.json", self.record())


def _metrics_text(logs: dict) -> str:
    return " · ".join(f"{name} {float(value):.4g}" for name, value in logs.items())


class ProgressCallback(keras.callbacks.Callback):
    """Keras training shown as one line that a saved notebook keeps (a :class:`course_lib.progress.StatusLine`).

    While it runs, at most twice a second: ``"training: epoch 3/10 · step 120/500 · loss 1.234 · 45 s"``; when
    it ends: ``"training: 10 epochs done in 2 min 05 s · loss 1.198 · val_loss 1.243"``, the last epoch's
    metrics (training, then validation). Pass it with ``verbose=0`` (Keras' own bar writes terminal codes).

    >>> model.fit(data, epochs=10, verbose=0, callbacks=[ProgressCallback("codec")])
    Introduced in notebook 06.
    """

    def __init__(self, desc: str = "training", enabled: bool = True):
        super().__init__()
        self.desc, self.enabled = desc, enabled
        self.line, self.epoch, self.epoch_logs, self.started = None, 0, {}, time.monotonic()

    def on_train_begin(self, logs=None):
        self.line, self.epoch, self.epoch_logs = StatusLine(enabled=self.enabled), 0, {}
        self.started = time.monotonic()
        self.line.show(f"{self.desc}: starting", force=True)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.line is None or not self.line.due():
            return
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        parts = [f"epoch {self.epoch + 1}/{epochs}", f"step {batch + 1}" + (f"/{steps}" if steps else "")]
        if logs and "loss" in logs:
            parts.append(f"loss {float(logs['loss']):.4g}")
        parts.append(format_seconds(time.monotonic() - self.started))
        self.line.show(f"{self.desc}: " + " · ".join(parts))

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_logs = dict(logs or {})

    def on_train_end(self, logs=None):
        if self.line is None:
            return
        done = self.epoch + 1 if self.epoch_logs else self.epoch
        text = (f"{self.desc}: {done} epoch{'s' if done != 1 else ''} done in "
                f"{format_seconds(time.monotonic() - self.started)}")
        train = {k: v for k, v in self.epoch_logs.items() if not k.startswith("val_")}
        val = {k: v for k, v in self.epoch_logs.items() if k.startswith("val_")}
        self.line.close(" · ".join(part for part in (text, _metrics_text(train), _metrics_text(val)) if part))


def fit_resumable(model: keras.Model, dataset, out, epochs: int, steps_per_epoch: int,
                  save: Callable[[Path], None], validation_data=None, verbose: int = 1,
                  extra: dict | None = None, first: dict[str, Callable[[], object]] | None = None) -> dict:
    """``model.fit`` for ``epochs`` epochs of ``steps_per_epoch`` steps, resumable, recorded in ``out``.

    Args:
        model: a compiled Keras model (``built`` set: ``BackupAndRestore`` requires it).
        dataset: an endless ``tf.data`` stream of training batches (already random: not shuffled).
        out: the run folder (:func:`start_run`).
        save: writes the weights to keep into the run folder it is given, after every epoch.
        validation_data: evaluated after every epoch (optional).
        verbose: Keras' progress display (1 = a bar, 2 = one line per epoch, 0 = silent).
        extra: entries added to the record (``None`` values are left out; a resumed run keeps
            the previous record's).
        first: ``{key: function}``: entries measured when the run begins; a resumed run keeps
            the values its first part recorded (e.g. where it started from).

    Returns the record written to ``out/history.json`` (:class:`RunRecorder`).
    Used by the command line (``train``, ``train-restoration``); notebooks 07 and 08 fit smaller models
    in memory with ``keras.Model.fit`` directly.
    """
    out = Path(out)
    recorder = RunRecorder(out, save, steps_per_epoch, extra, first)
    model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, validation_data=validation_data,
              verbose=verbose, shuffle=False,  # the crops are drawn at random already; a dataset cannot be shuffled
              callbacks=[keras.callbacks.BackupAndRestore(str(out / "backup"), delete_checkpoint=False),
                         keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
                         recorder])
    return recorder.record()
