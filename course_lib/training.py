"""Rate-distortion training: L = R + lambda * D (notebook 07).

The loss of Ballé et al. (2017, 2018) in the units the literature uses:

* R: bits per pixel, -sum log2 P(y~) / (H W), from the entropy model's likelihoods
  of the *noisy* latents y~ = y + u, u ~ U(-1/2, 1/2) (a differentiable stand-in
  for rounding: same expected error, and its density equals the bin mass);
* D: mean squared error on the 0-255 scale, so lambda values match
  TensorFlow Compression and CompressAI (0.0018 ... 0.0932 from low to high rate).

A variable-rate codec (one model, one gain vector per rate point; Cui et al.
2021) is trained with one lambda per rate point: each batch draws a rate point
uniformly, and the loss weights its distortion by that point's lambda.

Training runs through ``keras.Model.fit`` with a custom ``train_step``, so
it gets Keras' progress bar, ``tf.distribute`` strategies (MirroredStrategy,
MultiWorkerMirroredStrategy) and ``BackupAndRestore`` (resume after an
interruption, even in another session) without home-made machinery.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

#: Lambdas of CompressAI's bmshj2018 models, qualities 1..8 (MSE on the 0-255 scale).
COMPRESSAI_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)


def rd_loss(bpp, mse255, lmbda):
    """The rate-distortion loss ``bpp + lmbda * mse255`` (per image or batch means)."""
    return bpp + lmbda * mse255


class RateDistortionTrainer(keras.Model):
    """Wraps a :class:`course_lib.codec.LearnedCodec` for ``fit``: the loss is R + lambda D.

    ``lmbdas`` has one lambda per rate point of the codec. Batches are float
    images (B, H, W, 3) in [0, 1]; each batch draws a rate point uniformly.
    Reported metrics: loss, bpp, mse (0-255 scale), psnr (dB, from the batch MSE).
    Introduced in notebook 07.
    """

    def __init__(self, codec, lmbdas, **kwargs):
        super().__init__(**kwargs)
        self.codec = codec
        self.lmbdas = tuple(float(v) for v in lmbdas)
        if len(self.lmbdas) != codec.num_rates:
            raise ValueError(f"{len(self.lmbdas)} lambdas for a codec with {codec.num_rates} rate points")
        self._lmbda_table = tf.constant(self.lmbdas, tf.float32)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "bpp", "mse", "psnr")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _rate_point(self):
        if len(self.lmbdas) == 1:
            return tf.constant(0, tf.int32)
        return tf.random.uniform((), 0, len(self.lmbdas), dtype=tf.int32)

    def _rate_distortion(self, images, training):
        rate = self._rate_point()
        out = self.codec(images, rate=rate, training=training)
        pixels = tf.cast(tf.shape(images)[1] * tf.shape(images)[2], tf.float32)
        bpp = out["bits"] / pixels                                               # (B,)
        mse255 = tf.reduce_mean(tf.square(out["x_hat"] - images), axis=[1, 2, 3]) * 255.0 ** 2  # (B,)
        loss = tf.reduce_mean(rd_loss(bpp, mse255, tf.gather(self._lmbda_table, rate)))
        return loss, tf.reduce_mean(bpp), tf.reduce_mean(mse255)

    def _update(self, loss, bpp, mse255):
        psnr = 10.0 * tf.math.log(255.0 ** 2 / tf.maximum(mse255, 1e-10)) / tf.math.log(10.0)
        for name, value in (("loss", loss), ("bpp", bpp), ("mse", mse255), ("psnr", psnr)):
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}

    def train_step(self, images):
        with tf.GradientTape() as tape:
            loss, bpp, mse255 = self._rate_distortion(images, training=True)
        variables = self.codec.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self._update(loss, bpp, mse255)

    def test_step(self, images):
        # Validation rounds the latents (training=False): the rate is then the
        # entropy model's estimate for the real file, without the header.
        return self._update(*self._rate_distortion(images, training=False))

    def call(self, images, training=False):
        return self.codec(images, rate=self._rate_point(), training=training)


@dataclass
class TrainConfig:
    """Everything a training run depends on; written to ``OUT/config.json``."""

    data: str
    out: str
    lmbdas: list = field(default_factory=lambda: [0.0067])
    steps: int = 20_000
    batch_size: int = 8
    crop: int = 256
    learning_rate: float = 1e-4
    lr_drop_at: float = 0.9          # fraction of steps after which the rate is divided by 10
    clipnorm: float = 1.0            # global gradient-norm clipping keeps early training stable
    steps_per_epoch: int = 500       # one "epoch" = one checkpoint + one validation
    val_count: int = 16              # images of --data held out for validation
    val_crop: int = 256
    channels: int = 64
    latent_channels: int = 128
    init: str | None = None          # start from these codec weights (e.g. the shipped ones)
    strategy: str = "default"        # default | mirrored | multiworker
    seed: int = 0


def split_folder(folder, val_count: int):
    """Deterministic train/validation split of an image folder: every k-th file is held out."""
    from .data import image_paths

    paths = image_paths(folder)
    if len(paths) <= val_count:
        raise ValueError(f"{folder}: {len(paths)} images, need more than val_count={val_count}")
    if val_count == 0:
        return paths, []
    step = len(paths) / val_count
    held = {int(i * step + step / 2) for i in range(val_count)}
    return ([p for i, p in enumerate(paths) if i not in held],
            [p for i, p in enumerate(paths) if i in held])


def _center_crop(image, size):
    h, w = image.shape[:2]
    size = min(size, h, w)
    y, x = (h - size) // 2, (w - size) // 2
    return image[y:y + size, x:x + size]


def _strategy(name: str):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}: default, mirrored or multiworker")


def train(config: TrainConfig, verbose: int = 1):
    """Train (or resume) a codec; returns ``(codec, history dict)``.

    Files in ``config.out``: ``config.json``, ``backup/`` (resume state,
    written every ``steps_per_epoch`` steps), ``codec.weights.h5`` (final
    weights), ``history.json`` (per-epoch train and validation metrics).
    Introduced in notebook 07.
    """
    from .codec import LearnedCodec
    from .data import load_image, training_dataset

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2))
    keras.utils.set_random_seed(config.seed)

    train_paths, val_paths = split_folder(config.data, config.val_count)
    train_images = [load_image(p) for p in train_paths]
    dataset = training_dataset(train_images, crop=config.crop, batch_size=config.batch_size, seed=config.seed)
    val = None
    if val_paths:
        crops = np.stack([_center_crop(load_image(p), config.val_crop) for p in val_paths
                          if min(load_image(p).shape[:2]) >= config.val_crop])
        val = tf.data.Dataset.from_tensor_slices(crops.astype(np.float32) / 255.0).batch(config.batch_size)

    strategy = _strategy(config.strategy)
    epochs = max(1, math.ceil(config.steps / config.steps_per_epoch))
    drop_step = int(config.lr_drop_at * epochs * config.steps_per_epoch)
    with strategy.scope():
        codec = LearnedCodec(channels=config.channels, latent_channels=config.latent_channels,
                             num_rates=len(config.lmbdas))
        codec.build((None, None, None, 3))
        if config.init:
            codec.load_weights(config.init)
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            [drop_step], [config.learning_rate, config.learning_rate / 10])
        trainer = RateDistortionTrainer(codec, config.lmbdas)
        trainer.compile(optimizer=keras.optimizers.Adam(schedule, global_clipnorm=config.clipnorm))
        trainer.built = True  # the codec inside is built; BackupAndRestore requires this flag

    started = time.time()
    trainer.fit(
        dataset, epochs=epochs, steps_per_epoch=config.steps_per_epoch, validation_data=val,
        verbose=verbose,
        callbacks=[keras.callbacks.BackupAndRestore(str(out / "backup"), delete_checkpoint=False),
                   keras.callbacks.CSVLogger(str(out / "history.csv"), append=True)])
    codec.save_weights(str(out / "codec.weights.h5"))
    # The CSV spans every resumed run; the wall time adds up across runs.
    previous = json.loads((out / "history.json").read_text()) if (out / "history.json").exists() else {}
    record = {"history": read_history(out / "history.csv"),
              "wall_seconds": previous.get("wall_seconds", 0.0) + time.time() - started,
              "steps": epochs * config.steps_per_epoch}
    (out / "history.json").write_text(json.dumps(record, indent=2))
    return codec, record


def read_history(csv_path) -> dict:
    """Per-epoch metrics from a CSVLogger file as ``{name: [values]}`` (last run wins per epoch)."""
    import csv

    rows = {}
    with open(csv_path) as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = row
    names = [k for k in next(iter(rows.values())) if k != "epoch"] if rows else []
    return {"epoch": sorted(rows), **{k: [float(rows[e][k]) for e in sorted(rows)] for k in names}}
