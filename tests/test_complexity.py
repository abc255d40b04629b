"""MACs counted from layer shapes against the formula and against TensorFlow's profiler."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import pytest
from keras import layers

from course_lib import complexity
from course_lib.blocks import PlainBlock, ResidualBlock
from course_lib.codec import LearnedCodec
from course_lib.gdn import GDN
from course_lib.restoration import RestorationNet


def test_conv_macs_formula():
    # 5x5 kernel, 3 -> 64 channels, stride 2 on 768 x 512: 384 x 256 outputs of 5*5*3*64 MACs each.
    assert complexity.conv_macs(256, 384, 5, 3, 64) == 256 * 384 * 5 * 5 * 3 * 64


@pytest.mark.parametrize("strides, padding", [(1, "same"), (2, "same"), (2, "valid")])
def test_one_convolution(strides, padding):
    conv = layers.Conv2D(7, 3, strides=strides, padding=padding, name="conv")
    count = complexity.macs(conv, (1, 21, 30, 5))
    height, width = (-(-21 // strides), -(-30 // strides)) if padding == "same" else (10, 14)
    assert count == {"conv": complexity.conv_macs(height, width, 3, 5, 7)}


def test_residual_block_with_projection_and_plain_block():
    shape = (None, 20, 24, 8)
    strided = complexity.macs(ResidualBlock(16, strides=2, name="block"), shape)
    # projection 1x1 and conv1 3x3 both stride 2 from 8 channels; conv2 3x3 at 10 x 12 from 16 channels.
    assert strided == {"block/projection": complexity.conv_macs(10, 12, 1, 8, 16),
                       "block/conv1": complexity.conv_macs(10, 12, 3, 8, 16),
                       "block/conv2": complexity.conv_macs(10, 12, 3, 16, 16)}
    plain = complexity.macs(PlainBlock(8, name="plain"), shape)
    assert sum(plain.values()) == 2 * complexity.conv_macs(20, 24, 3, 8, 8)


def test_sequential_stack_is_walked_layer_by_layer():
    stack = keras.Sequential([layers.Conv2D(8, 3, strides=2, padding="same", name="down"),
                              layers.Activation("relu", name="relu"), ResidualBlock(8, name="block")])
    count = complexity.macs(stack, (1, 16, 24, 3))
    assert list(count) == [f"{stack.name}/down", f"{stack.name}/block/conv1", f"{stack.name}/block/conv2"]
    assert sum(count.values()) == complexity.conv_macs(8, 12, 3, 3, 8) + 2 * complexity.conv_macs(8, 12, 3, 8, 8)


def test_gdn_counts_its_matrix_product():
    assert complexity.macs(GDN(name="gdn"), (1, 4, 6, 10)) == {"gdn": 4 * 6 * 10 * 10}


def test_codec_matches_tensorflow_profiler():
    codec = LearnedCodec(channels=8, latent_channels=12)
    codec.build()
    image_shape, latent_shape = (1, 32, 48, 3), (1, 2, 3, 12)
    for part, shape in ((codec.encoder, image_shape), (codec.decoder, latent_shape)):
        counted = sum(complexity.macs(part, shape).values())
        profiled = complexity.profiled_flops(part, shape)
        assert 2 * counted == profiled["Conv2D"] + profiled["MatMul"], part.name
    whole = complexity.macs(codec, image_shape)
    assert sum(whole.values()) == (sum(complexity.macs(codec.encoder, image_shape).values())
                                   + sum(complexity.macs(codec.decoder, latent_shape).values()))
    assert {name.split("/")[1] for name in whole} == {"encoder", "decoder"}


def test_restoration_net_matches_profiler():
    net = RestorationNet(depth=4, width=8, space_to_depth=2)
    net.build()
    shape = (1, 16, 20, 3)
    profiled = complexity.profiled_flops(net, shape)
    assert 2 * sum(complexity.macs(net, shape).values()) == profiled["Conv2D"]


def test_macs_per_pixel_does_not_depend_on_size():
    codec = LearnedCodec(channels=8, latent_channels=12)
    codec.build()
    assert complexity.macs_per_pixel(codec, 64, 96) == complexity.macs_per_pixel(codec, 128, 32)


def test_refuses_what_it_cannot_count():
    with pytest.raises(TypeError, match="Dense"):
        complexity.macs(layers.Dense(4), (1, 3, 3, 2))
    with pytest.raises(ValueError, match="fixed image size"):
        complexity.macs(layers.Conv2D(4, 3), (1, None, None, 3))
    with pytest.raises(ValueError, match="B, H, W, C"):
        complexity.macs(layers.Conv2D(4, 3), (8, 8, 3))
