"""What a codec training run starts from, without TensorFlow: its configuration, loss, codec and first weights.

:class:`TrainConfig` (everything a run depends on, ``RUN/config.json``), :func:`rd_loss`, the
codec a configuration builds (:func:`build_codec`), the weights it can start from (a shipped
codec's transforms, :func:`warm_start_transforms`, or a narrower shipped codec widened,
:func:`warm_start_widened`) and the command line that reproduces it (:func:`training_command`).
Both training loops use them: :mod:`course_lib.training` (``keras.Model.fit`` on TensorFlow) and
:mod:`course_lib.device_training` (any Keras backend, e.g. JAX on a GPU machine without
TensorFlow); :mod:`course_lib.training` re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np

from .codec import LearnedCodec
from .hyperprior import HyperpriorCodec
from .models import load_codec
from .registry import find_entry, weights_provenance
from .widening import copy_into_wider

__all__ = ["COMPRESSAI_LAMBDAS", "MODELS", "TrainConfig", "build_codec", "psnr_from_mse", "rate_distortion_terms",
           "image_rates", "rd_loss", "start_provenance",
           "start_weights", "training_command", "warm_start_transforms", "warm_start_widened"]


#: Lambdas of CompressAI's bmshj2018 models, qualities 1..8 (MSE on the 0-255 scale).
COMPRESSAI_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)


def rd_loss(bpp, mse255, lmbda):
    """The rate-distortion loss ``bpp + lmbda * mse255`` (per image or batch means). Introduced in notebook 07."""
    return bpp + lmbda * mse255


def rate_distortion_terms(outputs: dict, images, lmbda):
    """(loss, mean bpp, mean MSE on the 0-255 scale) of a batch (B, H, W, 3) in [0, 1] from the codec's
    ``outputs`` (``bits`` per image and ``x_hat``), in ``keras.ops``: the same numbers under any backend.

    Used by both trainers, :class:`course_lib.training.RateDistortionTrainer` (notebook 07) and the
    command line's ``device_training``.
    """
    shape = keras.ops.shape(images)
    bpp = outputs["bits"] / keras.ops.cast(shape[1] * shape[2], "float32")
    mse255 = keras.ops.mean(keras.ops.square(outputs["x_hat"] - images), axis=(1, 2, 3)) * 255.0 ** 2
    return keras.ops.mean(rd_loss(bpp, mse255, lmbda)), keras.ops.mean(bpp), keras.ops.mean(mse255)


def image_rates(batch_size, num_rates: int, shuffle):
    """The rate point of each image of a batch when each image draws its own: ``arange(B) % num_rates`` in an
    order ``shuffle`` makes random (``tf.random.shuffle``, or a NumPy generator's ``permutation``).

    Every rate point comes equally often in a batch of B = ``num_rates`` images (or a multiple); a batch
    that draws one rate point trains some rates in bursts and others not at all. Used by both trainers
    (:class:`course_lib.training.RateDistortionTrainer`, notebook 07; ``device_training``).
    """
    return shuffle(keras.ops.arange(batch_size, dtype="int32") % num_rates)


def psnr_from_mse(mse255):
    """PSNR in dB of a mean squared error on the 0-255 scale, ``10 log10(255² / MSE)`` (MSE floored at
    1e-10), in ``keras.ops``: the trainers' progress metric (notebook 07; ``device_training``)."""
    return 10.0 * keras.ops.log10(255.0 ** 2 / keras.ops.maximum(mse255, 1e-10))


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
    lambda_per_image: bool = False   # each image of a batch draws its own rate point, not one per batch


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


def start_weights(codec, config: TrainConfig) -> None:
    """Give a built codec the weights its run starts from, as ``config`` says.

    ``init`` (a ``.weights.h5``), else ``widen_from`` (:func:`warm_start_widened`), else
    ``init_transforms`` (:func:`warm_start_transforms`), else gains from the lambdas when
    ``gains_from_lmbdas``; otherwise the codec keeps its fresh weights. Used by the command line
    (``train``, ``device_training``).
    """
    if config.init:
        codec.load_weights(config.init)
    elif config.widen_from:
        warm_start_widened(codec, config.widen_from, config.lmbdas, seed=config.seed)
    elif config.init_transforms:
        warm_start_transforms(codec, config.init_transforms, config.lmbdas)
    elif config.gains_from_lmbdas:
        codec.initialize_gains(config.lmbdas)


def start_provenance(config: TrainConfig) -> dict:
    """Where a run starts, for its record: ``{"init": ..., "init_transforms": ...}`` as far as ``config`` has them.

    Each value is :func:`course_lib.registry.weights_provenance` of the start's weights (path, SHA-256 and,
    for shipped weights, their name and training record). A widened start is recorded as ``init`` (the
    chain :func:`course_lib.registry.training_runs` follows: the widened codec starts as the same
    function, so the source's steps are part of its training) with ``widened_from``, the source's
    configuration. Measured when training starts and kept in the run's record, because a name such as
    ``learned_hyperprior`` may point at other weights by the time the run is shipped. Used by the
    command line (``train``, ``ship``).
    """
    start = {}
    if config.init:
        start["init"] = weights_provenance(config.init)
    if config.init_transforms:
        folder, _, entry = find_entry(config.init_transforms)
        start["init_transforms"] = weights_provenance(folder / entry["file"])
    if config.widen_from:
        folder, _, entry = find_entry(config.widen_from)
        start["init"] = {**weights_provenance(folder / entry["file"]), "widened_from": entry.get("config")}
    return start


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
    if config.lambda_per_image:
        parts.append("--lambda-per-image")
    return " ".join(parts)
