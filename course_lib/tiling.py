"""Halo tiling: run a convolutional network on a large image piece by piece, same result as in one piece.

A fully convolutional network's output at one position depends only on the inputs
within its receptive field. So an image can be cut into tiles, each tile run with
a margin (the *halo*) of surrounding context at least as wide as that receptive
radius, and only the tile's own part of each output kept: the pieces put back
together equal the untiled output, while memory follows the largest tile, not the
image. The learned codec tiles its encoder and decoder on the grid of latents
(notebook 06), the restoration network tiles on pixels (notebook 08).

Pure NumPy: the network is any function from a batch of one array to a NumPy array.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["tile_edges", "apply_tiled"]


def tile_edges(size: int, tile: int, multiple: int = 1) -> list[tuple[int, int]]:
    """Split ``range(size)`` into (start, stop) pieces of at most about ``tile`` each, evenly.

    The number of pieces is ``ceil(size / tile)``; their edges are spread evenly
    and rounded to multiples of ``multiple`` (the last edge is ``size``). With
    ``multiple=1`` no piece is longer than ``tile``; otherwise a piece may be
    up to ``multiple - 1`` longer. Empty pieces are dropped. Library plumbing
    of :func:`apply_tiled` (notebooks 06 and 08).
    """
    count = max(1, math.ceil(size / tile))
    edges = [int(e) * multiple for e in np.linspace(0, size / multiple, count + 1).round()]
    edges[-1] = size
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def apply_tiled(transform, inputs: np.ndarray, tile: int, halo: int, scale_in: int = 1, scale_out: int = 1,
                multiple: int = 1) -> np.ndarray:
    """Apply ``transform`` to a (H, W, C) array tile by tile with ``halo`` cells of context; float32 result.

    The tiles are laid out on a grid of cells of ``scale_in`` input pixels and
    ``scale_out`` output pixels each (the codec's encoder: 16 and 1, one cell
    per latent; its decoder: 1 and 16; a network that keeps the resolution:
    1 and 1). H and W must be multiples of ``scale_in``. A tile of cells
    [a, b) reads input rows [(a - halo) * scale_in, (b + halo) * scale_in)
    (clipped to the image) and keeps output rows [a * scale_out, b * scale_out);
    ``tile`` and ``multiple`` are as in :func:`tile_edges`, in cells.

    ``transform``: a function from a (1, h, w, C) float32 batch to an array
    (1, h * scale_out / scale_in, w * scale_out / scale_in, C') that NumPy can
    convert (call ``keras.ops.convert_to_numpy`` in it). When ``halo`` covers
    the transform's receptive radius (in cells), the result equals
    ``transform(inputs[None])[0]``. Introduced in notebook 06 (the codec's
    tiles); notebook 08 tiles the restoration network with it.
    """
    h, w = inputs.shape[0] // scale_in, inputs.shape[1] // scale_in
    if h == 0 or w == 0:
        raise ValueError(f"nothing to tile: inputs of shape {inputs.shape} hold no whole cell of {scale_in} pixels")
    out = None
    for top, bottom in tile_edges(h, tile, multiple):
        for left, right in tile_edges(w, tile, multiple):
            t0, b0 = max(top - halo, 0), min(bottom + halo, h)
            l0, r0 = max(left - halo, 0), min(right + halo, w)
            piece = inputs[t0 * scale_in:b0 * scale_in, l0 * scale_in:r0 * scale_in]
            result = np.asarray(transform(piece[None]))[0]
            if out is None:
                out = np.empty((h * scale_out, w * scale_out, result.shape[-1]), np.float32)
            out[top * scale_out:bottom * scale_out, left * scale_out:right * scale_out] = result[
                (top - t0) * scale_out:(bottom - t0) * scale_out, (left - l0) * scale_out:(right - l0) * scale_out]
    return out
