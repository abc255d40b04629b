"""The one resumable fit loop, shared by the codec's and the restoration network's training (notebooks 07, 08).

Both trainers hand :func:`fit_resumable` a compiled Keras model, a stream of batches and a run
folder (:mod:`course_lib.runs`). ``keras.Model.fit`` runs with three callbacks:

* ``BackupAndRestore`` (``RUN/backup``): running the same command again resumes after the last
  finished epoch, even in another session;
* ``CSVLogger`` (``RUN/history.csv``, appended across resumed runs);
* :class:`RunRecorder`: after every epoch, the weights and ``RUN/history.json`` (metrics, steps,
  wall time summed over resumed runs, machine, date), so that a run stopped at any moment still
  says how far it got and how long it took.
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
from .runs import machine, read_history

__all__ = ["RunRecorder", "fit_resumable", "start_run"]


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
    and the entries of ``extra`` (e.g. the command). Runs after ``CSVLogger`` (callbacks run in list
    order), so the epoch's row is there. Used by the command line's training runs.
    """

    def __init__(self, out, save: Callable[[Path], None], steps_per_epoch: int, extra: dict | None = None):
        super().__init__()
        self.out, self.save, self.steps_per_epoch = Path(out), save, steps_per_epoch
        path = self.out / "history.json"
        self.previous = json.loads(path.read_text()) if path.exists() else {}
        self.extra = {k: v for k, v in (extra or {}).items() if v is not None}
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


def fit_resumable(model: keras.Model, dataset, out, epochs: int, steps_per_epoch: int,
                  save: Callable[[Path], None], validation_data=None, verbose: int = 1,
                  extra: dict | None = None) -> dict:
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

    Returns the record written to ``out/history.json`` (:class:`RunRecorder`).
    Used by the command line (``train``, ``train-restoration``); notebooks 07 and 08 fit smaller models
    in memory with ``keras.Model.fit`` directly.
    """
    out = Path(out)
    recorder = RunRecorder(out, save, steps_per_epoch, extra)
    model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, validation_data=validation_data,
              verbose=verbose, shuffle=False,  # the crops are drawn at random already; a dataset cannot be shuffled
              callbacks=[keras.callbacks.BackupAndRestore(str(out / "backup"), delete_checkpoint=False),
                         keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
                         recorder])
    return recorder.record()
