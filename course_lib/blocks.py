"""Residual blocks: y = x + F(x) (notebook 02).

He, Zhang, Ren & Sun (2016), "Deep Residual Learning for Image Recognition".
The block computes a correction F(x) with two 3x3 convolutions and adds it to
its input, so that a block that learns nothing (F = 0) passes its input
through unchanged. With ``zero_init=True`` the last convolution starts at zero
and the block *is* the identity at initialisation.

For experiments, :class:`PlainBlock` is the same two convolutions without the
skip, and :func:`make_denoiser` stacks either kind into depth- and
width-matched networks whose only difference is the ``+ x``.
"""

from __future__ import annotations

import keras
from keras import layers

__all__ = ["TwoConvolutions", "ResidualBlock", "PlainBlock", "make_denoiser"]


class TwoConvolutions(layers.Layer):
    """F(x) = conv3x3 -> activation -> conv3x3, the part shared by :class:`PlainBlock` and :class:`ResidualBlock`.

    ``conv1`` (strided when ``strides`` is 2), ``act`` and ``conv2`` are its layers;
    :meth:`residual` applies them. Subclasses add ``call``; notebook 10 counts the
    MACs of both kinds through this class. Introduced in notebook 02.
    """

    def __init__(self, filters: int, kernel_size: int = 3, strides: int = 1,
                 activation: str = "relu", kernel_initializer="glorot_uniform",
                 last_kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.activation = activation
        # Kept as a config dict: each convolution deserialises its own initialiser,
        # because one unseeded initialiser object shared by several layers
        # would give them all the same weights.
        self.kernel_initializer = keras.initializers.serialize(keras.initializers.get(kernel_initializer))
        self.conv1 = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", name="conv1",
                                   kernel_initializer=self.kernel_initializer)
        self.act = layers.Activation(activation, name="act")
        self.conv2 = layers.Conv2D(filters, kernel_size, padding="same", name="conv2",
                                   kernel_initializer=last_kernel_initializer or self.kernel_initializer)

    def build(self, input_shape):
        self.conv1.build(input_shape)
        self.conv2.build(self.conv1.compute_output_shape(input_shape))

    def residual(self, x):
        """F(x): the two convolutions with the nonlinearity between them."""
        return self.conv2(self.act(self.conv1(x)))

    def compute_output_shape(self, input_shape):
        return self.conv1.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      activation=self.activation,
                      kernel_initializer=self.kernel_initializer)
        return config


@keras.saving.register_keras_serializable(package="course_lib")
class ResidualBlock(TwoConvolutions):
    """y = shortcut(x) + F(x), with F = conv3x3 -> activation -> conv3x3.

    Args:
        filters: output channels.
        kernel_size: size of both convolutions of F (odd; default 3).
        strides: 1 keeps the spatial size; 2 halves it (the first convolution of
            F is strided and the shortcut becomes a strided 1x1 projection).
        activation: nonlinearity inside F (a Keras activation name).
        zero_init: start the last convolution of F at zero, so the block is
            the identity (or the projection) at initialisation.
        kernel_initializer: initialiser of the convolution kernels (a Keras
            initialiser or its name); "he_normal" suits ReLU stacks (He et al. 2015).

    Input (B, H, W, C) -> output (B, ceil(H / strides), ceil(W / strides), filters),
    any H and W. The shortcut is the identity when ``strides == 1`` and
    ``C == filters``, otherwise a 1x1 convolution with the given stride.
    Introduced in notebook 02.
    """

    def __init__(self, filters: int, kernel_size: int = 3, strides: int = 1,
                 activation: str = "relu", zero_init: bool = False,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(filters, kernel_size, strides, activation, kernel_initializer,
                         last_kernel_initializer="zeros" if zero_init else None, **kwargs)
        self.zero_init = bool(zero_init)
        self.projection = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.strides != 1 or channels != self.filters:
            # x and F(x) must have the same shape to be added.
            self.projection = layers.Conv2D(self.filters, 1, strides=self.strides, name="projection",
                                            kernel_initializer=self.kernel_initializer)
            self.projection.build(input_shape)
        super().build(input_shape)

    def call(self, x):
        shortcut = x if self.projection is None else self.projection(x)
        return shortcut + self.residual(x)

    def get_config(self):
        config = super().get_config()
        config.update(zero_init=self.zero_init)
        return config


@keras.saving.register_keras_serializable(package="course_lib")
class PlainBlock(TwoConvolutions):
    """y = F(x) = conv3x3 -> activation -> conv3x3: a :class:`ResidualBlock` without the skip.

    Same arguments (except ``zero_init``, which would make the output zero) and
    the same weights as a ``ResidualBlock`` whose input already has ``filters``
    channels, so the two can be compared at equal depth and width.
    Input (B, H, W, C) -> output (B, ceil(H / strides), ceil(W / strides), filters).
    Introduced in notebook 02.
    """

    def call(self, x):
        return self.residual(x)


def make_denoiser(depth: int = 18, width: int = 32, residual: bool = True, zero_init: bool = True,
                  kernel_initializer="he_normal", name: str | None = None) -> keras.Model:
    """A fully convolutional image-to-image network of ``depth`` 3x3 convolutions.

    Layout (the plain and residual nets of He et al. 2016, without batch norm)::

        x -> conv(width) -> relu -> [block -> relu] x (depth - 2) / 2 -> conv(3) -> y

    where ``block`` is a :class:`ResidualBlock` (``residual=True``: relu(h + F(h)))
    or a :class:`PlainBlock` (``residual=False``: relu(F(h))). Both variants
    have the same layers and the same parameter count; the only difference is
    the ``+ h`` inside each block. There is no global skip: the network outputs
    the image, not the noise.

    Every kernel uses ``kernel_initializer`` (He init keeps the plain net's
    signal from shrinking layer by layer). With ``zero_init`` (residual only)
    the last convolution of each residual block starts at zero, so every block
    starts as the identity; without it, and without batch norm, the sum
    h + F(h) grows block after block. Plain blocks ignore ``zero_init``: a plain
    block with a zero last convolution would output zeros.

    Input (B, H, W, 3) floats in [0, 1], any H and W -> output (B, H, W, 3).
    ``depth`` counts convolution layers and must be even and at least 4.
    Introduced in notebook 02.
    """
    if depth < 4 or depth % 2:
        raise ValueError(f"depth must be an even number >= 4 (two convolutions per block), got {depth}")
    inputs = keras.Input((None, None, 3))
    h = layers.Conv2D(width, 3, padding="same", activation="relu", name="first_conv",
                      kernel_initializer=kernel_initializer)(inputs)
    for index in range((depth - 2) // 2):
        name_of_block = f"block_{index + 1}"
        if residual:
            block = ResidualBlock(width, zero_init=zero_init, kernel_initializer=kernel_initializer,
                                  name=name_of_block)
        else:
            block = PlainBlock(width, kernel_initializer=kernel_initializer, name=name_of_block)
        h = layers.Activation("relu", name=f"relu_{index + 1}")(block(h))
    outputs = layers.Conv2D(3, 3, padding="same", name="last_conv",
                            kernel_initializer=kernel_initializer)(h)
    return keras.Model(inputs, outputs, name=name or ("residual" if residual else "plain") + f"_{depth}")
