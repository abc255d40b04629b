"""course_lib.tiling: halo tiling equals the untiled result when the halo covers the receptive field (pure NumPy)."""
import numpy as np
import pytest

from course_lib.tiling import apply_tiled, tile_edges


def box_sum(batch, radius=2):
    """A stand-in network: each output pixel sums a (2 radius + 1)^2 window, zero padding (like 'same' convolutions)."""
    x = batch[0]
    padded = np.pad(x, ((radius, radius), (radius, radius), (0, 0)))
    h, w = x.shape[:2]
    out = sum(padded[i:i + h, j:j + w] for i in range(2 * radius + 1) for j in range(2 * radius + 1))
    return out[None]


def downsample_then_box(batch):
    """16 input pixels per cell, 1 output cell each, then a 1-cell box sum: a receptive radius of 1 cell."""
    x = batch[0]
    cells = x.reshape(x.shape[0] // 16, 16, x.shape[1] // 16, 16, -1).mean(axis=(1, 3))
    return box_sum(cells[None], radius=1)


@pytest.mark.parametrize("size, tile, multiple", [(7, 3, 1), (9, 3, 1), (100, 48, 1), (1, 48, 1), (96, 16, 4),
                                                  (100, 30, 4)])
def test_tile_edges_cover_the_range_evenly(size, tile, multiple):
    edges = tile_edges(size, tile, multiple)
    assert edges[0][0] == 0 and edges[-1][1] == size
    assert all(a < b for a, b in edges) and all(b == c for (_, b), (c, _) in zip(edges[:-1], edges[1:]))
    assert all(a % multiple == 0 for a, _ in edges)
    assert all(b - a <= tile + multiple - 1 for a, b in edges)
    assert len(edges) == max(1, -(-size // tile)) or multiple > 1


def test_tiles_with_a_large_enough_halo_equal_one_piece():
    image = np.random.default_rng(0).random((37, 53, 2)).astype(np.float32)
    whole = box_sum(image[None])[0]
    tiled = apply_tiled(box_sum, image, tile=8, halo=2)
    np.testing.assert_allclose(tiled, whole, rtol=1e-6)
    assert tiled.dtype == np.float32 and tiled.shape == whole.shape


def test_a_halo_smaller_than_the_receptive_radius_shows_the_seams():
    image = np.random.default_rng(0).random((37, 53, 2)).astype(np.float32)
    whole = box_sum(image[None])[0]
    assert np.abs(apply_tiled(box_sum, image, tile=8, halo=1) - whole).max() > 0.1


def test_cells_of_several_pixels_keep_the_grid():
    image = np.random.default_rng(1).random((7 * 16, 9 * 16, 3)).astype(np.float32)
    whole = downsample_then_box(image[None])[0]
    tiled = apply_tiled(downsample_then_box, image, tile=3, halo=1, scale_in=16, scale_out=1)
    np.testing.assert_allclose(tiled, whole, rtol=1e-6)
    assert np.abs(apply_tiled(downsample_then_box, image, tile=3, halo=0, scale_in=16) - whole).max() > 0.01


def test_an_input_without_a_whole_cell_is_refused():
    with pytest.raises(ValueError, match="nothing to tile"):
        apply_tiled(box_sum, np.zeros((8, 40, 3), np.float32), tile=4, halo=1, scale_in=16)
