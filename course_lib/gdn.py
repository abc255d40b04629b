"""Generalized divisive normalization, GDN and its inverse IGDN (notebook 03).

Ballé, Laparra & Simoncelli (2016), "Density Modeling of Images using a
Generalized Normalization Transformation". Each channel is divided by a
learned mix of the energies of all channels at the same pixel:

    y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)        (GDN, analysis)
    y_i = x_i * sqrt(beta_i + sum_j gamma_ij x_j^2)        (IGDN, synthesis)

The normalisation must stay positive, so ``beta`` and ``gamma`` are not
trained directly: as in Ballé et al. (2018) and tensorflow-compression we
train a variable ``v`` with ``parameter = max(v, bound)^2 - pedestal``, which
keeps beta >= ``beta_min`` and gamma >= 0 and makes steps near zero gentler.

Built with Keras 3 layers and ``keras.ops`` only, so it trains under the
TensorFlow and JAX backends alike.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

__all__ = ["GDN", "NonNegativeParameter", "lower_bound"]


def lower_bound(x, bound: float):
    """max(x, bound) whose gradient still pulls values below the bound upwards.

    Plain ``maximum`` has zero gradient below the bound, so a parameter that
    slips under it could never come back. Like tensorflow-compression's
    ``lower_bound`` we pass the gradient through wherever ``x >= bound`` or the
    gradient would increase ``x`` (gradient descent steps by ``-upstream``).
    ``x``: float tensor, ``bound``: Python float. Introduced in notebook 03.
    """

    @ops.custom_gradient
    def bounded(x):
        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            pass_through = ops.logical_or(x >= bound, upstream < 0)
            return ops.where(pass_through, upstream, ops.zeros_like(upstream))

        return ops.maximum(x, bound), grad

    # A tensor, not a variable: TF's custom_gradient refuses functions that read variables.
    return bounded(ops.copy(x))


class NonNegativeParameter:
    """Maps a trainable variable ``v`` to ``max(v, sqrt(minimum + pedestal))^2 - pedestal`` >= ``minimum``.

    The pedestal (2^-36) keeps the square root away from zero so that the
    gradient ``2 v`` does not vanish for parameters at their minimum.
    Introduced in notebook 03.
    """

    pedestal = 2.0 ** -36

    def __init__(self, minimum: float = 0.0):
        self.minimum = float(minimum)
        self.bound = float(np.sqrt(self.minimum + self.pedestal))

    def to_variable(self, value: np.ndarray) -> np.ndarray:
        """The variable value that represents ``value`` (used for initialisation)."""
        return np.sqrt(np.maximum(np.asarray(value, np.float64), self.minimum) + self.pedestal)

    def __call__(self, variable):
        return ops.square(lower_bound(variable, self.bound)) - self.pedestal


@keras.saving.register_keras_serializable(package="course_lib")
class GDN(layers.Layer):
    """GDN (or IGDN with ``inverse=True``) over the channel axis.

    Args:
        inverse: multiply by the norm instead of dividing (IGDN, for the decoder).
        beta_min: smallest value beta may take (keeps the division finite).
        gamma_init: initial value of the diagonal of gamma (off-diagonal: 0).

    Input (..., C) float -> output of the same shape. Initialised with beta = 1
    and gamma = ``gamma_init`` * identity, so at the start
    y_i = x_i / sqrt(1 + 0.1 x_i^2): close to the identity for small x.
    ``layer.beta`` (C,) and ``layer.gamma`` (C, C), with ``gamma[i, j]`` the
    weight of channel j's energy in channel i's norm, are the effective
    (non-negative) parameters. Introduced in notebook 03.
    """

    def __init__(self, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.inverse = bool(inverse)
        self.beta_min = float(beta_min)
        self.gamma_init = float(gamma_init)
        self._beta_param = NonNegativeParameter(self.beta_min)
        self._gamma_param = NonNegativeParameter(0.0)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        beta_value = self._beta_param.to_variable(np.ones(channels))
        gamma_value = self._gamma_param.to_variable(self.gamma_init * np.eye(channels))
        self.beta_variable = self.add_weight(
            name="beta", shape=(channels,),
            initializer=keras.initializers.Constant(beta_value.astype(np.float32)))
        self.gamma_variable = self.add_weight(
            name="gamma", shape=(channels, channels),
            initializer=keras.initializers.Constant(gamma_value.astype(np.float32)))

    @property
    def beta(self):
        """Effective beta (C,), >= beta_min."""
        return self._beta_param(self.beta_variable)

    @property
    def gamma(self):
        """Effective gamma (C, C), >= 0; row i holds the weights of channel i's norm."""
        return self._gamma_param(self.gamma_variable)

    def call(self, x):
        # norm_i = beta_i + sum_j gamma_ij x_j^2: a matrix product over the channel axis.
        norm = ops.matmul(ops.square(x), ops.transpose(self.gamma)) + self.beta
        return x * ops.sqrt(norm) if self.inverse else x * ops.rsqrt(norm)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(inverse=self.inverse, beta_min=self.beta_min, gamma_init=self.gamma_init)
        return config
