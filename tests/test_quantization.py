"""Quantization modes: noise range, straight-through gradient, rounding."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib.quantization import quantize


def test_noise_stays_within_half_and_is_roughly_uniform():
    y = tf.fill((200_000,), 3.3)
    q = quantize(y, "noise", seed=1).numpy()
    noise = q - 3.3
    assert noise.min() >= -0.5 - 1e-6 and noise.max() <= 0.5 + 1e-6
    assert abs(noise.mean()) < 0.01
    assert abs(noise.var() - 1 / 12) < 0.005  # variance of U(-1/2, 1/2)
    assert len(np.unique(q)) > 1000  # not rounded


def test_noise_accepts_a_seed_generator():
    gen = keras.random.SeedGenerator(3)
    a = quantize(tf.zeros((10,)), "noise", seed=gen).numpy()
    b = quantize(tf.zeros((10,)), "noise", seed=gen).numpy()
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("mode", ["round", "dequantize", "ste"])
def test_rounding_modes_give_integers(mode):
    y = tf.constant([-2.6, -0.4, 0.2, 0.7, 1.49, 3.51])
    np.testing.assert_array_equal(quantize(y, mode).numpy(), [-3, 0, 0, 1, 1, 4])


def test_ste_gradient_is_one_and_round_gradient_is_zero():
    y = tf.Variable([0.3, 1.7, -2.2])
    with tf.GradientTape(persistent=True) as tape:
        ste = tf.reduce_sum(quantize(y, "ste") * tf.constant([1.0, 2.0, 3.0]))
        rounded = tf.reduce_sum(quantize(y, "round"))
    np.testing.assert_allclose(tape.gradient(ste, y).numpy(), [1.0, 2.0, 3.0])
    g = tape.gradient(rounded, y)
    assert g is None or np.all(g.numpy() == 0)


def test_noise_gradient_is_one():
    y = tf.Variable([0.3, 1.7])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(quantize(y, "noise"))
    np.testing.assert_allclose(tape.gradient(loss, y).numpy(), [1.0, 1.0])


def test_unknown_mode_raises():
    with pytest.raises(ValueError, match="unknown quantization mode"):
        quantize(tf.zeros(3), "floor")
