"""Rate-distortion training: the loss, a tiny run, resume, the shared fit loop, and shipping."""
import json

import numpy as np
import pytest

from course_lib import data, runs, ship, training
from course_lib.cli import main


def test_rd_loss_weights_distortion_by_lambda():
    assert training.rd_loss(0.5, 100.0, 0.01) == pytest.approx(1.5)
    assert training.rd_loss(0.5, 100.0, 0.0) == pytest.approx(0.5)


def test_split_folder_is_deterministic_and_disjoint(tmp_path):
    for i in range(10):
        data.save_image(np.full((8, 8, 3), i, np.uint8), tmp_path / f"{i:02d}.png")
    train, val = runs.split_folder(tmp_path, 3)
    assert len(train) == 7 and len(val) == 3 and not set(train) & set(val)
    assert runs.split_folder(tmp_path, 3) == (train, val)
    with pytest.raises(ValueError, match="val_count"):
        runs.split_folder(tmp_path, 10)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        runs.split_folder(tmp_path / "missing", 1)


def _config(folder, out, steps):
    return training.TrainConfig(data=str(folder), out=str(out), lmbdas=[0.01, 0.05], steps=steps,
                                batch_size=2, crop=32, learning_rate=3e-4, steps_per_epoch=4, val_count=1,
                                val_crop=64, channels=8, latent_channels=8)


def test_tiny_run_learns_and_resumes(photo_folder, tmp_path):
    codec, record = training.train(_config(photo_folder, tmp_path, steps=12), verbose=0)
    history = record["history"]
    assert history["epoch"] == [0, 1, 2]
    # The validation loss (every rate point, rounded latents, fixed crops) falls:
    # an untrained decoder starts far from the image. The training loss is too
    # noisy to compare over 4-step epochs of 2 random crops.
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert (tmp_path / "codec.weights.h5").exists() and (tmp_path / "backup" / "latest.weights.h5").exists()
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 3
    # Asking for more steps resumes at epoch 3 instead of starting again.
    _, record = training.train(_config(photo_folder, tmp_path, steps=16), verbose=0)
    assert record["history"]["epoch"] == [0, 1, 2, 3]
    assert record["history"]["loss"][:3] == history["loss"]
    assert record["wall_seconds"] > 0


def test_lambdas_must_match_rate_points():
    from course_lib.codec import LearnedCodec

    with pytest.raises(ValueError, match="2 lambdas for a codec with 3 rate points"):
        training.RateDistortionTrainer(LearnedCodec(8, 8, num_rates=3), [0.01, 0.02])


def test_ship_records_provenance_and_a_reproducible_check(photo_folder, tmp_path):
    from course_lib import metrics
    from course_lib.models import load_codec

    training.train(_config(photo_folder, tmp_path / "run", steps=4), verbose=0)
    record = json.loads((tmp_path / "run" / "history.json").read_text())
    entry = ship.ship_codec(tmp_path / "run", "tiny", folder=tmp_path / "weights")
    # The machine and date are the run's (recorded while it trained), not the shipping session's.
    assert entry["training"]["machine"] == record["machine"] and "TensorFlow" in record["machine"]
    assert entry["training"]["date"] == record["date"]
    assert entry["training"]["steps"] == 4
    assert entry["training"]["command"].startswith("python -m course_lib.train --data ")
    assert "--lmbda 0.01 0.05" in entry["training"]["command"]
    assert len(entry["check"]["points"]) == 2
    # Loading verifies the checksums and reproduces the recorded check exactly.
    codec = load_codec("tiny", folder=tmp_path / "weights")
    image = data.course_photo(ship.CHECK_IMAGE)
    for point in entry["check"]["points"]:
        compressed = codec.compress(image, point["rate"])
        assert len(compressed) == point["bytes"]
        assert metrics.psnr(image, codec.decompress(compressed)) == pytest.approx(point["psnr"], abs=1e-6)


def test_a_run_started_from_shipped_weights_records_where_they_came_from(photo_folder, tmp_path):
    from course_lib.registry import weights_provenance

    training.train(_config(photo_folder, tmp_path / "first", steps=4), verbose=0)
    first = ship.ship_codec(tmp_path / "first", "tiny", folder=tmp_path / "v1")
    init = tmp_path / "v1" / "tiny.weights.h5"
    provenance = weights_provenance(init)
    assert provenance["name"] == "tiny" and provenance["training"] == first["training"]
    assert provenance["sha256"] == first["sha256"]

    config = _config(photo_folder, tmp_path / "second", steps=4)
    config.init = str(init)
    training.train(config, verbose=0)
    second = ship.ship_codec(tmp_path / "second", "tiny", folder=tmp_path / "v2")
    assert f"--init {init}" in second["training"]["command"]
    assert second["training"]["init"] == provenance
    # A file no manifest knows still gets its checksum recorded, without a training record.
    (tmp_path / "loose").mkdir()
    loose = tmp_path / "loose" / "copy.weights.h5"
    loose.write_bytes(init.read_bytes())
    assert weights_provenance(loose) == {"file": str(loose), "sha256": first["sha256"]}


def test_read_history_turns_missing_values_into_nan(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss\n0,2.5,NA\n1,2.0,1.5\n1,1.9,1.4\n")
    history = runs.read_history(path)
    assert history["epoch"] == [0, 1]
    assert history["loss"] == [2.5, 1.9]          # a resumed epoch: the last row wins
    assert np.isnan(history["val_loss"][0]) and history["val_loss"][1] == 1.4


def test_a_bfloat16_hyperprior_run_ships_and_reloads(photo_folder, tmp_path):
    from course_lib import metrics
    from course_lib.hyperprior import HyperpriorCodec
    from course_lib.models import load_codec

    config = _config(photo_folder, tmp_path / "run", steps=4)
    config.crop, config.model, config.precision, config.hyper_channels = 64, "hyperprior", "bfloat16", 8
    config.gains_from_lmbdas = True
    training.train(config, verbose=0)
    # Through the command line: `ship` tells a codec run from a restoration run by its weights file.
    assert main(["ship", "--run", str(tmp_path / "run"), "--name", "tiny_hp", "--folder", str(tmp_path / "weights")]) == 0
    entry = json.loads((tmp_path / "weights" / "manifest.json").read_text())["tiny_hp"]
    command = entry["training"]["command"]
    for flag in ("--model hyperprior", "--precision bfloat16", "--hyper-channels 8", "--gains-from-lambdas"):
        assert flag in command
    assert entry["config"]["kind"] == "hyperprior" and entry["scale_tables"] == "tiny_hp.scale_tables.npz"
    codec = load_codec("tiny_hp", folder=tmp_path / "weights")
    assert isinstance(codec, HyperpriorCodec) and codec.precision == "float32"  # inference in float32
    image = data.course_photo(ship.CHECK_IMAGE)
    for point in entry["check"]["points"]:
        compressed = codec.compress(image, point["rate"])
        assert compressed[2] == 2 and len(compressed) == point["bytes"]
        assert metrics.psnr(image, codec.decompress(compressed)) == pytest.approx(point["psnr"], abs=1e-6)


def test_training_speed_benchmark_compares_both_precisions(photo_folder, tmp_path, capsys):
    import sys

    from course_lib.config import PROJECT_ROOT

    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    import training_speed

    out = tmp_path / "speed.json"
    assert training_speed.main(["--data", str(photo_folder), "--steps", "6", "--warmup", "2", "--val-count", "1",
                                "--channels", "8", "--latent-channels", "8", "--crop", "64", "--batch-size", "2",
                                "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bfloat16 / float32" in printed
    result = json.loads(out.read_text())
    assert [r["precision"] for r in result["rows"]] == ["float32", "bfloat16"]
    assert result["bfloat16_over_float32_time"] == pytest.approx(
        result["rows"][1]["median_step_seconds"] / result["rows"][0]["median_step_seconds"])
    assert training_speed.main(["--data", str(tmp_path / "missing")]) == 2


def test_training_speed_benchmark_starts_both_runs_from_a_shipped_codec(photo_folder, tmp_path, capsys):
    import sys

    from conftest import saved_tiny_codec
    from course_lib.config import PROJECT_ROOT

    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    import training_speed

    codec, weights, _ = saved_tiny_codec(tmp_path)
    out = tmp_path / "speed.json"
    common = ["--data", str(photo_folder), "--steps", "3", "--warmup", "1", "--val-count", "1", "--crop", "64",
              "--batch-size", "2", "--learning-rate", "0", "--init", str(weights)]
    assert training_speed.main([*common, "--json", str(out)]) == 0
    assert "from the shipped tiny" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["start"] == "from the shipped tiny" and result["validation_precision"] == "float32"
    # With a zero learning rate both runs keep the shipped weights: evaluated alike in float32, equal numbers.
    f32, bf16 = result["rows"]
    assert f32["val_loss"] == pytest.approx(bf16["val_loss"], rel=1e-6) and f32["val_bpp"] > 0
    assert result["validation_at_start"]["val_loss"] == pytest.approx(f32["val_loss"], rel=1e-6)
    assert training_speed.main([*common, "--lmbda", "0.01", "0.02"]) == 2
    assert "1 rate point(s)" in capsys.readouterr().err


def test_warm_start_copies_the_transforms_and_fits_the_gains(photo_folder, tmp_path):
    from keras import ops

    from course_lib.hyperprior import HyperpriorCodec

    training.train(_config(photo_folder, tmp_path / "run", steps=4), verbose=0)
    ship.ship_codec(tmp_path / "run", "donor", folder=tmp_path / "weights")
    donor_path = tmp_path / "weights" / "donor.weights.h5"
    codec = HyperpriorCodec(channels=8, latent_channels=8, hyper_channels=4, num_rates=3)
    codec.build()
    provenance = training.warm_start_transforms(codec, str(donor_path), [0.01, 0.02, 0.05])
    assert provenance["name"] == "donor"
    from course_lib.models import load_codec

    donor = load_codec(str(donor_path))
    for mine, theirs in zip(codec.encoder.weights + codec.decoder.weights, donor.encoder.weights + donor.decoder.weights):
        assert np.array_equal(ops.convert_to_numpy(mine), ops.convert_to_numpy(theirs))
    # Two donor lambdas: the fitted line passes through both of their gains exactly.
    np.testing.assert_allclose(ops.convert_to_numpy(codec.log_gain)[[0, 2]], ops.convert_to_numpy(donor.log_gain),
                               atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(codec.log_inverse_gain)[[0, 2]],
                               ops.convert_to_numpy(donor.log_inverse_gain), atol=1e-5)
    narrow = HyperpriorCodec(channels=8, latent_channels=8, hyper_channels=4, num_rates=3, residual_stages=(2,))
    narrow.build()
    with pytest.raises(ValueError, match="differ"):
        training.warm_start_transforms(narrow, str(donor_path), [0.01, 0.02, 0.05])


def test_an_interrupted_fit_keeps_the_weights_and_record_of_its_finished_epochs(tmp_path):
    """The one fit loop (codec and restoration runs) writes weights and history.json after every epoch."""
    import keras
    import tensorflow as tf

    from course_lib.fitting import fit_resumable

    def batches():
        for _ in range(5):  # one epoch of 3 steps, then 2 steps of the next, then the session "ends"
            yield np.ones((4, 2), np.float32), np.ones((4, 1), np.float32)
        raise RuntimeError("interrupted")

    dataset = tf.data.Dataset.from_generator(batches, output_signature=(
        tf.TensorSpec((4, 2), tf.float32), tf.TensorSpec((4, 1), tf.float32)))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(Exception, match="interrupted"):
        fit_resumable(model, dataset, tmp_path, epochs=4, steps_per_epoch=3,
                      save=lambda folder: model.save_weights(str(folder / "net.weights.h5")), verbose=0,
                      extra={"command": "test", "skipped": None})
    record = json.loads((tmp_path / "history.json").read_text())
    assert record["steps"] == 3 and record["history"]["epoch"] == [0] and record["command"] == "test"
    assert "skipped" not in record and record["wall_seconds"] > 0 and record["machine"] and record["date"]
    assert (tmp_path / "net.weights.h5").is_file()


def test_gains_for_one_rate_per_image_are_each_images_own():
    """A vector of rates gives (B, 1, 1, M) gains, row b equal to the gains of rate b alone (interpolated too)."""
    from course_lib.codec import LearnedCodec

    codec = LearnedCodec(8, 8, num_rates=4)
    codec.build((None, 32, 32, 3))
    codec.log_gain.assign(np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32))
    rates = np.array([0, 3, 1.5, 2.25], np.float32)
    gain, inverse = (np.asarray(g) for g in codec.gains(rates))
    assert gain.shape == inverse.shape == (4, 1, 1, 8)
    for b, rate in enumerate(rates):
        np.testing.assert_allclose(gain[b, 0, 0], np.asarray(codec.gains(float(rate))[0]), rtol=1e-6)
        np.testing.assert_allclose(inverse[b, 0, 0], np.asarray(codec.gains(float(rate))[1]), rtol=1e-6)


@pytest.mark.parametrize("model", ["factorized", "hyperprior"])
def test_one_rate_per_image_is_the_mean_of_each_images_loss(model):
    """The per-image loss equals the mean over the images of each one's loss at its own lambda (rounded latents)."""
    import tensorflow as tf

    from course_lib.training_setup import image_rates

    codec = training.build_codec(training.TrainConfig(data="", out="", lmbdas=[0.001, 0.01, 0.05, 0.1], channels=8,
                                                      latent_channels=8, model=model))
    trainer = training.RateDistortionTrainer(codec, [0.001, 0.01, 0.05, 0.1], lambda_per_image=True)
    images = np.random.default_rng(1).random((4, 64, 64, 3)).astype(np.float32)
    loss, bpp, mse = (float(v) for v in trainer.rate_distortion(images, rate=[2, 0, 3, 1]))
    each = [[float(v) for v in trainer.rate_distortion(images[b:b + 1], rate=r)] for b, r in enumerate([2, 0, 3, 1])]
    assert (loss, bpp, mse) == pytest.approx(tuple(np.mean(each, axis=0)), rel=1e-4)
    drawn = np.asarray(trainer._rate_point(tf.constant(8)))  # a batch of 8 images, 4 rate points: each twice
    assert sorted(drawn.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert sorted(np.asarray(image_rates(6, 4, np.random.default_rng(0).permutation)).tolist()) == [0, 0, 1, 1, 2, 3]
    assert np.asarray(training.RateDistortionTrainer(codec, [0.001, 0.01, 0.05, 0.1])._rate_point(8)).shape == ()


def test_a_run_with_one_lambda_per_image_trains_and_records_the_flag(photo_folder, tmp_path):
    config = _config(photo_folder, tmp_path, steps=8)
    config.lambda_per_image = True
    _, record = training.train(config, verbose=0)
    assert np.isfinite(record["history"]["loss"]).all()
    assert json.loads((tmp_path / "config.json").read_text())["lambda_per_image"] is True
    assert training.training_command(config).endswith("--lambda-per-image")
    assert "--lambda-per-image" not in training.training_command(_config(photo_folder, tmp_path, steps=8))


def test_gradient_noise_benchmark_compares_both_draws(photo_folder, tmp_path, capsys):
    import sys

    from course_lib.config import PROJECT_ROOT

    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    import gradient_noise

    training.train(_config(photo_folder, tmp_path / "run", steps=4), verbose=0)
    ship.ship_codec(tmp_path / "run", "tiny", folder=tmp_path / "weights")
    out = tmp_path / "noise.json"
    assert gradient_noise.main(["--data", str(photo_folder), "--init", str(tmp_path / "weights" / "tiny.weights.h5"),
                                "--batches", "3", "--crop", "64", "--batch-size", "2", "--val-count", "1",
                                "--json", str(out)]) == 0
    assert "v per image" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert set(result["parts"]) == {"transforms E, D", "gains", "entropy model"}
    for row in result["parts"].values():
        assert row["noise_ratio"] == pytest.approx(row["per image"]["relative_noise"] / row["per batch"]["relative_noise"])
        assert all(row[draw]["relative_noise"] > 0 and row[draw]["mean_gradient_norm"] > 0
                   for draw in gradient_noise.DRAWS)
    assert gradient_noise.main(["--data", str(photo_folder), "--init", "no_such_codec"]) == 2


def test_a_resumed_record_keeps_what_its_first_part_measured(tmp_path):
    """RunRecorder's ``first`` entries are measured when a run begins; a resumed run keeps them, unmeasured."""
    from course_lib.fitting import RunRecorder

    measured = []
    fresh = RunRecorder(tmp_path, save=lambda folder: None, steps_per_epoch=4,
                        first={"start": lambda: measured.append(1) or {"init": "A"}})
    assert fresh.record()["start"] == {"init": "A"} and measured == [1]
    (tmp_path / "history.json").write_text(json.dumps(fresh.record()))

    def must_not_run():
        raise AssertionError("a resumed run measured its start again")

    resumed = RunRecorder(tmp_path, save=lambda folder: None, steps_per_epoch=4, extra={"command": "again"},
                          first={"start": must_not_run})
    assert resumed.record()["start"] == {"init": "A"} and resumed.record()["command"] == "again"
