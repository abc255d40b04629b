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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .codec import LearnedCodec
from .data import load_image, training_dataset
from .fitting import fit_resumable, start_run
from .hyperprior import HyperpriorCodec
from .models import load_codec
from .registry import find_entry, weights_provenance
from .runs import CODEC_WEIGHTS, center_crop, read_history, read_record, split_folder  # noqa: F401  (read_history)
from .widening import copy_into_wider

__all__ = ["COMPRESSAI_LAMBDAS", "MODELS", "RateDistortionTrainer", "TrainConfig", "build_codec", "load_run", "rd_loss",
           "train", "training_command", "warm_start_transforms", "warm_start_widened"]


#: Lambdas of CompressAI's bmshj2018 models, qualities 1..8 (MSE on the 0-255 scale).
COMPRESSAI_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)


def rd_loss(bpp, mse255, lmbda):
    """The rate-distortion loss ``bpp + lmbda * mse255`` (per image or batch means). Introduced in notebook 07."""
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

    def rate_distortion(self, images, training=False, rate=None):
        """(loss, mean bpp, mean MSE on 0-255) of a batch; ``rate=None`` draws a rate point."""
        rate = self._rate_point() if rate is None else tf.constant(rate, tf.int32)
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


@dataclass
class TrainConfig:
    """Everything a training run depends on; written to ``OUT/config.json``. Used by the command line (``train``)."""

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
    init_transforms: str | None = None  # hyperprior: copy E, D and fitted gains from this shipped factorized codec
    strategy: str = "default"        # default | mirrored | multiworker
    seed: int = 0
    model: str = "factorized"        # factorized (notebooks 05-07) | hyperprior (notebook 12)
    precision: str = "float32"       # float32 | bfloat16 (mixed_bfloat16 for the transforms)
    hyper_channels: int = 64         # hyperprior only: K, channels of z
    residual_stages: list | None = None  # where E and D have residual blocks (None: the model's default)
    gains_from_lmbdas: bool = False  # start each rate's gains at sqrt(lambda_r / lambda_mid) (not with init)
    widen_from: str | None = None    # start from this narrower shipped codec, widened (course_lib.widening)


MODELS = ("factorized", "hyperprior")


def build_codec(config: TrainConfig, precision: str | None = None):
    """The untrained, built codec a :class:`TrainConfig` describes (``precision`` overrides the config's).

    Used by the command line (``train``, ``ship``)."""
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}: one of {MODELS}")
    options = dict(channels=config.channels, latent_channels=config.latent_channels,
                   num_rates=len(config.lmbdas), precision=precision or config.precision)
    if config.residual_stages is not None:
        options["residual_stages"] = tuple(config.residual_stages)
    if config.model == "hyperprior":
        codec = HyperpriorCodec(hyper_channels=config.hyper_channels, **options)
    else:
        codec = LearnedCodec(**options)
    codec.build((None, None, None, 3))
    return codec


def warm_start_transforms(codec, source: str, lmbdas) -> dict:
    """Start a codec's encoder and decoder from a shipped codec's, with gains fitted to new lambdas.

    ``source``: a model name in ``data/weights/manifest.json`` or a
    ``.weights.h5`` path with a manifest entry (its checksums are verified).
    Layers are copied by name and must have the same shapes (same N, M and
    residual stages). The source's gains were learned for its own lambdas;
    per channel, log g is fitted as a straight line in log lambda and read at
    the new ``lmbdas`` (extrapolated beyond the source's ladder), for the
    gains and the inverse gains alike. Returns the source's provenance
    (:func:`course_lib.registry.weights_provenance`). Used by the command line (``train --init-transforms``).
    """
    folder, name, entry = find_entry(source)
    donor = load_codec(source)
    source_lmbdas = np.asarray(entry.get("training", {}).get("lmbdas", []), np.float64)
    if source_lmbdas.size != donor.num_rates or donor.num_rates < 2:
        raise ValueError(f"{name}: its manifest needs one lambda per rate point to fit gains from")
    for target, origin in ((codec.encoder, donor.encoder), (codec.decoder, donor.decoder)):
        names = [layer.name for layer in target.stack]
        if names != [layer.name for layer in origin.stack]:
            raise ValueError(f"{name}: {origin.name} layers {[l.name for l in origin.stack]} differ from {names}")
        for mine, theirs in zip(target.stack, origin.stack):
            mine.set_weights(theirs.get_weights())  # raises on a shape mismatch
    design = np.stack([np.ones_like(source_lmbdas), np.log(source_lmbdas)], axis=1)   # (R_src, 2)
    new = np.stack([np.ones(len(lmbdas)), np.log(np.asarray(lmbdas, np.float64))], axis=1)
    for variable, donor_variable in ((codec.log_gain, donor.log_gain), (codec.log_inverse_gain, donor.log_inverse_gain)):
        fit, *_ = np.linalg.lstsq(design, keras.ops.convert_to_numpy(donor_variable).astype(np.float64), rcond=None)
        variable.assign((new @ fit).astype(np.float32))
    return weights_provenance(folder / entry["file"])


def warm_start_widened(codec, source: str, lmbdas, seed: int = 0) -> dict:
    """Start a wider codec from a narrower shipped one: the same function, more channels to learn with.

    ``source``: a model name in ``data/weights/manifest.json`` or a
    ``.weights.h5`` path with a manifest entry (its checksums are verified).
    Every weight goes into the leading channels of ``codec`` (built, of the
    same kind, residual layout and rate points, at least as wide) by
    :func:`course_lib.widening.copy_into_wider`, so training continues from
    what the source learned. ``lmbdas`` must be the source's (its gains were
    learned for them). Returns the source's provenance
    (:func:`course_lib.registry.weights_provenance`). Used by the command line (``train --widen-from``).
    """
    folder, name, entry = find_entry(source)
    donor = load_codec(source)
    trained_for = (entry.get("training") or {}).get("lmbdas")
    if len(lmbdas) != donor.num_rates or (
            trained_for is not None and not np.allclose(trained_for, lmbdas, rtol=1e-6, atol=0)):
        raise ValueError(f"{name} was trained for the lambdas {trained_for or donor.num_rates}; "
                         f"a widened codec keeps its rate points, got {list(lmbdas)}")
    copy_into_wider(donor, codec, seed=seed)
    return weights_provenance(folder / entry["file"])


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
        if config.init:
            codec.load_weights(config.init)
        elif config.widen_from:
            warm_start_widened(codec, config.widen_from, config.lmbdas, seed=config.seed)
        elif config.init_transforms:
            warm_start_transforms(codec, config.init_transforms, config.lmbdas)
        elif config.gains_from_lmbdas:
            codec.initialize_gains(config.lmbdas)
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            [drop_step], [config.learning_rate, config.learning_rate / 10])
        trainer = RateDistortionTrainer(codec, config.lmbdas)
        trainer.compile(optimizer=keras.optimizers.Adam(schedule, global_clipnorm=config.clipnorm))
        trainer.built = True  # the codec inside is built; BackupAndRestore requires this flag

    record = fit_resumable(trainer, dataset, out, epochs, config.steps_per_epoch,
                           save=lambda folder: codec.save_weights(str(folder / CODEC_WEIGHTS)),
                           validation_data=val, verbose=verbose)
    return codec, record


def training_command(config: TrainConfig) -> str:
    """The command line that reproduces (or resumes) a run with this configuration (recorded when shipped).

    Used by the command line (``ship``)."""
    parts = ["python -m course_lib.train", f"--data {config.data}", f"--out {config.out}",
             "--lmbda " + " ".join(f"{v:g}" for v in config.lmbdas), f"--steps {config.steps}",
             f"--batch-size {config.batch_size}", f"--crop {config.crop}",
             f"--learning-rate {config.learning_rate:g}", f"--lr-drop-at {config.lr_drop_at:g}",
             f"--steps-per-epoch {config.steps_per_epoch}",
             f"--val-count {config.val_count}", f"--channels {config.channels}",
             f"--latent-channels {config.latent_channels}", f"--seed {config.seed}"]
    if config.model != "factorized":
        parts += [f"--model {config.model}", f"--hyper-channels {config.hyper_channels}"]
    if config.precision != "float32":
        parts.append(f"--precision {config.precision}")
    if config.residual_stages is not None:
        parts.append("--residual-stages " + " ".join(str(s) for s in config.residual_stages))
    if config.gains_from_lmbdas:
        parts.append("--gains-from-lambdas")
    if config.init_transforms:
        parts.append(f"--init-transforms {config.init_transforms}")
    if config.init:
        parts.append(f"--init {config.init}")
    if config.widen_from:
        parts.append(f"--widen-from {config.widen_from}")
    return " ".join(parts)


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
