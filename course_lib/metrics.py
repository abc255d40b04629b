"""Quality and size: PSNR, MS-SSIM, bits per pixel (notebook 00).

Thin wrappers over ``tf.image.psnr`` and ``tf.image.ssim_multiscale`` with the
conventions of the compression literature:

* images are uint8 RGB (H, W, 3) in [0, 255] (floats in [0, 255] also work);
* PSNR is computed on RGB with peak 255, from the MSE over all pixels and channels;
* MS-SSIM uses the standard 5 scales when the image is large enough and falls
  back to fewer scales on small images (5 scales need a shorter side of at least
  161 px with the 11x11 filter: each scale halves the image, rounding up);
* bits per pixel counts the *whole* file (header included) over H x W pixels.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["MS_SSIM_WEIGHTS", "mse", "psnr", "ms_ssim_scales", "ms_ssim", "ms_ssim_db", "bits_per_pixel",
           "compression_ratio"]

#: Per-scale weights of MS-SSIM (Wang, Simoncelli & Bovik 2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_FILTER_SIZE = 11


def _as_float(image) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    return a.astype(np.float32)


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")


def mse(original, reconstruction) -> float:
    """Mean squared error over all pixels and channels, on the [0, 255] scale.

    Introduced in notebook 00.
    """
    a, b = _as_float(original), _as_float(reconstruction)
    _check_pair(a, b)
    return float(np.mean((a - b) ** 2, dtype=np.float64))


def psnr(original, reconstruction, max_val: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB: 10 log10(max_val^2 / MSE).

    Returns ``inf`` for identical images (``tf.image.psnr`` gives inf there too).
    Introduced in notebook 00.
    """
    import tensorflow as tf

    a, b = _as_float(original), _as_float(reconstruction)
    _check_pair(a, b)
    return float(tf.image.psnr(a, b, max_val=max_val).numpy())


def ms_ssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales fit: the smallest scale must still hold the 11x11 filter.

    Used by :func:`ms_ssim` (notebook 00).
    """
    # tf.image.ssim_multiscale pads odd sides before each 2x downsampling, so
    # scale s (1-based) sees ceil(side / 2**(s-1)) pixels: 161 -> 81 -> 41 -> 21 -> 11.
    side = min(height, width)
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS) and -(-side // 2 ** scales) >= _FILTER_SIZE:
        scales += 1
    return scales


def ms_ssim(original, reconstruction, max_val: float = 255.0) -> float:
    """Multi-scale SSIM in [0, 1] (1 = identical), on RGB, via ``tf.image.ssim_multiscale``.

    Uses 5 scales when the shorter side is >= 161 px and fewer on smaller
    images (renormalised weights); images below 11 px fall back to plain SSIM
    with a filter as large as the image.
    Introduced in notebook 00.
    """
    import tensorflow as tf

    a, b = _as_float(original), _as_float(reconstruction)
    _check_pair(a, b)
    h, w = a.shape[:2]
    if min(h, w) < _FILTER_SIZE:
        size = min(h, w)
        return float(tf.image.ssim(a, b, max_val=max_val, filter_size=size).numpy())
    value = _ms_ssim_graph(ms_ssim_scales(h, w), float(max_val))(a, b)
    return float(value.numpy())


@functools.lru_cache(maxsize=None)
def _ms_ssim_graph(scales: int, max_val: float):
    """A compiled ``tf.image.ssim_multiscale`` for ``scales`` scales (about 2x faster than eager)."""
    import tensorflow as tf

    weights = np.asarray(MS_SSIM_WEIGHTS[:scales], dtype=np.float32)
    weights = (weights / weights.sum()).tolist()

    @tf.function(reduce_retracing=True)
    def graph(a, b):
        return tf.image.ssim_multiscale(a, b, max_val=max_val, power_factors=weights, filter_size=_FILTER_SIZE)

    return graph


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on the decibel scale used in RD plots: -10 log10(1 - MS-SSIM).

    The MS-SSIM axis of the RD plots from notebook 01 on.
    """
    return float(-10.0 * np.log10(max(1.0 - value, 1e-10)))


def bits_per_pixel(num_bytes: int, shape) -> float:
    """Rate of a file in bits per pixel: 8 * bytes / (H * W). ``shape`` is (H, W, ...).

    Introduced in notebook 00.
    """
    h, w = int(shape[0]), int(shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"shape must have positive height and width, got {shape}")
    return 8.0 * int(num_bytes) / (h * w)


def compression_ratio(num_bytes: int, shape) -> float:
    """Raw 24-bit RGB size over compressed size (e.g. 24 bpp / 1 bpp = 24:1).

    Introduced in notebook 00.
    """
    return 24.0 / bits_per_pixel(num_bytes, shape)
