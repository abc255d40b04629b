"""Classical codecs through Pillow: formats, rates, quality knobs, RD curves, the CLI."""
import json

import numpy as np
import pytest
from PIL import features

from course_lib import baselines, data, metrics
from course_lib.baselines import compress_with, decode, encode, match_bpp, rd_curve
from course_lib.cli import main


@pytest.fixture(scope="module")
def photo():
    return data.course_photo("astronaut")[100:228, 160:352]  # 128 x 192 RGB, face and detail


def test_available_codecs():
    names = baselines.available_codecs()
    assert {"jpeg420", "jpeg444", "webp", "jpeg2000"} <= set(names)
    assert ("avif" in names) == features.check("avif")
    with pytest.raises(ValueError, match="unknown codec"):
        encode(np.zeros((8, 8, 3), np.uint8), "gif", 50)


@pytest.mark.parametrize("codec, magic", [("jpeg420", b"\xff\xd8"), ("jpeg444", b"\xff\xd8"),
                                          ("webp", b"RIFF"), ("jpeg2000", b"\x00\x00\x00\x0cjP")])
def test_encode_writes_the_format_and_decodes(photo, codec, magic):
    blob = encode(photo, codec, baselines.DEFAULT_QUALITIES[codec][4])
    assert blob.startswith(magic)
    out = decode(blob)
    assert out.dtype == np.uint8 and out.shape == photo.shape
    assert 25 < metrics.psnr(photo, out) < 60


def test_jpeg_subsampling_modes_differ(photo):
    small, large = encode(photo, "jpeg420", 75), encode(photo, "jpeg444", 75)
    assert len(small) < len(large)
    assert metrics.psnr(photo, decode(small)) < metrics.psnr(photo, decode(large))


@pytest.mark.parametrize("codec", ["jpeg420", "webp", "jpeg2000"])
def test_quality_knob_trades_bits_for_quality(photo, codec):
    low, high = (compress_with(photo, codec, q, msssim=False)
                 for q in (baselines.DEFAULT_QUALITIES[codec][1], baselines.DEFAULT_QUALITIES[codec][-1]))
    assert low.num_bytes < high.num_bytes
    assert low.psnr < high.psnr


def test_jpeg2000_quality_is_a_psnr_target(photo):
    for target in (30.0, 36.0):
        assert compress_with(photo, "jpeg2000", target, msssim=False).psnr == pytest.approx(target, abs=1.0)


def test_compress_with_reports_consistent_numbers(photo):
    result = compress_with(photo, "webp", 50)
    assert result.bpp == pytest.approx(8 * len(result.data) / (photo.shape[0] * photo.shape[1]))
    assert result.num_bytes == len(result.data)
    assert result.psnr == pytest.approx(metrics.psnr(photo, result.decoded))
    assert result.msssim == pytest.approx(metrics.ms_ssim(photo, result.decoded))
    assert 0.9 < result.msssim < 1


def test_gray_and_tiny_inputs_work():
    gray = data.course_photo("camera")[:64, :64, 0]
    for codec in baselines.available_codecs():
        assert compress_with(gray, codec, baselines.DEFAULT_QUALITIES[codec][3], msssim=False).decoded.shape == (64, 64, 3)
    tiny = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert decode(encode(tiny, "jpeg2000", 30)).shape == (5, 7, 3)


def test_rd_curve_is_the_mean_over_images_per_quality(photo):
    images = {"a": photo, "b": data.course_photo("coffee")[:96, :160]}
    curve = rd_curve(images, "jpeg420", qualities=[20, 80], progress=False)
    assert curve["quality"] == [20, 80]
    for i, q in enumerate([20, 80]):
        results = [compress_with(im, "jpeg420", q) for im in images.values()]
        assert curve["bpp"][i] == pytest.approx(np.mean([r.bpp for r in results]))
        assert curve["psnr"][i] == pytest.approx(np.mean([r.psnr for r in results]))
        assert curve["msssim"][i] == pytest.approx(np.mean([r.msssim for r in results]), abs=1e-6)


def test_match_bpp_finds_the_best_quality_under_the_target(photo):
    target = 1.0
    result = match_bpp(photo, "jpeg420", target, msssim=False)
    assert result.bpp <= target
    assert compress_with(photo, "jpeg420", result.quality + 1, msssim=False).bpp > target
    j2k = match_bpp(photo, "jpeg2000", target, msssim=False)
    assert 0.9 * target < j2k.bpp <= target
    # The quality is on the knob's 0.05 dB grid (snapping it again changes nothing), and the next
    # step up is over the target: the search never hands back a value that still needs rounding.
    assert baselines.snap_quality("jpeg2000", j2k.quality) == j2k.quality
    assert compress_with(photo, "jpeg2000", round(j2k.quality + 0.05, 2), msssim=False).bpp > target
    # Above the highest quality: the highest quality; below the lowest: a clear error.
    assert match_bpp(photo, "jpeg420", 50.0, msssim=False).quality == 100
    with pytest.raises(ValueError, match="cannot reach"):
        match_bpp(photo, "jpeg420", 0.01)


def test_snap_quality_puts_a_value_on_the_codecs_knob():
    assert baselines.snap_quality("jpeg420", 41.6) == 42 and isinstance(baselines.snap_quality("webp", 7.0), int)
    assert baselines.snap_quality("jpeg2000", 30.9371) == 30.95
    assert baselines.snap_quality("jpeg2000", 30.95) == 30.95


def test_cli_writes_curves_and_bd_rates(tmp_path, photo):
    folder = tmp_path / "images"
    folder.mkdir()
    data.save_image(photo, folder / "a.png")
    data.save_image(data.course_photo("coffee")[:128, :192], folder / "b.png")
    out = tmp_path / "rd.json"
    assert main(["baselines", "--data", str(folder), "--json", str(out), "--codecs", "jpeg420", "webp",
                 "--workers", "1", "--no-msssim"]) == 0
    result = json.loads(out.read_text())
    assert set(result["codecs"]) == {"jpeg420", "webp"}
    assert set(result["codecs"]["webp"]) == {"bpp", "psnr", "msssim"}
    assert result["codecs"]["webp"]["msssim"] == [None] * len(baselines.DEFAULT_QUALITIES["webp"])  # skipped: null
    assert len(result["codecs"]["webp"]["bpp"]) == len(baselines.DEFAULT_QUALITIES["webp"])
    assert result["bd_rate_vs_jpeg420"]["jpeg420"] == 0
    assert result["bd_rate_vs_jpeg420"]["webp"] < 0


def test_jpeg_q50_on_kodak_matches_published_pillow_figures():
    if data.kodak_dir() is None:
        pytest.skip("Kodak not found (set KODAK_DIR)")
    images = data.load_kodak()
    curve = rd_curve(images, "jpeg420", qualities=[50], msssim=False, progress=False)
    # CompressAI's Pillow JPEG on Kodak, quality 50: 0.906 bpp, 32.06 dB (RGB PSNR per image, averaged).
    assert curve["bpp"][0] == pytest.approx(0.906, abs=0.01)
    assert curve["psnr"][0] == pytest.approx(32.1, abs=0.2)
