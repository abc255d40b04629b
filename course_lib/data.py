"""Images in and out: course photos, any folder, Kodak, training crops (notebook 00).

Everything returned here is a ``uint8`` array of shape (H, W, 3), values in
[0, 255]. Gray, gray+alpha, RGBA, palette, CMYK and 16-bit inputs are converted
to 8-bit RGB; anything that is not an image raises :class:`ImageLoadError` (a
``ValueError``) with a message that names the file and the problem. Files are
read upright (their EXIF orientation applied, as a photo viewer shows them);
of an animated or multi-page file only the first frame is read, with an
:class:`ImageLoadWarning` that says so.

Files are opened and written through :mod:`course_lib.files`, which refuses
folders, devices and pipes by name, never blocks, and writes atomically.

Nothing here touches the network: the course photos ship inside scikit-image
and scikit-learn, Kodak is read from a local folder.
"""

from __future__ import annotations

import errno
import io
import os
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import DATA_DIR, PROJECT_ROOT
from .files import open_regular_file, os_error, sha256_file, write_file

__all__ = ["IMAGE_SUFFIXES", "MAX_PIXELS", "COURSE_PHOTOS", "OTHER_IMAGES", "ImageLoadError", "ImageLoadWarning",
           "to_rgb8", "load_image", "image_format", "save_image", "course_photo",
           "course_photos", "image_paths", "load_folder", "kodak_dir", "load_kodak", "training_dataset", "random_crops"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

#: Largest image accepted by :func:`load_image` (pixels). Pillow's own guard is
#: ~179 Mpx; we stop earlier so that a student's 100 Mpx panorama fails with a
#: clear message instead of exhausting memory in a codec later.
MAX_PIXELS = 50_000_000

# Photos bundled with installed packages (checked offline). Colour photos first,
# gray ones last; every loader returns RGB.
_SKIMAGE_COLOR = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle",
                  "hubble_deep_field", "retina", "immunohistochemistry")
_SKIMAGE_GRAY = ("camera", "text_gray")
_SKLEARN = ("china", "flower")

#: The course photos: natural colour photos used throughout the notebooks.
COURSE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "china", "flower")
#: Other bundled images for the "different image types" experiments.
OTHER_IMAGES = ("camera", "hubble_deep_field", "retina", "immunohistochemistry", "text", "brick")


class ImageLoadError(ValueError):
    """Raised when an input cannot be turned into an 8-bit RGB image: the demo's upload messages and the
    command line's one-line errors."""


class ImageLoadWarning(UserWarning):
    """An image was read, but not all of it: an animated or multi-page file gives its first frame only (the
    command line prints it as one line)."""


# --------------------------------------------------------------------------- conversion
def to_rgb8(array: np.ndarray, name: str = "array") -> np.ndarray:
    """Convert an image array to ``uint8`` RGB of shape (H, W, 3).

    Accepts (H, W), (H, W, 1), (H, W, 2) gray+alpha, (H, W, 3) and (H, W, 4)
    RGBA, in uint8, uint16 (scaled by 257), bool, or float in [0, 1]. Alpha is
    composited onto white, which is what an image viewer shows. Introduced in notebook 10.
    """
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ImageLoadError(f"{name}: expected an image of shape (H, W), (H, W, 1|2|3|4); got {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageLoadError(f"{name}: image has no pixels (shape {a.shape})")
    if a.dtype == np.uint8:
        f = a.astype(np.float32)
    elif a.dtype == np.uint16:
        f = a.astype(np.float32) / 257.0
    elif a.dtype == bool:
        f = a.astype(np.float32) * 255.0
    elif np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ImageLoadError(f"{name}: float image contains NaN or infinity")
        if a.min() < 0 or a.max() > 1:
            raise ImageLoadError(f"{name}: float images must lie in [0, 1]; got [{a.min():.3g}, {a.max():.3g}]")
        f = a.astype(np.float32) * 255.0
    elif np.issubdtype(a.dtype, np.integer):
        if a.min() < 0 or a.max() > 255:
            raise ImageLoadError(f"{name}: integer images must lie in [0, 255] (or be uint16)")
        f = a.astype(np.float32)
    else:
        raise ImageLoadError(f"{name}: unsupported dtype {a.dtype}")
    channels = f.shape[2]
    if channels in (2, 4):
        alpha = f[..., -1:] / 255.0
        f = f[..., :-1] * alpha + 255.0 * (1.0 - alpha)
    if f.shape[2] == 1:
        f = np.repeat(f, 3, axis=2)
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def _pil_to_rgb8(img: Image.Image, name: str) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img)
        # 16-bit gray PNGs come in as "I;16" or as "I" (32-bit) holding 0..65535.
        if a.max(initial=0) > 65535 or a.min(initial=0) < 0:
            raise ImageLoadError(f"{name}: 32-bit integer image out of the 16-bit range")
        return to_rgb8(a.astype(np.uint16), name)
    if mode == "F":
        a = np.asarray(img, dtype=np.float32)
        hi = float(a.max(initial=0))
        return to_rgb8(np.clip(a / (hi if hi > 1 else 1.0), 0, 1), name)
    if mode in ("RGB", "L"):
        return to_rgb8(np.asarray(img), name)
    if mode in ("RGBA", "LA", "PA", "P", "La", "RGBa") or "transparency" in img.info:
        return to_rgb8(np.asarray(img.convert("RGBA")), name)
    # CMYK, YCbCr, 1-bit, HSV, ... : let Pillow do the colour conversion.
    return to_rgb8(np.asarray(img.convert("RGB")), name)


def load_image(source, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Load one image as ``uint8`` RGB (H, W, 3).

    ``source`` is a path, raw ``bytes`` of an encoded image, a file-like object,
    a PIL image or a NumPy array. Raises :class:`ImageLoadError` for anything
    that is not a readable image (a text file, a truncated PNG, an empty file,
    a folder, a device or pipe, an image above ``max_pixels``).

    Encoded images (paths, bytes, streams) are turned upright by their EXIF
    orientation tag (a phone's portrait photo is stored sideways with a tag
    saying so); arrays and PIL images are taken as they are. Of an animated
    GIF/WebP or a multi-page TIFF only the first frame is returned, with an
    :class:`ImageLoadWarning` naming the file and its number of frames. Introduced in notebook 06.
    """
    if isinstance(source, np.ndarray):
        return to_rgb8(source)
    if isinstance(source, Image.Image):
        return _pil_to_rgb8(source, "PIL image")
    if isinstance(source, (bytes, bytearray, memoryview)):
        name, stream = "bytes", io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        name, stream = getattr(source, "name", "stream"), source
    else:
        name = str(source)
        try:
            stream = open_regular_file(source)
        except IsADirectoryError:
            raise ImageLoadError(f"{name}: is a folder, not an image (use load_folder)") from None
        except OSError as exc:
            raise ImageLoadError(str(exc)) from None
        with stream:
            if os.fstat(stream.fileno()).st_size == 0:
                raise ImageLoadError(f"{name}: file is empty")
            return _decode_image(stream, name, max_pixels)
    return _decode_image(stream, name, max_pixels)


def _decode_image(stream, name: str, max_pixels: int) -> np.ndarray:
    """Decode an encoded image from a binary stream (see :func:`load_image`)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageLoadError(
                        f"{name}: {w}x{h} = {w * h / 1e6:.1f} Mpx is above the limit of "
                        f"{max_pixels / 1e6:.0f} Mpx; downscale it first")
                frames = getattr(img, "n_frames", 1)
                img.load()
                ImageOps.exif_transpose(img, in_place=True)
                image = _pil_to_rgb8(img, name)
        if frames > 1:
            warnings.warn(f"{name}: {frames} frames (an animated or multi-page image); only the first is used",
                          ImageLoadWarning, stacklevel=3)
        return image
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(f"{name}: not an image file Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"{name}: image too large ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Truncated or corrupted files surface as OSError ("image file is truncated").
        raise ImageLoadError(f"{name}: damaged or unsupported image ({exc})") from None


def image_format(path) -> str:
    """Pillow's format name for an image path's suffix (``"PNG"`` for ``x.png``), one of :data:`IMAGE_SUFFIXES`.

    Raises ``ValueError`` naming the path and listing the supported
    suffixes when it has none or another one, and ``IsADirectoryError`` when
    the path is a folder. Cheap: the command line checks its output path with
    it before doing any work.
    """
    path = Path(path)
    if path.is_dir():
        raise os_error(IsADirectoryError, errno.EISDIR, f"{path}: is a directory; give an image file name "
                                                         f"such as {path / 'image.png'}")
    supported = ", ".join(IMAGE_SUFFIXES)
    if not path.suffix:
        raise ValueError(f"{path}: no suffix to choose the image format from; use one of {supported}")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{path}: unknown image format {path.suffix!r}; use one of {supported}")
    return Image.registered_extensions()[path.suffix.lower()]


def save_image(image: np.ndarray, path) -> Path:
    """Save a uint8 RGB image (format from the suffix, see :func:`image_format`; PNG is lossless).

    Written with :func:`write_file`: a failed save leaves no file and no
    partial file behind, and its message names the path. Introduced in notebook 06.
    """
    path = Path(path)
    image_format_name, picture = image_format(path), Image.fromarray(to_rgb8(image))
    return write_file(path, lambda file: picture.save(file, format=image_format_name))


# --------------------------------------------------------------------------- course photos
def course_photo(name: str) -> np.ndarray:
    """One image bundled with scikit-image or scikit-learn, as uint8 RGB.

    Names: see :data:`COURSE_PHOTOS` and :data:`OTHER_IMAGES`. No network. Introduced in notebook 00.
    """
    if name == "motorcycle":
        from skimage import data as skd

        return to_rgb8(skd.stereo_motorcycle()[0], name)
    if name == "text":
        from skimage import data as skd

        return to_rgb8(skd.text(), name)
    if name == "brick":
        from skimage import data as skd

        return to_rgb8(skd.brick(), name)
    if name in _SKIMAGE_COLOR + _SKIMAGE_GRAY:
        from skimage import data as skd

        return to_rgb8(getattr(skd, name)(), name)
    if name in _SKLEARN:
        from sklearn.datasets import load_sample_image

        return to_rgb8(load_sample_image(f"{name}.jpg"), name)
    known = ", ".join(COURSE_PHOTOS + OTHER_IMAGES)
    raise KeyError(f"unknown course photo {name!r}; choose one of: {known}")


def course_photos(names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Several course photos as a ``{name: image}`` dict (default: :data:`COURSE_PHOTOS`). Introduced in notebook 01."""
    return {n: course_photo(n) for n in (names or COURSE_PHOTOS)}


# --------------------------------------------------------------------------- folders
def image_paths(folder, recursive: bool = False) -> list[Path]:
    """Sorted paths of the image files in ``folder`` (by suffix). Used by the command line (folders of images)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_folder(folder, limit: int | None = None, skip_bad: bool = False) -> dict[str, np.ndarray]:
    """Load every image of a folder as ``{file name: uint8 RGB}``, sorted by name.

    With ``skip_bad=True`` unreadable files are skipped with a warning instead
    of raising :class:`ImageLoadError`. Used by the command line (``python -m course_lib.evaluate --data``).
    """
    out: dict[str, np.ndarray] = {}
    for path in image_paths(folder)[: limit or None]:
        try:
            out[path.name] = load_image(path)
        except ImageLoadError as exc:
            if not skip_bad:
                raise
            warnings.warn(f"skipped {exc}")
    if not out:
        raise ImageLoadError(f"{folder}: no readable images ({', '.join(IMAGE_SUFFIXES)})")
    return out


# --------------------------------------------------------------------------- Kodak
KODAK_CHECKSUMS = DATA_DIR / "kodak_SHA256SUMS"


def _read_checksums(path: Path) -> dict[str, str]:
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            sums[name.lstrip("*")] = digest
    return sums


def kodak_dir() -> Path | None:
    """The Kodak folder: ``$KODAK_DIR`` if set, else ``../shared/kodak`` beside the
    project when present, else ``data/kodak`` when present; ``None`` otherwise.

    ``KODAK_DIR=off`` means no Kodak, as on a student's machine (``make test`` runs
    the notebooks so, in the mode students see). Introduced in notebook 01."""
    env = os.environ.get("KODAK_DIR")
    if env and env.strip().lower() == "off":
        return None
    if env:
        # An explicit choice is honoured or refused, never silently replaced.
        if Path(env).is_dir() and any(Path(env).glob("kodim*.png")):
            return Path(env)
        raise FileNotFoundError(f"KODAK_DIR={env} holds no kodim*.png files")
    for c in (PROJECT_ROOT.parent / "shared" / "kodak", DATA_DIR / "kodak"):
        if c.is_dir() and any(c.glob("kodim*.png")):
            return c
    return None


def load_kodak(folder=None, limit: int | None = None, verify: bool = True) -> dict[str, np.ndarray]:
    """The Kodak test set (24 images, 768x512 or 512x768) as ``{name: uint8 RGB}``.

    Evaluation only: never train on it. Each file's SHA-256 is checked against
    ``data/kodak_SHA256SUMS`` so a damaged or different copy cannot slip into a
    benchmark. Raises ``FileNotFoundError`` when no Kodak folder is found. Introduced in notebook 01.
    """
    folder = Path(folder) if folder else kodak_dir()
    if folder is None:
        raise FileNotFoundError(
            "Kodak not found: set KODAK_DIR to a folder with kodim01.png ... kodim24.png")
    sums = _read_checksums(KODAK_CHECKSUMS)
    names = sorted(sums)[: limit or None]
    out = {}
    for name in names:
        path = folder / name
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing Kodak image")
        if verify and sha256_file(path) != sums[name]:
            raise ValueError(f"{path}: SHA-256 does not match the published Kodak file")
        out[name] = load_image(path)
    return out


# --------------------------------------------------------------------------- training crops
def training_dataset(images: Iterable[np.ndarray] | str | os.PathLike, crop: int = 128,
                     batch_size: int = 8, seed: int = 0, repeat: bool = True):
    """A ``tf.data.Dataset`` of random crops with random horizontal flips.

    ``images`` is a folder or an iterable of uint8 RGB arrays; images smaller
    than ``crop`` are skipped. Yields float32 batches (B, crop, crop, 3) in
    [0, 1]. Images are held in memory (fine for a few hundred photos). Introduced in notebook 02.
    """
    import tensorflow as tf

    if isinstance(images, (str, os.PathLike)):
        images = load_folder(images, skip_bad=True).values()
    pool = [im for im in images if min(im.shape[:2]) >= crop]
    if not pool:
        raise ValueError(f"no image is at least {crop}x{crop} pixels")
    rng = np.random.default_rng(seed)
    ds = tf.data.Dataset.from_generator(
        lambda: random_crops(pool, crop, rng, repeat), output_signature=tf.TensorSpec((crop, crop, 3), tf.uint8))
    ds = ds.map(lambda p: tf.cast(p, tf.float32) / 255.0)
    return ds.batch(batch_size, drop_remainder=True).prefetch(2)


def random_crops(pool: Sequence[np.ndarray], crop: int, rng: np.random.Generator, repeat: bool = True):
    """Yield ``crop`` x ``crop`` crops of the images in ``pool`` (each at least that large), flipped
    left-right half of the time: each pass visits every image once, in a new random order from ``rng``.

    Plumbing: the one sampler behind :func:`training_dataset` (notebook 02) and the command line's
    device trainer, so both draw the same crops for the same seed.
    """
    while True:
        for i in rng.permutation(len(pool)):
            im = pool[i]
            y = rng.integers(0, im.shape[0] - crop + 1)
            x = rng.integers(0, im.shape[1] - crop + 1)
            patch = im[y:y + crop, x:x + crop]
            yield patch[:, ::-1] if rng.random() < 0.5 else patch
        if not repeat:
            return
