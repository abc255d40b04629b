"""GDN / IGDN against the formula computed in NumPy."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from course_lib.gdn import GDN, lower_bound


def numpy_gdn(x, beta, gamma, inverse=False):
    # y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2), written as an explicit sum over j.
    norm = beta + np.einsum("ij,...j->...i", gamma, x.astype(np.float64) ** 2)
    return x * np.sqrt(norm) if inverse else x / np.sqrt(norm)


def set_parameters(layer, beta, gamma):
    layer.beta_variable.assign(layer._beta_param.to_variable(beta).astype(np.float32))
    layer.gamma_variable.assign(layer._gamma_param.to_variable(gamma).astype(np.float32))


def test_initial_parameters():
    layer = GDN()
    layer.build((None, 8, 8, 5))
    np.testing.assert_allclose(ops.convert_to_numpy(layer.beta), np.ones(5), rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(layer.gamma), 0.1 * np.eye(5), atol=1e-7)


@pytest.mark.parametrize("inverse", [False, True])
def test_matches_formula_with_asymmetric_gamma(inverse):
    rng = np.random.default_rng(0)
    channels = 6
    x = rng.normal(size=(2, 4, 5, channels)).astype(np.float32) * 3
    beta = rng.uniform(0.5, 2.0, channels)
    gamma = rng.uniform(0.0, 0.5, (channels, channels))  # not symmetric: catches a transposed sum
    layer = GDN(inverse=inverse)
    layer.build(x.shape)
    set_parameters(layer, beta, gamma)
    got = ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(got, numpy_gdn(x, beta, gamma, inverse), rtol=1e-5, atol=1e-6)


def test_igdn_inverts_gdn_for_diagonal_gamma_per_pixel():
    # With a diagonal gamma, GDN is invertible per channel; IGDN(GDN(x)) is not
    # the exact inverse in general, but both must agree with NumPy at init.
    x = np.linspace(-4, 4, 3 * 7).reshape(1, 1, 7, 3).astype(np.float32)
    forward, inverse = GDN(), GDN(inverse=True)
    y = ops.convert_to_numpy(forward(x))
    np.testing.assert_allclose(y, x / np.sqrt(1 + 0.1 * x ** 2), rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(inverse(x)), x * np.sqrt(1 + 0.1 * x ** 2), rtol=1e-6)


def test_parameters_stay_non_negative_and_beta_above_minimum():
    layer = GDN(beta_min=1e-6)
    layer.build((None, 3))
    layer.beta_variable.assign(-np.ones(3, np.float32))
    layer.gamma_variable.assign(-np.ones((3, 3), np.float32))
    assert np.all(ops.convert_to_numpy(layer.beta) >= 1e-6 * 0.999)
    assert np.all(ops.convert_to_numpy(layer.gamma) >= 0)


def test_lower_bound_gradient_passes_only_upwards_below_bound():
    x = tf.constant([-1.0, -1.0, 2.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = lower_bound(x, 0.5)
        # upstream gradient +1 for element 0 (descent would push it down: blocked),
        # -1 for element 1 (descent pushes it up: passed), +1 above the bound (passed).
        loss = tf.reduce_sum(y * tf.constant([1.0, -1.0, 1.0]))
    np.testing.assert_allclose(y.numpy(), [0.5, 0.5, 2.0])
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), [0.0, -1.0, 1.0])


def test_trains_and_serialises():
    layer = GDN(inverse=True, name="igdn")
    config = layer.get_config()
    clone = GDN.from_config(config)
    assert clone.inverse and clone.beta_min == layer.beta_min
    x = tf.random.normal((2, 3, 3, 4))
    layer(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)
    assert any(np.abs(g.numpy()).sum() > 0 for g in grads)
