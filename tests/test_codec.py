"""The learned codec: shapes, rates, round trips, tiling, rate estimate, saving."""

import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from course_lib.bitstream import HEADER_SIZE, BitstreamError
from course_lib.blocks import ResidualBlock
from course_lib.codec import Decoder, Encoder, LearnedCodec, SubPixelConv2D
from course_lib.models import WeightsError, load_codec, save_codec
from course_lib.data import course_photo
from course_lib.entropy import bits_from_likelihoods

GAIN = 8.0  # spreads the latents of a random model over several integers


def small_codec(**kwargs):
    keras.utils.set_random_seed(0)
    codec = LearnedCodec(channels=16, latent_channels=24, **kwargs)
    codec.build()
    codec.log_gain.assign(np.full(codec.log_gain.shape, np.log(GAIN), np.float32))
    codec.log_inverse_gain.assign(np.full(codec.log_gain.shape, -np.log(GAIN), np.float32))
    return codec


def fit_prior(codec, image, steps=150):
    """Fit only the entropy model to the (noisy) latents of one image: quick,
    and gives the rate estimate something realistic to predict."""
    x = image[: image.shape[0] // 16 * 16, : image.shape[1] // 16 * 16][None].astype(np.float32) / 255.0
    y = tf.constant(codec.encoder(x) * codec.gains(0.0)[0])
    optimizer = keras.optimizers.Adam(0.02)
    variables = codec.prior.trainable_variables

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            noisy = y + tf.random.uniform(tf.shape(y), -0.5, 0.5)
            loss = tf.reduce_mean(bits_from_likelihoods(codec.prior(noisy), axis=(0, 1, 2)))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for _ in range(steps):
        step()
    codec.update_tables()


@pytest.fixture(scope="module")
def photo():
    return course_photo("astronaut")  # 512 x 512 RGB


@pytest.fixture(scope="module")
def codec(photo):
    c = small_codec()
    fit_prior(c, photo)
    return c


# --------------------------------------------------------------------------- transforms
def test_transform_shapes_and_sixteenfold_downsampling():
    encoder, decoder = Encoder(16, 24), Decoder(16)
    x = np.random.default_rng(0).random((2, 48, 80, 3)).astype(np.float32)
    y = encoder(x)
    assert tuple(y.shape) == (2, 3, 5, 24)
    assert tuple(decoder(y).shape) == (2, 48, 80, 3)  # RGB out, no extra downsampling
    assert tuple(SubPixelConv2D(7)(np.zeros((1, 3, 4, 5), np.float32)).shape) == (1, 6, 8, 7)


def test_subpixel_convolution_is_conv_then_depth_to_space():
    layer = SubPixelConv2D(2)
    x = np.random.default_rng(1).random((1, 3, 4, 5)).astype(np.float32)
    got = ops.convert_to_numpy(layer(x))
    np.testing.assert_array_equal(got, tf.nn.depth_to_space(layer.conv(x), 2).numpy())


@pytest.mark.parametrize("icnr", [True, False])
def test_icnr_starts_without_a_checkerboard(icnr):
    # With ICNR every 2x2 block of a fresh layer's output holds one value per channel
    # (nearest-neighbour upsampling of a convolution); without it the four differ.
    layer = SubPixelConv2D(3, icnr=icnr)
    x = np.random.default_rng(2).random((1, 6, 6, 4)).astype(np.float32)
    out = ops.convert_to_numpy(layer(x))
    blocks = out.reshape(1, 6, 2, 6, 2, 3)
    spread = np.abs(blocks - blocks[:, :, :1, :, :1]).max()
    assert (spread < 1e-6) == icnr
    assert SubPixelConv2D.from_config(layer.get_config()).icnr == icnr


def test_call_returns_what_the_loss_needs():
    codec = small_codec()
    x = np.random.default_rng(0).random((2, 32, 48, 3)).astype(np.float32)
    out = codec(x, training=False)
    assert set(out) == {"x_hat", "likelihoods", "bits", "bpp"}
    assert tuple(out["x_hat"].shape) == x.shape and tuple(out["likelihoods"].shape) == (2, 2, 3, 24)
    bits = -np.log2(ops.convert_to_numpy(out["likelihoods"]).astype(np.float64)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(ops.convert_to_numpy(out["bits"]), bits, rtol=1e-4)
    np.testing.assert_allclose(ops.convert_to_numpy(out["bpp"]), bits / (32 * 48), rtol=1e-4)
    with pytest.raises(ValueError, match="multiples of 16"):
        codec(np.zeros((1, 20, 32, 3), np.float32))


def test_training_uses_noise_and_inference_rounds():
    codec = small_codec()
    x = np.random.default_rng(0).random((1, 32, 32, 3)).astype(np.float32)
    a = ops.convert_to_numpy(codec(x, training=True)["x_hat"])
    b = ops.convert_to_numpy(codec(x, training=True)["x_hat"])
    c = ops.convert_to_numpy(codec(x, training=False)["x_hat"])
    d = ops.convert_to_numpy(codec(x, training=False)["x_hat"])
    assert not np.allclose(a, b)  # fresh noise each call
    np.testing.assert_array_equal(c, d)  # rounding is deterministic
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(codec(x, training=True)["bpp"]) + tf.reduce_mean((codec(x, training=True)["x_hat"] - x) ** 2)
    grads = tape.gradient(loss, codec.encoder.trainable_variables)
    assert all(g is not None for g in grads) and any(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


# --------------------------------------------------------------------------- variable rate
def test_gains_interpolate_geometrically_and_rate_bytes_are_exact():
    codec = LearnedCodec(channels=8, latent_channels=4, num_rates=3)
    logs = np.log(np.array([[1.0, 2, 4, 8], [4, 8, 16, 32], [16, 32, 64, 128]], np.float32))
    codec.log_gain.assign(logs)
    gain, _ = codec.gains(0.5)
    np.testing.assert_allclose(ops.convert_to_numpy(gain), np.sqrt([1 * 4, 2 * 8, 4 * 16, 8 * 32]), rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(codec.gains(2.0)[0]), [16, 32, 64, 128], rtol=1e-5)
    for level in (0, 1, 2):
        assert codec.byte_to_rate(codec.rate_to_byte(level)) == level
    assert abs(codec.byte_to_rate(codec.rate_to_byte(1.3)) - 1.3) < 1 / 127
    with pytest.raises(BitstreamError, match="rate byte"):
        codec.byte_to_rate(255)
    with pytest.raises(ValueError, match="rate must lie"):
        codec.rate_to_byte(2.5)


def test_higher_rate_level_spends_more_bits(photo):
    codec = small_codec(num_rates=2)
    codec.log_gain.assign(np.log(np.stack([np.full(24, 2.0), np.full(24, 16.0)])).astype(np.float32))
    codec.update_tables()
    image = photo[:128, :128]
    assert len(codec.compress(image, rate=1)) > len(codec.compress(image, rate=0))
    assert codec.compress(image, rate=0.2)[4] == 51  # the rate byte in the header: 0.2 * 255
    np.testing.assert_array_equal(codec.decompress(codec.compress(image, rate=0.2)),
                                  codec.quantized_forward(image, rate=0.2))


# --------------------------------------------------------------------------- round trips
def test_round_trip_is_bit_identical_to_the_quantized_forward_pass(codec, photo):
    data = codec.compress(photo)
    decoded = codec.decompress(data)
    assert decoded.dtype == np.uint8 and decoded.shape == photo.shape
    np.testing.assert_array_equal(decoded, codec.quantized_forward(photo))
    assert np.abs(codec.analyse(photo)).max() >= 2  # the test is not about all-zero latents


def test_encoding_once_serves_every_rate(photo):
    """encode() is E(x) before the gain: passing it to analyse/compress skips the encoder, same result."""
    codec = small_codec(num_rates=2)
    codec.update_tables()
    image = photo[:40, :70]
    encoded = codec.encode(image)
    assert encoded.shape == (3, 5, 24) and encoded.dtype == np.float32
    for rate in (0.0, 0.4, 1.0):
        np.testing.assert_array_equal(codec.analyse(image, rate, encoded=encoded), codec.analyse(image, rate))
        assert codec.compress(image, rate, encoded=encoded) == codec.compress(image, rate)
    with pytest.raises(ValueError, match="encoded has shape"):
        codec.analyse(photo[:64, :64], 0.0, encoded=encoded)


def test_compress_and_reconstruct_is_the_file_and_what_it_decodes_to(photo):
    codec = small_codec(num_rates=2)
    codec.update_tables()
    image = photo[:90, :130]
    for rate in (0.0, 0.4, 1.0):
        data, picture = codec.compress_and_reconstruct(image, rate, encoded=codec.encode(image))
        assert data == codec.compress(image, rate)
        assert picture.dtype == np.uint8 and picture.shape == image.shape
        np.testing.assert_array_equal(picture, codec.decompress(data))


def test_the_transforms_run_as_graphs_with_the_eager_layers_bits(photo):
    """encode() and synthesise() run E and D as TensorFlow graphs (faster); the numbers are the eager
    layers', bit for bit, at every tile size the graph serves."""
    codec = small_codec(tile=1000)
    for image in (photo[:96, :160], photo[:37, :70]):
        x = np.pad(image, ((0, -image.shape[0] % 16), (0, -image.shape[1] % 16), (0, 0)), mode="edge")
        y = ops.convert_to_numpy(codec.encoder(x[None].astype(np.float32) / 255.0))[0]
        np.testing.assert_array_equal(codec.encode(image), y)
        latents = codec.analyse(image)
        x_hat = ops.convert_to_numpy(codec.decoder(latents[None].astype(np.float32) / GAIN))[0]
        expected = np.round(np.clip(x_hat, 0.0, 1.0)[:image.shape[0], :image.shape[1]] * 255.0).astype(np.uint8)
        np.testing.assert_array_equal(codec.synthesise(latents, 0.0, *image.shape[:2]), expected)


@pytest.mark.parametrize("shape", [(1, 1), (17, 33), (512, 768), (768, 512), (20, 30, 4), (16, 16, 1), (33, 17, 2)])
def test_any_size_gray_and_rgba_round_trip(codec, shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    decoded = codec.decompress(codec.compress(image))
    assert decoded.shape == (*shape[:2], 3) and decoded.dtype == np.uint8
    if shape[0] * shape[1] <= 1000:
        np.testing.assert_array_equal(decoded, codec.quantized_forward(image))


def test_round_trip_across_processes(codec, photo, tmp_path):
    """Compress in one Python process and decompress in another: the image equals
    the quantized forward pass of this process bit for bit."""
    weights = save_codec(codec, "test_codec", tmp_path)
    photo = photo[100:260, 150:300]  # small: the two processes mostly pay for importing TensorFlow
    np.save(tmp_path / "image.npy", photo)
    compress = ("import numpy as np, pathlib; from course_lib.models import load_codec; "
                f"c = load_codec({str(weights)!r}); "
                f"pathlib.Path({str(tmp_path / 'x.rcz')!r}).write_bytes(c.compress(np.load({str(tmp_path / 'image.npy')!r})))")
    decompress = ("import numpy as np, pathlib; from course_lib.models import load_codec; "
                  f"c = load_codec({str(weights)!r}); "
                  f"np.save({str(tmp_path / 'out.npy')!r}, c.decompress(pathlib.Path({str(tmp_path / 'x.rcz')!r}).read_bytes()))")
    for script in (compress, decompress):
        subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=120)
    assert (tmp_path / "x.rcz").read_bytes() == codec.compress(photo)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), codec.quantized_forward(photo))


def test_tiles_give_the_same_result_as_one_piece(photo):
    codec = small_codec(tile=1000)
    image = photo[:100, :130]
    whole_latents, whole_image = codec.analyse(image), codec.quantized_forward(image)
    codec.tile = 3  # 7 x 9 latents -> 3 x 3 tiles
    np.testing.assert_array_equal(codec.analyse(image), whole_latents)
    np.testing.assert_array_equal(codec.quantized_forward(image), whole_image)


def test_tiles_bound_the_size_of_what_the_transforms_see(monkeypatch):
    """Peak memory follows the largest tile, not the image: a 4000x3000 photo is
    processed in pieces of at most (tile + 2 halo) latents per side."""
    codec = small_codec(tile=48)
    seen = []
    for name in ("encoder", "decoder"):
        layer = getattr(codec, name)
        monkeypatch.setattr(codec, name, lambda x, layer=layer: seen.append(x.shape) or layer(x))
    image = np.zeros((3000, 4000, 3), np.uint8)
    codec.synthesise(codec.analyse(image[:1000, :1300]), 0.0, 1000, 1300)
    limit = (48 + 2 * LearnedCodec.TILE_HALO) * 16
    assert len(seen) > 2 and max(max(s[1], s[2]) for s in seen) <= limit


# --------------------------------------------------------------------------- rate estimate
def test_estimated_bits_match_the_file_size(codec, photo):
    estimate = codec.estimate_bits(photo) / 8
    payload = len(codec.compress(photo)) - HEADER_SIZE
    assert estimate > 2000  # a real amount of information, not a degenerate prior
    assert abs(payload - estimate) <= 0.005 * estimate + 16


# --------------------------------------------------------------------------- errors
def test_compress_needs_tables_and_decompress_refuses_other_models(photo):
    codec = small_codec()
    with pytest.raises(RuntimeError, match="update_tables"):
        codec.compress(photo)
    codec.update_tables()
    other = LearnedCodec(channels=16, latent_channels=24)
    other.build()
    other.update_tables()
    with pytest.raises(BitstreamError):
        other.decompress(codec.compress(photo[:32, :32]))
    for bad in (b"", b"RZ", os.urandom(100)):
        with pytest.raises(BitstreamError):
            codec.decompress(bad)


@pytest.mark.parametrize("blocks", [0, 1, 2])
def test_blocks_per_stage_sets_the_residual_blocks_of_both_transforms(blocks):
    encoder, decoder = Encoder(8, 8, blocks_per_stage=blocks), Decoder(8, blocks_per_stage=blocks)
    for transform in (encoder, decoder):
        names = [layer.name for layer in transform.stack if isinstance(layer, ResidualBlock)]
        expected = {0: [], 1: ["residual_0", "residual_1", "residual_2"],
                    2: [f"residual_{i}_{k}" for i in range(3) for k in range(2)]}[blocks]
        assert names == expected  # one block per stage keeps the shipped weights' names
        assert type(transform).from_config(transform.get_config()).blocks_per_stage == blocks
    x = np.zeros((1, 32, 48, 3), np.float32)
    assert tuple(decoder(encoder(x)).shape) == (1, 32, 48, 3)
    with pytest.raises(ValueError, match="blocks_per_stage"):
        Encoder(8, 8, blocks_per_stage=-1)


def test_a_codec_with_two_blocks_per_stage_saves_and_loads(photo, tmp_path):
    keras.utils.set_random_seed(0)
    codec = LearnedCodec(channels=8, latent_channels=8, blocks_per_stage=2)
    codec.build()
    codec.update_tables()
    save_codec(codec, "deep", tmp_path)
    config = json.loads((tmp_path / "manifest.json").read_text())["deep"]["config"]
    assert config == {"channels": 8, "latent_channels": 8, "num_rates": 1, "blocks_per_stage": 2}
    loaded = load_codec("deep", folder=tmp_path)
    assert loaded.blocks_per_stage == 2
    image = photo[:48, :64]
    np.testing.assert_array_equal(loaded.quantized_forward(image), codec.quantized_forward(image))


# --------------------------------------------------------------------------- saving
def test_save_and_load_verify_checksums(codec, photo, tmp_path):
    weights = save_codec(codec, "tiny", tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["tiny"]["config"] == {"channels": 16, "latent_channels": 24, "num_rates": 1}
    loaded = load_codec(weights)
    assert loaded.tables == codec.tables
    image = photo[:64, :80]
    np.testing.assert_array_equal(loaded.decompress(codec.compress(image)), codec.quantized_forward(image))
    assert load_codec("tiny", folder=tmp_path).tables == codec.tables
    with pytest.raises(WeightsError, match="no model 'nope'"):
        load_codec("nope", folder=tmp_path)
    content = bytearray(weights.read_bytes())
    content[-100] ^= 0xFF  # one damaged byte
    weights.write_bytes(bytes(content))
    with pytest.raises(WeightsError, match="SHA-256"):
        load_codec(weights)
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(WeightsError, match="no entry"):
        load_codec(weights)


def test_describe_shipped_follows_the_chain_of_runs(tmp_path):
    from course_lib.registry import describe_shipped, training_runs

    first = {"steps": 18000, "wall_seconds": 7200, "machine": "cpu", "lmbdas": [0.01]}
    second = {"steps": 11000, "wall_seconds": 3600, "machine": "cpu", "lmbdas": [0.01],
              "init": {"sha256": "x", "training": first}}
    entry = {"file": "m.weights.h5", "config": {"channels": 8, "latent_channels": 8, "num_rates": 1},
             "training": second, "kodak": [{"bpp": 0.3, "psnr": 28.0}, {"bpp": 0.6, "psnr": 31.0}]}
    (tmp_path / "manifest.json").write_text(json.dumps({"m": entry}))
    assert training_runs(entry) == [first, second]
    text = describe_shipped("m", tmp_path)
    assert "29,000 steps in all by 2 command(s), 3.0 h" in text and "(the last run: 11,000 steps)" in text
    assert "0.30-0.60 bpp, 28.0-31.0 dB" in text and "factorized" in text


def test_training_totals_stop_at_a_record_that_merges_earlier_runs():
    """A record that merged several run folders states total_steps for itself and all before it (the shipped
    hyperprior's does: 12,000 steps in its last folder, 57,000 in all); a record started from it adds its own."""
    from course_lib.registry import training_totals

    copied = {"steps": 29000, "wall_seconds": 9999}  # trained the codec whose transforms were copied: not counted
    merged = {"steps": 12000, "wall_seconds": 100, "total_steps": 57000, "total_wall_seconds": 20000,
              "commands": ["a", "b", "c"], "init": {"steps": 45000}, "init_transforms": {"training": copied}}
    widened = {"steps": 10000, "wall_seconds": 1000, "init": {"training": merged}}
    latest = {"steps": 7000, "wall_seconds": 600, "init": {"sha256": "x", "training": widened}}
    assert training_totals({"training": merged}) == {"steps": 57000, "wall_seconds": 20000.0}
    assert training_totals({"training": latest}) == {"steps": 74000, "wall_seconds": 21600.0}
    assert training_totals({}) == {"steps": 0, "wall_seconds": 0.0}


def test_the_shipped_codecs_totals_match_their_manifest_notes():
    """Every shipped codec's totals: a record's own total_steps where it states one, else the sum of its chain."""
    from course_lib.config import WEIGHTS_DIR
    from course_lib.registry import describe_shipped, read_manifest, training_runs, training_totals

    manifest = read_manifest(WEIGHTS_DIR)
    for name, entry in manifest.items():
        if not isinstance(entry, dict) or "training" not in entry:
            continue
        record = entry["training"]
        expected = record.get("total_steps", sum(run["steps"] for run in training_runs(entry)))
        assert training_totals(entry)["steps"] == expected, name
        assert f"trained {expected:,} steps in all" in describe_shipped(name), name
