import numpy as np
import pytest
import tensorflow as tf

from course_lib import metrics


def test_psnr_matches_hand_computation():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 16  # MSE = 256 / 192
    expected = 10 * np.log10(255 ** 2 / (256 / 192))
    assert metrics.mse(a, b) == pytest.approx(256 / 192)
    assert metrics.psnr(a, b) == pytest.approx(expected, abs=1e-4)
    assert metrics.psnr(a, a) == float("inf")


def test_psnr_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def _ssim_numpy(x, y, max_val=255.0):
    """Single-scale SSIM with a uniform window over the whole image (for a flat check)."""
    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cov = ((x - mx) * (y - my)).mean()
    return ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))


def test_ms_ssim_identical_and_ordered():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (200, 180, 3), dtype=np.uint8)
    assert metrics.ms_ssim(img, img) == pytest.approx(1.0, abs=1e-6)
    noisy_a = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
    noisy_b = np.clip(img + rng.normal(0, 30, img.shape), 0, 255).astype(np.uint8)
    assert 1.0 > metrics.ms_ssim(img, noisy_a) > metrics.ms_ssim(img, noisy_b) > 0.0


def test_ms_ssim_matches_tf_with_five_scales():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (176, 176, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 10, a.shape), 0, 255).astype(np.float32)
    ref = float(tf.image.ssim_multiscale(a, b, 255.0).numpy())
    assert metrics.ms_ssim(a, b) == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("side, scales", [(161, 5), (160, 4), (81, 4), (41, 3), (21, 2), (11, 1)])
def test_ms_ssim_scale_fallback(side, scales):
    assert metrics.ms_ssim_scales(side, side + 7) == scales
    rng = np.random.default_rng(side)
    a = rng.integers(0, 256, (side, side + 7, 3), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 8, a.shape), 0, 255).astype(np.uint8)
    assert 0.0 < metrics.ms_ssim(a, b) < 1.0  # no exception from tf.image on small images


def test_tiny_images_fall_back_to_single_scale_ssim():
    # A constant-offset 5x5 image: SSIM reduces to the luminance term, computed by hand.
    a = np.full((5, 5, 3), 100.0)
    b = np.full((5, 5, 3), 110.0)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1)
    assert metrics.ms_ssim(a, b) == pytest.approx(expected, rel=1e-3)
    assert metrics.ms_ssim(np.zeros((1, 1, 3)), np.zeros((1, 1, 3))) == pytest.approx(1.0)


def test_bits_per_pixel_and_ratio():
    assert metrics.bits_per_pixel(49152, (512, 768, 3)) == pytest.approx(1.0)
    assert metrics.compression_ratio(49152, (512, 768)) == pytest.approx(24.0)
    with pytest.raises(ValueError):
        metrics.bits_per_pixel(10, (0, 5))


def test_ms_ssim_db():
    assert metrics.ms_ssim_db(0.99) == pytest.approx(20.0)
