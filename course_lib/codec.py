"""A real learned codec: y = E(x), y_hat = round(y), x_hat = D(y_hat) (notebooks 03 and 06).

The pieces, each a course concept with its own module:

* :class:`Encoder` E, the analysis transform: four stride-2 convolutions
  (16x downsampling) with GDN after each of the first three and a residual
  block at 1/2, 1/4 and 1/8 resolution (in the spirit of Theis et al. 2017 and
  Cheng et al. 2020's anchor model), ending in ``latent_channels`` channels.
* :class:`Decoder` D, the synthesis transform: the mirror image, upsampling
  with sub-pixel convolutions (a convolution to 4x the channels, then
  depth-to-space; Shi et al. 2016), IGDN and residual blocks, ending in 3
  channels (RGB in [0, 1]).
* quantization (:mod:`course_lib.quantization`): uniform noise in training,
  rounding at test time.
* the entropy model (:class:`course_lib.entropy.FactorizedPrior`) gives the
  rate -sum log2 P(y_hat), and its integer tables drive the range coder
  (:mod:`course_lib.bitstream`) that writes the ``.rcz`` file.
* optional variable rate (Cui et al. 2021, "Asymmetric Gained Deep Image
  Compression with Continuous Rate Adaptation"): ``num_rates`` learned gain
  vectors g_r scale the latents before rounding (y_r = y * g_r) and inverse
  gains g'_r scale them back before D; a continuous rate between two levels
  interpolates the gains geometrically.

Images enter the model as float [0, 1] (B, H, W, 3) with H, W multiples of 16
during training; the inference methods take uint8 images of any size (gray
and RGBA are converted to RGB), pad them to a multiple of 16 by repeating
the edge pixels, and crop the result back. Large images are processed in
overlapping tiles (48 x 48 latents each, plus 4 latents of context) so that
memory stays bounded and the result does not depend on where the tiles fall:
compressing and decompressing a 4000 x 3000 photo with the default model
peaked at about 1.5 GB (measured on the course's 2-core CPU machine).

Defaults (N = 64 channels, M = 128 latent channels) are sized for training
on a laptop CPU; Ballé et al. (2018) use N = 128, M = 192 on GPUs.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from . import bitstream
from .blocks import ResidualBlock
from .bitstream import LATENT_LIMIT, BitstreamError, EntropyTables
from .config import WEIGHTS_DIR, ReproducibilityWarning, onednn_enabled
from .data import MAX_PIXELS, sha256_file, to_rgb8
from .entropy import FactorizedPrior, bits_from_likelihoods
from .gdn import GDN
from .quantization import rate_and_decoder_values
from .tiling import apply_tiled
from .registry import (DEFAULT_MODEL, MANIFEST, WeightsError, _first_line, entry_file, find_entry,  # noqa: F401
                       read_manifest, read_verified, tables_from_bytes, verify_file)

#: Each latent covers a 16x16 block of pixels (four stride-2 steps).
DOWNSAMPLING = 16
TRAINING_QUANTIZATION = ("noise", "ste", "mixed")


# --------------------------------------------------------------------------- transforms
@keras.saving.register_keras_serializable(package="course_lib")
class SubPixelConv2D(layers.Layer):
    """2x upsampling by a sub-pixel convolution (Shi et al. 2016).

    A convolution makes ``4 * filters`` channels, then depth-to-space moves
    each group of 4 channels into a 2x2 block of pixels:
    (B, H, W, C) -> (B, 2H, 2W, filters). Every output pixel sees the same
    number of inputs (no uneven overlap as in a transposed convolution), but
    with independent random kernels for the 4 sub-pixels it would start with a
    period-2 pattern. ``icnr=True`` (the default) removes it with ICNR
    initialisation (Aitken et al. 2017): the 4 sub-pixels start with the same
    kernel, so the fresh layer is "convolve, then copy each pixel into a 2x2
    block"; notebook 06 shows both. Loaded weights replace the initial ones.
    Introduced in notebook 06.
    """

    def __init__(self, filters: int, kernel_size: int = 3, icnr: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.icnr = bool(icnr)
        self.conv = layers.Conv2D(4 * self.filters, self.kernel_size, padding="same", name="conv")

    def build(self, input_shape):
        self.conv.build(input_shape)
        if self.icnr:
            # Depth-to-space puts channel (2 dy + dx) * filters + c at sub-pixel (dy, dx):
            # tiling one kernel 4 times along the channels gives every sub-pixel the same filter.
            kernel = ops.convert_to_numpy(self.conv.kernel)
            self.conv.kernel.assign(np.tile(kernel[..., :self.filters], (1, 1, 1, 4)))

    def call(self, x):
        return ops.depth_to_space(self.conv(x), 2)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, icnr=self.icnr)
        return config


class LayerStack(layers.Layer):
    """A readable chain of named layers in ``self.stack`` (like ``keras.Sequential``, but a plain layer).

    The transforms of notebooks 03, 06 and 12 are stacks; ``course_lib.complexity`` walks them.
    """

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.stack:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, x):
        for layer in self.stack:
            x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.stack:
            shape = layer.compute_output_shape(shape)
        return shape


@keras.saving.register_keras_serializable(package="course_lib")
class Encoder(LayerStack):
    """E, the analysis transform: image (B, H, W, 3) in [0, 1] -> latents (B, H/16, W/16, M).

    conv5x5/2 -> GDN -> residual block, three times (N channels), then
    conv5x5/2 to M latent channels. H and W must be multiples of 16.
    Introduced in notebook 03.
    """

    def __init__(self, channels: int = 64, latent_channels: int = 128, residual_stages=(0, 1, 2), **kwargs):
        super().__init__(**kwargs)
        self.channels, self.latent_channels = int(channels), int(latent_channels)
        self.residual_stages = _check_stages(residual_stages)
        self.stack = []
        for i in range(3):
            # GDN's normalisation and the latents stay float32 under a mixed_bfloat16
            # policy: a sum of squares and the quantizer's input need the precision.
            self.stack += [layers.Conv2D(self.channels, 5, strides=2, padding="same", name=f"downsample_{i}"),
                           GDN(name=f"gdn_{i}", dtype="float32")]
            if i in self.residual_stages:
                self.stack.append(ResidualBlock(self.channels, name=f"residual_{i}"))
        self.stack.append(layers.Conv2D(self.latent_channels, 5, strides=2, padding="same", name="downsample_3",
                                        dtype="float32"))

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, latent_channels=self.latent_channels,
                      residual_stages=list(self.residual_stages))
        return config


@keras.saving.register_keras_serializable(package="course_lib")
class Decoder(LayerStack):
    """D, the synthesis transform: latents (B, h, w, M) -> image (B, 16h, 16w, 3), about [0, 1].

    Mirrors :class:`Encoder`: sub-pixel conv 2x up -> IGDN -> residual block,
    three times (N channels), then a sub-pixel convolution to 3 channels.
    The output is not clipped (clipping would stop gradients during training).
    Introduced in notebook 06.
    """

    def __init__(self, channels: int = 64, residual_stages=(0, 1, 2), **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.residual_stages = _check_stages(residual_stages)
        self.stack = []
        for i in range(3):
            self.stack += [SubPixelConv2D(self.channels, name=f"upsample_{i}"),
                           GDN(inverse=True, name=f"igdn_{i}", dtype="float32")]
            # After upsample_i the resolution is 1/2^(3 - i): stage 2 - i, as in the encoder.
            if 2 - i in self.residual_stages:
                self.stack.append(ResidualBlock(self.channels, name=f"residual_{i}"))
        # The output stays float32: at 35 dB and more the error is below bfloat16's step near 1.
        self.stack.append(SubPixelConv2D(3, name="upsample_3", dtype="float32"))

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, residual_stages=list(self.residual_stages))
        return config


def _check_stages(stages) -> tuple:
    """Residual-block positions of :class:`Encoder`/:class:`Decoder`: a subset of 0, 1, 2.

    Stage s is the resolution 1/2^(s + 1): 0 = 1/2, 1 = 1/4, 2 = 1/8, in both
    transforms. A block costs 2 * 9 * N^2 multiply-adds per pixel of its own
    resolution, so one at 1/2 costs 16 times one at 1/8 (notebook 10).
    """
    stages = tuple(sorted({int(s) for s in stages}))
    if any(s not in (0, 1, 2) for s in stages):
        raise ValueError(f"residual stages must be among 0, 1, 2, got {stages}")
    return stages


# --------------------------------------------------------------------------- the codec
@contextlib.contextmanager
def precision_policy(precision: str):
    """Build layers under a Keras dtype policy: ``"float32"`` or ``"bfloat16"`` (= ``mixed_bfloat16``).

    Under ``mixed_bfloat16`` variables stay float32 and layers compute in
    bfloat16 (about 0.6x the time per training step on a CPU with AVX-512
    BF16); layers created with an explicit ``dtype="float32"`` keep float32.
    Weights saved under either precision load under the other.
    """
    policies = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
    if precision not in policies:
        raise ValueError(f"precision must be one of {sorted(policies)}, got {precision!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policies[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def initial_log_gains(lmbdas, num_rates: int) -> np.ndarray:
    """log g_r = 1/2 log(lambda_r / geometric mean of the lambdas), (num_rates,) float32."""
    lmbdas = np.asarray(lmbdas, np.float64)
    if lmbdas.shape != (num_rates,) or np.any(lmbdas <= 0):
        raise ValueError(f"need {num_rates} positive lambdas, got {list(lmbdas)}")
    log = np.log(lmbdas)
    return (0.5 * (log - log.mean())).astype(np.float32)


@keras.saving.register_keras_serializable(package="course_lib")
class LearnedCodec(keras.Model):
    """The whole learned codec: encoder, quantizer, entropy model, decoder, range coder.

    Args:
        channels: N, feature channels of the transforms.
        latent_channels: M, channels of the latents y.
        num_rates: number of rate levels (gain vector pairs); 1 = a single-rate codec.
        train_quantization: what replaces rounding when ``training=True``:
            ``"noise"`` (uniform noise for rate and decoder; Ballé et al. 2017),
            ``"ste"`` (rounding with straight-through gradients for both), or
            ``"mixed"`` (noise for the rate, straight-through for the decoder;
            Minnen & Singh 2020).
        tile: tile side in latents for the inference methods (one latent =
            16 pixels); larger images are processed tile by tile.
        seed: seed of the training noise.

    ``call(x, training)`` is for training and evaluation of the loss; the
    methods :meth:`compress`, :meth:`decompress`, :meth:`quantized_forward`
    and :meth:`estimate_bits` take uint8 images. Before compressing, freeze the
    entropy model once with :meth:`update_tables` (or load saved tables).
    Introduced in notebook 06.
    """

    #: Latents of context around each tile: covers the receptive fields of E and
    #: D (at most 73 px and 3.6 latents), so tiled results equal untiled ones.
    TILE_HALO = 4

    def __init__(self, channels: int = 64, latent_channels: int = 128, num_rates: int = 1,
                 train_quantization: str = "noise", tile: int = 48, seed: int = 0,
                 residual_stages=(0, 1, 2), precision: str = "float32", **kwargs):
        super().__init__(**kwargs)
        if train_quantization not in TRAINING_QUANTIZATION:
            raise ValueError(f"train_quantization must be one of {TRAINING_QUANTIZATION}, got {train_quantization!r}")
        if not 1 <= int(num_rates) <= 256:
            raise ValueError(f"num_rates must be in 1..256, got {num_rates}")
        self.channels, self.latent_channels = int(channels), int(latent_channels)
        self.num_rates = int(num_rates)
        self.train_quantization = train_quantization
        self.tile = int(tile)
        self.seed = int(seed)
        self.residual_stages = _check_stages(residual_stages)
        self.precision = precision
        with precision_policy(precision):  # the model itself, the gains and the prior stay float32
            self.encoder = Encoder(self.channels, self.latent_channels, self.residual_stages, name="encoder")
            self.decoder = Decoder(self.channels, self.residual_stages, name="decoder")
        self.prior = FactorizedPrior(name="prior")
        # Gains live in the log domain: always positive, and geometric
        # interpolation between rate levels becomes linear interpolation.
        self.log_gain = self.add_weight(name="log_gain", shape=(self.num_rates, self.latent_channels),
                                        initializer="zeros")
        self.log_inverse_gain = self.add_weight(name="log_inverse_gain",
                                                shape=(self.num_rates, self.latent_channels),
                                                initializer="zeros")
        self.noise_seed = keras.random.SeedGenerator(self.seed)
        self.tables: EntropyTables | None = None

    def build(self, input_shape=(None, None, None, 3)):
        self.prior.build(self._build_transforms(input_shape))
        self.built = True

    def _build_transforms(self, input_shape) -> tuple:
        """Build E and D for images of ``input_shape``; returns the latents' shape."""
        self.encoder.build(input_shape)
        latent_shape = self.encoder.compute_output_shape(input_shape)
        self.decoder.build(latent_shape)
        return latent_shape

    # ----------------------------------------------------------------- rates
    def gains(self, rate=0.0):
        """(gain, inverse gain), each (M,), for a rate in [0, num_rates - 1].

        Between levels i and i + 1 the gains are interpolated geometrically:
        g = g_i^(1 - t) * g_{i+1}^t with t = rate - i.
        """
        rate = ops.clip(ops.cast(rate, "float32"), 0.0, float(self.num_rates - 1))
        lower = ops.minimum(ops.floor(rate), float(max(self.num_rates - 2, 0)))
        t = rate - lower
        i = ops.cast(lower, "int32")
        j = ops.minimum(i + 1, self.num_rates - 1)

        def interpolate(table):
            return ops.exp((1.0 - t) * ops.take(table, i, axis=0) + t * ops.take(table, j, axis=0))

        return interpolate(self.log_gain), interpolate(self.log_inverse_gain)

    def initialize_gains(self, lmbdas) -> None:
        """Start each rate level's gains where its lambda puts them (before training from scratch).

        A rate-distortion optimal uniform quantizer's step shrinks like
        1 / sqrt(lambda) (distortion ~ step^2 / 12 traded against lambda), so
        level r starts with g_r = sqrt(lambda_r / lambda_mid) and g'_r = 1 / g_r,
        lambda_mid being the geometric mean of the ladder. With all gains at 1
        short runs leave the rate points bunched together.
        """
        log_gain = initial_log_gains(lmbdas, self.num_rates)
        self.log_gain.assign(np.repeat(log_gain[:, None], self.latent_channels, axis=1))
        self.log_inverse_gain.assign(-np.repeat(log_gain[:, None], self.latent_channels, axis=1))

    def rate_to_byte(self, rate: float) -> int:
        """The header's rate byte for a rate in [0, num_rates - 1].

        Rates are stored in steps of 1 / (255 // (num_rates - 1)), so every
        integer level is exact; other rates snap to the nearest step.
        """
        rate = float(rate)
        if not 0.0 <= rate <= self.num_rates - 1:
            raise ValueError(f"rate must lie in [0, {self.num_rates - 1}] for a model with "
                             f"{self.num_rates} rate level(s), got {rate}")
        return 0 if self.num_rates == 1 else int(round(rate * (255 // (self.num_rates - 1))))

    def byte_to_rate(self, rate_byte: int) -> float:
        """Inverse of :meth:`rate_to_byte`; ``BitstreamError`` for a byte this model never writes."""
        steps = 0 if self.num_rates == 1 else 255 // (self.num_rates - 1)
        if not 0 <= rate_byte <= steps * (self.num_rates - 1):
            raise BitstreamError(f"rate byte {rate_byte} is invalid for a model with {self.num_rates} rate(s)")
        return 0.0 if steps == 0 else rate_byte / steps

    # ----------------------------------------------------------------- training
    def call(self, x, training=False, rate=0.0):
        """Forward pass for the loss.

        Args:
            x: images (B, H, W, 3), float in [0, 1], H and W multiples of 16.
            training: replace rounding by ``train_quantization``.
            rate: rate level in [0, num_rates - 1] (a float or scalar tensor).

        Returns a dict: ``x_hat`` (B, H, W, 3) reconstruction (not clipped),
        ``likelihoods`` (B, H/16, W/16, M) of the quantized latents, ``bits``
        (B,) estimated bits per image and ``bpp`` (B,) bits per pixel.
        """
        height, width = x.shape[1], x.shape[2]
        if (height is not None and height % DOWNSAMPLING) or (width is not None and width % DOWNSAMPLING):
            raise ValueError(f"call() needs sides that are multiples of {DOWNSAMPLING}, got {height}x{width}; "
                             "the inference methods pad any size")
        gain, inverse_gain = self.gains(rate)
        y = ops.cast(self.encoder(x), "float32") * gain
        y_for_rate, y_for_decoder = rate_and_decoder_values(
            y, self.train_quantization if training else "round", self.noise_seed)
        likelihoods = self.prior(y_for_rate)
        x_hat = ops.cast(self.decoder(y_for_decoder * inverse_gain), "float32")
        bits = bits_from_likelihoods(likelihoods, axis=(1, 2, 3))
        pixels = ops.cast(ops.shape(x)[1] * ops.shape(x)[2], bits.dtype)
        return {"x_hat": x_hat, "likelihoods": likelihoods, "bits": bits, "bpp": bits / pixels}

    # ----------------------------------------------------------------- inference pieces
    def _tiled(self, transform, inputs: np.ndarray, scale_in: int, scale_out: int) -> np.ndarray:
        """Apply E or D (``transform``) to a (H, W, C) array in tiles of ``self.tile`` latents with
        :attr:`TILE_HALO` latents of context (:func:`course_lib.tiling.apply_tiled`)."""
        return apply_tiled(lambda batch: ops.convert_to_numpy(transform(batch)), inputs, self.tile, self.TILE_HALO,
                           scale_in, scale_out)

    def _check_ready(self):
        if not self.built:
            self.build()

    def encode(self, image) -> np.ndarray:
        """y = E(x) before the rate gain, float32 (ceil(H/16), ceil(W/16), M).

        The image is converted to RGB, padded to a multiple of 16 by repeating
        its edge pixels, and encoded tile by tile. The gain is the only step of
        the encoder that depends on the rate, so a caller that compresses one
        image at many rates (the slider demo of notebook 09) encodes it once
        and passes the result to :meth:`analyse` or :meth:`compress` as ``encoded``.
        """
        self._check_ready()
        image = to_rgb8(image)
        height, width = image.shape[:2]
        padded = np.pad(image, ((0, -height % DOWNSAMPLING), (0, -width % DOWNSAMPLING), (0, 0)), mode="edge")
        return self._tiled(self.encoder, padded.astype(np.float32) / 255.0, DOWNSAMPLING, 1)

    def analyse(self, image, rate: float = 0.0, encoded: np.ndarray | None = None,
                round_latents: bool = True) -> np.ndarray:
        """Integer latents y_hat = round(E(x) * g) of a uint8 image: (ceil(H/16), ceil(W/16), M) int32.

        ``encoded``: this image's :meth:`encode`, to skip the encoder.
        ``round_latents=False``: return the gained float latents E(x) * g instead.
        Introduced in notebook 06.
        """
        if encoded is None:
            y = self.encode(image)
        else:
            height, width = np.shape(image)[:2]
            y = np.asarray(encoded, np.float32)
            expected = (-(-height // DOWNSAMPLING), -(-width // DOWNSAMPLING), self.latent_channels)
            if y.shape != expected:
                raise ValueError(f"encoded has shape {y.shape}; a {height}x{width} image needs {expected}")
        gain, _ = self.gains(rate)
        y = y * ops.convert_to_numpy(gain)
        if not np.all(np.isfinite(y)):
            raise ValueError("the encoder produced NaN or infinite latents (broken weights?)")
        if not round_latents:
            return y.astype(np.float32)
        return np.clip(np.round(y), -LATENT_LIMIT, LATENT_LIMIT).astype(np.int32)

    def synthesise(self, latents: np.ndarray, rate: float, height: int, width: int) -> np.ndarray:
        """Reconstruction x_hat = D(y_hat * g') as uint8 RGB (height, width, 3).

        ``latents``: (h, w, M) integers from :meth:`analyse` or a decoded file.
        Introduced in notebook 06.
        """
        self._check_ready()
        _, inverse_gain = self.gains(rate)
        y_hat = np.asarray(latents, np.float32) * ops.convert_to_numpy(inverse_gain)
        x_hat = self._tiled(self.decoder, y_hat, 1, DOWNSAMPLING)[:height, :width]
        # Clip before scaling, and map NaN to black, so that even absurd latents
        # (a crafted file) give a valid image instead of overflow warnings.
        x_hat = np.nan_to_num(np.clip(x_hat, 0.0, 1.0), nan=0.0)
        return np.round(x_hat * 255.0).astype(np.uint8)

    def _snap_rate(self, rate: float) -> tuple[int, float]:
        rate_byte = self.rate_to_byte(rate)
        return rate_byte, self.byte_to_rate(rate_byte)

    # ----------------------------------------------------------------- the codec's interface
    def quantized_forward(self, image, rate: float = 0.0, encoded: np.ndarray | None = None) -> np.ndarray:
        """What the decoder will show: D(round(E(x))) as uint8 RGB, same size as ``image``.

        ``encoded``: this image's :meth:`encode`, to skip the encoder (as in :meth:`analyse`).

        ``decompress(compress(image, rate))`` returns exactly this array (the
        rate is snapped to what the header stores first), in any process on the
        same machine, Keras backend and TensorFlow build with the same oneDNN
        setting (``TF_ENABLE_ONEDNN_OPTS``, see
        :func:`course_lib.config.onednn_enabled`): TensorFlow's oneDNN and
        default kernels sum the convolutions in different orders, so turning
        oneDNN off (as TensorFlow's start-up notice suggests) moves a few
        pixels by 1 level and may move a latent that lies near a rounding
        boundary, changing the file. The decoded integer latents are exact
        everywhere: a file from anywhere decodes, but with another setting,
        hardware or backend a few pixels may differ by 1 level.
        :func:`load_codec` warns when the manifest records another setting.
        Introduced in notebook 06.
        """
        image = to_rgb8(image)
        _, rate = self._snap_rate(rate)
        return self.synthesise(self.analyse(image, rate, encoded), rate, *image.shape[:2])

    def estimate_bits(self, image, rate: float = 0.0) -> float:
        """Rate predicted by the entropy model: -sum log2 P(y_hat) in bits (payload only).

        Uses the float likelihoods of the rounded latents; the file adds the
        16-byte header and the range coder's few bytes of termination.
        """
        _, rate = self._snap_rate(rate)
        latents = self.analyse(image, rate).astype(np.float32)
        return float(ops.convert_to_numpy(bits_from_likelihoods(self.prior(latents[None]))))

    def update_tables(self, **export_options) -> EntropyTables:
        """Freeze the entropy model into integer tables (call after training or loading).

        Options go to :meth:`course_lib.entropy.FactorizedPrior.export_tables`.
        """
        self._check_ready()
        self.tables = self.prior.export_tables(**export_options)
        return self.tables

    def _require_tables(self) -> EntropyTables:
        if self.tables is None:
            raise RuntimeError("no entropy tables: call codec.update_tables() after training "
                               "(or load a saved codec with load_codec)")
        return self.tables

    def compress(self, image, rate: float = 0.0, encoded: np.ndarray | None = None) -> bytes:
        """Compress a uint8 image (H, W, 3), gray or RGBA to ``.rcz`` bytes.

        ``rate`` in [0, num_rates - 1] selects the rate level (higher = more
        bits, if the model was trained that way). ``encoded``: this image's
        :meth:`encode`, to skip the encoder. Introduced in notebook 06.
        """
        tables = self._require_tables()
        image = to_rgb8(image)
        rate_byte, rate = self._snap_rate(rate)
        latents = self.analyse(image, rate, encoded)
        return bitstream.pack(np.transpose(latents, (2, 0, 1)), tables, image.shape[0], image.shape[1], rate_byte)

    def decompress(self, data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
        """Decode ``.rcz`` bytes to a uint8 RGB image (H, W, 3).

        ``max_pixels``: the largest image (H x W pixels) to decode, by default
        the largest the encoder accepts (``course_lib.data.MAX_PIXELS``); a
        file announcing more is refused before anything is allocated.
        Raises :class:`course_lib.bitstream.BitstreamError` (one line) for empty,
        truncated, corrupted or foreign files, files of another model, payloads
        too short for the image they announce or not exactly what the encoder
        produces, and images over ``max_pixels``.
        """
        tables = self._require_tables()
        header, values = bitstream.unpack(data, tables, DOWNSAMPLING, max_pixels)
        rate = self.byte_to_rate(header.rate_byte)
        return self.synthesise(np.transpose(values, (1, 2, 0)), rate, header.height, header.width)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, latent_channels=self.latent_channels, num_rates=self.num_rates,
                      train_quantization=self.train_quantization, tile=self.tile, seed=self.seed,
                      residual_stages=list(self.residual_stages), precision=self.precision)
        return config

    def codec_config(self) -> dict:
        """The constructor arguments that define the architecture (stored in the manifest)."""
        config = {"channels": self.channels, "latent_channels": self.latent_channels, "num_rates": self.num_rates}
        if self.residual_stages != (0, 1, 2):
            config["residual_stages"] = list(self.residual_stages)
        return config


# --------------------------------------------------------------------------- saving and loading
def integer_in(low: int, high: int) -> tuple:
    """A :func:`check_config` rule: an integer (not a bool) in ``low..high``."""
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high,
            f"an integer in {low}..{high}")


def one_of(*choices) -> tuple:
    """A :func:`check_config` rule: one of the given strings."""
    return lambda v: isinstance(v, str) and v in choices, "one of " + ", ".join(map(repr, choices))


#: A :func:`check_config` rule: ``true`` or ``false``.
BOOLEAN = (lambda v: isinstance(v, bool), "true or false")


#: What a codec's manifest ``config`` may hold: key -> (test of the value, what it must be).
#: The bounds refuse what would crash (``"tile": 0``) or exhaust memory at build time.
CODEC_CONFIG = {
    "kind": one_of("factorized", "hyperprior"),
    "channels": integer_in(1, 1024),
    "latent_channels": integer_in(1, 1024),
    "num_rates": integer_in(1, 256),
    "tile": integer_in(1, 1024),
    "seed": integer_in(0, 2 ** 31 - 1),
    "residual_stages": (lambda v: isinstance(v, list) and len(set(map(repr, v))) == len(v)
                        and all(s in (0, 1, 2) and not isinstance(s, bool) for s in v),
                        "a list of distinct stages among 0, 1, 2"),
    "precision": one_of("float32", "bfloat16"),
    "train_quantization": one_of(*TRAINING_QUANTIZATION),
}
#: The hyperprior codec's ``config`` (notebook 12): the factorized keys and ``hyper_channels``.
HYPERPRIOR_CONFIG = {**CODEC_CONFIG, "hyper_channels": integer_in(1, 1024)}


def check_config(config, rules: dict, where: str) -> dict:
    """A manifest entry's ``config`` checked against ``rules`` (key -> (test, what the value must be)).

    Returns a copy. Raises :class:`WeightsError` naming ``where`` (the manifest
    and entry) and the key for a config that is not an object, an unknown key
    or a value of the wrong type or range, so a broken manifest never reaches
    a constructor (where ``"tile": 0`` would surface as a ``ZeroDivisionError``).
    """
    if not isinstance(config, dict):
        raise WeightsError(f"{where}: 'config' must be an object of constructor arguments, got {config!r}")
    for key, value in config.items():
        if key not in rules:
            raise WeightsError(f"{where}: unknown config key {key!r} (known: {', '.join(sorted(rules))})")
        test, expected = rules[key]
        if not test(value):
            raise WeightsError(f"{where}: config {key!r} must be {expected}, got {value!r}")
    return dict(config)


def save_codec(codec: LearnedCodec, name: str, folder=None) -> Path:
    """Save weights, entropy tables and a manifest entry; returns the weights path.

    Writes ``folder/name.weights.h5``, ``folder/name.tables.npz`` and adds
    ``name: {file, sha256, tables, tables_sha256, model_id, config, onednn}`` to
    ``folder/manifest.json`` (``folder`` defaults to ``data/weights``);
    ``onednn`` records whether TensorFlow's oneDNN kernels were on
    (:func:`course_lib.config.onednn_enabled`), which :func:`load_codec` compares.
    Exports the tables first if the codec has none. Introduced in notebook 06.
    """
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tables = codec.tables if codec.tables is not None else codec.update_tables()
    weights = folder / f"{name}.weights.h5"
    codec.save_weights(weights)
    tables_path = tables.save(folder / f"{name}.tables.npz")
    manifest = read_manifest(folder)
    manifest[name] = {"file": weights.name, "sha256": sha256_file(weights),
                      "tables": tables_path.name, "tables_sha256": sha256_file(tables_path),
                      "model_id": tables.model_id, "config": codec.codec_config()}
    onednn = onednn_enabled()
    if onednn is not None:  # the numerical setting its files and figures are made with (quantized_forward)
        manifest[name]["onednn"] = onednn
    scale_tables = getattr(codec, "scale_tables", None)
    if scale_tables is not None:  # the hyperprior codec (notebook 12): the Gaussian's tables too
        scale_path = scale_tables.save(folder / f"{name}.scale_tables.npz")
        manifest[name].update(scale_tables=scale_path.name, scale_tables_sha256=sha256_file(scale_path),
                              model_id=codec.model_key[0])
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return weights


def weights_provenance(path) -> dict:
    """Where a weights file a run started from (``--init``) came from.

    Returns its path and SHA-256 and, when a manifest beside the file lists
    an entry with that checksum (e.g. a copy of ``data/weights``), that
    entry's name and ``training`` record, so a shipped model that continues
    an earlier one keeps the whole chain of commands that produced it.
    """
    path = Path(path)
    digest = sha256_file(path)
    record = {"file": str(path), "sha256": digest}
    try:
        manifest = read_manifest(path.parent)
    except WeightsError:
        manifest = {}
    for name, entry in manifest.items():
        if isinstance(entry, dict) and entry.get("sha256") == digest:
            record.update(name=name, training=entry.get("training"))
            break
    return record


def training_runs(entry: dict) -> list[dict]:
    """The training runs behind a manifest entry, oldest first.

    A run that started from earlier weights (``--init``) records their entry's
    ``training`` under ``training.init.training``; this follows that chain.
    """
    runs, record = [], entry.get("training")
    while isinstance(record, dict):
        runs.append(record)
        init = record.get("init")
        record = init.get("training") if isinstance(init, dict) else None
    return runs[::-1]


def describe_shipped(name: str | None = None, folder=None) -> str:
    """One paragraph on a shipped codec, from its manifest entry only (so no text can drift from it):
    architecture, every training run (steps, wall time), cumulative steps and time, λs, and the Kodak range.
    Introduced in notebook 07."""
    _, name, entry = find_entry(name, folder)
    config = entry.get("config", {})
    runs = training_runs(entry)
    steps = sum(int(r.get("steps", 0)) for r in runs)
    hours = sum(float(r.get("wall_seconds", 0)) for r in runs) / 3600
    kind = config.get("kind", "factorized")
    lines = [f"{name}: {kind} codec, N = {config.get('channels')}, M = {config.get('latent_channels')}, "
             f"{config.get('num_rates')} rate points"]
    if runs:
        each = ", ".join(f"{int(r.get('steps', 0)):,}" for r in runs)
        lines.append(f"trained {steps:,} steps in {len(runs)} run(s) ({each}), {hours:.1f} h on "
                     f"{runs[-1].get('machine', 'an unrecorded machine')}; λ = {runs[-1].get('lmbdas')}")
    kodak = entry.get("kodak")
    if kodak:
        bpp, psnr = [p["bpp"] for p in kodak], [p["psnr"] for p in kodak]
        lines.append(f"Kodak (real files): {min(bpp):.2f}-{max(bpp):.2f} bpp, {min(psnr):.1f}-{max(psnr):.1f} dB")
    return "; ".join(lines)


def load_weights_from_bytes(model: keras.Model, content: bytes, path: Path, name: str) -> None:
    """Load the bytes of a ``.weights.h5`` file (checked by :func:`verify_file`) into a built model.

    Keras 3 loads weights from a path only, so the bytes are written to a
    private temporary folder (readable by this user alone, removed
    afterwards) and loaded from there: what was hashed is what is loaded.
    Raises :class:`WeightsError` naming ``path`` when they do not fit the model.
    """
    with tempfile.TemporaryDirectory(prefix="course_lib_weights_") as private:
        copy = Path(private) / "verified.weights.h5"
        copy.write_bytes(content)
        try:
            model.load_weights(copy)
        except (ValueError, OSError, KeyError, TypeError) as exc:
            raise WeightsError(f"{path}: does not fit model {name!r} as its manifest entry configures it "
                               f"({_first_line(exc)})") from None


def _warn_if_onednn_differs(name: str, entry: dict) -> None:
    """A :class:`ReproducibilityWarning` when the entry records another oneDNN setting than this process's."""
    recorded, current = entry.get("onednn"), onednn_enabled()
    if isinstance(recorded, bool) and current is not None and recorded != current:
        state = {True: "on", False: "off"}
        warnings.warn(f"{name} was measured with TensorFlow's oneDNN kernels {state[recorded]}, this process has "
                      f"them {state[current]} (TF_ENABLE_ONEDNN_OPTS): decoded pixels may differ by one level "
                      "from files and figures made there", ReproducibilityWarning, stacklevel=3)


def load_codec(name_or_path=None, folder=None) -> LearnedCodec:
    """Load a saved codec, verifying the SHA-256 of its weights and tables.

    See :func:`find_entry` for ``name_or_path``. Raises :class:`WeightsError`
    (one line) if anything is missing, a checksum differs, a path in the
    manifest leads outside its folder or a configuration value is invalid.
    Each file is read once and loaded from the bytes whose checksum was
    verified. Warns (:class:`ReproducibilityWarning`) when the entry records
    a oneDNN setting other than this process's (see
    :meth:`LearnedCodec.quantized_forward`). The returned codec has its
    entropy tables loaded and is ready to compress. Introduced in notebook 06.
    """
    folder, name, entry = find_entry(name_or_path, folder)
    where = f"{folder / MANIFEST}: entry {name!r}"
    if "config" not in entry:
        raise WeightsError(f"{where} lacks 'config'")
    kind = entry["config"].get("kind", "factorized") if isinstance(entry["config"], dict) else None
    config = check_config(entry["config"], HYPERPRIOR_CONFIG if kind == "hyperprior" else CODEC_CONFIG, where)
    config.pop("kind", None)
    keys = ["file", "tables"] + (["scale_tables"] if kind == "hyperprior" else [])
    files = {key: read_verified(folder, name, entry, key) for key in keys}
    if kind == "hyperprior":
        from .hyperprior import HyperpriorCodec  # hyperprior builds on this module

        codec = HyperpriorCodec(**config)
    else:
        codec = LearnedCodec(**config)
    codec.build()
    load_weights_from_bytes(codec, files["file"][1], files["file"][0], name)
    codec.tables = tables_from_bytes(files["tables"][1], files["tables"][0])
    tables_path = files["tables"][0]
    if kind == "hyperprior":
        codec.scale_tables = tables_from_bytes(files["scale_tables"][1], files["scale_tables"][0])
        belongs = (codec.tables.channels == codec.hyper_channels
                   and codec.model_key[0] == entry.get("model_id", codec.model_key[0]))
    else:
        belongs = (codec.tables.channels == codec.latent_channels
                   and codec.tables.model_id == entry.get("model_id", codec.tables.model_id))
    if not belongs:
        raise WeightsError(f"{tables_path}: tables do not belong to model {name!r}")
    _warn_if_onednn_differs(name, entry)
    return codec
