"""python -m course_lib compress/decompress: round trip, and exit status 2 with one line on bad input."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest

from course_lib.__main__ import main
from course_lib.codec import save_codec
from course_lib.data import course_photo, load_image, save_image

from conftest import saved_tiny_codec


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    return (*saved_tiny_codec(folder, crop=(70, 90)), folder)


def run_main(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_round_trip_through_files(setup, capsys):
    codec, weights, image, folder = setup
    status, out, err = run_main(capsys, "compress", image, folder / "x.rcz", "--weights", weights)
    assert status == 0 and "bytes" in out and err == ""
    assert (folder / "x.rcz").read_bytes()[:2] == b"RZ"
    status, out, err = run_main(capsys, "decompress", folder / "x.rcz", folder / "x.png", "--weights", weights)
    assert status == 0 and err == ""
    np.testing.assert_array_equal(load_image(folder / "x.png"), codec.quantized_forward(load_image(image)))


def write(folder, name, content):
    path = folder / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("case, message", [
    ("no arguments", "required"),
    ("unknown option", "unrecognized"),
    ("missing image", "no such file"),
    ("text as image", "not an image"),
    ("missing rcz", "no such file"),
    ("empty rcz", "empty file"),
    ("foreign rcz", "wrong magic"),
    ("truncated rcz", "truncated"),
    ("flipped rcz", "checksum"),
    ("rate out of range", "rate must lie"),
    ("damaged weights", "SHA-256"),
    ("unknown model", "no model"),
    ("no model for file", "no model with id"),
])
def test_bad_input_exits_2_with_one_line(setup, capsys, case, message):
    codec, weights, image, folder = setup
    good = codec.compress(load_image(image))
    flipped = bytearray(good)
    flipped[-1] ^= 4
    damaged = folder / "damaged" / "tiny.weights.h5"
    if not damaged.exists():
        save_codec(codec, "tiny", damaged.parent)
        content = bytearray(damaged.read_bytes())
        content[-50] ^= 1
        damaged.write_bytes(bytes(content))
    out_png, out_rcz = folder / "o.png", folder / "o.rcz"
    argv = {
        "no arguments": [],
        "unknown option": ["compress", image, out_rcz, "--bogus"],
        "missing image": ["compress", folder / "nope.png", out_rcz, "--weights", weights],
        "text as image": ["compress", write(folder, "t.png", b"hello"), out_rcz, "--weights", weights],
        "missing rcz": ["decompress", folder / "nope.rcz", out_png, "--weights", weights],
        "empty rcz": ["decompress", write(folder, "e.rcz", b""), out_png, "--weights", weights],
        "foreign rcz": ["decompress", image, out_png, "--weights", weights],
        "truncated rcz": ["decompress", write(folder, "t.rcz", good[:-3]), out_png, "--weights", weights],
        "flipped rcz": ["decompress", write(folder, "f.rcz", bytes(flipped)), out_png, "--weights", weights],
        "rate out of range": ["compress", image, out_rcz, "--weights", weights, "--rate", "2"],
        "damaged weights": ["compress", image, out_rcz, "--weights", damaged],
        "unknown model": ["compress", image, out_rcz, "--weights", "no_such_model"],
        "no model for file": ["decompress", write(folder, "g.rcz", good), out_png],
    }[case]
    status, out, err = run_main(capsys, *argv)
    assert status == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert "Traceback" not in err


def test_real_process_prints_one_line_without_traceback_or_tensorflow_noise(setup):
    codec, weights, image, folder = setup
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    # The rate is checked after TensorFlow has been imported and the weights loaded.
    result = subprocess.run([sys.executable, "-m", "course_lib", "compress", str(image), str(folder / "o.rcz"),
                             "--weights", str(weights), "--rate", "7"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("error: rate must lie") and result.stderr.count("\n") == 1, result.stderr


@pytest.fixture(scope="module")
def hyper_setup(tmp_path_factory):
    from course_lib.hyperprior import HyperpriorCodec

    folder = tmp_path_factory.mktemp("cli_v2")
    keras.utils.set_random_seed(0)
    codec = HyperpriorCodec(channels=8, latent_channels=12, hyper_channels=4, num_rates=2)
    codec.build()
    codec.update_tables()
    weights = save_codec(codec, "tiny_hp", folder / "weights")
    image = save_image(course_photo("coffee")[:70, :90], folder / "in.png")
    return codec, weights, image, folder


def test_version_2_round_trip_through_files(hyper_setup, capsys):
    codec, weights, image, folder = hyper_setup
    status, out, err = run_main(capsys, "compress", image, folder / "x.rcz", "--weights", weights, "--rate", "1")
    assert status == 0 and err == ""
    assert (folder / "x.rcz").read_bytes()[:3] == b"RZ\x02"
    status, out, err = run_main(capsys, "decompress", folder / "x.rcz", folder / "x.png", "--weights", weights)
    assert status == 0 and err == ""
    np.testing.assert_array_equal(load_image(folder / "x.png"), codec.quantized_forward(load_image(image), 1))


@pytest.mark.parametrize("case, message", [
    ("truncated", "truncated"),
    ("trailing bytes", "unexpected bytes"),
    ("flipped payload", "checksum"),
    ("flipped size", "checksum"),
    ("header only", "truncated"),
    ("unknown version", "unsupported format version 3"),
    ("factorized weights", "version 2"),
    ("hyperprior weights for version 1", "version 1"),
])
def test_bad_version_2_input_exits_2_with_one_line(setup, hyper_setup, capsys, case, message):
    codec, weights, image, folder = hyper_setup
    good = codec.compress(load_image(image), 1)
    version_1 = setup[0].compress(load_image(image))
    flipped, resized, other_version = bytearray(good), bytearray(good), bytearray(good)
    flipped[-2] ^= 8
    resized[6] ^= 1
    other_version[2] = 3
    bad = {"truncated": good[:-4], "trailing bytes": good + b"\0" * 4, "flipped payload": bytes(flipped),
           "flipped size": bytes(resized), "header only": good[:19], "unknown version": bytes(other_version),
           "factorized weights": good, "hyperprior weights for version 1": version_1}[case]
    use = setup[1] if case == "factorized weights" else weights
    status, out, err = run_main(capsys, "decompress", write(folder, "bad.rcz", bad), folder / "o.png", "--weights", use)
    assert status == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err
