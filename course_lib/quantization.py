"""Quantization of the latents, and the proxies that make it trainable (notebook 04).

Rounding has zero gradient almost everywhere, so training replaces it:

* ``"noise"``: y + u with u ~ U(-1/2, 1/2) (Ballé, Laparra & Simoncelli 2017):
  a gradient of 1 where rounding has none. It is a stand-in, not an unbiased
  copy of rounding. Its error always has the MSE 1/12, while rounding errs
  less on latents that crowd around an integer, as trained latents do
  (notebook 04). The prior's density of y + u, c(y + u + 1/2) - c(y + u - 1/2),
  is the probability the coder uses only where y + u is an integer; in between
  it is the mass of a shifted bin, and the two rates differ: for the shipped
  codec the noisy one is higher (notebook 07 measures both, with the decoder's
  PSNR on each: the decoder trains on noise and decodes rounded latents).
* ``"ste"``: round in the forward pass, identity gradient in the backward pass
  (straight-through estimator; Theis et al. 2017, Bengio et al. 2013).
* ``"round"``: plain rounding, what the real codec does at test time.
  ``"dequantize"`` is the same thing under the name used for the decoder side
  (the integers coded in the file, turned back into floats).

All in ``keras.ops`` so it runs under the TensorFlow and JAX backends.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["QUANTIZATION_MODES", "quantize", "rate_and_decoder_values"]

QUANTIZATION_MODES = ("noise", "ste", "round", "dequantize")


def quantize(y, mode: str, seed=None):
    """Quantize latents ``y`` (any shape, float) with one of :data:`QUANTIZATION_MODES`.

    Args:
        y: float tensor of latents.
        mode: ``"noise"`` | ``"ste"`` | ``"round"`` | ``"dequantize"`` (see module docstring).
        seed: for ``"noise"`` only: an int or a ``keras.random.SeedGenerator``
            (pass a layer's generator when tracing under JAX).

    Returns a float tensor of the same shape and dtype. For ``"round"``,
    ``"dequantize"`` and ``"ste"`` the values are integers; for ``"noise"``
    they lie within 1/2 of ``y``. Introduced in notebook 04.
    """
    if mode == "noise":
        noise = keras.random.uniform(ops.shape(y), minval=-0.5, maxval=0.5, dtype=y.dtype, seed=seed)
        return y + noise
    if mode == "ste":
        # Forward: round(y). Backward: d/dy = 1, because stop_gradient hides the step.
        return y + ops.stop_gradient(ops.round(y) - y)
    if mode in ("round", "dequantize"):
        return ops.round(y)
    raise ValueError(f"unknown quantization mode {mode!r}; choose one of {QUANTIZATION_MODES}")


def rate_and_decoder_values(y, mode: str, seed=None):
    """(values for the rate, values for the decoder) of latents ``y`` under a codec's quantization ``mode``.

    ``mode`` is a training mode of :class:`course_lib.codec.LearnedCodec`
    (``"noise"``, ``"ste"``, ``"mixed"``: noise for the rate, straight-through
    rounding for the decoder; Minnen & Singh 2020) or ``"round"`` for
    evaluation, where both are the rounded values. Introduced in notebook 07.
    """
    if mode == "round":
        rounded = quantize(y, "round")
        return rounded, rounded
    for_rate = quantize(y, "ste" if mode == "ste" else "noise", seed=seed)
    return for_rate, (for_rate if mode == "noise" else quantize(y, "ste"))
