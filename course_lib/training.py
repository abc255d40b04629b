"""Rate-distortion training: L = R + lambda * D (notebook 07).

The loss of Ballé et al. (2017, 2018) in the units the literature uses:

* R: bits per pixel, -sum log2 P(y~) / (H W), from the entropy model's likelihoods
  of the *noisy* latents y~ = y + u, u ~ U(-1/2, 1/2): a differentiable stand-in
  for rounding, not an unbiased estimate of the file: for the shipped codec it
  overstates the rate of the rounded latents, which the file pays (notebook 07
  measures the gap; see :mod:`course_lib.quantization`);
* D: mean squared error on the 0-255 scale, so lambda values match
  TensorFlow Compression and CompressAI (CompressAI's models: 0.0018 ... 0.18
  from low to high rate, :data:`COMPRESSAI_LAMBDAS`).

A variable-rate codec (one model, one gain vector per rate point; Cui et al.
2021) is trained with one lambda per rate point: each batch draws a rate point
uniformly, and the loss weights its distortion by that point's lambda.

Training runs through ``keras.Model.fit`` with a custom ``train_step``, so
it gets Keras' progress bar, ``tf.distribute`` strategies (MirroredStrategy,
MultiWorkerMirroredStrategy) and ``BackupAndRestore`` (resume after an
interruption, even in another session) without home-made machinery.

The configuration, the loss, the codec a run builds and the weights it starts from live in
:mod:`course_lib.training_setup` (no TensorFlow, shared with :mod:`course_lib.device_training`);
this module re-exports them.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .data import load_image, training_dataset
from .fitting import fit_resumable, start_run
from .runs import CODEC_WEIGHTS, center_crop, read_history, read_record, split_folder  # noqa: F401  (read_history)
from .training_setup import (COMPRESSAI_LAMBDAS, MODELS, TrainConfig, build_codec, image_rates,  # noqa: F401
                             psnr_from_mse, rate_distortion_terms, rd_loss, start_provenance, start_weights,
                             training_command, warm_start_transforms, warm_start_widened)

__all__ = ["COMPRESSAI_LAMBDAS", "MODELS", "RateDistortionTrainer", "TrainConfig", "build_codec", "load_run", "rd_loss",
           "train", "training_command", "warm_start_transforms", "warm_start_widened"]


class RateDistortionTrainer(keras.Model):
    """Wraps a :class:`course_lib.codec.LearnedCodec` for ``fit``: the loss is R + lambda D.

    ``lmbdas`` has one lambda per rate point of the codec. Batches are float
    images (B, H, W, 3) in [0, 1]; each batch draws a rate point uniformly, or with
    ``lambda_per_image`` each image has its own (:func:`course_lib.training_setup.image_rates`:
    every rate point equally often in a batch of B = num_rates images). Both minimise the same
    expected loss; one rate per image makes each step's gradient less noisy.
    Reported metrics: loss, bpp, mse (0-255 scale), psnr (dB, from the batch MSE).
    Introduced in notebook 07.
    """

    def __init__(self, codec, lmbdas, lambda_per_image: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.codec = codec
        self.lambda_per_image = lambda_per_image
        self.lmbdas = tuple(float(v) for v in lmbdas)
        if len(self.lmbdas) != codec.num_rates:
            raise ValueError(f"{len(self.lmbdas)} lambdas for a codec with {codec.num_rates} rate points")
        self._lmbda_table = tf.constant(self.lmbdas, tf.float32)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "bpp", "mse", "psnr")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _rate_point(self, batch_size=None):
        if len(self.lmbdas) == 1:
            return tf.constant(0, tf.int32)
        if self.lambda_per_image and batch_size is not None:
            return image_rates(batch_size, len(self.lmbdas), tf.random.shuffle)
        return tf.random.uniform((), 0, len(self.lmbdas), dtype=tf.int32)

    def rate_distortion(self, images, training=False, rate=None):
        """(loss, mean bpp, mean MSE on 0-255) of a batch; ``rate=None`` draws a rate point (one per image
        with ``lambda_per_image``); ``rate`` may also be a vector, one rate point per image."""
        rate = self._rate_point(tf.shape(images)[0]) if rate is None else tf.cast(rate, tf.int32)
        out = self.codec(images, rate=rate, training=training)
        return rate_distortion_terms(out, images, tf.gather(self._lmbda_table, rate))

    def _update(self, loss, bpp, mse255):
        psnr = psnr_from_mse(mse255)
        for name, value in (("loss", loss), ("bpp", bpp), ("mse", mse255), ("psnr", psnr)):
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}

    def train_step(self, images):
        with tf.GradientTape() as tape:
            loss, bpp, mse255 = self.rate_distortion(images, training=True)
        variables = self.codec.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self._update(loss, bpp, mse255)

    def test_step(self, images):
        # Validation rounds the latents (training=False): the rate is then the
        # entropy model's estimate for the real file, without the header. It
        # averages over every rate point, so that it does not depend on luck.
        results = [self.rate_distortion(images, training=False, rate=r) for r in range(len(self.lmbdas))]
        return self._update(*[tf.reduce_mean(tf.stack(values)) for values in zip(*results)])

    def call(self, images, training=False):
        return self.codec(images, rate=self._rate_point(), training=training)


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
    written every ``steps_per_epoch`` steps), ``history.csv``, and after
    every epoch ``codec.weights.h5`` and ``history.json`` (per-epoch train and
    validation metrics, steps, wall time, machine, date;
    :func:`course_lib.fitting.fit_resumable`). Used by the command line
    (``train``; notebook 07 trains the same trainer in memory).
    """
    out = start_run(config)

    train_paths, val_paths = split_folder(config.data, config.val_count)
    train_images = [load_image(p) for p in train_paths]
    dataset = training_dataset(train_images, crop=config.crop, batch_size=config.batch_size, seed=config.seed)
    val = None
    if val_paths:
        val_images = [load_image(p) for p in val_paths]
        crops = np.stack([center_crop(im, config.val_crop) for im in val_images
                          if min(im.shape[:2]) >= config.val_crop])
        val = tf.data.Dataset.from_tensor_slices(crops.astype(np.float32) / 255.0).batch(config.batch_size)

    strategy = _strategy(config.strategy)
    epochs = max(1, math.ceil(config.steps / config.steps_per_epoch))
    drop_step = int(config.lr_drop_at * epochs * config.steps_per_epoch)
    with strategy.scope():
        codec = build_codec(config)
        start_weights(codec, config)
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            [drop_step], [config.learning_rate, config.learning_rate / 10])
        trainer = RateDistortionTrainer(codec, config.lmbdas, lambda_per_image=config.lambda_per_image)
        trainer.compile(optimizer=keras.optimizers.Adam(schedule, global_clipnorm=config.clipnorm))
        trainer.built = True  # the codec inside is built; BackupAndRestore requires this flag

    record = fit_resumable(trainer, dataset, out, epochs, config.steps_per_epoch,
                           save=lambda folder: codec.save_weights(str(folder / CODEC_WEIGHTS)),
                           validation_data=val, verbose=verbose,
                           first={"start": lambda: start_provenance(config)})  # a resumed run keeps its start
    return codec, record


def load_run(run_dir):
    """A training run's codec (entropy tables frozen), its :class:`TrainConfig` and its ``history.json`` record.

    Reads ``run_dir/config.json``, ``history.json`` and ``codec.weights.h5``
    as :func:`train` writes them. Used by the command line (``ship``).
    """
    config, record = read_record(run_dir)
    config = TrainConfig(**config)
    codec = build_codec(config, precision="float32")  # inference in float32, whatever the training used
    codec.load_weights(str(Path(run_dir) / CODEC_WEIGHTS))
    codec.update_tables()
    return codec, config, record
