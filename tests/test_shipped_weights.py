"""The shipped weights load (checksums verified) and reproduce the figures in their manifest."""
import json

import pytest

from course_lib import data, metrics
from course_lib.config import WEIGHTS_DIR

MANIFEST = WEIGHTS_DIR / "manifest.json"


def _codec_entries():
    if not MANIFEST.exists():
        return []
    return [name for name, entry in json.loads(MANIFEST.read_text()).items() if "tables" in entry]


@pytest.mark.parametrize("name", _codec_entries() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no codec weights shipped in data/weights yet"))])
def test_shipped_codec_matches_its_manifest(name):
    from course_lib.models import load_codec

    entry = json.loads(MANIFEST.read_text())[name]
    for key in ("command", "data", "steps", "wall_seconds", "machine", "date"):
        assert key in entry["training"], f"{name}: manifest lacks training.{key}"
    codec = load_codec(name)
    image = data.course_photo(entry["check"]["image"])
    for point in entry["check"]["points"]:
        compressed = codec.compress(image, point["rate"])
        # Same machine type: identical; other CPUs may round a few decoder floats differently.
        assert metrics.bits_per_pixel(len(compressed), image.shape) == pytest.approx(point["bpp"], rel=0.01)
        assert metrics.psnr(image, codec.decompress(compressed)) == pytest.approx(point["psnr"], abs=0.05)


@pytest.mark.parametrize("name", _codec_entries() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no codec weights shipped in data/weights yet"))])
def test_file_size_matches_the_entropy_model_on_kodak(name):
    """Payload within 0.5 % (factorized) of the model's estimate, plus the header; for the hyperprior at most 1 %
    above it and at most 2 % below (checked on 3 Kodak images at the lowest and highest rate).

    Why the hyperprior's files may be smaller than its float estimate: its integer tables give every symbol of their
    support at least one count in 2^16, so a latent far out in the tail of a narrow Gaussian costs at most about 16
    bits in the file, while the float model charges it up to 30 (its likelihood bound, 1e-9). Measured on kodim03 at
    rate 0 with the weights shipped at 30,000 steps: 353 of 196,608 latents carry 871 of the estimate's 9,141
    bytes, and the file is 1.3 % below the estimate. A file *larger* than the estimate would be a hidden cost: that
    side keeps the 1 % bound.
    """
    from course_lib.bitstream import read_header
    from course_lib.models import load_codec

    if data.kodak_dir() is None:
        pytest.skip("Kodak not found (set KODAK_DIR); checked in CI with ../shared/kodak")
    codec = load_codec(name)
    for image in data.load_kodak(limit=3).values():
        for rate in (0, codec.num_rates - 1):
            estimate = codec.estimate_bits(image, rate) / 8
            compressed = codec.compress(image, rate)
            header = read_header(compressed)
            above, below = (0.005, 0.005) if header.version == 1 else (0.01, 0.02)
            payload = len(compressed) - header.size
            assert estimate * (1 - below) <= payload <= estimate * (1 + above), (rate, len(compressed), estimate)
