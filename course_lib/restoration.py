"""Restoration: a residual network repairs compressed images, x~ = x^ + F(x^) (notebook 08).

A decoded image x^ (JPEG, or the learned codec) differs from the original x by
artefacts: 8x8 blocks, ringing around edges, smeared colour. A restoration
network learns the *correction* F(x^) ~ x - x^ and adds it back through a
global skip connection (Zhang et al. 2017, DnCNN: "residual learning"); the
correction is small and structured, which is easier to learn than the whole
image (Dong et al. 2015, ARCNN, predict the image itself).

:class:`RestorationNet` is DnCNN without batch normalisation:
conv3x3 + ReLU layers, optionally grouped into residual blocks, and a last
convolution that starts at zero, so that an untrained network is the identity.
To make it cheap enough for a laptop CPU it works on 2x2 groups of pixels
(space-to-depth, as FFDNet does; Zhang, Zuo & Zhang 2018): a 768x512 photo
becomes 384x256 positions with 12 channels, which cuts the cost by 4.

Command line::

    python -m course_lib.restoration train --data DIR --out RUN [--steps S ...]   # resumes from RUN/backup
    python -m course_lib.restoration ship --run RUN [--name restoration] [--kodak DIR]
    python -m course_lib.restoration ship --run RUN --name restoration_learned     # a run on --degradations codec
    python -m course_lib.restoration restore in.jpg out.png [--weights NAME_OR_PATH]
    python -m course_lib.evaluate --restoration --data DIR [--json PATH]           # the Delta-PSNR benchmark

``ship`` copies the run's weights to ``data/weights`` and writes their
manifest entry (``"kind": "restoration"``: file, SHA-256, configuration, how
they were trained, and the Kodak results measured on the spot).

Two networks ship: :data:`DEFAULT_MODEL` learned JPEG's artefacts and
:data:`LEARNED_MODEL` the learned codec's. Each is a specialist: the JPEG
network *loses* PSNR on the learned codec's images (notebook 08 measures
both), so the benchmark and the slider demo pick the network by codec
(:func:`model_for`).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
from keras import layers, ops

from .blocks import ResidualBlock
from .config import WEIGHTS_DIR
from .data import sha256_file, to_rgb8

#: Model loaded by :func:`load_restorer` and :func:`restore` when no weights are named: trained on JPEG q=10-40.
DEFAULT_MODEL = "restoration"
#: The network trained on the shipped learned codec's decoded images (all its rate points).
LEARNED_MODEL = "restoration_learned"
#: JPEG qualities of the benchmark (all four inside the training range 10-40).
BENCHMARK_QUALITIES = (10, 20, 30, 40)


# --------------------------------------------------------------------------- the network
@keras.saving.register_keras_serializable(package="course_lib")
class RestorationNet(keras.Model):
    """x~ = x^ + F(x^): a DnCNN-style restoration network with a global skip.

    Args:
        depth: number of 3x3 convolutions in F (>= 2; even when ``residual_blocks``).
        width: channels of the hidden convolutions.
        residual_blocks: group the hidden convolutions in pairs into
            :class:`course_lib.blocks.ResidualBlock` s (zero-initialised, as in
            EDSR; Lim et al. 2017) instead of a plain conv + ReLU stack.
        global_skip: output x^ + F(x^) (residual learning). ``False`` gives the
            "plain" network of the same size that must output the image itself.
        space_to_depth: side of the pixel groups the network works on (1 =
            full resolution as in DnCNN, 2 = 2x2 groups as in FFDNet).

    Layout: space-to-depth -> conv(width) + ReLU -> hidden layers -> conv(3 s^2)
    -> depth-to-space, where the hidden layers are ``depth - 2`` conv + ReLU or
    ``(depth - 2) / 2`` residual blocks. With ``global_skip`` the last
    convolution starts at zero, so the untrained network is the identity and
    training starts from "change nothing".

    Input (B, H, W, 3), float in [0, 1], H and W multiples of ``space_to_depth``
    -> output (B, H, W, 3), not clipped. :func:`restore` handles uint8 images
    of any size. Introduced in notebook 08.
    """

    def __init__(self, depth: int = 10, width: int = 48, residual_blocks: bool = False,
                 global_skip: bool = True, space_to_depth: int = 2, **kwargs):
        super().__init__(**kwargs)
        if depth < 2 or (residual_blocks and depth % 2):
            raise ValueError(f"depth must be >= 2 (and even with residual blocks), got {depth}")
        if space_to_depth < 1:
            raise ValueError(f"space_to_depth must be >= 1, got {space_to_depth}")
        self.depth, self.width = int(depth), int(width)
        self.residual_blocks, self.global_skip = bool(residual_blocks), bool(global_skip)
        self.space_to_depth = int(space_to_depth)
        # He initialisation keeps the signal of a ReLU stack from shrinking layer by layer (He et al. 2015).
        self.hidden = [layers.Conv2D(self.width, 3, padding="same", activation="relu",
                                     kernel_initializer="he_normal", name="first_conv")]
        if self.residual_blocks:
            self.hidden += [ResidualBlock(self.width, zero_init=True, kernel_initializer="he_normal",
                                          name=f"block_{i + 1}") for i in range((self.depth - 2) // 2)]
        else:
            self.hidden += [layers.Conv2D(self.width, 3, padding="same", activation="relu",
                                          kernel_initializer="he_normal", name=f"conv_{i + 2}")
                            for i in range(self.depth - 2)]
        # A zero last layer makes the residual net the identity at the start; the
        # plain net cannot start there (it would output a black image).
        self.last_conv = layers.Conv2D(3 * self.space_to_depth ** 2, 3, padding="same", name="last_conv",
                                       kernel_initializer="zeros" if self.global_skip else "he_normal")

    def build(self, input_shape=(None, None, None, 3)):
        shape = (None, None, None, 3 * self.space_to_depth ** 2)
        for layer in self.hidden + [self.last_conv]:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def correction(self, x):
        """F(x): the predicted residual x - x^ (B, H, W, 3), in the units of x."""
        s = self.space_to_depth
        # Each s x s group of pixels becomes one position with 3 s^2 channels, and back.
        h = ops.space_to_depth(x, s) if s > 1 else x
        for layer in self.hidden:
            h = layer(h)
        h = self.last_conv(h)
        return ops.depth_to_space(h, s) if s > 1 else h

    def call(self, x):
        s = self.space_to_depth
        height, width = x.shape[1], x.shape[2]
        if (height is not None and height % s) or (width is not None and width % s):
            raise ValueError(f"call() needs sides that are multiples of {s}, got {height}x{width}; "
                             "restore() pads any size")
        return x + self.correction(x) if self.global_skip else self.correction(x)

    def receptive_radius(self) -> int:
        """Pixels of context on each side that can influence one output pixel."""
        # Each 3x3 convolution reaches one position further, a position spans
        # `space_to_depth` pixels, and a pixel may sit anywhere in its group.
        return self.depth * self.space_to_depth + self.space_to_depth - 1

    def restoration_config(self) -> dict:
        """The constructor arguments that define the architecture (stored in the manifest)."""
        return {"depth": self.depth, "width": self.width, "residual_blocks": self.residual_blocks,
                "global_skip": self.global_skip, "space_to_depth": self.space_to_depth}

    def get_config(self):
        config = super().get_config()
        config.update(self.restoration_config())
        return config


# --------------------------------------------------------------------------- restoring uint8 images
def _tiles(size: int, tile: int, multiple: int) -> list[tuple[int, int]]:
    """Split ``size`` into (start, stop) pieces of at most ``tile``, starting at multiples of ``multiple``."""
    count = max(1, math.ceil(size / tile))
    edges = [min(size, round(size * i / count / multiple) * multiple) for i in range(count + 1)]
    edges[-1] = size
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def restore(image, model: RestorationNet | None = None, tile: int = 512) -> np.ndarray:
    """Repair a decoded image: uint8 in, uint8 RGB (H, W, 3) out, same height and width.

    Args:
        image: uint8 (H, W, 3) RGB, or any array :func:`course_lib.data.to_rgb8`
            accepts (gray and RGBA become RGB first), any size down to 1x1.
        model: a :class:`RestorationNet`; default: the shipped weights
            (:func:`load_restorer`, loaded once per process).
        tile: images larger than ``tile`` pixels on a side are processed in
            tiles with a margin of the network's receptive field, so memory stays
            bounded and the result equals the untiled one.

    The image is padded to a multiple of ``model.space_to_depth`` by repeating
    its edge pixels, restored, cropped back, clipped to [0, 255] and rounded.
    Introduced in notebook 08.
    """
    model = model if model is not None else _shipped_restorer()
    rgb = to_rgb8(image)
    height, width = rgb.shape[:2]
    s = model.space_to_depth
    padded = np.pad(rgb, ((0, -height % s), (0, -width % s), (0, 0)), mode="edge").astype(np.float32) / 255.0
    halo = -(-model.receptive_radius() // s) * s
    out = np.empty_like(padded)
    for top, bottom in _tiles(padded.shape[0], tile, s):
        for left, right in _tiles(padded.shape[1], tile, s):
            t0, l0 = max(top - halo, 0), max(left - halo, 0)
            piece = padded[t0:min(bottom + halo, padded.shape[0]), l0:min(right + halo, padded.shape[1])]
            result = ops.convert_to_numpy(model(piece[None], training=False))[0]
            out[top:bottom, left:right] = result[top - t0:bottom - t0, left - l0:right - l0]
    return np.round(np.clip(out[:height, :width], 0.0, 1.0) * 255.0).astype(np.uint8)


def predicted_residual(image, model: RestorationNet | None = None) -> np.ndarray:
    """The correction the network adds, ``restore(image) - image`` as int16 (H, W, 3) in [-255, 255].

    Introduced in notebook 08 (shown as an image there).
    """
    rgb = to_rgb8(image)
    return restore(rgb, model).astype(np.int16) - rgb.astype(np.int16)


# --------------------------------------------------------------------------- degradations
def jpeg_artefacts(image, quality: int) -> np.ndarray:
    """The image after a JPEG round trip (Pillow, 4:2:0 chroma, as ``baselines`` ``jpeg420``).

    uint8 RGB (H, W, 3) in and out. Introduced in notebook 08.
    """
    from .baselines import decode, encode

    return decode(encode(image, "jpeg420", int(quality)))


def make_degrader(kinds: Sequence[str] = ("jpeg",), qualities: tuple[int, int] = (10, 40), codec=None,
                  seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """A function that degrades a batch (B, H, W, 3) of uint8 images, each with a random setting.

    Each image draws one of ``kinds`` uniformly: ``"jpeg"`` (a quality drawn
    uniformly from ``qualities``, both ends included) or ``"codec"``
    (``codec.quantized_forward`` at a whole rate level drawn uniformly from
    0 .. ``codec.num_rates - 1``; needs ``codec``). Introduced in notebook 08.
    """
    kinds = tuple(kinds)
    if not kinds or set(kinds) - {"jpeg", "codec"}:
        raise ValueError(f"kinds must be a non-empty subset of ('jpeg', 'codec'), got {kinds}")
    if "codec" in kinds and codec is None:
        raise ValueError("the 'codec' degradation needs a codec (course_lib.codec.load_codec())")
    low, high = int(qualities[0]), int(qualities[1])
    if not 1 <= low <= high <= 100:
        raise ValueError(f"JPEG qualities must satisfy 1 <= low <= high <= 100, got {qualities}")
    rng = np.random.default_rng(seed)

    def degrade(batch: np.ndarray) -> np.ndarray:
        out = np.empty_like(batch)
        for i, image in enumerate(batch):
            if kinds[rng.integers(len(kinds))] == "jpeg":
                out[i] = jpeg_artefacts(image, rng.integers(low, high + 1))
            else:
                out[i] = codec.quantized_forward(image, float(rng.integers(codec.num_rates)))
        return out

    return degrade


def degraded_pairs(clean_batches, degrade: Callable[[np.ndarray], np.ndarray]):
    """Turn a ``tf.data`` stream of clean float batches into (degraded, clean) pairs.

    ``clean_batches`` yields float32 (B, H, W, 3) in [0, 1] holding whole
    values of 1/255 (e.g. :func:`course_lib.data.training_dataset`); the
    degradation runs in NumPy through ``tf.numpy_function``.
    """
    import tensorflow as tf

    def to_degraded(clean):
        uint8 = np.round(clean * 255.0).astype(np.uint8)
        return degrade(uint8).astype(np.float32) / 255.0

    def pair(clean):
        degraded = tf.numpy_function(to_degraded, [clean], tf.float32)
        return tf.ensure_shape(degraded, clean.shape), clean

    return clean_batches.map(pair).prefetch(2)


# --------------------------------------------------------------------------- training
@dataclass
class RestorationTrainConfig:
    """Everything a restoration training run depends on; written to ``OUT/config.json``."""

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


def psnr_metric(clean, restored):
    """Keras metric: mean PSNR (dB) of a batch of float images in [0, 1]."""
    import tensorflow as tf

    return tf.image.psnr(clean, tf.clip_by_value(restored, 0.0, 1.0), max_val=1.0)


def _validation_pairs(paths, config: RestorationTrainConfig, degrade):
    from .data import load_image
    from .training import _center_crop

    crops = [_center_crop(load_image(p), config.val_crop) for p in paths]
    clean = np.stack([c for c in crops if c.shape[:2] == (config.val_crop, config.val_crop)])
    return degrade(clean).astype(np.float32) / 255.0, clean.astype(np.float32) / 255.0


def _machine() -> str:
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, {platform.system()}"


def train(config: RestorationTrainConfig, verbose: int = 1, command: str | None = None):
    """Train (or resume) a restoration network; returns ``(model, record)``.

    Data: random ``crop`` x ``crop`` crops of the photos in ``config.data``
    (minus ``val_count`` held out), flipped at random, degraded on the fly
    (:func:`make_degrader`). Loss: mean squared error between the output and
    the clean crop. Keras ``fit`` with ``BackupAndRestore``: running the same
    call again resumes after the last finished epoch.

    Files in ``config.out``: ``config.json``, ``backup/`` (resume state),
    ``history.csv``, ``restoration.weights.h5`` (final weights) and
    ``history.json`` (per-epoch metrics, steps, wall time summed over resumed
    runs, the command, the machine, the date, and the validation PSNR of the
    degraded input). Introduced in notebook 08.
    """
    import tensorflow as tf

    from .data import load_image, training_dataset
    from .training import read_history, split_folder

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2))
    keras.utils.set_random_seed(config.seed)

    codec = None
    if "codec" in config.degradations:
        from .codec import load_codec

        codec = load_codec(config.codec)
    train_paths, val_paths = split_folder(config.data, config.val_count)
    clean = training_dataset([load_image(p) for p in train_paths], crop=config.crop,
                             batch_size=config.batch_size, seed=config.seed)
    degrade = make_degrader(config.degradations, config.qualities, codec, seed=config.seed)
    dataset = degraded_pairs(clean, degrade)
    validation = None
    input_psnr = None
    if val_paths:
        # Validation crops get their own degrader, so they are the same in every resumed run.
        val_degraded, val_clean = _validation_pairs(
            val_paths, config, make_degrader(config.degradations, config.qualities, codec, seed=config.seed + 1))
        validation = tf.data.Dataset.from_tensor_slices((val_degraded, val_clean)).batch(config.batch_size)
        input_psnr = float(np.mean(psnr_metric(val_clean, val_degraded)))

    epochs = max(1, math.ceil(config.steps / config.steps_per_epoch))
    model = RestorationNet(config.depth, config.width, config.residual_blocks, config.global_skip,
                           config.space_to_depth)
    model.build()
    if config.init:
        # A warm start; when the run resumes, BackupAndRestore's state replaces these weights.
        model.load_weights(config.init)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, epochs * config.steps_per_epoch,
                                                      alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule, global_clipnorm=config.clipnorm),
                  loss="mse", metrics=[psnr_metric])

    started = time.time()
    model.fit(dataset, epochs=epochs, steps_per_epoch=config.steps_per_epoch, validation_data=validation,
              verbose=verbose, shuffle=False,  # the crops are drawn at random already; a dataset cannot be shuffled
              callbacks=[keras.callbacks.BackupAndRestore(str(out / "backup"), delete_checkpoint=False),
                         keras.callbacks.CSVLogger(str(out / "history.csv"), append=True)])
    model.save_weights(str(out / "restoration.weights.h5"))
    previous = json.loads((out / "history.json").read_text()) if (out / "history.json").exists() else {}
    record = {"history": read_history(out / "history.csv"),
              "wall_seconds": previous.get("wall_seconds", 0.0) + time.time() - started,
              "steps": epochs * config.steps_per_epoch,
              "validation_input_psnr": input_psnr,
              "command": command or previous.get("command"),
              "machine": _machine(),
              "date": time.strftime("%Y-%m-%d")}
    (out / "history.json").write_text(json.dumps(record, indent=2))
    return model, record


# --------------------------------------------------------------------------- saving and loading
def save_restorer(model: RestorationNet, name: str = DEFAULT_MODEL, folder=None, training: dict | None = None,
                  metrics: dict | None = None) -> Path:
    """Save weights and a manifest entry; returns the weights path.

    Writes ``folder/name.weights.h5`` and sets ``name: {kind: "restoration",
    file, sha256, config, training, metrics}`` in ``folder/manifest.json``
    (default folder ``data/weights``), keeping every other entry (the codecs').
    Introduced in notebook 08.
    """
    from .codec import MANIFEST, read_manifest

    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.weights.h5"
    model.save_weights(weights)
    manifest = read_manifest(folder)
    manifest[name] = {"kind": "restoration", "file": weights.name, "sha256": sha256_file(weights),
                      "config": model.restoration_config(), "training": training or {}, "metrics": metrics or {}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return weights


def load_restorer(name_or_path=None, folder=None) -> RestorationNet:
    """Load a saved :class:`RestorationNet`, verifying the SHA-256 of its weights.

    ``name_or_path``: a name in ``folder/manifest.json`` (default
    :data:`DEFAULT_MODEL` in ``data/weights``) or a ``.weights.h5`` path with an
    entry in the manifest beside it. Raises :class:`course_lib.codec.WeightsError`
    when the entry or file is missing, is not a restoration network, the
    checksum differs, its path leads outside the folder or its config is
    invalid; the weights are loaded from the bytes whose checksum was
    verified. Introduced in notebook 08.
    """
    from .codec import (BOOLEAN, MANIFEST, WeightsError, check_config, find_entry, integer_in,
                        load_weights_from_bytes, read_verified)

    folder, name, entry = find_entry(name_or_path if name_or_path is not None else DEFAULT_MODEL, folder)
    where = f"{folder / MANIFEST}: entry {name!r}"
    if entry.get("kind") != "restoration":
        raise WeightsError(f"{where} is not a restoration network")
    if "config" not in entry:
        raise WeightsError(f"{where} lacks 'config'")
    config = check_config(entry["config"], {
        "depth": integer_in(2, 256), "width": integer_in(1, 1024), "residual_blocks": BOOLEAN,
        "global_skip": BOOLEAN, "space_to_depth": integer_in(1, 16)}, where)
    path, content = read_verified(folder, name, entry, "file")
    try:
        model = RestorationNet(**config)
    except ValueError as exc:  # e.g. an odd depth with residual blocks
        raise WeightsError(f"{where}: {exc}") from None
    model.build()
    load_weights_from_bytes(model, content, path, name)
    return model


@functools.lru_cache(maxsize=1)
def _shipped_restorer() -> RestorationNet:
    return load_restorer()


def model_for(codec: str) -> str:
    """The shipped network's name for the decoded images of ``codec`` ("jpeg" or "learned").

    ``"learned"`` gives :data:`LEARNED_MODEL`, ``"jpeg"`` (any JPEG quality)
    :data:`DEFAULT_MODEL`. Introduced in notebook 08.
    """
    names = {"jpeg": DEFAULT_MODEL, "learned": LEARNED_MODEL}
    if codec not in names:
        raise ValueError(f"codec must be one of {sorted(names)}, got {codec!r}")
    return names[codec]


def is_shipped(name: str) -> bool:
    """Whether restoration weights ``name`` are listed in the manifest and their file is present.

    Cheap (reads the manifest, does not load or hash the weights), so the
    slider demo can decide at start-up which codecs to offer.
    """
    from .codec import WeightsError, entry_file, find_entry

    try:
        folder, name, entry = find_entry(name)
        return entry.get("kind") == "restoration" and entry_file(folder, name, entry, "file").is_file()
    except WeightsError:
        return False


# --------------------------------------------------------------------------- evaluation
def evaluate_restoration(model: RestorationNet, images, qualities: Sequence[int] = BENCHMARK_QUALITIES,
                         codec=None, codec_rates: Sequence[float] | None = None, msssim: bool = True,
                         progress: bool = True, codec_model: RestorationNet | None = None) -> dict[str, dict]:
    """How much restoration gains on each degradation, averaged over images.

    Args:
        model: the restoration network.
        images: a list or ``{name: image}`` dict of uint8 RGB arrays.
        qualities: JPEG (4:2:0) qualities; each gives a condition ``"jpeg_q<Q>"``.
        codec: an optional :class:`course_lib.codec.LearnedCodec` with tables;
            each rate in ``codec_rates`` (default: every level) gives a condition
            ``"learned_rate<R>"``, from a real ``.rcz`` file.
        msssim: also measure MS-SSIM (otherwise ``nan``).
        codec_model: the network for the learned codec's rows (default ``model``),
            e.g. ``load_restorer(LEARNED_MODEL)``.

    Returns ``{condition: {"bpp", "psnr_before", "psnr_after", "delta_psnr",
    "msssim_before", "msssim_after", "delta_msssim"}}``: rates in bits per
    pixel of the whole file, PSNR in dB on RGB, MS-SSIM in [0, 1]; means over
    the images (the delta is the mean of the per-image differences).
    Introduced in notebook 08.
    """
    from tqdm.auto import tqdm

    from . import metrics
    from .baselines import compress_with

    images = list(images.values()) if isinstance(images, dict) else list(images)
    images = [to_rgb8(image) for image in images]
    similarity = metrics.ms_ssim if msssim else (lambda a, b: float("nan"))
    conditions = [(f"jpeg_q{q}", "jpeg", q) for q in qualities]
    if codec is not None:
        rates = list(range(codec.num_rates)) if codec_rates is None else list(codec_rates)
        conditions += [(f"learned_rate{r:g}", "codec", r) for r in rates]
    bar = tqdm(total=len(conditions) * len(images), desc="restoration", disable=not progress, leave=False)
    results = {}
    for name, kind, setting in conditions:
        rows = []
        for image in images:
            if kind == "jpeg":
                result = compress_with(image, "jpeg420", setting, msssim=False)
                num_bytes, degraded = result.num_bytes, result.decoded
            else:
                data = codec.compress(image, setting)
                num_bytes, degraded = len(data), codec.decompress(data)
            repaired = restore(degraded, model if kind == "jpeg" or codec_model is None else codec_model)
            rows.append((metrics.bits_per_pixel(num_bytes, image.shape),
                         metrics.psnr(image, degraded), metrics.psnr(image, repaired),
                         similarity(image, degraded), similarity(image, repaired)))
            bar.update()
        bpp, psnr_before, psnr_after, ssim_before, ssim_after = np.mean(rows, axis=0)
        results[name] = {"bpp": float(bpp), "psnr_before": float(psnr_before), "psnr_after": float(psnr_after),
                         "delta_psnr": float(psnr_after - psnr_before), "msssim_before": float(ssim_before),
                         "msssim_after": float(ssim_after), "delta_msssim": float(ssim_after - ssim_before)}
    bar.close()
    return results


def benchmark_summary(results: dict[str, dict], qualities: Sequence[int] = BENCHMARK_QUALITIES) -> dict:
    """The benchmark's JSON: ``{"delta_psnr": {"jpeg_q10": dB, ..., "learned_lowest_rate": dB or None}}``.

    ``learned_lowest_rate`` is the gain at the codec's lowest rate level
    (``learned_rate0``), ``None`` when the codec was not measured.
    """
    delta = {f"jpeg_q{q}": results[f"jpeg_q{q}"]["delta_psnr"] for q in qualities}
    lowest = results.get("learned_rate0")
    delta["learned_lowest_rate"] = None if lowest is None else lowest["delta_psnr"]
    return {"delta_psnr": delta}


def results_table(results: dict[str, dict]) -> str:
    """A text table of :func:`evaluate_restoration`'s results, one row per condition."""
    rows = [f"  {'condition':>16} {'bpp':>7} {'PSNR in':>8} {'PSNR out':>8} {'dPSNR':>7} "
            f"{'MS-SSIM in':>10} {'out':>7} {'dMS-SSIM':>9}"]
    for name, r in results.items():
        rows.append(f"  {name:>16} {r['bpp']:>7.3f} {r['psnr_before']:>8.2f} {r['psnr_after']:>8.2f} "
                    f"{r['delta_psnr']:>+7.2f} {r['msssim_before']:>10.4f} {r['msssim_after']:>7.4f} "
                    f"{r['delta_msssim']:>+9.4f}")
    return "\n".join(rows)


def run_benchmark(data: str, restoration=None, codec_weights=None, json_path=None, limit=None,
                  learned_restoration=None) -> int:
    """The ``python -m course_lib.evaluate --restoration`` command; returns the exit status.

    Loads the images of ``data``, the restoration network ``restoration`` for
    the JPEG rows (name or path; default :data:`DEFAULT_MODEL`), the network
    ``learned_restoration`` for the learned codec's rows (default
    :data:`LEARNED_MODEL` when shipped, otherwise the JPEG network, with a
    note) and the codec ``codec_weights`` (default the shipped one; when none
    is shipped the learned-codec rows are skipped with a note and
    ``learned_lowest_rate`` is null), prints the Delta-PSNR table and
    optionally writes the JSON of :func:`benchmark_summary` plus the full table
    and the networks used. Exit status 2 on missing or bad input.
    """
    from .codec import WeightsError, load_codec
    from .data import ImageLoadError, load_folder

    try:
        images = load_folder(data, limit=limit)
        model = load_restorer(restoration)
    except (FileNotFoundError, ImageLoadError, WeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        codec = load_codec(codec_weights)
    except WeightsError as exc:
        if codec_weights is not None:  # a codec the user named must exist
            print(f"error: {exc}", file=sys.stderr)
            return 2
        codec = None
        print(f"note: no learned codec weights ({exc}); learned-codec rows skipped")
    networks = {"jpeg": str(restoration or DEFAULT_MODEL), "learned": None}
    codec_model = model
    if codec is not None:
        networks["learned"] = str(learned_restoration or LEARNED_MODEL)
        try:
            codec_model = load_restorer(networks["learned"])
        except WeightsError as exc:
            if learned_restoration is not None:  # a network the user named must exist
                print(f"error: {exc}", file=sys.stderr)
                return 2
            networks["learned"] = networks["jpeg"]
            print(f"note: no network trained on the learned codec ({exc}); its rows use the JPEG network")
    started = time.perf_counter()
    print(f"{len(images)} images from {data}; restoration network {model.restoration_config()}, "
          f"{model.count_params():,} parameters; networks used: {networks}")
    results = evaluate_restoration(model, images, codec=codec, codec_model=codec_model)
    summary = benchmark_summary(results)
    print(results_table(results))
    print("\nDelta PSNR (dB, RGB, restored minus decoded):")
    for name, value in summary["delta_psnr"].items():
        print(f"  {name:>20}: " + ("n/a (no codec weights)" if value is None else f"{value:+.2f}"))
    elapsed = time.perf_counter() - started
    print(f"{elapsed:.0f} s")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({**summary, "results": results, "networks": networks, "images": len(images),
                       "seconds": round(elapsed, 1)}, f, indent=2)
        print(f"wrote {json_path}")
    return 0


#: The course photo, JPEG quality and learned-codec rate on which shipped weights are re-checked (no Kodak needed).
CHECK_IMAGE, CHECK_QUALITY, CHECK_RATE = "astronaut", 10, 0


def shipped_check(model: RestorationNet, codec=None) -> dict:
    """PSNR (dB) of :data:`CHECK_IMAGE` before and after restoration.

    Without ``codec`` the degradation is JPEG at :data:`CHECK_QUALITY`; with
    a learned codec it is a real file at rate :data:`CHECK_RATE` (the
    ``"rate"`` key says which). Stored in the manifest entry so that a test
    can check that the shipped weights still give the published result.
    """
    from . import metrics
    from .data import course_photo

    image = course_photo(CHECK_IMAGE)
    if codec is None:
        degraded, setting = jpeg_artefacts(image, CHECK_QUALITY), {"quality": CHECK_QUALITY}
    else:
        degraded, setting = codec.decompress(codec.compress(image, CHECK_RATE)), {"rate": CHECK_RATE}
    return {"image": CHECK_IMAGE, **setting, "psnr_before": metrics.psnr(image, degraded),
            "psnr_after": metrics.psnr(image, restore(degraded, model))}


# --------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course_lib.restoration", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = RestorationTrainConfig(data="", out="")
    train_parser = commands.add_parser("train", help="train (or resume) a restoration network")
    train_parser.add_argument("--data", required=True, help="folder of training photos (never Kodak)")
    train_parser.add_argument("--out", required=True, help="run folder: checkpoints, history, final weights")
    train_parser.add_argument("--steps", type=int, default=defaults.steps)
    train_parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train_parser.add_argument("--crop", type=int, default=defaults.crop, help="training crop side in pixels")
    train_parser.add_argument("--degradations", nargs="+", default=defaults.degradations, choices=["jpeg", "codec"],
                              help="artefacts to remove; several = each crop draws one")
    train_parser.add_argument("--qualities", type=int, nargs=2, default=defaults.qualities, metavar=("LOW", "HIGH"),
                              help="JPEG quality range, both ends included")
    train_parser.add_argument("--codec", help="codec name or .weights.h5 path for the 'codec' degradation")
    train_parser.add_argument("--depth", type=int, default=defaults.depth, help="3x3 convolutions")
    train_parser.add_argument("--width", type=int, default=defaults.width, help="channels")
    train_parser.add_argument("--residual-blocks", action="store_true", help="pair the convolutions into residual blocks")
    train_parser.add_argument("--plain", action="store_true", help="no global skip: output the image itself")
    train_parser.add_argument("--space-to-depth", type=int, default=defaults.space_to_depth)
    train_parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    train_parser.add_argument("--steps-per-epoch", type=int, default=defaults.steps_per_epoch,
                              help="steps between checkpoints/validation")
    train_parser.add_argument("--val-count", type=int, default=defaults.val_count)
    train_parser.add_argument("--init", help="start from these restoration weights (.weights.h5)")
    train_parser.add_argument("--seed", type=int, default=defaults.seed)
    train_parser.add_argument("--quiet", action="store_true", help="one log line per epoch instead of a progress bar")

    ship = commands.add_parser("ship", help="copy a run's weights to data/weights with a manifest entry")
    ship.add_argument("--run", required=True, help="run folder written by `train`")
    ship.add_argument("--name", default=DEFAULT_MODEL)
    ship.add_argument("--folder", help="weights folder (default data/weights)")
    ship.add_argument("--kodak", help="Kodak folder for the metrics (default: course_lib.data.kodak_dir())")
    ship.add_argument("--codec", help="codec weights for the learned-codec rows (default: the run's --codec, "
                                      "else the shipped codec, if any)")

    restore_parser = commands.add_parser("restore", help="repair one image")
    restore_parser.add_argument("input")
    restore_parser.add_argument("output", help="PNG recommended")
    restore_parser.add_argument("--weights", help="restoration model name or .weights.h5 path")
    return parser


def _ship(args) -> int:
    from .codec import WeightsError, find_entry, load_codec, weights_provenance
    from .data import kodak_dir, load_kodak

    run = Path(args.run)
    config = RestorationTrainConfig(**json.loads((run / "config.json").read_text()))
    record = json.loads((run / "history.json").read_text())
    model = RestorationNet(config.depth, config.width, config.residual_blocks, config.global_skip,
                           config.space_to_depth)
    model.build()
    model.load_weights(run / "restoration.weights.h5")
    try:
        # A network trained on a codec's artefacts is measured (and checked) on that codec.
        codec = load_codec(args.codec or (config.codec if "codec" in config.degradations else None))
    except WeightsError as exc:
        if config.degradations == ["codec"]:
            print(f"error: the run was trained on the learned codec only, and it cannot be loaded: {exc}",
                  file=sys.stderr)
            return 2
        print(f"note: no learned codec weights ({exc}); learned-codec rows skipped")
        codec = None
    kodak = Path(args.kodak) if args.kodak else kodak_dir()
    if kodak is None:
        print("error: Kodak not found (pass --kodak DIR)", file=sys.stderr)
        return 2
    results = evaluate_restoration(model, load_kodak(kodak), codec=codec)
    print(results_table(results))
    from .data import image_paths

    history = record["history"]
    training = {"command": record["command"],
                "data": f"{config.data}: {len(image_paths(config.data))} natural photos, {config.val_count} held out "
                        "for validation; never Kodak",
                "steps": record["steps"], "wall_seconds": round(record["wall_seconds"]),
                "machine": record["machine"], "date": record["date"],
                "degradations": config.degradations, "qualities": config.qualities, "crop": config.crop,
                "batch_size": config.batch_size,
                "final_validation": {"input_psnr": round(record["validation_input_psnr"], 3),
                                     "restored_psnr": round(history["val_psnr_metric"][-1], 3)}}
    if config.init:
        training["init"] = weights_provenance(config.init)
    if config.codec and "codec" in config.degradations:
        codec_folder, _, codec_entry = find_entry(config.codec)
        training["codec"] = weights_provenance(codec_folder / codec_entry["file"])
    metrics = {"kodak": {**benchmark_summary(results),
                         "delta_msssim": {name: r["delta_msssim"] for name, r in results.items()},
                         "psnr_before": {name: r["psnr_before"] for name, r in results.items()},
                         "psnr_after": {name: r["psnr_after"] for name, r in results.items()}},
               "check": shipped_check(model, codec if config.degradations == ["codec"] else None)}
    path = save_restorer(model, args.name, args.folder, training=training, metrics=metrics)
    print(f"wrote {path} and its entry {args.name!r} in {path.parent / 'manifest.json'}")
    return 0


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = _parser().parse_args(argv)
    if args.command == "train":
        config = RestorationTrainConfig(
            data=args.data, out=args.out, steps=args.steps, batch_size=args.batch_size, crop=args.crop,
            degradations=args.degradations, qualities=args.qualities, codec=args.codec, depth=args.depth,
            width=args.width, residual_blocks=args.residual_blocks, global_skip=not args.plain,
            space_to_depth=args.space_to_depth, learning_rate=args.learning_rate,
            steps_per_epoch=args.steps_per_epoch, val_count=args.val_count, init=args.init, seed=args.seed)
        if config.init and not Path(config.init).is_file():
            print(f"error: --init {config.init}: no such file", file=sys.stderr)
            return 2
        if config.crop % config.space_to_depth:
            print(f"error: --crop must be a multiple of --space-to-depth ({config.space_to_depth})", file=sys.stderr)
            return 2
        command = "python -m course_lib.restoration " + " ".join(sys.argv[1:] if argv is None else argv)
        _, record = train(config, verbose=2 if args.quiet else 1, command=command)
        last = {k: v[-1] for k, v in record["history"].items() if k != "epoch"}
        print("final:", ", ".join(f"{k}={v:.4g}" for k, v in sorted(last.items())))
        return 0
    if args.command == "ship":
        return _ship(args)
    from .codec import WeightsError
    from .data import ImageLoadError, load_image, save_image

    try:
        image = load_image(args.input)
        save_image(restore(image, load_restorer(args.weights)), args.output)
    except (ImageLoadError, WeightsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.input} -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
