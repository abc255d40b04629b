"""Function-preserving widening (course_lib.widening, Net2Net): a wider codec that computes what the narrow one did,
and the command line's ``train --widen-from``."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from conftest import saved_tiny_codec
from course_lib.cli import main
from course_lib.codec import LearnedCodec
from course_lib.data import course_photo, save_image
from course_lib.hyperprior import HyperpriorCodec
from course_lib.metrics import psnr
from course_lib.training import RateDistortionTrainer
from course_lib.widening import copy_into_wider, widen_codec

LAMBDAS = (0.0018, 0.0932)


def _spread_gains(codec):
    """Gains that differ per rate and per channel, so that a misplaced channel shows."""
    rng = np.random.default_rng(1)
    base = np.log(np.array([[3.0], [12.0]], np.float32))
    codec.log_gain.assign(base + rng.normal(0, 0.2, (2, codec.latent_channels)).astype(np.float32))
    codec.log_inverse_gain.assign(-base + rng.normal(0, 0.2, (2, codec.latent_channels)).astype(np.float32))


def small_codec(kind):
    keras.utils.set_random_seed(0)
    if kind == "hyperprior":
        codec = HyperpriorCodec(channels=16, latent_channels=24, hyper_channels=8, num_rates=2, residual_stages=(1, 2))
    else:
        codec = LearnedCodec(channels=16, latent_channels=24, num_rates=2)
    codec.build()
    _spread_gains(codec)
    # Untrained GDNs have zero cross terms; trained ones do not, and a misplaced copy must show.
    for layer in codec.encoder.stack + codec.decoder.stack:
        if hasattr(layer, "gamma_variable"):
            layer.gamma_variable.assign(np.full(layer.gamma_variable.shape, 0.2, np.float32)
                                        + np.eye(layer.gamma_variable.shape[0], dtype=np.float32) * 0.2)
    codec.update_tables()
    return codec


def widen(codec):
    extra = {"hyper_channels": codec.hyper_channels + 8} if isinstance(codec, HyperpriorCodec) else {}
    return widen_codec(codec, channels=codec.channels + 16, latent_channels=codec.latent_channels + 16, **extra)


@pytest.fixture(scope="module", params=["factorized", "hyperprior"])
def pair(request):
    source = small_codec(request.param)
    return source, widen(source)


@pytest.fixture(scope="module")
def images():
    photo = course_photo("coffee")
    return photo[:128, :128].astype(np.float32)[None] / 255.0


def test_the_wider_codec_has_the_wider_shapes(pair):
    source, wide = pair
    assert (wide.channels, wide.latent_channels) == (source.channels + 16, source.latent_channels + 16)
    assert wide.encoder.stack[-1].kernel.shape[-1] == source.latent_channels + 16
    assert wide.decoder.stack[0].conv.kernel.shape[-1] == 4 * (source.channels + 16)
    assert wide.count_params() > source.count_params()
    assert wide.residual_stages == source.residual_stages and wide.num_rates == source.num_rates


@pytest.mark.parametrize("rate", [0, 1])
def test_widened_codec_computes_the_same_reconstruction_and_bits(pair, images, rate):
    source, wide = pair
    before, after = source(images, training=False, rate=rate), wide(images, training=False, rate=rate)
    x_hat, x_hat_wide = ops.convert_to_numpy(before["x_hat"]), ops.convert_to_numpy(after["x_hat"])
    assert np.abs(x_hat - x_hat_wide).max() < 1e-4
    assert np.std(x_hat) > 1e-3  # the comparison is not between two constant pictures
    bits, bits_wide = float(before["bits"][0]), float(after["bits"][0])
    assert abs(bits_wide - bits) <= 1e-3 * bits, (bits, bits_wide)
    # The new latents are exactly zero.
    y = ops.convert_to_numpy(wide.encoder(images))
    assert np.all(y[..., source.latent_channels:] == 0) and np.any(y[..., :source.latent_channels] != 0)


def test_widened_codec_estimates_and_writes_the_same_file_size_for_a_photo(pair):
    source, wide = pair
    photo = course_photo("coffee")[:96, :160]
    for rate in (0, 1):
        estimate, estimate_wide = source.estimate_bits(photo, rate), wide.estimate_bits(photo, rate)
        assert abs(estimate_wide - estimate) <= 1e-3 * estimate, (rate, estimate, estimate_wide)
        data, data_wide = source.compress(photo, rate), wide.compress(photo, rate)
        assert len(data_wide) <= len(data) + 4, (len(data), len(data_wide))  # new channels cost ~0 bits
        assert abs(psnr(photo, wide.decompress(data_wide)) - psnr(photo, source.decompress(data))) < 0.01


def test_one_training_step_moves_the_new_channels(pair, images):
    source, _ = pair
    wide = widen(source)  # a fresh copy: the module's pair must stay untrained
    trainer = RateDistortionTrainer(wide, LAMBDAS)
    last_block = [layer for layer in wide.decoder.stack if hasattr(layer, "conv1")][-1]
    watched = {"the new latents' producer": (wide.encoder.stack[-1].kernel, np.s_[..., source.latent_channels:]),
               "new inputs of an old decoder channel": (
                   last_block.conv1.kernel, np.s_[:, :, source.channels:, :source.channels])}
    if isinstance(wide, HyperpriorCodec):
        watched["the new means and scales"] = (wide.hyper_decoder.stack[-1].kernel,
                                               np.s_[..., source.latent_channels:wide.latent_channels])
    for name, (variable, where) in watched.items():
        assert np.all(ops.convert_to_numpy(variable)[where] == 0), name
    optimizer = keras.optimizers.Adam(1e-3)
    with tf.GradientTape() as tape:
        loss, _, _ = trainer.rate_distortion(tf.constant(images), training=True, rate=1)
    variables = wide.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    for name, (variable, where) in watched.items():
        assert np.any(ops.convert_to_numpy(variable)[where] != 0), name


def test_widening_keeps_what_it_cannot_change_and_refuses_the_rest(pair):
    source, _ = pair
    same = widen_codec(source)  # no new width: a copy
    for a, b in zip(source.weights, same.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b), err_msg=a.path)
    with pytest.raises(ValueError, match="channels must be a whole number >= the source's"):
        widen_codec(source, channels=source.channels - 1)
    with pytest.raises(ValueError, match="latent_channels"):
        widen_codec(source, latent_channels=2.5)
    with pytest.raises(ValueError, match="LearnedCodec or a HyperpriorCodec"):
        widen_codec(keras.layers.Dense(3))
    if isinstance(source, HyperpriorCodec):
        with pytest.raises(ValueError, match="hyper_channels must be"):
            widen_codec(source, hyper_channels=4)
    else:
        with pytest.raises(ValueError, match="hyper_channels is for a HyperpriorCodec"):
            widen_codec(source, hyper_channels=64)
    with pytest.raises(ValueError, match="built codec"):
        widen_codec(type(source)(channels=8, latent_channels=8, num_rates=2))
    other = type(source)(channels=source.channels + 8, latent_channels=source.latent_channels, num_rates=3)
    other.build()
    with pytest.raises(ValueError, match="num_rates differ"):
        copy_into_wider(source, other)


def test_a_weight_without_a_rule_is_refused(pair):
    source, _ = pair
    codecs = []
    for channels in (source.channels, source.channels + 8):
        codec = type(source)(channels=channels, latent_channels=source.latent_channels, num_rates=2,
                             residual_stages=source.residual_stages)
        codec.surprise = codec.add_weight(name="surprise", shape=(2,))  # a weight no rule knows
        codec.build()
        codecs.append(codec)
    with pytest.raises(ValueError, match=r"no widening rule for the weights \['surprise'\]"):
        copy_into_wider(*codecs)
    codecs[1].surprise.assign([1.0, 2.0])
    with pytest.raises(ValueError, match="weights differ"):
        copy_into_wider(source, codecs[1])


# --------------------------------------------------------------------------- the command line
def run_main(capsys, *argv):
    status = main(["train", *argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("widen")
    saved_tiny_codec(root)  # root/weights: "tiny", a factorized N = 8, M = 12 codec with one rate
    (root / "photos").mkdir()
    for k in range(3):
        # 256 x 256: the size training's validation crops
        save_image(course_photo("coffee")[:256, 64 * k:64 * k + 256], root / "photos" / f"p{k}.png")
    return root


@pytest.mark.parametrize("case, argv, message", [
    ("unknown codec", ["--widen-from", "no_such_codec"], "no model 'no_such_codec'"),
    ("missing file", ["--widen-from", "{root}/none.weights.h5"], "no such weights file"),
    ("narrower", ["--widen-from", "{root}/weights/tiny.weights.h5", "--channels", "4"],
     "--channels 4 is narrower than tiny's 8"),
    ("another kind", ["--widen-from", "{root}/weights/tiny.weights.h5", "--model", "hyperprior", "--crop", "64"],
     "tiny is a factorized codec"),
    ("other rate points", ["--widen-from", "{root}/weights/tiny.weights.h5", "--lmbda", "0.01", "0.02"],
     "2 lambdas for tiny's 1 rate point(s)"),
    ("with --init", ["--widen-from", "learned_hyperprior", "--init", "{root}/weights/tiny.weights.h5"],
     "--widen-from replaces --init"),
])
def test_widen_from_refuses_bad_input_with_one_line(folders, capsys, case, argv, message):
    argv = ["--data", "{root}/photos", "--out", "{root}/out", "--val-count", "1", *argv]
    status, out, err = run_main(capsys, *[a.format(root=folders) for a in argv])
    assert status == 2, (case, out, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, (case, err)
    assert "Traceback" not in err and not (folders / "out").exists()


def test_train_widen_from_runs_and_ships_with_the_source_as_its_start(folders, capsys):
    from course_lib.registry import read_manifest, training_runs
    from course_lib.ship import ship_codec

    out = folders / "wide_run"
    status, _, err = run_main(capsys, "--data", str(folders / "photos"), "--out", str(out), "--val-count", "1",
                              "--widen-from", str(folders / "weights" / "tiny.weights.h5"), "--channels", "12",
                              "--latent-channels", "16", "--steps", "2", "--steps-per-epoch", "2", "--crop", "32",
                              "--batch-size", "2", "--quiet")
    assert status == 0, err
    entry = ship_codec(out, "wide", folder=folders / "shipped", progress=False)
    assert entry["config"]["channels"] == 12 and entry["config"]["latent_channels"] == 16
    assert "--widen-from" in entry["training"]["command"]
    start = entry["training"]["init"]
    assert start["name"] == "tiny" and start["widened_from"]["channels"] == 8
    assert len(training_runs(read_manifest(folders / "shipped")["wide"])) == 1  # tiny itself has no training record


def _widened_from_a_copy(folders, capsys, name):
    """A copy of the tiny weights in ``folders/name`` and a 2-step run widened from the copy:
    (the copy's folder, the source's SHA-256, the run folder)."""
    import shutil

    from course_lib.files import sha256_file

    weights = folders / name
    shutil.copytree(folders / "weights", weights)
    source_sha = sha256_file(weights / "tiny.weights.h5")
    out = folders / f"{name}_run"
    status, _, err = run_main(capsys, "--data", str(folders / "photos"), "--out", str(out), "--val-count", "1",
                              "--widen-from", str(weights / "tiny.weights.h5"), "--channels", "12",
                              "--steps", "2", "--steps-per-epoch", "2", "--crop", "32", "--batch-size", "2", "--quiet")
    assert status == 0, err
    return weights, source_sha, out


def test_shipping_a_widened_run_over_its_source_records_the_source_not_itself(folders, capsys):
    """Shipped under the source's own name (the shipped codec widened and re-shipped), the record must name the
    source's SHA-256, not the new file's: also for a run recorded before runs kept their start, whose start
    ship reads before the new weights replace the entry."""
    import json

    from course_lib.registry import read_manifest
    from course_lib.ship import ship_codec

    weights, source_sha, out = _widened_from_a_copy(folders, capsys, "reship")
    record = json.loads((out / "history.json").read_text())
    del record["start"]  # as older runs' records are
    (out / "history.json").write_text(json.dumps(record))
    entry = ship_codec(out, "tiny", folder=weights, progress=False)
    assert entry["sha256"] != source_sha and read_manifest(weights)["tiny"]["config"]["channels"] == 12
    start = entry["training"]["init"]
    assert start["sha256"] == source_sha and start["name"] == "tiny" and start["widened_from"]["channels"] == 8


def test_a_run_records_its_start_when_it_trains_not_when_it_is_shipped(folders, capsys):
    """The source name may hold other weights by ship time (here: the run itself shipped over it first);
    the start recorded is the one the run trained from."""
    import json

    from course_lib.files import sha256_file
    from course_lib.ship import ship_codec

    weights, source_sha, out = _widened_from_a_copy(folders, capsys, "moving_source")
    assert json.loads((out / "history.json").read_text())["start"]["init"]["sha256"] == source_sha
    ship_codec(out, "tiny", folder=weights, progress=False)  # the source's name now holds the widened codec
    assert sha256_file(weights / "tiny.weights.h5") != source_sha
    entry = ship_codec(out, "wide", folder=folders / "shipped_later", progress=False)
    assert entry["training"]["init"]["sha256"] == source_sha and entry["training"]["init"]["name"] == "tiny"
