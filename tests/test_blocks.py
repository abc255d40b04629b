"""Tests for course_lib.blocks: ResidualBlock, PlainBlock, make_denoiser."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib import config
from course_lib.blocks import PlainBlock, ResidualBlock, make_denoiser


@pytest.fixture(autouse=True)
def seeded():
    config.set_seed(0)


def random_batch(height=16, width=16, channels=8, batch=2):
    return np.random.default_rng(0).normal(size=(batch, height, width, channels)).astype("float32")


@pytest.mark.parametrize("height, width", [(16, 16), (17, 23), (1, 5), (31, 9)])
def test_residual_block_keeps_any_spatial_size(height, width):
    x = random_batch(height, width)
    assert ResidualBlock(8)(x).shape == (2, height, width, 8)


@pytest.mark.parametrize("height, width", [(16, 16), (17, 23), (7, 1), (224, 224)])
def test_strided_block_halves_the_size_rounding_up(height, width):
    block = ResidualBlock(16, strides=2)
    y = block(random_batch(height, width, channels=8, batch=1))
    assert y.shape == (1, -(-height // 2), -(-width // 2), 16)
    assert block.projection is not None
    assert block.projection.kernel.shape == (1, 1, 8, 16)


def test_projection_only_when_shapes_differ():
    same = ResidualBlock(8)
    same.build((None, 8, 8, 8))
    wider = ResidualBlock(16)
    wider.build((None, 8, 8, 8))
    assert same.projection is None
    assert wider.projection is not None


def test_residual_block_adds_its_input():
    x = random_batch()
    block = ResidualBlock(8)
    y = block(x)
    np.testing.assert_allclose(y - x, block.residual(x), rtol=1e-5, atol=1e-5)


def test_zero_init_block_is_the_identity():
    x = random_batch(17, 23)
    block = ResidualBlock(8, zero_init=True)
    np.testing.assert_array_equal(block(x), x)
    # A default block is not the identity, so the assert above can fail.
    assert np.abs(ResidualBlock(8)(x) - x).max() > 1e-2


def test_zero_init_strided_block_is_the_projection():
    x = random_batch(9, 9)
    block = ResidualBlock(16, strides=2, zero_init=True)
    np.testing.assert_allclose(block(x), block.projection(x), rtol=1e-6, atol=1e-6)


def test_convolutions_get_different_initial_weights():
    # One shared unseeded initialiser object would give conv1 and conv2 the same kernel.
    block = ResidualBlock(8, kernel_initializer=keras.initializers.HeNormal())
    block.build((None, 8, 8, 8))
    assert not np.allclose(block.conv1.kernel, block.conv2.kernel)


def gradients_of_squared_output(layer, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.square(layer(x)))
    return tape.gradient(loss, [layer.conv1.kernel, layer.conv2.kernel, x])


def test_gradient_reaches_the_first_convolution():
    first, second, to_input = gradients_of_squared_output(ResidualBlock(8), random_batch())
    for gradient in (first, second, to_input):
        assert gradient is not None and float(tf.norm(gradient)) > 0


def test_zero_init_block_passes_the_gradient_through_the_skip():
    # With conv2 = 0 the branch F blocks the gradient to conv1 at the first step,
    # but conv2 itself and the input still receive gradients (via the skip).
    x = random_batch()
    first, second, to_input = gradients_of_squared_output(ResidualBlock(8, zero_init=True), x)
    assert float(tf.norm(first)) == 0.0
    assert float(tf.norm(second)) > 0
    np.testing.assert_allclose(to_input, 2 * x, rtol=1e-6)


def test_config_round_trip():
    block = ResidualBlock(16, kernel_size=5, strides=2, activation="gelu", zero_init=True,
                          kernel_initializer="he_normal", name="my_block")
    config_dict = block.get_config()
    clone = ResidualBlock.from_config(config_dict)
    assert clone.get_config() == config_dict
    assert (clone.filters, clone.kernel_size, clone.strides, clone.activation, clone.zero_init) == \
        (16, 5, 2, "gelu", True)


def test_keras_file_round_trip(tmp_path):
    inputs = keras.Input((None, None, 3))
    hidden = ResidualBlock(8, strides=2)(inputs)
    outputs = PlainBlock(8)(ResidualBlock(8)(hidden))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "blocks.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = random_batch(13, 10, channels=3, batch=1)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)
    assert [type(layer).__name__ for layer in loaded.layers[1:]] == ["ResidualBlock", "ResidualBlock",
                                                                     "PlainBlock"]


def test_even_kernel_size_is_refused():
    with pytest.raises(ValueError, match="odd"):
        ResidualBlock(8, kernel_size=4)


def test_plain_block_is_the_residual_branch_alone():
    x = random_batch()
    plain = PlainBlock(8)
    residual = ResidualBlock(8)
    plain.build(x.shape)
    residual.build(x.shape)
    residual.set_weights(plain.get_weights())
    np.testing.assert_allclose(residual(x) - x, plain(x), rtol=1e-5, atol=1e-5)


def test_plain_and_residual_denoisers_match_in_size_and_initial_weights():
    config.set_seed(0)
    plain = make_denoiser(depth=8, width=16, residual=False)
    config.set_seed(0)
    residual = make_denoiser(depth=8, width=16, residual=True, zero_init=False)
    assert plain.count_params() == residual.count_params() > 0
    conv_layers = [layer for layer in plain.layers if "conv" in type(layer).__name__.lower()]
    assert len(conv_layers) + 2 * sum(isinstance(layer, PlainBlock) for layer in plain.layers) == 8
    for plain_weight, residual_weight in zip(plain.get_weights(), residual.get_weights()):
        np.testing.assert_array_equal(plain_weight, residual_weight)
    x = random_batch(12, 9, channels=3, batch=1)
    assert plain(x).shape == residual(x).shape == (1, 12, 9, 3)
    assert np.abs(plain(x) - residual(x)).max() > 1e-3


def test_zero_init_denoiser_starts_with_identity_blocks():
    model = make_denoiser(depth=6, width=8, residual=True, zero_init=True)
    blocks = [layer for layer in model.layers if isinstance(layer, ResidualBlock)]
    assert len(blocks) == 2
    assert all(not np.any(block.conv2.kernel.numpy()) for block in blocks)


@pytest.mark.parametrize("depth", [3, 5, 2])
def test_denoiser_depth_must_be_even(depth):
    with pytest.raises(ValueError, match="even"):
        make_denoiser(depth=depth)


def test_denoiser_trains():
    model = make_denoiser(depth=6, width=8, residual=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    clean = np.random.default_rng(1).random((4, 16, 16, 3)).astype("float32")
    noisy = clean + np.random.default_rng(2).normal(0, 0.1, clean.shape).astype("float32")
    history = model.fit(noisy, clean, epochs=15, batch_size=4, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]
