"""Residual blocks: y = x + F(x) (notebook 02).

He, Zhang, Ren & Sun (2016), "Deep Residual Learning for Image Recognition".
The block computes a correction F(x) with two 3x3 convolutions and adds it to
its input, so that a block that learns nothing (F = 0) passes its input
through unchanged. With ``zero_init=True`` the last convolution starts at zero
and the block *is* the identity at initialisation.
"""

from __future__ import annotations

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="course_lib")
class ResidualBlock(layers.Layer):
    """y = shortcut(x) + F(x), with F = conv3x3 -> activation -> conv3x3.

    Args:
        filters: output channels.
        kernel_size: size of both convolutions of F (odd; default 3).
        strides: 1 keeps the spatial size; 2 halves it (the first convolution of
            F is strided and the shortcut becomes a strided 1x1 projection).
        activation: nonlinearity inside F (a Keras activation name).
        zero_init: start the last convolution of F at zero, so the block is
            the identity (or the projection) at initialisation.

    Input (B, H, W, C) -> output (B, ceil(H / strides), ceil(W / strides), filters).
    The shortcut is the identity when ``strides == 1`` and ``C == filters``,
    otherwise a 1x1 convolution with the given stride.
    """

    def __init__(self, filters: int, kernel_size: int = 3, strides: int = 1,
                 activation: str = "relu", zero_init: bool = False, **kwargs):
        super().__init__(**kwargs)
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.activation = activation
        self.zero_init = bool(zero_init)
        self.conv1 = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", name="conv1")
        self.act = layers.Activation(activation, name="act")
        self.conv2 = layers.Conv2D(filters, kernel_size, padding="same", name="conv2",
                                   kernel_initializer="zeros" if zero_init else "glorot_uniform")
        self.projection = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.strides != 1 or channels != self.filters:
            self.projection = layers.Conv2D(self.filters, 1, strides=self.strides, name="projection")
            self.projection.build(input_shape)
        self.conv1.build(input_shape)
        out_shape = self.conv1.compute_output_shape(input_shape)
        self.conv2.build(out_shape)

    def call(self, x):
        shortcut = x if self.projection is None else self.projection(x)
        return shortcut + self.conv2(self.act(self.conv1(x)))

    def compute_output_shape(self, input_shape):
        return self.conv1.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      activation=self.activation, zero_init=self.zero_init)
        return config
