"""Model complexity: multiply-accumulates counted from layer shapes, and TensorFlow's own count (notebook 10).

A convolution with a k x k kernel, C_in input and C_out output channels does
k * k * C_in * C_out multiply-accumulates (MACs) for each of its H_out * W_out
output pixels:

    MACs = H_out * W_out * k^2 * C_in * C_out.

One MAC is a multiplication and an addition, two floating-point operations
(FLOPs); papers quote either, so always say which. :func:`macs` applies the
formula layer by layer, walking the shapes through a network; GDN / IGDN add
C^2 MACs per pixel (the matrix product of its norm). Biases, activations,
GDN's square roots, the gains and the entropy model are elementwise and are
not counted: together they add well under 1 % to the codec's count.

:func:`profiled_flops` asks TensorFlow's profiler for the FLOPs of every
operation type in the graph of a ``tf.function``: an independent count to
check the formula against (its ``Conv2D`` and ``MatMul`` FLOPs are exactly
2 x the MACs of the convolutions and of GDN).
"""

from __future__ import annotations

import keras
from keras import layers

from .blocks import TwoConvolutions
from .codec import LearnedCodec
from .gdn import GDN
from .restoration import RestorationNet
from .transforms import LayerStack, SubPixelConv2D

__all__ = ["conv_macs", "macs", "macs_per_pixel", "profiled_flops"]


def conv_macs(output_height: int, output_width: int, kernel_size: int, in_channels: int,
              out_channels: int) -> int:
    """MACs of one convolution: H_out * W_out * k^2 * C_in * C_out (one image).

    Introduced in notebook 10.
    """
    return int(output_height) * int(output_width) * int(kernel_size) ** 2 * int(in_channels) * int(out_channels)


def _spatial(shape) -> tuple[int, int]:
    height, width = shape[1], shape[2]
    if height is None or width is None:
        raise ValueError(f"MACs need a fixed image size, got shape {tuple(shape)}")
    return int(height), int(width)


def _count(layer, shape, prefix: str, out: dict) -> tuple:
    """Add the MACs of ``layer`` on inputs of ``shape`` to ``out``; return its output shape."""
    name = f"{prefix}{layer.name}"
    if not layer.built:  # weights (and a residual block's projection) are created by build()
        layer.build(shape)
    if isinstance(layer, layers.Conv2D):
        output_shape = layer.compute_output_shape(shape)
        kernel_height, kernel_width, in_channels, out_channels = layer.kernel.shape
        height, width = _spatial(output_shape)
        groups = getattr(layer, "groups", 1)
        out[name] = height * width * kernel_height * kernel_width * in_channels * out_channels // groups
        return output_shape
    if isinstance(layer, GDN):
        height, width = _spatial(shape)
        out[name] = height * width * int(shape[-1]) ** 2
        return shape
    if isinstance(layer, SubPixelConv2D):
        _count(layer.conv, shape, f"{name}/", out)
        return layer.compute_output_shape(shape)
    if isinstance(layer, TwoConvolutions):  # ResidualBlock and PlainBlock
        if getattr(layer, "projection", None) is not None:
            _count(layer.projection, shape, f"{name}/", out)
        inner = _count(layer.conv1, shape, f"{name}/", out)
        return _count(layer.conv2, inner, f"{name}/", out)
    if isinstance(layer, (LayerStack, keras.Sequential)):  # the codec's Encoder and Decoder, or any Sequential
        for sublayer in layer.stack if isinstance(layer, LayerStack) else layer.layers:
            shape = _count(sublayer, shape, f"{name}/", out)
        return shape
    if isinstance(layer, LearnedCodec):
        latent_shape = _count(layer.encoder, shape, f"{name}/", out)
        return _count(layer.decoder, latent_shape, f"{name}/", out)
    if isinstance(layer, RestorationNet):
        s = layer.space_to_depth
        height, width = _spatial(shape)
        inner = (shape[0], height // s, width // s, 3 * s * s)
        for sublayer in layer.hidden + [layer.last_conv]:
            inner = _count(sublayer, inner, f"{name}/", out)
        return shape
    if not layer.weights:  # activations, reshapes: elementwise or free
        return layer.compute_output_shape(shape)
    raise TypeError(f"macs() does not know how to count {type(layer).__name__} ({layer.name!r}); "
                    "it counts Conv2D, GDN, residual/plain blocks, SubPixelConv2D, Encoder, Decoder, "
                    "LearnedCodec, RestorationNet and Sequential stacks of these")


def macs(layer, input_shape) -> dict[str, int]:
    """Multiply-accumulates of every convolution and GDN of ``layer``, in call order.

    Args:
        layer: a Keras ``Conv2D``, :class:`course_lib.gdn.GDN`, residual or plain
            block, ``SubPixelConv2D``, ``Encoder``, ``Decoder``, ``LearnedCodec``
            (encoder then decoder: what compress + decompress run),
            ``RestorationNet``, or a ``keras.Sequential`` of these (layers
            without weights, such as activations, count 0).
        input_shape: (B, H, W, C) with fixed H and W (B may be None; counts are per image).

    Returns ``{layer path: MACs for one image}``; ``sum(...)`` is the total.
    Layers that are not built yet are built for ``input_shape``.
    Introduced in notebook 10.
    """
    shape = tuple(input_shape)
    if len(shape) != 4:
        raise ValueError(f"input_shape must be (B, H, W, C), got {shape}")
    out: dict[str, int] = {}
    _count(layer, shape, "", out)
    return out


def macs_per_pixel(layer, height: int = 512, width: int = 768, channels: int = 3) -> float:
    """Total MACs of ``layer`` divided by the number of input pixels (default: a 768 x 512 image).

    Introduced in notebook 10."""
    return sum(macs(layer, (1, height, width, channels)).values()) / (height * width)


def profiled_flops(function, input_shape, dtype: str = "float32") -> dict[str, int]:
    """FLOPs per operation type, counted by TensorFlow's profiler on the graph of ``function``.

    ``function`` takes one tensor of ``input_shape`` (fixed shape, batch
    included) and is traced with ``tf.function``. Returns e.g.
    ``{"Conv2D": ..., "MatMul": ..., "BiasAdd": ...}``, operation types with no
    registered FLOP count omitted. Introduced in notebook 10.
    """
    import tensorflow as tf

    graph = tf.function(function).get_concrete_function(tf.TensorSpec(tuple(input_shape), dtype)).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # the profiler warns about deprecated TF1 helpers it uses internally
    try:
        profile = tf.compat.v1.profiler.profile(graph, cmd="op", options=options)
    finally:
        logger.setLevel(level)
    counts: dict[str, int] = {}

    def collect(node):
        if node.float_ops:
            counts[node.name] = counts.get(node.name, 0) + int(node.float_ops)
        for child in node.children:
            collect(child)

    collect(profile)
    return counts

