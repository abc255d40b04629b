"""The scale hyperprior: side information that tells the decoder each latent's scale (notebook 12).

Ballé, Minnen, Singh, Hwang & Johnston (2018), "Variational image compression
with a scale hyperprior", with the mean of Minnen, Ballé & Toderici (2018)
(their "mean-scale" model without the autoregressive context):

    y = E(x) * g_r                     the gained latents (rate level r, as in the factorized codec)
    z = h_a(y),  z_hat = round(z)      a small second latent, coded with a factorized prior
    (mu, sigma) = h_s(z_hat)           a mean and a scale for every latent of y
    y_hat = round(y - mu) + mu         coded with a Gaussian N(mu, sigma^2) per latent
    x_hat = D(y_hat * g'_r)

The factorized codec (:mod:`course_lib.codec`) uses one density per channel
for every image and every position; here a few bits of z describe where the
image is busy and where it is flat, and y is coded with densities fitted to
that. The rate is R = bits(z_hat) + bits(y_hat | z_hat).

Coding must be bit-exact between encoder and decoder: a scale that rounds
differently on the decoder's machine would pick another table and derail the
range decoder. So the coder never uses the network's float32 output directly:

* h_s is evaluated in float64 with NumPy (:func:`hyper_synthesis_float64`),
  whose result differs between machines only in the last bits; a scale then
  picks a row of a fixed, log-spaced table (:data:`SCALE_TABLE`), and only a
  scale within ~1e-15 (relative) of a boundary could pick another row
  (in float32, about 1 latent in 10^5 does; Ballé et al. 2019 remove the risk
  with integer networks). Only the index must match: a mean that differs in
  its last bit moves y_hat by as much, and desynchronises nothing;
* each row's Gaussian is frozen into integer counts (:func:`gaussian_tables`),
  saved beside the weights with a checksum, like the factorized tables.

Training runs under Keras' ``mixed_bfloat16`` policy where it is safe (the
convolutions of E and D) and in float32 where it is not (GDN's normalisation,
the latents, h_a, h_s, the entropy models and the likelihoods).
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
from keras import layers, ops
from scipy.special import ndtr

try:
    from threadpoolctl import ThreadpoolController  # pinned in requirements.txt (and a scikit-learn dependency)
except ImportError:  # then NumPy's BLAS keeps its threads in h_s (slower on a busy 2-core machine, same bits)
    ThreadpoolController = None

from . import bitstream
from .bitstream import LATENT_LIMIT, EntropyTables
from .codec import DOWNSAMPLING, LearnedCodec
from .data import MAX_PIXELS, to_rgb8
from .entropy import bits_from_likelihoods, integer_pmf
from .gdn import lower_bound
from .quantization import rate_and_decoder_values
from .transforms import LayerStack, SubPixelConv2D

__all__ = ["SCALE_BOUND", "SCALE_TABLE", "GaussianConditional", "HyperEncoder", "HyperDecoder",
           "HyperpriorCodec", "gaussian_tables", "scale_indices", "hyper_synthesis_float64"]

#: Smallest scale sigma the model uses (as in CompressAI): a narrower Gaussian would
#: put nearly all its mass on one integer and gain nothing.
SCALE_BOUND = 0.11
#: The scales the coder knows: 64 values, log-spaced from 0.11 to 256.
SCALE_TABLE = np.exp(np.linspace(np.log(SCALE_BOUND), np.log(256.0), 64))
#: z has 4x fewer rows and columns than y: two stride-2 steps in h_a.
HYPER_DOWNSAMPLING = 4
_blas = None  # the ThreadpoolController of _one_blas_thread


# --------------------------------------------------------------------------- the Gaussian conditional
def _standard_normal_cdf(x):
    # erfc keeps its precision deep in the lower tail, where 1 + erf(x) would cancel.
    return 0.5 * ops.erfc(-x / np.sqrt(2.0))


@keras.saving.register_keras_serializable(package="course_lib")
class GaussianConditional(layers.Layer):
    """Likelihoods of latents under N(mu, sigma^2), each integer bin integrated (notebook 12).

    ``call(y, means, scales)`` -> likelihoods, same shape as ``y``:

        P(y) = Phi((1/2 - |y - mu|) / sigma) - Phi((-1/2 - |y - mu|) / sigma)

    (the mass of the unit bin around y, computed on the lower side where both
    terms are small and precise). ``scales`` are bounded below by
    :data:`SCALE_BOUND`, likelihoods by ``likelihood_bound``. The layer has
    no weights: everything it needs comes from h_s.
    """

    def __init__(self, likelihood_bound: float = 1e-9, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.likelihood_bound = float(likelihood_bound)

    def call(self, y, means, scales):
        scales = lower_bound(scales, SCALE_BOUND)
        distance = ops.abs(y - means)
        upper = _standard_normal_cdf((0.5 - distance) / scales)
        lower = _standard_normal_cdf((-0.5 - distance) / scales)
        return lower_bound(upper - lower, self.likelihood_bound)

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        config.update(likelihood_bound=self.likelihood_bound)
        return config


def gaussian_tables(precision: int = 16, tail_mass: float = 1e-6, scales=SCALE_TABLE) -> EntropyTables:
    """Integer tables for the range coder, one row per scale of ``scales`` (default :data:`SCALE_TABLE`).

    Row k codes the residual ``round(y - mu)`` under N(0, SCALE_TABLE[k]^2):
    the integers within the central 1 - ``tail_mass`` of the Gaussian, plus the
    escape symbol for the rest (:mod:`course_lib.bitstream` codes escaped values
    exactly). Computed once with SciPy in float64 and saved as integers, so
    every machine codes with the same counts. Introduced in notebook 12.
    """
    scales = np.asarray(scales, np.float64)
    half_width = np.ceil(scales * -_normal_quantile(tail_mass / 2)).astype(int)
    width = int(2 * half_width.max() + 2)
    pmf = np.zeros((scales.size, width), np.int32)
    for k, (scale, half) in enumerate(zip(scales, half_width)):
        values = np.arange(-half, half + 1, dtype=np.float64)
        mass = ndtr((0.5 - np.abs(values)) / scale) - ndtr((-0.5 - np.abs(values)) / scale)
        escape = 2.0 * ndtr(-(half + 0.5) / scale)
        counts = integer_pmf(np.append(mass, escape), 2 ** precision)
        pmf[k, :counts.size] = counts
    tables = EntropyTables(pmf=pmf, offset=(-half_width).astype(np.int32),
                           support_size=(2 * half_width + 1).astype(np.int32), precision=int(precision))
    return tables.validate()


def _normal_quantile(p: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(p))


def scale_indices(scales: np.ndarray, table=SCALE_TABLE) -> np.ndarray:
    """Row of ``table`` (log-spaced; default :data:`SCALE_TABLE`) for each scale: the nearest in log scale, int32.

    Introduced in notebook 12."""
    table = np.asarray(table, np.float64)
    log_table = np.log(table)
    log_scales = np.log(np.clip(np.asarray(scales, np.float64), table[0], table[-1]))
    step = log_table[1] - log_table[0]
    return np.clip(np.round((log_scales - log_table[0]) / step), 0, table.size - 1).astype(np.int32)


# --------------------------------------------------------------------------- hyper transforms
@keras.saving.register_keras_serializable(package="course_lib")
class HyperEncoder(LayerStack):
    """h_a: gained latents y (B, h, w, M) -> z (B, h/4, w/4, K) (Minnen et al. 2018's layout).

    conv3x3 -> ReLU -> conv5x5/2 -> ReLU -> conv5x5/2, K channels. float32.
    Introduced in notebook 12.
    """

    def __init__(self, channels: int = 64, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.channels = int(channels)
        self.stack = [layers.Conv2D(self.channels, 3, padding="same", activation="relu", name="conv_0", dtype="float32"),
                      layers.Conv2D(self.channels, 5, strides=2, padding="same", activation="relu", name="downsample_0",
                                    dtype="float32"),
                      layers.Conv2D(self.channels, 5, strides=2, padding="same", name="downsample_1", dtype="float32")]

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        config.update(channels=self.channels)
        return config


@keras.saving.register_keras_serializable(package="course_lib")
class HyperDecoder(LayerStack):
    """h_s: z_hat (B, h/4, w/4, K) -> (means, scales), each (B, h, w, M).

    sub-pixel up -> ReLU -> sub-pixel up -> ReLU -> conv3x3 to 2M channels
    (first M: means, last M: scales before a softplus). float32. Only
    stride-1 convolutions and depth-to-space, so that
    :func:`hyper_synthesis_float64` can recompute it exactly in NumPy.
    Introduced in notebook 12.
    """

    def __init__(self, channels: int = 64, latent_channels: int = 128, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.channels, self.latent_channels = int(channels), int(latent_channels)
        wide = self.channels * 3 // 2
        self.stack = [SubPixelConv2D(self.channels, name="upsample_0", dtype="float32"),
                      layers.Activation("relu", name="relu_0", dtype="float32"),
                      SubPixelConv2D(wide, name="upsample_1", dtype="float32"),
                      layers.Activation("relu", name="relu_1", dtype="float32"),
                      layers.Conv2D(2 * self.latent_channels, 3, padding="same", name="parameters", dtype="float32")]

    def compute_output_shape(self, input_shape):
        shape = super().compute_output_shape(input_shape)[:-1] + (self.latent_channels,)
        return shape, shape

    def call(self, z_hat):
        means, raw_scales = ops.split(super().call(z_hat), 2, axis=-1)
        return means, ops.softplus(raw_scales)

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        config.update(channels=self.channels, latent_channels=self.latent_channels)
        return config


def _conv_same_float64(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Stride-1 'same' convolution (odd kernel) of (H, W, C_in) in float64 -> (H, W, C_out).

    One matrix product per kernel offset, summed in a fixed order: memory stays
    at the input and output (no k^2-times larger window copy).
    """
    k = kernel.shape[0]
    h, w = x.shape[:2]
    padded = np.pad(x, ((k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    kernel = kernel.astype(np.float64)
    out = np.broadcast_to(np.asarray(bias, np.float64), (h, w, kernel.shape[-1])).copy()
    for i in range(k):
        for j in range(k):
            out += padded[i:i + h, j:j + w] @ kernel[i, j]
    return out


def _depth_to_space(x: np.ndarray) -> np.ndarray:
    """(H, W, 4C) -> (2H, 2W, C), channel (2 dy + dx) C + c to sub-pixel (dy, dx) like ``ops.depth_to_space``."""
    h, w, c4 = x.shape
    return x.reshape(h, w, 2, 2, c4 // 4).transpose(0, 2, 1, 3, 4).reshape(2 * h, 2 * w, c4 // 4)


def _one_blas_thread():
    """A context in which NumPy's BLAS computes on the calling thread only (as it was, without threadpoolctl).

    h_s in float64 is a few hundred small matrix products (one per row and kernel offset). On the course's
    2-core machine OpenBLAS spent more time handing each to a second thread than computing it: 25-35 ms on
    one thread, 0.1-4.5 s on two while another job kept the cores busy, and its idle threads then competed
    with TensorFlow's decoder. The products are the same bits on one thread or two (OpenBLAS shares out rows
    and columns, never the terms of a sum; checked on the shipped model and on random layers).
    """
    global _blas
    if ThreadpoolController is None:
        return contextlib.nullcontext()
    if _blas is None:  # made once: finding the loaded BLAS libraries takes a few milliseconds
        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def hyper_synthesis_float64(hyper_decoder: HyperDecoder, z_hat: np.ndarray):
    """h_s of one image in float64 NumPy: z_hat (h', w', K) -> (means, scales), each (4h', 4w', M).

    The coder's copy of :class:`HyperDecoder` (same weights, same result up to
    float32 rounding). Two machines agree to about 1e-15 relative (BLAS may sum
    in another order), so a scale index can differ only for a scale within
    that distance of a table boundary. Scales are bounded below by
    :data:`SCALE_BOUND`. Introduced in notebook 12.
    """
    x = np.asarray(z_hat, np.float64)
    with _one_blas_thread():
        for layer in hyper_decoder.stack:
            if isinstance(layer, SubPixelConv2D):
                conv = layer.conv
                x = _depth_to_space(_conv_same_float64(x, ops.convert_to_numpy(conv.kernel),
                                                       ops.convert_to_numpy(conv.bias)))
            elif isinstance(layer, layers.Conv2D):
                x = _conv_same_float64(x, ops.convert_to_numpy(layer.kernel), ops.convert_to_numpy(layer.bias))
            else:  # ReLU
                x = np.maximum(x, 0.0)
    means, raw = np.split(x, 2, axis=-1)
    scales = np.logaddexp(0.0, raw)  # softplus
    return means, np.maximum(scales, SCALE_BOUND)


# --------------------------------------------------------------------------- the codec
@keras.saving.register_keras_serializable(package="course_lib")
class HyperpriorCodec(LearnedCodec):
    """A learned codec whose entropy model is a mean-scale hyperprior (notebook 12).

    Shares with :class:`course_lib.codec.LearnedCodec` the transforms' design,
    the variable-rate gains, tiling and padding. Differences:

    * ``prior`` codes z (K = ``hyper_channels`` channels) instead of y;
    * y is coded with a Gaussian per latent, mean and scale from h_s(z_hat);
    * files are ``.rcz`` format version 2 (two range-coded streams);
    * ``residual_stages`` places the transforms' residual blocks (0 = 1/2,
      1 = 1/4, 2 = 1/8 resolution). The default keeps the factorized codec's
      transforms, so that training can start from its shipped weights
      (:func:`course_lib.training.warm_start_transforms`); ``(2,)`` costs far
      less per pixel but must be trained from scratch;
    * ``precision="bfloat16"`` builds E and D under ``mixed_bfloat16`` for
      training on CPUs with AVX-512 BF16 (weights stay float32; a model built
      with either precision loads the other's weights).

    ``call(x, training, rate)`` returns the dict of ``LearnedCodec.call`` plus
    ``bits_z`` and ``bits_y`` (B,), ``scales`` (B, h, w, M). Training draws
    integer rate levels only; a rate between two levels interpolates the gains
    (as for the factorized codec), and h_a and h_s see latents whose scale lies
    between the two levels' - they work there, but were not trained on it.
    """

    def __init__(self, channels: int = 64, latent_channels: int = 128, num_rates: int = 1,
                 hyper_channels: int = 64, residual_stages=(0, 1, 2), precision: str = "float32",
                 train_quantization: str = "mixed", tile: int = 48, seed: int = 0, **kwargs):
        super().__init__(channels=channels, latent_channels=latent_channels, num_rates=num_rates,
                         train_quantization=train_quantization, tile=tile, seed=seed,
                         residual_stages=residual_stages, precision=precision, **kwargs)
        self.hyper_channels = int(hyper_channels)
        self.hyper_encoder = HyperEncoder(self.hyper_channels, name="hyper_encoder")
        self.hyper_decoder = HyperDecoder(self.hyper_channels, self.latent_channels, name="hyper_decoder")
        self.conditional = GaussianConditional(name="conditional")
        self.scale_tables: EntropyTables | None = None

    def build(self, input_shape=(None, None, None, 3)):
        latent_shape = self._build_transforms(input_shape)
        self.hyper_encoder.build(latent_shape)
        hyper_shape = (latent_shape[0], None, None, self.hyper_channels)
        self.prior.build(hyper_shape)
        self.hyper_decoder.build(hyper_shape)
        self.built = True

    # ----------------------------------------------------------------- training
    def call(self, x, training=False, rate=0.0):
        """Forward pass for the loss; x (B, H, W, 3) in [0, 1], H and W multiples of 64.

        Returns ``x_hat``, ``likelihoods`` (of y), ``bits`` = ``bits_z`` + ``bits_y``
        (B,), ``bpp`` (B,), ``scales`` (B, H/16, W/16, M).
        """
        height, width = x.shape[1], x.shape[2]
        step = DOWNSAMPLING * HYPER_DOWNSAMPLING
        if (height is not None and height % step) or (width is not None and width % step):
            raise ValueError(f"call() needs sides that are multiples of {step}, got {height}x{width}; "
                             "the inference methods pad any size")
        gain, inverse_gain = self.gains(rate)
        y = ops.cast(self.encoder(x), "float32") * gain
        z = self.hyper_encoder(y)
        mode = self.train_quantization if training else "round"
        z_for_rate, z_for_decoder = rate_and_decoder_values(z, mode, self.noise_seed)
        means, scales = self.hyper_decoder(z_for_decoder)
        # y is quantized around its predicted mean: y_hat = round(y - mu) + mu.
        y_for_rate, y_for_decoder = rate_and_decoder_values(y - means, mode, self.noise_seed)
        likelihoods_y = self.conditional(y_for_rate, ops.zeros_like(scales), scales)
        likelihoods_z = self.prior(z_for_rate)
        x_hat = ops.cast(self.decoder((y_for_decoder + means) * inverse_gain), "float32")
        bits_y = bits_from_likelihoods(likelihoods_y, axis=(1, 2, 3))
        bits_z = bits_from_likelihoods(likelihoods_z, axis=(1, 2, 3))
        bits = bits_y + bits_z
        pixels = ops.cast(ops.shape(x)[1] * ops.shape(x)[2], bits.dtype)
        return {"x_hat": x_hat, "likelihoods": likelihoods_y, "bits": bits, "bpp": bits / pixels,
                "bits_y": bits_y, "bits_z": bits_z, "scales": scales}

    # ----------------------------------------------------------------- inference pieces
    def hyper_analyse(self, latents_gained: np.ndarray) -> np.ndarray:
        """z_hat = round(h_a(y)) of one image's gained latents (h, w, M) -> int32 (ceil(h/4), ceil(w/4), K).

        y is padded to a multiple of 4 by repeating its edge first.
        """
        h, w = latents_gained.shape[:2]
        padded = np.pad(latents_gained, ((0, -h % HYPER_DOWNSAMPLING), (0, -w % HYPER_DOWNSAMPLING), (0, 0)),
                        mode="edge")
        h_a = self._inference_graph(self.hyper_encoder, self.latent_channels)  # as a graph: same bits, faster
        z = ops.convert_to_numpy(h_a(padded[None].astype(np.float32)))[0]
        if not np.all(np.isfinite(z)):
            raise ValueError("the hyper-encoder produced NaN or infinite values (broken weights?)")
        return np.clip(np.round(z), -LATENT_LIMIT, LATENT_LIMIT).astype(np.int32)

    def side_information(self, z_hat: np.ndarray, height: int, width: int):
        """(means, scales) of the latents of a height x width image, from z_hat, in float64."""
        h, w = bitstream.latent_size(height, width, DOWNSAMPLING)
        means, scales = hyper_synthesis_float64(self.hyper_decoder, z_hat)
        return means[:h, :w], scales[:h, :w]

    def analyse_all(self, image, rate: float = 0.0, encoded: np.ndarray | None = None):
        """Everything the encoder decides for a uint8 image at ``rate``.

        Returns a dict: ``z_hat`` (h', w', K) int32, ``residuals`` round(y - mu)
        (h, w, M) int32, ``means`` and ``scales`` (h, w, M) float64, ``y_hat``
        = residuals + means (what the decoder reconstructs from).
        """
        image = to_rgb8(image)
        y = self.analyse(image, rate, encoded, round_latents=False)
        z_hat = self.hyper_analyse(y)
        means, scales = self.side_information(z_hat, *image.shape[:2])
        residuals = np.clip(np.round(y - means), -LATENT_LIMIT, LATENT_LIMIT).astype(np.int32)
        return {"z_hat": z_hat, "residuals": residuals, "means": means, "scales": scales,
                "y_hat": residuals + means}

    def quantized_forward(self, image, rate: float = 0.0, encoded: np.ndarray | None = None) -> np.ndarray:
        """What the decoder will show: D(y_hat * g') as uint8 RGB, same size as ``image`` (``encoded``: as in
        :meth:`LearnedCodec.quantized_forward`)."""
        image = to_rgb8(image)
        _, rate = self._snap_rate(rate)
        parts = self.analyse_all(image, rate, encoded)
        return self.synthesise(parts["y_hat"], rate, *image.shape[:2])

    def estimate_bits(self, image, rate: float = 0.0) -> float:
        """Rate predicted by the float models: bits(z_hat) + bits(y_hat | z_hat), payload only."""
        return sum(self.estimate_bits_parts(image, rate))

    def estimate_bits_parts(self, image, rate: float = 0.0) -> tuple[float, float]:
        """(bits of z_hat, bits of y_hat given z_hat) predicted by the float models."""
        _, rate = self._snap_rate(rate)
        parts = self.analyse_all(image, rate)
        bits_z = bits_from_likelihoods(self.prior(parts["z_hat"][None].astype(np.float32)))
        likelihoods = self.conditional(parts["residuals"].astype(np.float32),
                                       np.zeros_like(parts["scales"], np.float32),
                                       parts["scales"].astype(np.float32))
        return float(ops.convert_to_numpy(bits_z)), float(ops.convert_to_numpy(bits_from_likelihoods(likelihoods)))

    def update_tables(self, **export_options) -> EntropyTables:
        """Freeze z's factorized prior into integer tables and make the Gaussian scale tables."""
        self.scale_tables = gaussian_tables()
        return super().update_tables(**export_options)

    def _require_tables(self) -> EntropyTables:
        tables = super()._require_tables()
        if self.scale_tables is None:
            raise RuntimeError("no scale tables: call codec.update_tables() after training "
                               "(or load a saved codec with load_codec)")
        return tables

    @property
    def model_key(self) -> bytes:
        """The model's fingerprint in a file's header (first byte) and CRC: a SHA-256 of
        z's tables, the scale tables and h_s's weights (h_s picks y's tables, so it is
        part of y's entropy model: another checkpoint with the same z tables must not
        pass for this one)."""
        import hashlib

        self._require_tables()
        digest = hashlib.sha256(self.tables.fingerprint() + self.scale_tables.fingerprint())
        for weight in self.hyper_decoder.weights:
            digest.update(np.ascontiguousarray(ops.convert_to_numpy(weight), "<f4").tobytes())
        return digest.digest()

    def _code(self, image, rate, encoded):
        """(a version-2 file: z's stream, then y's; y_hat = residuals + means, which the decoder
        rebuilds from; the snapped rate; (H, W)) of a uint8 image, as ``LearnedCodec._code``."""
        self._require_tables()
        image = to_rgb8(image)
        rate_byte, rate = self._snap_rate(rate)
        parts = self.analyse_all(image, rate, encoded)
        rows = scale_indices(parts["scales"])
        data = bitstream.pack_hyperprior(
            np.transpose(parts["z_hat"], (2, 0, 1)), self.tables,
            np.transpose(parts["residuals"], (2, 0, 1)), np.transpose(rows, (2, 0, 1)), self.scale_tables,
            self.model_key, image.shape[0], image.shape[1], rate_byte)
        return data, parts["y_hat"], rate, image.shape[:2]

    def decompress(self, data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
        """Decode ``.rcz`` version-2 bytes to a uint8 RGB image (H, W, 3).

        ``max_pixels`` as in :meth:`LearnedCodec.decompress`: for version-2 files
        it is the main bound, since z may announce latents that cost almost no bits.
        Raises :class:`course_lib.bitstream.BitstreamError` for anything but an intact file of this model.
        """
        self._require_tables()
        header, z_hat = bitstream.unpack_hyperprior_side(data, self.tables, self.model_key,
                                                         DOWNSAMPLING * HYPER_DOWNSAMPLING, max_pixels)
        rate = self.byte_to_rate(header.rate_byte)
        means, scales = self.side_information(np.transpose(z_hat, (1, 2, 0)), header.height, header.width)
        rows = np.transpose(scale_indices(scales), (2, 0, 1))
        residuals = bitstream.unpack_hyperprior_latents(data, header, rows, self.scale_tables)
        y_hat = np.transpose(residuals, (1, 2, 0)) + means
        return self.synthesise(y_hat, rate, header.height, header.width)

    def get_config(self):
        config = super().get_config()
        config.update(hyper_channels=self.hyper_channels)
        return config

    def codec_config(self) -> dict:
        config = super().codec_config()
        config.update(kind="hyperprior", hyper_channels=self.hyper_channels,
                      residual_stages=list(self.residual_stages))
        return config

