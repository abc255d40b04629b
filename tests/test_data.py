import io

import numpy as np
import pytest
from PIL import Image

from course_lib import data
from course_lib.data import ImageLoadError, load_image, to_rgb8


def _png_bytes(img: Image.Image, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _check_rgb8(a, shape):
    assert a.dtype == np.uint8 and a.shape == shape + (3,)


def test_course_photos_load_offline_as_rgb():
    photos = data.course_photos()
    assert set(photos) == set(data.COURSE_PHOTOS)
    for name, im in photos.items():
        assert im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3, name
        assert min(im.shape[:2]) >= 256, name
    for name in data.OTHER_IMAGES:
        assert data.course_photo(name).shape[2] == 3
    with pytest.raises(KeyError, match="unknown course photo"):
        data.course_photo("lena")


def test_gray_image_is_replicated_to_three_channels():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = load_image(_png_bytes(Image.fromarray(gray, "L")))
    _check_rgb8(out, (3, 4))
    assert np.array_equal(out[..., 0], gray) and np.array_equal(out[..., 2], gray)


def test_rgba_is_composited_on_white():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)      # opaque red stays red
    rgba[0, 1] = (255, 0, 0, 0)        # fully transparent -> white
    rgba[1, 0] = (0, 0, 0, 128)        # half-transparent black -> mid gray
    out = load_image(_png_bytes(Image.fromarray(rgba, "RGBA")))
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[0, 1]) == (255, 255, 255)
    assert abs(int(out[1, 0, 0]) - 127) <= 1


def test_palette_and_gray_alpha():
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), "P")
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    out = load_image(_png_bytes(pal))
    assert tuple(out[0, 0]) == (10, 20, 30) and tuple(out[0, 1]) == (200, 100, 50)
    la = Image.fromarray(np.dstack([np.full((2, 3), 40, np.uint8), np.full((2, 3), 255, np.uint8)]), "LA")
    _check_rgb8(load_image(_png_bytes(la)), (2, 3))


def test_sixteen_bit_png_is_scaled_not_clipped():
    a16 = np.array([[0, 65535], [257 * 100, 32768]], np.uint16)
    out = load_image(_png_bytes(Image.fromarray(a16)))
    assert out[0, 0, 0] == 0 and out[0, 1, 0] == 255 and out[1, 0, 0] == 100
    assert out[1, 1, 0] in (127, 128)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (5, 3)])
def test_tiny_and_odd_sizes(shape):
    rgb = np.random.default_rng(0).integers(0, 256, shape + (3,), dtype=np.uint8)
    out = load_image(_png_bytes(Image.fromarray(rgb)))
    assert np.array_equal(out, rgb)


def test_non_images_give_a_clear_error(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    with pytest.raises(ImageLoadError, match="notes.png: not an image"):
        load_image(text)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(empty)
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_truncated_png_gives_a_clear_error():
    good = _png_bytes(Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    with pytest.raises(ImageLoadError, match="damaged|not an image"):
        load_image(good[: len(good) // 2])


def test_huge_image_refused_before_decoding():
    big = Image.new("L", (300, 200))
    with pytest.raises(ImageLoadError, match="above the limit"):
        load_image(_png_bytes(big), max_pixels=50_000)


def test_to_rgb8_rejects_bad_arrays():
    with pytest.raises(ImageLoadError):
        to_rgb8(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ImageLoadError, match=r"\[0, 1\]"):
        to_rgb8(np.full((2, 2), 3.0))
    with pytest.raises(ImageLoadError, match="NaN"):
        to_rgb8(np.full((2, 2), np.nan))
    assert to_rgb8(np.ones((2, 2), np.float32))[0, 0, 0] == 255


def test_load_folder_sorted_and_skips_bad(tmp_path):
    for i, name in enumerate(["b.png", "a.png"]):
        Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(tmp_path / name)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG nope")
    (tmp_path / "readme.txt").write_text("ignored: not an image suffix")
    with pytest.raises(ImageLoadError):
        data.load_folder(tmp_path)
    with pytest.warns(UserWarning, match="broken.png"):
        images = data.load_folder(tmp_path, skip_bad=True)
    assert list(images) == ["a.png", "b.png"]


def test_kodak_checksums_are_verified(tmp_path, monkeypatch):
    folder = data.kodak_dir()
    if folder is None:
        pytest.skip("Kodak not found (set KODAK_DIR); checked in CI with ../shared/kodak")
    images = data.load_kodak(limit=2)
    assert list(images) == ["kodim01.png", "kodim02.png"]
    assert images["kodim01.png"].shape == (512, 768, 3)
    # A copy with one changed byte must be refused.
    fake = tmp_path / "kodak"
    fake.mkdir()
    raw = bytearray((folder / "kodim01.png").read_bytes())
    raw[-20] ^= 1
    (fake / "kodim01.png").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="SHA-256"):
        data.load_kodak(fake, limit=1)


def test_kodak_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KODAK_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="KODAK_DIR"):
        data.kodak_dir()


def test_training_dataset_crops_and_flips():
    images = [np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8),
              np.zeros((10, 10, 3), np.uint8)]  # too small: skipped
    ds = data.training_dataset(images, crop=32, batch_size=4, seed=0)
    batch = next(iter(ds)).numpy()
    assert batch.shape == (4, 32, 32, 3) and batch.dtype == np.float32
    assert 0.0 <= batch.min() and batch.max() <= 1.0
    src = images[0].astype(np.float32) / 255
    # Every crop is a window of the source image, possibly mirrored.
    for patch in batch:
        found = any(
            np.allclose(p, src[y:y + 32, x:x + 32])
            for p in (patch, patch[:, ::-1])
            for y in range(9) for x in range(19))
        assert found
    with pytest.raises(ValueError, match="at least 64x64"):
        data.training_dataset(images, crop=64)


def test_kodak_dir_off_means_no_kodak(monkeypatch):
    # make test runs the notebooks as a student's clone sees them: without Kodak.
    monkeypatch.setenv("KODAK_DIR", "off")
    assert data.kodak_dir() is None
    monkeypatch.setenv("KODAK_DIR", "/no/such/folder")
    with pytest.raises(FileNotFoundError):
        data.kodak_dir()
