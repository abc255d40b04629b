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

This module holds the network, :func:`restore` (any size, tiled), the
degradations it learns to undo, saving and loading, and the measurement of its
gains (:func:`evaluate_restoration`). Training is
:mod:`course_lib.restoration_training`, shipping :mod:`course_lib.ship`, the
Kodak benchmark :func:`course_lib.evaluate.restoration_benchmark`; the command
line (``python -m course_lib train-restoration|restore|ship|evaluate
--restoration``) is :mod:`course_lib.cli`.

Two networks ship: :data:`DEFAULT_MODEL` learned JPEG's artefacts and
:data:`LEARNED_MODEL` the learned codec's. Each is a specialist: the JPEG
network *loses* PSNR on the learned codec's images (notebook 08 measures
both), so the benchmark and the slider demo pick the network by codec
(:func:`model_for`).
"""

from __future__ import annotations

if __name__ == "__main__":  # `python -m course_lib.restoration train|ship|restore ...`: an alias of the command line
    import runpy
    import sys

    if sys.argv[1:2] == ["train"]:
        sys.argv[1] = "train-restoration"  # `python -m course_lib train` trains a codec
    runpy.run_module("course_lib", run_name="__main__", alter_sys=True)  # `python -m course_lib ...`; exits

import functools
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from . import metrics
from .baselines import compress_with, decode, encode, image_list
from .blocks import ResidualBlock
from .config import WEIGHTS_DIR
from .data import to_rgb8
from .files import sha256_file
from .models import load_weights_from_bytes
from .registry import (BOOLEAN, MANIFEST, WeightsError, check_config, entry_file, find_entry, integer_in, read_manifest,
                       read_verified, write_manifest)
from .progress import progress as progress_line
from .tiling import apply_tiled

__all__ = ["BENCHMARK_QUALITIES", "DEFAULT_MODEL", "LEARNED_MODEL", "RestorationNet", "benchmark_summary",
           "degraded_pairs", "evaluate_restoration", "is_shipped", "jpeg_artefacts", "load_restorer",
           "make_degrader", "model_for", "predicted_residual", "psnr_metric", "restore", "results_table",
           "save_restorer"]

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
    # Tiles start at multiples of s (whole pixel groups) and read a halo of whole groups covering the
    # receptive radius, so the pieces equal the untiled result (course_lib.tiling).
    halo = -(-model.receptive_radius() // s) * s
    out = apply_tiled(lambda batch: ops.convert_to_numpy(model(batch, training=False)), padded, tile, halo,
                      multiple=s)
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
        raise ValueError("the 'codec' degradation needs a codec (course_lib.models.load_codec())")
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
    degradation runs in NumPy through ``tf.numpy_function``. Introduced in notebook 08.
    """
    def to_degraded(clean):
        uint8 = np.round(clean * 255.0).astype(np.uint8)
        return degrade(uint8).astype(np.float32) / 255.0

    def pair(clean):
        degraded = tf.numpy_function(to_degraded, [clean], tf.float32)
        return tf.ensure_shape(degraded, clean.shape), clean

    return clean_batches.map(pair).prefetch(2)


def psnr_metric(clean, restored):
    """Keras metric: mean PSNR (dB) of a batch of float images in [0, 1]. Introduced in notebook 08."""
    return tf.image.psnr(clean, tf.clip_by_value(restored, 0.0, 1.0), max_val=1.0)


# --------------------------------------------------------------------------- saving and loading
def save_restorer(model: RestorationNet, name: str = DEFAULT_MODEL, folder=None, training: dict | None = None,
                  metrics: dict | None = None) -> Path:
    """Save weights and a manifest entry; returns the weights path.

    Writes ``folder/name.weights.h5`` and sets ``name: {kind: "restoration",
    file, sha256, config, training, metrics}`` in ``folder/manifest.json``
    (default folder ``data/weights``), keeping every other entry (the codecs').
    Introduced in notebook 08.
    """
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.weights.h5"
    model.save_weights(weights)
    manifest = read_manifest(folder)
    manifest[name] = {"kind": "restoration", "file": weights.name, "sha256": sha256_file(weights),
                      "config": model.restoration_config(), "training": training or {}, "metrics": metrics or {}}
    write_manifest(folder, manifest)
    return weights


def load_restorer(name_or_path=None, folder=None) -> RestorationNet:
    """Load a saved :class:`RestorationNet`, verifying the SHA-256 of its weights.

    ``name_or_path``: a name in ``folder/manifest.json`` (default
    :data:`DEFAULT_MODEL` in ``data/weights``) or a ``.weights.h5`` path with an
    entry in the manifest beside it. Raises :class:`course_lib.registry.WeightsError`
    when the entry or file is missing, is not a restoration network, the
    checksum differs, its path leads outside the folder or its config is
    invalid; the weights are loaded from the bytes whose checksum was
    verified. Introduced in notebook 08.
    """
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
    slider demo can decide at start-up which codecs to offer. Introduced in notebook 08.
    """
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
    images = image_list(images)
    similarity = metrics.ms_ssim if msssim else (lambda a, b: float("nan"))
    conditions = [(f"jpeg_q{q}", "jpeg", q) for q in qualities]
    if codec is not None:
        rates = list(range(codec.num_rates)) if codec_rates is None else list(codec_rates)
        conditions += [(f"learned_rate{r:g}", "codec", r) for r in rates]
    jobs = [(condition, image) for condition in conditions for image in images]
    rows_of = {name: [] for name, _, _ in conditions}
    for (name, kind, setting), image in progress_line(jobs, desc="restoration", enabled=progress):
        if kind == "jpeg":
            result = compress_with(image, "jpeg420", setting, msssim=False)
            num_bytes, degraded = result.num_bytes, result.decoded
        else:
            data = codec.compress(image, setting)
            num_bytes, degraded = len(data), codec.decompress(data)
        repaired = restore(degraded, model if kind == "jpeg" or codec_model is None else codec_model)
        rows_of[name].append((metrics.bits_per_pixel(num_bytes, image.shape),
                              metrics.psnr(image, degraded), metrics.psnr(image, repaired),
                              similarity(image, degraded), similarity(image, repaired)))
    results = {}
    for name, rows in rows_of.items():
        bpp, psnr_before, psnr_after, ssim_before, ssim_after = np.mean(rows, axis=0)
        results[name] = {"bpp": float(bpp), "psnr_before": float(psnr_before), "psnr_after": float(psnr_after),
                         "delta_psnr": float(psnr_after - psnr_before), "msssim_before": float(ssim_before),
                         "msssim_after": float(ssim_after), "delta_msssim": float(ssim_after - ssim_before)}
    return results


def benchmark_summary(results: dict[str, dict], qualities: Sequence[int] = BENCHMARK_QUALITIES) -> dict:
    """The benchmark's JSON: ``{"delta_psnr": {"jpeg_q10": dB, ..., "learned_lowest_rate": dB or None}}``.

    ``learned_lowest_rate`` is the gain at the codec's lowest rate level
    (``learned_rate0``), ``None`` when the codec was not measured. Used by the command line
    (``evaluate --restoration``, ``ship``).
    """
    delta = {f"jpeg_q{q}": results[f"jpeg_q{q}"]["delta_psnr"] for q in qualities}
    lowest = results.get("learned_rate0")
    delta["learned_lowest_rate"] = None if lowest is None else lowest["delta_psnr"]
    return {"delta_psnr": delta}


def results_table(results: dict[str, dict]) -> str:
    """A text table of :func:`evaluate_restoration`'s results, one row per condition. Introduced in notebook 08."""
    rows = [f"  {'condition':>16} {'bpp':>7} {'PSNR in':>8} {'PSNR out':>8} {'dPSNR':>7} "
            f"{'MS-SSIM in':>10} {'out':>7} {'dMS-SSIM':>9}"]
    for name, r in results.items():
        rows.append(f"  {name:>16} {r['bpp']:>7.3f} {r['psnr_before']:>8.2f} {r['psnr_after']:>8.2f} "
                    f"{r['delta_psnr']:>+7.2f} {r['msssim_before']:>10.4f} {r['msssim_after']:>7.4f} "
                    f"{r['delta_msssim']:>+9.4f}")
    return "\n".join(rows)
