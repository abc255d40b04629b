"""The restoration network: sizes and dtypes, the global skip, tiling, checksummed weights,
a tiny training run, and the ``evaluate --restoration`` benchmark on tiny images."""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest

from course_lib import config
from course_lib.cli import main
from course_lib.data import course_photo, save_image, to_rgb8
from course_lib.registry import WeightsError
from course_lib.restoration import (RestorationNet, jpeg_artefacts, load_restorer, make_degrader,
                                    predicted_residual, restore, save_restorer)
from course_lib.restoration_training import RestorationTrainConfig, train
from course_lib.runs import split_folder


def small_net(global_skip=True, **kwargs):
    config.set_seed(0)
    model = RestorationNet(depth=4, width=8, global_skip=global_skip, **kwargs)
    model.build()
    return model


def perturbed_net(**kwargs):
    """A small residual net whose last layer is no longer zero, so it changes images."""
    model = small_net(**kwargs)
    kernel = model.last_conv.kernel
    kernel.assign(np.random.default_rng(1).normal(0, 0.05, kernel.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module")
def photo():
    return course_photo("astronaut")[200:264, 180:276]  # 64 x 96 RGB crop


@pytest.mark.parametrize("shape", [(1, 1, 3), (17, 33, 3), (17, 33), (16, 9, 1), (17, 33, 4), (2, 1, 2)])
def test_restore_keeps_size_and_dtype(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = restore(image, perturbed_net())
    assert out.shape == (shape[0], shape[1], 3)
    assert out.dtype == np.uint8


@pytest.mark.parametrize("space_to_depth", [1, 2, 4])
def test_zero_initialised_last_layer_makes_the_net_the_identity(photo, space_to_depth):
    model = small_net(space_to_depth=space_to_depth)
    x = photo[None].astype(np.float32) / 255.0
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), x)
    np.testing.assert_array_equal(restore(photo[:17, :33], model), photo[:17, :33])
    # Once the last layer is not zero, the global skip adds a correction: the checks above can fail.
    assert np.abs(restore(photo, perturbed_net(space_to_depth=space_to_depth)).astype(int) - photo).max() > 0


def test_output_is_input_plus_correction(photo):
    model = perturbed_net()
    x = photo[None].astype(np.float32) / 255.0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x) - x),
                               keras.ops.convert_to_numpy(model.correction(x)), atol=1e-6)
    residual = predicted_residual(photo, model)
    assert residual.dtype == np.int16 and np.abs(residual).max() > 0
    np.testing.assert_array_equal(photo.astype(np.int16) + residual, restore(photo, model))


def test_plain_net_has_the_same_size_but_is_not_the_identity(photo):
    residual, plain = small_net(), small_net(global_skip=False)
    assert residual.count_params() == plain.count_params()
    assert np.abs(restore(photo, plain).astype(int) - photo).mean() > 10


def test_residual_blocks_variant():
    model = small_net(residual_blocks=True)
    assert sum(1 for layer in model.hidden if layer.name.startswith("block_")) == 1
    image = np.random.default_rng(0).integers(0, 256, (9, 10, 3), dtype=np.uint8)
    np.testing.assert_array_equal(restore(image, model), image)
    with pytest.raises(ValueError):
        RestorationNet(depth=5, residual_blocks=True)


def test_tiles_give_the_untiled_result():
    image = np.random.default_rng(0).integers(0, 256, (70, 95, 3), dtype=np.uint8)
    model = perturbed_net()
    np.testing.assert_array_equal(restore(image, model, tile=16), restore(image, model, tile=512))


def test_degrader_draws_jpeg_qualities_in_range(photo):
    degrade = make_degrader(["jpeg"], (10, 12), seed=0)
    out = degrade(np.stack([photo] * 6))
    assert out.shape == (6, *photo.shape) and out.dtype == np.uint8
    candidates = [jpeg_artefacts(photo, q) for q in (10, 11, 12)]
    assert all(any(np.array_equal(image, c) for c in candidates) for image in out)
    with pytest.raises(ValueError):
        make_degrader(["codec"])


def test_saved_weights_round_trip_and_keep_other_entries(tmp_path, photo):
    (tmp_path / "manifest.json").write_text(json.dumps({"learned_codec": {"file": "learned_codec.weights.h5"}}))
    model = perturbed_net()
    save_restorer(model, "tiny", tmp_path, training={"steps": 1}, metrics={"kodak": {}})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest) == {"learned_codec", "tiny"}
    assert manifest["tiny"]["kind"] == "restoration" and manifest["tiny"]["training"] == {"steps": 1}
    loaded = load_restorer("tiny", tmp_path)
    np.testing.assert_array_equal(restore(photo, loaded), restore(photo, model))
    by_path = load_restorer(tmp_path / "tiny.weights.h5")
    assert by_path.restoration_config() == model.restoration_config()


def test_tampered_or_foreign_weights_are_refused(tmp_path):
    path = save_restorer(small_net(), "tiny", tmp_path)
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(WeightsError, match="SHA-256"):
        load_restorer("tiny", tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["codec"] = {"file": "codec.weights.h5", "sha256": "0" * 64}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="not a restoration network"):
        load_restorer("codec", tmp_path)
    with pytest.raises(WeightsError):
        load_restorer("missing", tmp_path)


def test_tiny_training_run_reduces_the_loss_and_ships(tmp_path, monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = {name: course_photo(name)[:128, :128] for name in ("astronaut", "coffee", "rocket")}
    for name, image in photos.items():
        save_image(image, folder / f"{name}.png")
    settings = RestorationTrainConfig(data=str(folder), out=str(tmp_path / "run"), steps=60, batch_size=8,
                                      crop=32, qualities=[10, 10], depth=4, width=16, steps_per_epoch=30,
                                      val_count=1, val_crop=64)
    model, record = train(settings, verbose=0, command="test")
    assert record["steps"] == 60 and record["history"]["epoch"] == [0, 1]
    assert (tmp_path / "run" / "restoration.weights.h5").is_file()
    written = json.loads((tmp_path / "run" / "history.json").read_text())
    assert written["command"] == "test" and written["steps"] == 60 and written["validation_input_psnr"] > 0
    # Measured on the two training photos (one is held out for validation). The net
    # starts as the identity, so the loss before training is the JPEG error itself.
    training_paths, _ = split_folder(folder, 1)
    photos = {path.stem: photos[path.stem] for path in training_paths}
    degraded = {name: jpeg_artefacts(image, 10) for name, image in photos.items()}
    before = np.mean([np.mean((degraded[n].astype(float) - photos[n]) ** 2) for n in photos])
    after = np.mean([np.mean((restore(degraded[n], model).astype(float) - photos[n]) ** 2) for n in photos])
    assert after < 0.95 * before

    # A run that starts from these weights (--init) and trains 0 further epochs' worth
    # of steps would keep them: check the warm start by training one short epoch at a
    # learning rate of zero.
    warm = RestorationTrainConfig(**{**settings.__dict__, "out": str(tmp_path / "warm"), "steps": 1,
                                     "steps_per_epoch": 1, "learning_rate": 0.0,
                                     "init": str(tmp_path / "run" / "restoration.weights.h5")})
    warm_model, _ = train(warm, verbose=0, command="test")
    for a, b in zip(warm_model.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)

    # Shipping measures the run on "Kodak" (here one crop) and records how it was trained.
    from course_lib import ship

    monkeypatch.setattr(ship, "load_kodak", lambda folder: {"a.png": course_photo("coffee")[:48, :64]})
    entry = ship.ship(tmp_path / "run", "tiny", folder=tmp_path / "weights", kodak=tmp_path)
    assert entry["kind"] == "restoration" and entry["training"]["command"] == "test"
    assert entry["training"]["steps"] == 60 and entry["training"]["machine"] == written["machine"]
    assert set(entry["metrics"]["kodak"]["delta_psnr"]) >= {"jpeg_q10", "jpeg_q40", "learned_lowest_rate"}
    assert entry["metrics"]["check"]["quality"] == 10
    shipped = load_restorer("tiny", tmp_path / "weights")
    np.testing.assert_array_equal(restore(course_photo("coffee")[:48, :64], shipped),
                                  restore(course_photo("coffee")[:48, :64], model))


@pytest.fixture(scope="module")
def tiny_codec_folder(tmp_path_factory):
    from course_lib.codec import LearnedCodec
    from course_lib.models import save_codec

    folder = tmp_path_factory.mktemp("weights")
    keras.utils.set_random_seed(0)
    codec = LearnedCodec(channels=8, latent_channels=8)
    codec.build()
    save_codec(codec, "tiny_codec", folder)
    save_restorer(perturbed_net(), "tiny_restoration", folder)
    return folder


def test_evaluate_restoration_on_two_tiny_images(tmp_path, tiny_codec_folder, capsys):
    images = tmp_path / "images"
    images.mkdir()
    save_image(course_photo("coffee")[:40, :56], images / "a.png")
    save_image(course_photo("chelsea")[:33, :47], images / "b.png")
    out = tmp_path / "result.json"
    status = main(["evaluate", "--restoration", str(tiny_codec_folder / "tiny_restoration.weights.h5"),
                   "--data", str(images), "--weights", str(tiny_codec_folder / "tiny_codec.weights.h5"),
                   "--learned-restoration", str(tiny_codec_folder / "tiny_restoration.weights.h5"),
                   "--json", str(out)])
    assert status == 0
    result = json.loads(out.read_text())
    tiny = str(tiny_codec_folder / "tiny_restoration.weights.h5")
    assert result["networks"] == {"jpeg": tiny, "learned": tiny}
    assert set(result["delta_psnr"]) == {"jpeg_q10", "jpeg_q20", "jpeg_q30", "jpeg_q40", "learned_lowest_rate"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in result["delta_psnr"].values())
    assert result["images"] == 2
    row = result["results"]["jpeg_q10"]
    assert row["delta_psnr"] == pytest.approx(row["psnr_after"] - row["psnr_before"])
    assert "jpeg_q40" in capsys.readouterr().out


def test_evaluate_restoration_refuses_a_missing_network(tmp_path, capsys):
    save_image(course_photo("coffee")[:16, :16], tmp_path / "a.png")
    assert main(["evaluate", "--restoration", str(tmp_path / "none.weights.h5"), "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    # A learned-codec network the user names must exist too (the default one may be absent).
    assert main(["evaluate", "--restoration", "--learned-restoration", str(tmp_path / "none.weights.h5"),
                 "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_to_rgb8_is_what_restore_sees():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(restore(gray, small_net()), to_rgb8(gray))


def _shipped_restorers():
    from course_lib.config import WEIGHTS_DIR

    manifest = WEIGHTS_DIR / "manifest.json"
    entries = json.loads(manifest.read_text()) if manifest.exists() else {}
    return [name for name, entry in entries.items() if entry.get("kind") == "restoration"]


@pytest.mark.parametrize("name", _shipped_restorers() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no restoration weights shipped in data/weights yet"))])
def test_shipped_weights_reproduce_their_manifest_check(name):
    from course_lib.models import load_codec
    from course_lib.registry import find_entry
    from course_lib.ship import shipped_check

    _, _, entry = find_entry(name)
    for key in ("command", "data", "steps", "wall_seconds", "machine", "date"):
        assert key in entry["training"], f"{name}: manifest lacks training.{key}"
    expected = entry["metrics"]["check"]
    # A network trained on the learned codec is checked on that codec's file, one trained on JPEG on a JPEG.
    codec = load_codec() if "rate" in expected else None
    if codec is not None:
        assert entry["training"]["degradations"] == ["codec"]
        assert entry["training"]["codec"]["sha256"] == find_entry("learned_codec")[2]["sha256"], \
            "trained on another codec than the one shipped"
    measured = shipped_check(load_restorer(name), codec)
    assert measured["psnr_after"] > measured["psnr_before"]
    # Same machine type: identical; other CPUs may round a few floats differently.
    assert measured["psnr_before"] == pytest.approx(expected["psnr_before"], abs=1e-6 if codec is None else 0.05)
    assert measured["psnr_after"] == pytest.approx(expected["psnr_after"], abs=0.05)


def test_model_for_names_one_network_per_codec():
    from course_lib.restoration import DEFAULT_MODEL, LEARNED_MODEL, is_shipped, model_for

    assert model_for("jpeg") == DEFAULT_MODEL and model_for("learned") == LEARNED_MODEL
    with pytest.raises(ValueError, match="codec must be one of"):
        model_for("webp")
    assert not is_shipped("no_such_network")
    assert not is_shipped("learned_codec"), "a codec entry is not a restoration network"
    assert is_shipped(DEFAULT_MODEL) == (DEFAULT_MODEL in _shipped_restorers())


def test_codec_rows_use_the_codec_network(tiny_codec_folder):
    """``codec_model`` restores the codec's rows and only those: an identity network there changes nothing."""
    from course_lib.models import load_codec
    from course_lib.restoration import evaluate_restoration

    codec = load_codec(tiny_codec_folder / "tiny_codec.weights.h5")  # untrained: it decodes to black
    images = [course_photo("coffee")[:32, :48]]
    brightening = perturbed_net()  # a bias on the last layer, so that it changes even a black image
    brightening.last_conv.bias.assign(np.full(brightening.last_conv.bias.shape, 0.1, np.float32))
    results = evaluate_restoration(brightening, images, qualities=(10,), codec=codec, codec_rates=[0],
                                   msssim=False, progress=False, codec_model=small_net())
    assert results["learned_rate0"]["delta_psnr"] == 0.0
    assert results["jpeg_q10"]["delta_psnr"] != 0.0
    without = evaluate_restoration(brightening, images, qualities=(), codec=codec, codec_rates=[0],
                                   msssim=False, progress=False)
    assert without["learned_rate0"]["delta_psnr"] != 0.0, "by default the one network restores every row"
