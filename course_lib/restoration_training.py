"""Training a restoration network (notebook 08): random crops, degraded on the fly, mean squared error.

``python -m course_lib train-restoration --data DIR --out RUN [--steps S ...]`` runs :func:`train`
(running it again resumes from ``RUN/backup``); ``python -m course_lib ship --run RUN`` ships the
result (:mod:`course_lib.ship`). The loop is the codec's (:func:`course_lib.fitting.fit_resumable`):
weights and ``history.json`` are written after every epoch, so an interrupted run keeps its record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from .data import load_image, training_dataset
from .fitting import fit_resumable, start_run
from .models import load_codec
from .restoration import RestorationNet, degraded_pairs, make_degrader, psnr_metric
from .runs import RESTORATION_WEIGHTS, center_crop, split_folder

__all__ = ["RestorationTrainConfig", "build_restorer", "train"]



@dataclass
class RestorationTrainConfig:
    """Everything a restoration training run depends on; written to ``OUT/config.json``. Used by the command line."""

    data: str
    out: str
    steps: int = 8000
    batch_size: int = 16
    crop: int = 64
    degradations: list = field(default_factory=lambda: ["jpeg"])
    qualities: list = field(default_factory=lambda: [10, 40])
    codec: str | None = None          # codec name or path for the "codec" degradation
    depth: int = 10
    width: int = 48
    residual_blocks: bool = False
    global_skip: bool = True
    space_to_depth: int = 2
    learning_rate: float = 1e-3      # cosine decay to 1 % of this over `steps`
    clipnorm: float = 1.0
    steps_per_epoch: int = 250       # one "epoch" = one checkpoint + one validation
    val_count: int = 16              # images of --data held out for validation
    val_crop: int = 128
    init: str | None = None           # start from these restoration weights (.weights.h5), e.g. the shipped ones
    seed: int = 0


def build_restorer(config: RestorationTrainConfig) -> RestorationNet:
    """The untrained, built :class:`RestorationNet` a configuration describes. Used by the command line (shipping)."""
    model = RestorationNet(config.depth, config.width, config.residual_blocks, config.global_skip,
                           config.space_to_depth)
    model.build()
    return model


def validation_pairs(paths, config: RestorationTrainConfig, degrade) -> tuple[np.ndarray, np.ndarray]:
    """(degraded, clean) float32 (N, C, C, 3) central crops of ``paths``; smaller images are left out."""
    crops = [center_crop(load_image(p), config.val_crop) for p in paths]
    clean = np.stack([c for c in crops if c.shape[:2] == (config.val_crop, config.val_crop)])
    return degrade(clean).astype(np.float32) / 255.0, clean.astype(np.float32) / 255.0


def train(config: RestorationTrainConfig, verbose: int = 1, command: str | None = None):
    """Train (or resume) a restoration network; returns ``(model, record)``.

    Data: random ``crop`` x ``crop`` crops of the photos in ``config.data``
    (minus ``val_count`` held out), flipped at random, degraded on the fly
    (:func:`course_lib.restoration.make_degrader`). Loss: mean squared error
    between the output and the clean crop. Running the same call again resumes
    after the last finished epoch.

    Files in ``config.out``: ``config.json``, ``backup/`` (resume state),
    ``history.csv``, ``restoration.weights.h5`` and ``history.json`` (per-epoch
    metrics, steps, wall time summed over resumed runs, the command, the
    machine, the date, and the validation PSNR of the degraded input), the last
    two written after every epoch. Used by the command line (``train-restoration``; notebook 08
    trains its networks in memory the same way, with ``keras.Model.fit``).
    """
    out = start_run(config)
    codec = load_codec(config.codec) if "codec" in config.degradations else None
    train_paths, val_paths = split_folder(config.data, config.val_count)
    clean = training_dataset([load_image(p) for p in train_paths], crop=config.crop,
                             batch_size=config.batch_size, seed=config.seed)
    degrade = make_degrader(config.degradations, config.qualities, codec, seed=config.seed)
    dataset = degraded_pairs(clean, degrade)
    validation, input_psnr = None, None
    if val_paths:
        # Validation crops get their own degrader, so they are the same in every resumed run.
        val_degraded, val_clean = validation_pairs(
            val_paths, config, make_degrader(config.degradations, config.qualities, codec, seed=config.seed + 1))
        validation = tf.data.Dataset.from_tensor_slices((val_degraded, val_clean)).batch(config.batch_size)
        input_psnr = float(np.mean(psnr_metric(val_clean, val_degraded)))

    epochs = max(1, math.ceil(config.steps / config.steps_per_epoch))
    model = build_restorer(config)
    if config.init:
        # A warm start; when the run resumes, BackupAndRestore's state replaces these weights.
        model.load_weights(config.init)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, epochs * config.steps_per_epoch,
                                                      alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule, global_clipnorm=config.clipnorm),
                  loss="mse", metrics=[psnr_metric])
    record = fit_resumable(model, dataset, out, epochs, config.steps_per_epoch,
                           save=lambda folder: model.save_weights(str(folder / RESTORATION_WEIGHTS)),
                           validation_data=validation, verbose=verbose,
                           extra={"validation_input_psnr": input_psnr, "command": command})
    return model, record
