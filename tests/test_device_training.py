"""Training on any Keras backend (course_lib.device_training) and the device staging (tools/stage_device.py).

CI has TensorFlow and no JAX: these tests run the backend-neutral loop under TensorFlow; the same
code ran under JAX on a CPU with tools/check_device_weights.py comparing the two (docs/gpu_training.md).
"""
import dataclasses
import importlib.util
import json
import subprocess
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from course_lib import data, device_training, training
from course_lib.runs import CODEC_WEIGHTS, split_folder
from course_lib.training_setup import TrainConfig, build_codec

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("stage_device", ROOT / "tools" / "stage_device.py")
stage_device = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stage_device)


def _images(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


# --------------------------------------------------------------------------- the crop sampler
def test_sampler_gives_seeded_float_batches_and_skips_small_images():
    images = _images([(40, 50), (20, 64), (33, 33)])
    a = device_training.CropSampler(images, crop=32, batch_size=4, seed=1)
    assert len(a.pool) == 2  # the 20-pixel-high image is smaller than the crop
    first = a.batch()
    assert first.shape == (4, 32, 32, 3) and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 1.0 and first.max() > 0.9
    again = device_training.CropSampler(images, crop=32, batch_size=4, seed=1)
    other = device_training.CropSampler(images, crop=32, batch_size=4, seed=2)
    np.testing.assert_array_equal(again.batch(), first)
    assert not np.array_equal(other.batch(), first)
    assert not np.array_equal(a.batch(), first)  # the stream goes on


def test_sampler_draws_what_the_tensorflow_dataset_draws():
    images = _images([(40, 50), (48, 36), (64, 64)], seed=3)
    sampler = device_training.CropSampler(images, crop=32, batch_size=2, seed=5)
    batches = list(data.training_dataset(images, crop=32, batch_size=2, seed=5).take(4).as_numpy_iterator())
    for expected in batches:
        np.testing.assert_allclose(sampler.batch(), expected, rtol=0, atol=1e-7)


def test_sampler_flips_half_of_the_crops():
    image = _images([(32, 32)], seed=4)[0]  # the crop is the whole image: only the flip varies
    sampler = device_training.CropSampler([image], crop=32, batch_size=50, seed=0)
    crops = sampler.batch() * 255.0
    plain = np.all(np.abs(crops - image) < 1e-3, axis=(1, 2, 3))
    flipped = np.all(np.abs(crops - image[:, ::-1]) < 1e-3, axis=(1, 2, 3))
    assert np.all(plain | flipped)
    assert 10 <= flipped.sum() <= 40


def test_sampler_names_a_bad_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        device_training.CropSampler(tmp_path / "missing", crop=32, batch_size=2)
    data.save_image(_images([(16, 16)])[0], tmp_path / "small.png")
    with pytest.raises(ValueError, match=f"{tmp_path}: no image is at least 32x32"):
        device_training.CropSampler(tmp_path, crop=32, batch_size=2)


# --------------------------------------------------------------------------- the stateless step (TensorFlow here)
def _tiny_config(folder, out, **changes):
    return TrainConfig(data=str(folder), out=str(out), lmbdas=[0.01, 0.05], batch_size=2, crop=32, val_count=1,
                       val_crop=64, channels=8, latent_channels=8, learning_rate=5e-3, **changes)


def test_stateless_steps_train_the_codec_and_write_back_the_state(photo_folder, tmp_path):
    keras.utils.set_random_seed(0)
    codec = build_codec(_tiny_config(photo_folder, tmp_path))
    trainer = device_training.StatelessTrainer(codec, keras.optimizers.Adam(5e-3))
    batch = device_training.CropSampler(photo_folder, crop=32, batch_size=2, seed=0).batch()
    before = [keras.ops.convert_to_numpy(v).copy() for v in codec.trainable_variables]
    loss_before = trainer.evaluate(batch, [0.01, 0.05], batch_size=2)["val_loss"]
    losses = [float(keras.ops.convert_to_numpy(trainer.step(batch, rate, lmbda)[0]))
              for rate, lmbda in [(0, 0.01), (1, 0.05)] * 4]
    assert all(np.isfinite(losses))
    assert trainer.evaluate(batch, [0.01, 0.05], batch_size=2)["val_loss"] < loss_before
    trainer.write_back()  # (under JAX the variables wait for it; under TensorFlow they are up to date)
    after = [keras.ops.convert_to_numpy(v) for v in codec.trainable_variables]
    assert sum(not np.array_equal(a, b) for a, b in zip(after, before)) > len(before) // 2
    np.testing.assert_array_equal(after[0], keras.ops.convert_to_numpy(trainer.state[0][0]))


def test_learning_rate_drop_scales_the_optimizer_state(photo_folder, tmp_path):
    codec = build_codec(_tiny_config(photo_folder, tmp_path))
    optimizer = keras.optimizers.Adam(1e-3)
    trainer = device_training.StatelessTrainer(codec, optimizer)
    trainer.scale_learning_rate(0.1)
    trainer.write_back()
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(1e-4)


def _start(photo_folder, tmp_path, **changes):
    """A tiny config whose run starts from saved weights (a device run always continues a codec)."""
    keras.utils.set_random_seed(0)
    init = tmp_path / "init.weights.h5"
    build_codec(_tiny_config(photo_folder, tmp_path)).save_weights(str(init))
    return _tiny_config(photo_folder, tmp_path / "run", init=str(init), **changes)


def test_a_run_writes_weights_in_parts_and_a_record_that_ship_reads(photo_folder, tmp_path):
    config = _start(photo_folder, tmp_path, steps=3)
    lines = []
    record = device_training.train_on_device(config, budget_seconds=600, part_mb=0.02, command="the command",
                                             data_note="three course photos", log=lines.append)
    run = Path(config.out)
    assert record["stopped"] == "steps" and record["steps"] == 3
    saved = json.loads((run / "history.json").read_text())
    assert saved["steps"] == 3 and saved["lmbdas"] == [0.01, 0.05] and saved["command"] == "the command"
    assert saved["data"] == "three course photos" and saved["backend"] == "tensorflow"
    assert saved["wall_seconds"] > 0 and saved["history"]["step"] == [3]
    assert {"val_loss", "val_bpp", "val_psnr", "loss"} <= set(saved["history"])
    assert "validation_at_start" in saved and any(line.startswith("stopped (steps)") for line in lines)
    assert not (run / CODEC_WEIGHTS).exists() and len(saved["weights_parts"]) > 1
    assert all((run / name).stat().st_size <= 0.02 * 2 ** 20 for name in saved["weights_parts"])
    assert json.loads((run / "config.json").read_text())["init"] == config.init
    device_training.join_parts(run)
    codec, loaded_config, loaded_record = training.load_run(run)  # what `ship` reads
    assert loaded_config == config and loaded_record["steps"] == 3
    start = build_codec(config)
    start.load_weights(config.init)
    assert not np.array_equal(keras.ops.convert_to_numpy(codec.log_gain), keras.ops.convert_to_numpy(start.log_gain))


def test_a_spent_budget_stops_before_the_first_step_and_still_checkpoints(photo_folder, tmp_path):
    config = _start(photo_folder, tmp_path, steps=1000)
    record = device_training.train_on_device(config, budget_seconds=100, started=time.monotonic() - 100,
                                             log=lambda text: None)
    assert record["stopped"] == "budget" and record["steps"] == 0
    assert (Path(config.out) / CODEC_WEIGHTS).is_file()
    assert json.loads((Path(config.out) / "history.json").read_text())["stopped"] == "budget"


def test_join_refuses_parts_that_do_not_match_the_record(photo_folder, tmp_path):
    config = _start(photo_folder, tmp_path, steps=1)
    device_training.train_on_device(config, budget_seconds=600, part_mb=0.02, log=lambda text: None)
    part = Path(config.out) / "codec.weights.h5.part1"
    content = bytearray(part.read_bytes())
    content[len(content) // 2] ^= 0xFF  # one byte of the weights differs
    part.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="do not match the recorded SHA-256"):
        device_training.join_parts(config.out)
    assert not (Path(config.out) / CODEC_WEIGHTS).exists()


def test_the_command_line_refuses_a_run_without_starting_weights(photo_folder, tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(dataclasses.asdict(_tiny_config(photo_folder, tmp_path))))
    common = ["train", "--config", str(path), "--out", str(tmp_path / "run"), "--budget-seconds", "60"]
    assert device_training.main(common) == 2
    assert "give --init or --widen-from" in capsys.readouterr().err
    assert device_training.main(common + ["--init", str(tmp_path / "none.weights.h5")]) == 2
    assert "none.weights.h5: no such file" in capsys.readouterr().err
    assert device_training.main(["train", "--config", str(tmp_path / "no.json"), "--out", "x",
                                 "--budget-seconds", "1"]) == 2
    assert "no.json: no such file" in capsys.readouterr().err


# --------------------------------------------------------------------------- staging
def test_evenly_spaced_takes_the_most_photos_that_fit():
    assert stage_device.evenly_spaced([10] * 10, 100) == list(range(10))
    assert stage_device.evenly_spaced([10] * 10, 50) == [0, 2, 4, 6, 8]
    assert stage_device.evenly_spaced([10] * 10, 39) == [0, 3, 6]
    with pytest.raises(ValueError, match="not even one fits"):
        stage_device.evenly_spaced([10, 5], 4)


def test_staging_counts_the_tree_and_keeps_under_the_limit(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("/.device/\n/ignored.bin\n")
    (root / "tracked.bin").write_bytes(b"t" * 100_000)
    (root / "untracked.bin").write_bytes(b"u" * 50_000)
    (root / "ignored.bin").write_bytes(b"i" * 999_999)
    subprocess.run(["git", "-C", str(root), "add", "tracked.bin", ".gitignore"], check=True)
    assert stage_device.tree_bytes(root) == 150_000 + len("/.device/\n/ignored.bin\n")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        data.save_image(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), photos / f"p{i:02d}.png")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"data": "elsewhere", "out": "x", "widen_from": "learned_codec"}))
    init = tmp_path / "w.weights.h5"
    init.write_bytes(b"w" * 30_000)
    photo = (photos / "p00.png").stat().st_size
    limit = 150_000 + 30_000 + 4 * photo + 8 * photo + 80_000  # the tree, init, 4 for validation, about 8 to train
    subset = stage_device.stage(photos, root / ".device", config, init=init, val_count=4, limit_mb=limit / 2 ** 20,
                                root=root, wheels=())
    out = root / ".device"
    train, val = split_folder(photos, 4)
    assert subset["validation"] == [p.name for p in val] == sorted(p.name for p in (out / "val").iterdir())
    assert sorted(p.name for p in (out / "train").iterdir()) == subset["train"]
    assert 4 <= len(subset["train"]) < len(train) and not set(subset["train"]) & set(subset["validation"])
    total = stage_device.tree_bytes(root) + sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert total <= limit and subset["total_mib"] * 2 ** 20 <= limit
    staged = json.loads((out / "config.json").read_text())
    assert staged["data"] == ".device/train" and staged["init"] == ".device/init.weights.h5"
    assert staged["widen_from"] is None and (out / "init.weights.h5").read_bytes() == init.read_bytes()
    # Weights that travel with the tree anyway (tracked, like data/weights) are referenced, not copied again.
    shipped = root / "shipped.weights.h5"
    shipped.write_bytes(b"s" * 30_000)
    subprocess.run(["git", "-C", str(root), "add", "shipped.weights.h5"], check=True)
    assert stage_device.travels_with_tree(root, shipped) and not stage_device.travels_with_tree(root, init)
    subset = stage_device.stage(photos, out, config, init=shipped, val_count=4, limit_mb=limit / 2 ** 20,
                                root=root, wheels=())
    staged = json.loads((out / "config.json").read_text())
    assert staged["init"] == "shipped.weights.h5" and not (out / "init.weights.h5").exists()
    assert subset["bytes"]["config_and_init"] < 1_000
