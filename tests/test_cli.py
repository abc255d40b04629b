"""python -m course_lib <subcommand>: the compress/decompress round trip, --help, and for every subcommand
(and the older ``python -m course_lib.X`` spellings) exit status 2 with one line on bad input, before
TensorFlow is imported where the input can be checked without it."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest

from course_lib.cli import main
from course_lib.models import save_codec
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


SUBCOMMANDS = ("compress", "decompress", "train", "train-restoration", "evaluate", "baselines", "restore", "ship")


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("    ")]
    assert set(SUBCOMMANDS) <= set(listed), listed


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Three tiny photos, an empty folder, a run folder that lacks its weights, a restoration network."""
    from course_lib.restoration import RestorationNet, save_restorer

    root = tmp_path_factory.mktemp("bad_input")
    photos = root / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        save_image(course_photo(name)[:32, :32], photos / f"{name}.png")
    (root / "empty").mkdir()
    run = root / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "history.json").write_text("{}")
    keras.utils.set_random_seed(0)
    net = RestorationNet(depth=2, width=4)
    net.build()
    save_restorer(net, "tiny_net", root / "weights")
    return root


BAD_INPUT = {
    # subcommand: [(case, arguments after the subcommand, words the one line must hold)]
    "train": [
        ("no --data", ["--out", "{root}/out"], "--data is required"),
        ("missing folder", ["--data", "{root}/nope", "--out", "{root}/out"], "not a folder"),
        ("too few images", ["--data", "{root}/photos", "--out", "{root}/out", "--val-count", "3"],
         "need more than --val-count 3"),
        ("zero steps", ["--data", "{root}/photos", "--out", "{root}/out", "--steps", "0"], "positive whole number"),
        ("text as a number", ["--data", "{root}/photos", "--out", "{root}/out", "--batch-size", "eight"],
         "positive whole number"),
        ("negative lambda", ["--data", "{root}/photos", "--out", "{root}/out", "--lmbda", "-0.01"], "positive number"),
        ("drop after the end", ["--data", "{root}/photos", "--out", "{root}/out", "--lr-drop-at", "1.5"],
         "--lr-drop-at must lie in (0, 1]"),
        ("crop off the grid", ["--data", "{root}/photos", "--out", "{root}/out", "--crop", "100"], "multiple of 16"),
        ("missing --init", ["--data", "{root}/photos", "--out", "{root}/out", "--val-count", "1",
                            "--init", "{root}/none.weights.h5"],
         "no such file"),
        ("unknown --init-transforms", ["--data", "{root}/photos", "--out", "{root}/out", "--model", "hyperprior",
                                       "--crop", "64", "--val-count", "1", "--init-transforms", "no_such_codec"], "no model 'no_such_codec'"),
        ("ship a missing run", ["--out", "{root}/nope", "--ship", "x"], "no such file"),
        ("ship a run without weights", ["--out", "{root}/run", "--ship", "x"], "codec.weights.h5: no such file"),
    ],
    "train-restoration": [
        ("missing folder", ["--data", "{root}/nope", "--out", "{root}/out"], "not a folder"),
        ("crop off the pixel groups", ["--data", "{root}/photos", "--out", "{root}/out", "--crop", "33"],
         "multiple of --space-to-depth"),
        ("qualities upside down", ["--data", "{root}/photos", "--out", "{root}/out", "--qualities", "50", "10"],
         "LOW <= HIGH"),
        ("odd depth with blocks", ["--data", "{root}/photos", "--out", "{root}/out", "--depth", "5",
                                   "--residual-blocks"], "even with --residual-blocks"),
        ("unknown codec", ["--data", "{root}/photos", "--out", "{root}/out", "--degradations", "codec",
                           "--codec", "no_such_codec", "--val-count", "1"], "no model 'no_such_codec'"),
        ("missing --init", ["--data", "{root}/photos", "--out", "{root}/out", "--val-count", "1",
                            "--init", "{root}/none.weights.h5"],
         "no such file"),
    ],
    "evaluate": [
        ("no --data", [], "required"),
        ("missing folder", ["--data", "{root}/nope"], "not a folder"),
        ("unknown weights", ["--data", "{root}/photos", "--weights", "no_such_codec"], "no model 'no_such_codec'"),
        ("zero images", ["--data", "{root}/photos", "--limit", "0"], "positive whole number"),
        ("missing network", ["--data", "{root}/photos", "--restoration", "{root}/none.weights.h5"], "no such weights"),
        ("unknown learned network", ["--data", "{root}/photos", "--restoration",
                                     "--learned-restoration", "no_such_net"], "no model 'no_such_net'"),
    ],
    "baselines": [
        ("missing folder", ["--data", "{root}/nope"], "not a folder"),
        ("no images", ["--data", "{root}/empty"], "no readable images"),
        ("unknown codec", ["--data", "{root}/photos", "--codecs", "png"], "invalid choice"),
        ("zero workers", ["--data", "{root}/photos", "--workers", "0"], "positive whole number"),
    ],
    "restore": [
        ("missing image", ["{root}/nope.png", "{root}/out.png"], "no such file"),
        ("output without an image suffix", ["{root}/photos/coffee.png", "{root}/out.rcz"], "unknown image format"),
        ("output over the input", ["{root}/photos/coffee.png", "{root}/photos/coffee.png"], "is the input file"),
        ("unknown network", ["{root}/photos/coffee.png", "{root}/out.png", "--weights", "no_such_net"],
         "no model 'no_such_net'"),
        ("a codec is no network", ["{root}/photos/coffee.png", "{root}/out.png", "--weights", "learned_codec"],
         "not a restoration network"),
    ],
    "ship": [
        ("no --run", [], "required"),
        ("missing run", ["--run", "{root}/nope"], "no such file"),
        ("run without weights", ["--run", "{root}/run"], "neither codec.weights.h5 nor restoration.weights.h5"),
    ],
}


@pytest.mark.parametrize("command, case, argv, message", [
    (command, case, argv, message) for command, cases in BAD_INPUT.items() for case, argv, message in cases])
def test_every_subcommand_refuses_bad_input_with_one_line(folders, capsys, command, case, argv, message):
    status, out, err = run_main(capsys, command, *[a.format(root=folders) for a in argv])
    assert status == 2, (case, out, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, (case, err)
    assert "Traceback" not in err


def test_a_restoration_network_repairs_a_file(folders, capsys):
    from course_lib.restoration import load_restorer, restore

    weights = folders / "weights" / "tiny_net.weights.h5"
    status, out, err = run_main(capsys, "restore", folders / "photos" / "coffee.png", folders / "fixed.png",
                                "--weights", weights)
    assert status == 0 and err == ""
    expected = restore(load_image(folders / "photos" / "coffee.png"), load_restorer(weights))
    np.testing.assert_array_equal(load_image(folders / "fixed.png"), expected)


# Run in a fresh process as `python -m MODULE ARGS`; prints whether TensorFlow was imported.
SCRIPT = """import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
finally:
    print("tensorflow" in sys.modules)
"""


@pytest.mark.parametrize("argv, message", [
    (["course_lib", "evaluate", "--data", "{root}/nope"], "not a folder"),
    (["course_lib.evaluate", "--data", "{root}/nope"], "not a folder"),
    (["course_lib.baselines", "--data", "{root}/nope"], "not a folder"),
    (["course_lib.train", "--data", "{root}/nope", "--out", "{root}/out"], "not a folder"),
    (["course_lib.restoration", "train", "--data", "{root}/nope", "--out", "{root}/out"], "not a folder"),
    (["course_lib.restoration", "restore", "{root}/nope.png", "{root}/out.png"], "no such file"),
    (["course_lib.restoration", "ship", "--run", "{root}/run"], "neither codec.weights.h5"),
    (["course_lib", "bogus"], "invalid choice"),
])
def test_older_spellings_fail_on_bad_input_before_tensorflow_loads(folders, argv, message):
    args = [a.format(root=folders) for a in argv]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120,
                            env=env)
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert result.stdout.split() == ["False"], "TensorFlow was imported before the input was refused"
