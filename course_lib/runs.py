"""Run folders: the files a training run reads and writes, without TensorFlow (library plumbing).

A run folder (``--out RUN`` of ``python -m course_lib train`` or ``train-restoration``) holds
``config.json`` (everything the run depends on), ``backup/`` (Keras' resume state),
``history.csv`` (one row per epoch, Keras' ``CSVLogger``), the weights of the last finished epoch
and ``history.json`` (the record: per-epoch metrics, steps, wall time, machine, date). The fit loop
(:mod:`course_lib.fitting`) writes them; shipping (:mod:`course_lib.ship`) reads them.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
from pathlib import Path

import numpy as np

from .data import image_paths

__all__ = ["CODEC_WEIGHTS", "RESTORATION_WEIGHTS", "center_crop", "machine", "read_history", "read_record", "run_kind",
           "split_folder"]

#: The weights file of a codec run folder and of a restoration run folder.
CODEC_WEIGHTS, RESTORATION_WEIGHTS = "codec.weights.h5", "restoration.weights.h5"


def split_folder(folder, val_count: int) -> tuple[list[Path], list[Path]]:
    """Deterministic train/validation split of an image folder: every k-th file is held out.

    Returns (training paths, validation paths). Raises ``FileNotFoundError`` when ``folder`` is
    not a folder and ``ValueError`` when it holds ``val_count`` images or fewer.
    Used by the command line (``train``, ``train-restoration``).
    """
    paths = image_paths(folder)
    if len(paths) <= val_count:
        raise ValueError(f"{folder}: {len(paths)} images, need more than val_count={val_count}")
    if val_count == 0:
        return paths, []
    step = len(paths) / val_count
    held = {int(i * step + step / 2) for i in range(val_count)}
    return ([p for i, p in enumerate(paths) if i not in held],
            [p for i, p in enumerate(paths) if i in held])


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` square of ``image`` (H, W, ...), smaller when the image is.

    The validation crops of a training run (the same in every resumed run). Used by the command line.
    """
    h, w = image.shape[:2]
    size = min(size, h, w)
    y, x = (h - size) // 2, (w - size) // 2
    return image[y:y + size, x:x + size]


def read_history(csv_path) -> dict[str, list]:
    """Per-epoch metrics from a CSVLogger file as ``{"epoch": [...], name: [values]}`` (last row wins per epoch).

    A metric an epoch did not compute (Keras writes ``NA``) is ``nan``. Used by the command line.
    """
    rows = {}
    with open(csv_path) as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = row
    names = [k for k in next(iter(rows.values())) if k != "epoch"] if rows else []

    def number(text):
        return math.nan if text in ("", "NA") else float(text)

    return {"epoch": sorted(rows), **{k: [number(rows[e][k]) for e in sorted(rows)] for k in names}}


def read_record(run_dir) -> tuple[dict, dict]:
    """(``config.json``, ``history.json``) of a run folder as dicts. Used by the command line (shipping).

    Raises ``FileNotFoundError`` naming the file that is missing.
    """
    run = Path(run_dir)
    for name in ("config.json", "history.json"):
        if not (run / name).is_file():
            raise FileNotFoundError(f"{run / name}: no such file (is {run} a training run folder?)")
    return json.loads((run / "config.json").read_text()), json.loads((run / "history.json").read_text())


def run_kind(run_dir) -> str:
    """``"codec"`` or ``"restoration"``: which trainer wrote a run folder, told by its weights file.

    Raises ``FileNotFoundError`` for a folder without ``config.json``, ``history.json`` or either
    weights file. Used by the command line (``ship``).
    """
    run = Path(run_dir)
    read_record(run)
    if (run / RESTORATION_WEIGHTS).is_file():
        return "restoration"
    if (run / CODEC_WEIGHTS).is_file():
        return "codec"
    raise FileNotFoundError(f"{run}: neither {CODEC_WEIGHTS} nor {RESTORATION_WEIGHTS} (is it a training run folder?)")


def machine(tensorflow_version: str | None = None) -> str:
    """The machine a run trains on, e.g. ``"x86_64 CPU, 2 cores, Linux, TensorFlow 2.21.0"``.

    Recorded in a run's ``history.json`` and in the manifest of shipped weights. Used by the command line.
    """
    text = f"{platform.machine()} CPU, {os.cpu_count()} cores, {platform.system()}"
    return text + (f", TensorFlow {tensorflow_version}" if tensorflow_version else "")
