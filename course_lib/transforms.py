"""The codec's transforms: E, the analysis transform, and D, the synthesis transform (notebooks 03 and 06).

* :class:`Encoder` E: four stride-2 convolutions (16x downsampling) with GDN
  after each of the first three and residual blocks at 1/2, 1/4 and 1/8
  resolution (in the spirit of Theis et al. 2017 and Cheng et al. 2020's
  anchor model), ending in ``latent_channels`` channels.
* :class:`Decoder` D: the mirror image, upsampling with sub-pixel convolutions
  (:class:`SubPixelConv2D`: a convolution to 4x the channels, then
  depth-to-space; Shi et al. 2016), IGDN and residual blocks, ending in 3
  channels (RGB in [0, 1]).

Both are :class:`LayerStack` s: a readable list of named layers, which
:mod:`course_lib.complexity` walks layer by layer. ``residual_stages`` says
where the residual blocks sit and ``blocks_per_stage`` how many there are at
each (notebook 10 compares 0, 1 and 2); the defaults give the shipped codecs'
layout, so their weights load unchanged.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .blocks import ResidualBlock
from .gdn import GDN

__all__ = ["SubPixelConv2D", "LayerStack", "Encoder", "Decoder", "MAX_BLOCKS_PER_STAGE"]

#: Most residual blocks per stage a transform accepts (memory grows with each).
MAX_BLOCKS_PER_STAGE = 8


@keras.saving.register_keras_serializable(package="course_lib")
class SubPixelConv2D(layers.Layer):
    """2x upsampling by a sub-pixel convolution (Shi et al. 2016).

    A convolution makes ``4 * filters`` channels, then depth-to-space moves
    each group of 4 channels into a 2x2 block of pixels:
    (B, H, W, C) -> (B, 2H, 2W, filters). Every output pixel sees the same
    number of inputs (no uneven overlap as in a transposed convolution), but
    with independent random kernels for the 4 sub-pixels it would start with a
    period-2 pattern. ``icnr=True`` (the default) removes it with ICNR
    initialisation (Aitken et al. 2017): the 4 sub-pixels start with the same
    kernel, so the fresh layer is "convolve, then copy each pixel into a 2x2
    block"; notebook 06 shows both. Loaded weights replace the initial ones.
    Introduced in notebook 06.
    """

    def __init__(self, filters: int, kernel_size: int = 3, icnr: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.icnr = bool(icnr)
        self.conv = layers.Conv2D(4 * self.filters, self.kernel_size, padding="same", name="conv")

    def build(self, input_shape):
        self.conv.build(input_shape)
        if self.icnr:
            # Depth-to-space puts channel (2 dy + dx) * filters + c at sub-pixel (dy, dx):
            # tiling one kernel 4 times along the channels gives every sub-pixel the same filter.
            kernel = ops.convert_to_numpy(self.conv.kernel)
            self.conv.kernel.assign(np.tile(kernel[..., :self.filters], (1, 1, 1, 4)))

    def call(self, x):
        return ops.depth_to_space(self.conv(x), 2)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, icnr=self.icnr)
        return config


class LayerStack(layers.Layer):
    """A readable chain of named layers in ``self.stack`` (like ``keras.Sequential``, but a plain layer).

    The transforms of notebooks 03, 06 and 12 are stacks; :func:`course_lib.complexity.macs` walks them.
    """

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.stack:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, x):
        for layer in self.stack:
            x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.stack:
            shape = layer.compute_output_shape(shape)
        return shape


@keras.saving.register_keras_serializable(package="course_lib")
class Encoder(LayerStack):
    """E, the analysis transform: image (B, H, W, 3) in [0, 1] -> latents (B, H/16, W/16, M).

    conv5x5/2 -> GDN -> residual block, three times (N channels), then
    conv5x5/2 to M latent channels. H and W must be multiples of 16.
    ``residual_stages``: where the blocks sit (:func:`check_stages`);
    ``blocks_per_stage``: how many at each (:func:`residual_blocks`).
    Introduced in notebook 03.
    """

    def __init__(self, channels: int = 64, latent_channels: int = 128, residual_stages=(0, 1, 2),
                 blocks_per_stage: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.latent_channels = int(channels), int(latent_channels)
        self.residual_stages = check_stages(residual_stages)
        self.blocks_per_stage = _check_blocks_per_stage(blocks_per_stage)
        self.stack = []
        for i in range(3):
            # GDN's normalisation and the latents stay float32 under a mixed_bfloat16
            # policy: a sum of squares and the quantizer's input need the precision.
            self.stack += [layers.Conv2D(self.channels, 5, strides=2, padding="same", name=f"downsample_{i}"),
                           GDN(name=f"gdn_{i}", dtype="float32")]
            if i in self.residual_stages:
                self.stack += residual_blocks(self.channels, f"residual_{i}", self.blocks_per_stage)
        self.stack.append(layers.Conv2D(self.latent_channels, 5, strides=2, padding="same", name="downsample_3",
                                        dtype="float32"))

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, latent_channels=self.latent_channels,
                      residual_stages=list(self.residual_stages), blocks_per_stage=self.blocks_per_stage)
        return config


@keras.saving.register_keras_serializable(package="course_lib")
class Decoder(LayerStack):
    """D, the synthesis transform: latents (B, h, w, M) -> image (B, 16h, 16w, 3), about [0, 1].

    Mirrors :class:`Encoder`: sub-pixel conv 2x up -> IGDN -> residual block,
    three times (N channels), then a sub-pixel convolution to 3 channels.
    The output is not clipped (clipping would stop gradients during training).
    ``residual_stages`` and ``blocks_per_stage`` as in :class:`Encoder`.
    Introduced in notebook 06.
    """

    def __init__(self, channels: int = 64, residual_stages=(0, 1, 2), blocks_per_stage: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.residual_stages = check_stages(residual_stages)
        self.blocks_per_stage = _check_blocks_per_stage(blocks_per_stage)
        self.stack = []
        for i in range(3):
            self.stack += [SubPixelConv2D(self.channels, name=f"upsample_{i}"),
                           GDN(inverse=True, name=f"igdn_{i}", dtype="float32")]
            # After upsample_i the resolution is 1/2^(3 - i): stage 2 - i, as in the encoder.
            if 2 - i in self.residual_stages:
                self.stack += residual_blocks(self.channels, f"residual_{i}", self.blocks_per_stage)
        # The output stays float32: at 35 dB and more the error is below bfloat16's step near 1.
        self.stack.append(SubPixelConv2D(3, name="upsample_3", dtype="float32"))

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, residual_stages=list(self.residual_stages),
                      blocks_per_stage=self.blocks_per_stage)
        return config


def check_stages(stages) -> tuple:
    """Residual-block positions of :class:`Encoder`/:class:`Decoder`: a subset of 0, 1, 2, as a sorted tuple.

    Stage s is the resolution 1/2^(s + 1): 0 = 1/2, 1 = 1/4, 2 = 1/8, in both
    transforms. A block costs 2 * 9 * N^2 multiply-adds per pixel of its own
    resolution, so one at 1/2 costs 16 times one at 1/8 (notebook 10).
    Raises ``ValueError`` for a stage outside 0, 1, 2.
    """
    stages = tuple(sorted({int(s) for s in stages}))
    if any(s not in (0, 1, 2) for s in stages):
        raise ValueError(f"residual stages must be among 0, 1, 2, got {stages}")
    return stages


def _check_blocks_per_stage(count) -> int:
    if isinstance(count, bool) or int(count) != count or not 0 <= int(count) <= MAX_BLOCKS_PER_STAGE:
        raise ValueError(f"blocks_per_stage must be an integer in 0..{MAX_BLOCKS_PER_STAGE}, got {count!r}")
    return int(count)


def residual_blocks(channels: int, name: str, count: int = 1) -> list:
    """``count`` residual blocks of ``channels`` channels for one stage of a transform.

    One block is named ``name`` (the shipped codecs' layout, so their weights
    load); several are ``name_0``, ``name_1``, ... Notebook 10 times
    transforms with 0, 1 and 2 blocks per stage.
    """
    if count == 1:
        return [ResidualBlock(channels, name=name)]
    return [ResidualBlock(channels, name=f"{name}_{k}") for k in range(count)]
