"""Quantization of the latents, and the proxies that make it trainable (notebook 04).

Rounding has zero gradient almost everywhere, so training replaces it:

* ``"noise"``: y + u with u ~ U(-1/2, 1/2) (Ballé, Laparra & Simoncelli 2017).
  The density of y + u equals the probability mass of round(y) under the
  prior, so the rate estimate is unbiased; the decoder learns to cope with
  noise of the same size as the rounding error.
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
