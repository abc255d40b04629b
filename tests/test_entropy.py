"""FactorizedPrior: valid likelihoods, stable tails, integer tables."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
from keras import ops
from scipy.special import expit

from course_lib.entropy import FactorizedPrior, bits_from_likelihoods, integer_pmf

CHANNELS = 5


@pytest.fixture(scope="module")
def prior():
    keras.utils.set_random_seed(0)
    layer = FactorizedPrior()
    layer.build((None, None, None, CHANNELS))
    # Move away from the symmetric initialisation: random matrices, biases and
    # gating factors give skewed, shifted densities of different widths.
    rng = np.random.default_rng(1)
    for variable in layer.trainable_variables:
        variable.assign(variable.numpy() + rng.normal(0, 0.7, variable.shape).astype(np.float32))
    return layer


def likelihoods_on_integers(layer, values):
    grid = np.broadcast_to(values[:, None], (values.size, CHANNELS)).astype(np.float32)
    return ops.convert_to_numpy(layer(grid[None, None]))[0, 0]  # (N, C)


def test_likelihoods_sum_to_one_over_integers(prior):
    p = likelihoods_on_integers(prior, np.arange(-400, 401))
    assert np.all(p > 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-4)


def test_likelihood_is_the_mass_of_the_bin(prior):
    values = np.arange(-30, 31, dtype=np.float32)
    got = likelihoods_on_integers(prior, values)
    points = np.stack([values - 0.5, values + 0.5])  # (2, N)
    logits = [ops.convert_to_numpy(prior.cumulative_logits(np.broadcast_to(p, (CHANNELS, p.size)).astype(np.float32)))
              for p in points]
    expected = expit(logits[1].astype(np.float64)) - expit(logits[0].astype(np.float64))  # (C, N)
    expected = np.maximum(expected, 1e-9)
    np.testing.assert_allclose(got.T, expected, rtol=2e-3, atol=1e-7)


def test_upper_tail_is_computed_without_cancellation():
    # Far in the upper tail c(y +- 1/2) are both 1.0 in float32; the naive
    # difference is 0 (-> the bound), the sign trick keeps the true small mass.
    layer = FactorizedPrior(init_scale=1.0, likelihood_bound=1e-30)
    layer.build((None, 1))
    for b in layer.biases:
        b.assign(np.zeros(b.shape, np.float32))
    y = np.array([[30.0]], np.float32)
    p = float(ops.convert_to_numpy(layer(y))[0, 0])
    logit = lambda v: float(ops.convert_to_numpy(layer.cumulative_logits(np.array([[v]], np.float32)))[0, 0])
    exact = expit(-logit(29.5)) - expit(-logit(30.5))
    assert np.float32(expit(logit(29.5))) == np.float32(1.0)  # the naive difference would be 0
    assert p == pytest.approx(exact, rel=1e-3) and p > 1e-14


def test_likelihood_lower_bound():
    layer = FactorizedPrior(likelihood_bound=1e-9)
    p = ops.convert_to_numpy(layer(np.full((1, 2, 2, 3), 1e6, np.float32)))
    np.testing.assert_allclose(p, 1e-9, rtol=1e-6)


def test_bits_from_likelihoods():
    assert float(bits_from_likelihoods(np.array([0.5, 0.25, 1.0]))) == pytest.approx(3.0)
    per_row = ops.convert_to_numpy(bits_from_likelihoods(np.array([[0.5, 0.5], [0.125, 1.0]]), axis=1))
    np.testing.assert_allclose(per_row, [2.0, 3.0], rtol=1e-6)


def test_integer_pmf_sums_exactly_and_keeps_every_symbol():
    rng = np.random.default_rng(0)
    for n in (2, 17, 300):
        p = rng.dirichlet(np.full(n, 0.1))
        p[0] = 0.0  # an impossible symbol must still get a count
        counts = integer_pmf(p, 2 ** 16)
        assert counts.dtype == np.int32 and counts.sum() == 2 ** 16 and counts.min() >= 1
        p = p / p.sum()
        assert np.all(np.abs(counts - p * 2 ** 16) <= 2 + n * p)
    with pytest.raises(ValueError):
        integer_pmf(np.ones(5), 4)


def test_exported_tables_are_valid_and_match_the_density(prior):
    tables = prior.export_tables(precision=16, tail_mass=1e-6)
    assert tables.pmf.dtype == np.int32 and tables.channels == CHANNELS
    for c in range(CHANNELS):
        row = tables.pmf[c, :tables.support_size[c] + 1]
        assert row.sum() == 2 ** 16 and row.min() >= 1
        assert np.all(tables.pmf[c, tables.support_size[c] + 1:] == 0)
        values = np.arange(tables.offset[c], tables.offset[c] + tables.support_size[c])
        p = likelihoods_on_integers(prior, values)[:, c]
        assert p.sum() > 1 - 2e-6  # the support holds all but the tail mass
        # Table probabilities agree with the float density where it matters.
        table_p = row[:-1] / 2 ** 16
        big = p > 1e-3
        np.testing.assert_allclose(table_p[big], p[big], rtol=0.02, atol=2 / 2 ** 16)
    # Deterministic: exporting twice gives the same tables (same fingerprint).
    assert prior.export_tables() == tables


def test_export_caps_the_support():
    layer = FactorizedPrior(init_scale=1000.0)
    layer.build((None, 2))
    tables = layer.export_tables(max_support=64)
    assert np.all(tables.support_size <= 64)
    assert tables.pmf[:, 64].min() > 2 ** 16 // 2  # most of a very wide density escapes
