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
    out = tmp_path / "speed.json"
    assert codec_speed.main(["--image", str(photo), "--repeats", "1", "--models", *names, "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "128x96" in lines[0]
    rows = {line.split()[0]: line.split() for line in lines[2:-1]}
    assert list(rows) == names and rows[names[0]][-1] == "1.00x"
    recorded = json.loads(out.read_text())
    assert recorded["baseline"] == names[0] and list(recorded["models"]) == names
    assert all(f"{recorded['models'][n]['ratio']:.2f}x" == rows[n][-1] for n in names)
    assert codec_speed.main(["--image", str(tmp_path / "missing.png")]) == 2


def test_structure_aware_fuzz_of_both_shipped_codecs():
    """Issue 16: 1,260 damaged and crafted (resealed) files, half for each shipped codec; every case is a
    one-line BitstreamError or a correct decode, except that a resealed header may name another valid rate or
    a size on the same latent grid, and a payload bit edit may give another valid stream (valid files: no
    checksum can tell). No other exception, crash, hang (2 s), allocation over 64 MiB or silent wrong output."""
    import fuzz_bitstream

    table, messages, seconds = fuzz_bitstream.fuzz(1260, seed=1)
    kinds = fuzz_bitstream.DAMAGED + fuzz_bitstream.CRAFTED
    assert set(table) == {(version, kind) for version in (1, 2) for kind in kinds}
    assert sum(sum(counts.values()) for counts in table.values()) == 1260
    for (version, kind), counts in table.items():
        assert not any(counts[o] for o in fuzz_bitstream.FAILURES), (version, kind, counts)
        if kind not in ("header field at an extreme", "payload bit edits"):
            assert counts["documented error"] == sum(counts.values()), (version, kind, counts)
    assert any("payload too short" in m for m in messages) and any("missing words" in m for m in messages)
    assert any("after the end of the coded data" in m for m in messages)
    print(fuzz_bitstream.format_table(table), f"\n{seconds:.1f} s")


def test_fuzz_benchmark_prints_its_table(capsys):
    import fuzz_bitstream

    assert fuzz_bitstream.main(["--n", "28", "--versions", "1"]) == 0
    out = capsys.readouterr().out
    assert "format version(s) 1 (learned_codec)" in out and "no checksum can catch" in out.lower()
    assert "failures: silent wrong output 0, other exception 0, crash 0, hang 0, over memory 0" in out
    assert "payload bit edits" in out and "memory bomb" in out


def test_fuzz_harness_names_each_failure():
    """The harness itself: a decoder that returns the wrong image, raises something else, panics, takes too
    long or allocates too much is reported as such."""
    import time
    import tracemalloc

    import numpy as np

    import fuzz_bitstream
    from course_lib.bitstream import BitstreamError

    reference = np.zeros((4, 4, 3), np.uint8)

    class Panic(BaseException):
        pass

    def raise_(exc):
        raise exc

    def allocate_then_refuse():
        block = np.ones(80 * 2 ** 20, np.uint8)
        raise BitstreamError(f"refused after touching {block.size} bytes")

    behaviours = {
        "documented error": lambda: raise_(BitstreamError("one line")),
        "other exception": lambda: raise_(RuntimeError("not ours")),
        "crash": lambda: raise_(Panic()),
        "correct decode": lambda: reference.copy(),
        "silent wrong output": lambda: reference + 1,
        "hang": lambda: time.sleep(0.6) or reference,  # 5x the limit in wall-clock time
        "over memory": allocate_then_refuse,
    }

    class Fake:
        def __init__(self, behaviour):
            self.decompress = lambda data: behaviour()

    tracemalloc.start()
    try:
        for expected, behaviour in behaviours.items():
            time_limit = 0.1 if expected == "hang" else 30
            outcome = fuzz_bitstream.classify(Fake(behaviour), b"x", b"y", reference, True, time_limit, 64,
                                              fuzz_bitstream.collections.Counter())
            assert outcome == expected
    finally:
        tracemalloc.stop()


def test_transform_ceiling_rounded_column_is_what_the_real_files_decode_to(tmp_path, capsys):
    import transform_ceiling

    from course_lib.metrics import psnr
    from course_lib.models import load_codec

    folder = tmp_path / "photos"
    folder.mkdir()
    crops = {"a.png": data.course_photo("rocket")[:64, :80], "b.png": data.course_photo("china")[:48, :64]}
    for name, crop in crops.items():
        data.save_image(crop, folder / name)
    out = tmp_path / "ceiling.json"
    assert transform_ceiling.main(["--data", str(folder), "--models", "learned_hyperprior", "--rates", "0", "3",
                                   "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["images"] == ["a.png", "b.png"]
    rows = record["models"]["learned_hyperprior"]["rows"]
    assert [row["rate"] for row in rows] == [0, 3]
    codec = load_codec("learned_hyperprior")
    for row in rows:
        decoded = [psnr(crop, codec.decompress(codec.compress(crop, rate=row["rate"]))) for crop in crops.values()]
        assert row["rounded_psnr"] == pytest.approx(sum(decoded) / len(decoded), abs=1e-9)
        assert len(row["per_image_unquantized"]) == 2
    assert "learned_hyperprior" in capsys.readouterr().out
    assert transform_ceiling.main(["--data", str(folder), "--models", "learned_hyperprior", "--rates", "8"]) == 2
    assert "rate points 0-7" in capsys.readouterr().err
