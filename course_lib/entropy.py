"""The entropy model: a learned density per latent channel (notebook 05).

Ballé, Minnen, Singh, Hwang & Johnston (2018), "Variational image compression
with a scale hyperprior", appendix 6.1: each latent channel c gets its own
cumulative distribution function c(y), a tiny monotone network

    c(y) = sigmoid(f_K(... f_1(y))),   f_k(x) = g_k(softplus(H_k) x + b_k),
    g_k(x) = x + tanh(a_k) * tanh(x)   (not on the last layer),

with scalar input and output and ``filters`` hidden units. Softplus keeps the
matrices positive and tanh(a_k) > -1 keeps each g_k increasing, so c is a
valid CDF. The probability of an integer latent is the mass of its bin,

    P(y_hat) = c(y_hat + 1/2) - c(y_hat - 1/2),

and the rate is -sum log2 P(y_hat) bits. Under additive uniform noise the
same expression is the density of y + u, which is what training minimises.

The range coder cannot use floats (two machines could round differently), so
after training :meth:`FactorizedPrior.export_tables` freezes the model into
integer tables (:class:`course_lib.bitstream.EntropyTables`) that compress and
decompress share bit for bit.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops
from scipy.special import expit

from .bitstream import EntropyTables
from .gdn import lower_bound

__all__ = ["FactorizedPrior", "bits_from_likelihoods", "integer_pmf"]


def bits_from_likelihoods(likelihoods, axis=None):
    """Rate in bits: -sum log2(likelihoods) over ``axis`` (all axes by default).

    ``likelihoods``: tensor of probabilities in (0, 1]. Introduced in notebook 05.
    """
    return ops.sum(-ops.log(likelihoods), axis=axis) / np.log(2.0)


def integer_pmf(probabilities, total: int) -> np.ndarray:
    """Turn probabilities (n,) into integer counts >= 1 that sum to exactly ``total``.

    Each symbol first gets one count (so every symbol stays codable), the
    remaining ``total - n`` counts are shared in proportion to the
    probabilities, and the few counts lost to flooring go to the largest
    remainders (ties: lower index first), so the result is deterministic.
    Introduced in notebook 05.
    """
    p = np.asarray(probabilities, np.float64)
    n = p.size
    if n > total:
        raise ValueError(f"{n} symbols do not fit into {total} counts")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError("probabilities must be finite, non-negative and not all zero")
    share = p / p.sum() * (total - n)
    counts = 1 + np.floor(share).astype(np.int64)
    missing = total - int(counts.sum())
    remainder = share - np.floor(share)
    counts[np.argsort(-remainder, kind="stable")[:missing]] += 1
    return counts.astype(np.int32)


@keras.saving.register_keras_serializable(package="course_lib")
class FactorizedPrior(layers.Layer):
    """A learned, factorized (per channel, per position i.i.d.) prior for integer latents.

    Args:
        filters: hidden units of the density network (Ballé et al. 2018 use (3, 3, 3)).
        init_scale: initial width of the densities (in latent units).
        likelihood_bound: smallest likelihood returned (keeps log2 finite: at most
            -log2(1e-9) ~= 30 bits per latent).

    Calling the layer on latents (B, H, W, C) (rounded or noisy) returns their
    likelihoods, same shape, in [likelihood_bound, 1]. Introduced in notebook 05.
    """

    def __init__(self, filters=(3, 3, 3), init_scale: float = 10.0,
                 likelihood_bound: float = 1e-9, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.init_scale = float(init_scale)
        self.likelihood_bound = float(likelihood_bound)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.channels = channels
        sizes = (1,) + self.filters + (1,)
        # Initialised so that the composed map has slope ~1/init_scale: a broad density.
        scale = self.init_scale ** (1.0 / (len(self.filters) + 1))
        self.matrices, self.biases, self.factors = [], [], []
        for k in range(len(self.filters) + 1):
            init = np.log(np.expm1(1.0 / scale / sizes[k + 1]))
            self.matrices.append(self.add_weight(
                name=f"matrix_{k}", shape=(channels, sizes[k + 1], sizes[k]),
                initializer=keras.initializers.Constant(init)))
            self.biases.append(self.add_weight(
                name=f"bias_{k}", shape=(channels, sizes[k + 1], 1),
                initializer=keras.initializers.RandomUniform(-0.5, 0.5)))
            if k < len(self.filters):
                self.factors.append(self.add_weight(
                    name=f"factor_{k}", shape=(channels, sizes[k + 1], 1), initializer="zeros"))

    def cumulative_logits(self, values):
        """Logits of c(values) per channel: (C, N) float -> (C, N)."""
        x = ops.expand_dims(values, 1)  # (C, 1, N): one scalar "feature" per point
        for k, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            x = ops.matmul(ops.softplus(matrix), x) + bias
            if k < len(self.factors):
                x = x + ops.tanh(self.factors[k]) * ops.tanh(x)
        return ops.squeeze(x, 1)

    def call(self, y_hat):
        shape = ops.shape(y_hat)
        values = ops.transpose(ops.reshape(y_hat, (-1, self.channels)))  # (C, N)
        lower = self.cumulative_logits(values - 0.5)
        upper = self.cumulative_logits(values + 0.5)
        # c(u) - c(l) loses all precision when both are close to 1; flipping the
        # sign where the bin lies in the upper tail computes (1 - c(l)) - (1 - c(u))
        # instead, from small numbers (tensorflow-compression's trick).
        sign = ops.stop_gradient(-ops.sign(lower + upper))
        likelihood = ops.abs(ops.sigmoid(sign * upper) - ops.sigmoid(sign * lower))
        likelihood = lower_bound(likelihood, self.likelihood_bound)
        return ops.reshape(ops.transpose(likelihood), shape)

    def export_tables(self, precision: int = 16, tail_mass: float = 1e-6,
                      max_support: int = 1024, search_range: int = 4096) -> EntropyTables:
        """Freeze the learned densities into integer tables for the range coder.

        For each channel c the support [lo_c, hi_c] keeps all integers except a
        tail mass of ``tail_mass`` (half on each side), at most ``max_support``
        symbols, searched within +-``search_range``. The PMF of the support plus
        one *escape* symbol (holding the tail mass) is scaled to integer counts
        >= 1 summing to 2**precision (:func:`integer_pmf`). Latents outside the
        support are coded as the escape symbol followed by their value (see
        :mod:`course_lib.bitstream`), so every integer stays codable.

        Returns :class:`~course_lib.bitstream.EntropyTables` (int32 arrays).
        Compute once after training or loading, then save it beside the weights.
        """
        if not self.built:
            raise RuntimeError("the prior has no weights yet: call it on latents (or build it) first")
        if max_support + 1 > 2 ** precision:
            raise ValueError("max_support + 1 symbols do not fit into 2**precision counts")
        grid = np.arange(-search_range, search_range + 1, dtype=np.float64)
        edges = np.concatenate([grid - 0.5, grid[-1:] + 0.5])  # bin edges of every grid integer
        points = np.broadcast_to(edges, (self.channels, edges.size)).astype(np.float32)
        logits = ops.convert_to_numpy(self.cumulative_logits(ops.convert_to_tensor(points))).astype(np.float64)
        pmfs, offsets, sizes = [], [], []
        for c in range(self.channels):
            below = expit(logits[c])  # c(edge): mass below each edge
            above = expit(-logits[c])  # 1 - c(edge), computed without cancellation
            inside_lower = np.nonzero(below[1:] > tail_mass / 2)[0]  # bins whose top edge passes the lower tail
            inside_upper = np.nonzero(above[:-1] > tail_mass / 2)[0]
            lo = inside_lower[0] if inside_lower.size else grid.size - 1
            hi = inside_upper[-1] if inside_upper.size else 0
            if hi - lo + 1 > max_support or hi < lo:
                median = int(np.clip(np.searchsorted(below, 0.5) - 1, 0, grid.size - 1))
                lo = int(np.clip(median - max_support // 2, 0, grid.size - max_support))
                hi = lo + max_support - 1
            # Bin masses, computed on whichever side of the median is more precise.
            mass_lower = np.abs(below[lo + 1:hi + 2] - below[lo:hi + 1])
            mass_upper = np.abs(above[lo:hi + 1] - above[lo + 1:hi + 2])
            upper_tail = logits[c][lo:hi + 1] + logits[c][lo + 1:hi + 2] > 0
            mass = np.where(upper_tail, mass_upper, mass_lower)
            escape = below[lo] + above[hi + 1]
            pmfs.append(integer_pmf(np.append(mass, escape), 2 ** precision))
            offsets.append(int(grid[lo]))
            sizes.append(hi - lo + 1)
        width = max(sizes) + 1
        pmf = np.zeros((self.channels, width), np.int32)
        for c, counts in enumerate(pmfs):
            pmf[c, :counts.size] = counts
        tables = EntropyTables(pmf=pmf, offset=np.asarray(offsets, np.int32),
                               support_size=np.asarray(sizes, np.int32), precision=int(precision))
        tables.validate()
        return tables

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, init_scale=self.init_scale,
                      likelihood_bound=self.likelihood_bound)
        return config
