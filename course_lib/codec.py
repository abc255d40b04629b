"""A real learned codec: y = E(x), y_hat = round(y), x_hat = D(y_hat) (notebooks 03 and 06).

The pieces, each a course concept with its own module:

* the transforms (:mod:`course_lib.transforms`): :class:`Encoder` E, the
  analysis transform (16x downsampling, GDN, residual blocks, ``latent_channels``
  channels), and :class:`Decoder` D, the synthesis transform, its mirror image
  (sub-pixel convolutions, IGDN, residual blocks, 3 channels of RGB in [0, 1]);
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
overlapping tiles (48 x 48 latents each, plus 4 latents of context;
:mod:`course_lib.tiling`) so that
memory stays bounded and the result does not depend on where the tiles fall:
compressing and decompressing a 4000 x 3000 photo with the default model
peaked at about 1.5 GB (measured on the course's 2-core CPU machine).

Defaults (N = 64 channels, M = 128 latent channels) are sized for training
on a laptop CPU; Ballé et al. (2018) use N = 128, M = 192 on GPUs. Saving and
loading codecs by name (``save_codec``, ``load_codec``) is
:mod:`course_lib.models`' job, above this module and the hyperprior's.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
from keras import ops

from . import bitstream
from .bitstream import LATENT_LIMIT, BitstreamError, EntropyTables
from .data import MAX_PIXELS, to_rgb8
from .entropy import FactorizedPrior, bits_from_likelihoods
from .quantization import rate_and_decoder_values
from .tiling import apply_tiled
from .transforms import Decoder, Encoder, SubPixelConv2D, check_stages

__all__ = ["DOWNSAMPLING", "TRAINING_QUANTIZATION", "LearnedCodec",
           # the transforms live in course_lib.transforms; notebooks 03 and 06 meet them as the codec's parts
           "Encoder", "Decoder", "SubPixelConv2D"]

#: Each latent covers a 16x16 block of pixels (four stride-2 steps).
DOWNSAMPLING = 16
TRAINING_QUANTIZATION = ("noise", "ste", "mixed")


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
        residual_stages, blocks_per_stage: where the transforms' residual
            blocks sit and how many at each (:class:`course_lib.transforms.Encoder`).
        precision: ``"float32"`` or ``"bfloat16"`` for E and D (:func:`precision_policy`).

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
                 residual_stages=(0, 1, 2), precision: str = "float32", blocks_per_stage: int = 1, **kwargs):
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
        self.residual_stages = check_stages(residual_stages)
        self.precision = precision
        with precision_policy(precision):  # the model itself, the gains and the prior stay float32
            self.encoder = Encoder(self.channels, self.latent_channels, self.residual_stages, blocks_per_stage,
                                   name="encoder")
            self.decoder = Decoder(self.channels, self.residual_stages, blocks_per_stage, name="decoder")
        self.blocks_per_stage = self.encoder.blocks_per_stage
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
        g = g_i^(1 - t) * g_{i+1}^t with t = rate - i. A vector of B rates, one per image of a
        batch (training with ``lambda_per_image``), gives gains of shape (B, 1, 1, M).
        """
        rate = ops.clip(ops.cast(rate, "float32"), 0.0, float(self.num_rates - 1))
        per_image = len(ops.shape(rate)) == 1
        lower = ops.minimum(ops.floor(rate), float(max(self.num_rates - 2, 0)))
        t = rate - lower
        i = ops.cast(lower, "int32")
        j = ops.minimum(i + 1, self.num_rates - 1)
        if per_image:
            t = ops.reshape(t, (-1, 1, 1, 1))

        def interpolate(table):
            low, high = ops.take(table, i, axis=0), ops.take(table, j, axis=0)  # (M,), or (B, M) per image
            if per_image:
                low, high = ops.expand_dims(low, (1, 2)), ops.expand_dims(high, (1, 2))
            return ops.exp((1.0 - t) * low + t * high)

        return interpolate(self.log_gain), interpolate(self.log_inverse_gain)

    def initialize_gains(self, lmbdas) -> None:
        """Start each rate level's gains where its lambda puts them (before training from scratch; notebook 07).

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
        """Apply E or D (``transform``) to a (H, W, C) float32 array in tiles of ``self.tile`` latents with
        :attr:`TILE_HALO` latents of context (:func:`course_lib.tiling.apply_tiled`)."""
        function = self._inference_graph(transform, inputs.shape[-1])
        return apply_tiled(lambda batch: ops.convert_to_numpy(function(batch)), inputs, self.tile, self.TILE_HALO,
                           scale_in, scale_out)

    def _inference_graph(self, transform, channels: int):
        """``transform`` (E, D or the hyperprior's h_a) as a TensorFlow graph for float32 batches of
        ``channels`` channels, traced once for every size (cached per layer).

        The graph runs the same kernels as the eager layer, so its result is the same bit for bit, with less
        Python per layer (about 15 % less time for the decoder of a Kodak image). XLA (``jit_compile=True``)
        was no faster on the course's CPU and moved pixels by a level, so it is not used. Anything but a
        Keras layer (a test's spy), or another Keras backend, runs as it is.
        """
        if not isinstance(transform, keras.layers.Layer) or keras.backend.backend() != "tensorflow":
            return transform
        graphs = self.__dict__.get("_inference_graphs")
        if graphs is None:  # kept out of Keras' attribute tracking, and so out of saved weights
            graphs = {}
            object.__setattr__(self, "_inference_graphs", graphs)
        key = (id(transform), int(channels))
        if key not in graphs:
            import tensorflow as tf

            signature = [tf.TensorSpec((None, None, None, int(channels)), tf.float32)]
            graphs[key] = (transform, tf.function(transform, input_signature=signature))  # the layer keeps its id
        return graphs[key][1]

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
        :func:`course_lib.models.load_codec` warns when the manifest records another setting.
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
        return self._code(image, rate, encoded)[0]

    def compress_and_reconstruct(self, image, rate: float = 0.0,
                                 encoded: np.ndarray | None = None) -> tuple[bytes, np.ndarray]:
        """(``compress(image, rate)``, the uint8 RGB picture that file decodes to), from one analysis.

        Equals ``(data, decompress(data))`` bit for bit (see :meth:`quantized_forward`) without running
        the range decoder, and the latents are computed once for the file and the picture. ``encoded`` as
        in :meth:`compress`. Used by the slider demo (notebook 09) for each new rate.
        """
        data, latents, rate, (height, width) = self._code(image, rate, encoded)
        return data, self.synthesise(latents, rate, height, width)

    def _code(self, image, rate, encoded):
        """The file of a uint8 image and what the decoder rebuilds from it:
        (bytes, latents for :meth:`synthesise`, the snapped rate, (H, W))."""
        tables = self._require_tables()
        image = to_rgb8(image)
        rate_byte, rate = self._snap_rate(rate)
        latents = self.analyse(image, rate, encoded)
        data = bitstream.pack(np.transpose(latents, (2, 0, 1)), tables, image.shape[0], image.shape[1], rate_byte)
        return data, latents, rate, image.shape[:2]

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
                      residual_stages=list(self.residual_stages), precision=self.precision,
                      blocks_per_stage=self.blocks_per_stage)
        return config

    def codec_config(self) -> dict:
        """The constructor arguments that define the architecture (stored in the manifest)."""
        config = {"channels": self.channels, "latent_channels": self.latent_channels, "num_rates": self.num_rates}
        if self.residual_stages != (0, 1, 2):
            config["residual_stages"] = list(self.residual_stages)
        if self.blocks_per_stage != 1:
            config["blocks_per_stage"] = self.blocks_per_stage
        return config

