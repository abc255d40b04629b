"""benchmarks/model_size.py on two tiny training runs: what it measures, records and warns about."""

import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

from course_lib import data, training
from course_lib.codec import LearnedCodec
from course_lib.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
import codec_speed  # noqa: E402,F401
import model_size  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two codecs of different widths trained alike for a few steps, and a folder of test images."""
    root = tmp_path_factory.mktemp("sizes")
    photos, test = root / "photos", root / "test"
    photos.mkdir(), test.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        data.save_image(data.course_photo(name)[:96, :96], photos / f"{name}.png")
    data.save_image(data.course_photo("rocket")[:64, :80], test / "a.png")
    data.save_image(data.course_photo("china")[:48, :64], test / "b.png")
    # One real run; the wider one is the same run's files with an untrained codec of width 12 (training it
    # too would double this fixture's time and test nothing more about the script).
    folders = {8: root / "N8", 12: root / "N12"}
    config = training.TrainConfig(data=str(photos), out=str(folders[8]), lmbdas=[0.01, 0.05], steps=4,
                                  batch_size=2, crop=32, steps_per_epoch=4, val_count=1, val_crop=64,
                                  channels=8, latent_channels=8)
    training.train(config, verbose=0)
    folders[12].mkdir()
    wide = json.loads((folders[8] / "config.json").read_text())
    wide.update(out=str(folders[12]), channels=12, latent_channels=12)
    (folders[12] / "config.json").write_text(json.dumps(wide))
    shutil.copy(folders[8] / "history.json", folders[12] / "history.json")
    codec = LearnedCodec(channels=12, latent_channels=12, num_rates=2)
    codec.build()
    codec.save_weights(str(folders[12] / "codec.weights.h5"))
    return folders, test


def test_table_and_json_for_runs_trained_alike(runs, tmp_path, capsys):
    folders, test = runs
    out = tmp_path / "sizes.json"
    status = model_size.main(["--runs", str(folders[8]), str(folders[12]), "--data", str(test), "--no-shipped",
                              "--json", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "warning" not in printed and "BD vs JPEG" in printed
    result = json.loads(out.read_text())
    assert result["reference"] == "N12" and result["images"] == 2
    models = result["models"]
    assert list(models) == ["N8", "N12"]
    assert models["N12"]["time_vs_widest"] == 1.0
    assert models["N8"]["macs_per_pixel"] < models["N12"]["macs_per_pixel"]
    assert models["N8"]["parameters"] < models["N12"]["parameters"]
    for name, row in models.items():
        assert "--channels " + name[1:] in row["command"] and row["steps"] == 4
        assert len(row["curve"]["bpp"]) == 2 and all(b > 0 for b in row["curve"]["bpp"])
        assert row["encode_seconds"] > 0 and row["decode_seconds"] > 0


def test_runs_trained_differently_are_flagged(runs, tmp_path, capsys):
    folders, test = runs
    config_path = folders[8] / "config.json"
    original = config_path.read_text()
    try:
        config_path.write_text(json.dumps({**json.loads(original), "steps": 8}))
        assert model_size.main(["--runs", str(folders[8]), str(folders[12]), "--data", str(test),
                                "--no-shipped", "--limit", "1"]) == 0
    finally:
        config_path.write_text(original)
    assert "not an equal-budget comparison" in capsys.readouterr().out


def test_a_missing_run_is_an_error(runs, tmp_path, capsys):
    _, test = runs
    assert model_size.main(["--runs", str(tmp_path / "nothing"), "--data", str(test)]) == 2
    assert "error" in capsys.readouterr().err


def test_codec_speed_prints_each_shipped_model_against_the_first(tmp_path, capsys):
    import codec_speed

    photo = data.save_image(data.course_photo("coffee")[:96, :128], tmp_path / "small.png")
    names = [name for name in ("learned_codec", "learned_hyperprior")
             if name in json.loads((PROJECT_ROOT / "data" / "weights" / "manifest.json").read_text())]
    assert codec_speed.main(["--image", str(photo), "--repeats", "1", "--models", *names]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "128x96" in lines[0]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert list(rows) == names and rows[names[0]][-1] == "1.00x"
    assert codec_speed.main(["--image", str(tmp_path / "missing.png")]) == 2


@pytest.mark.parametrize("version", [1, 2])
def test_fuzz_benchmark_finds_no_unexpected_exception(version, capsys):
    import fuzz_bitstream

    assert fuzz_bitstream.main(["--n", "180", "--version", str(version)]) == 0
    out = capsys.readouterr().out
    assert f"format version {version}" in out and "unexpected exceptions:\n       0  none" in out
