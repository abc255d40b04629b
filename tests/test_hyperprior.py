"""The scale hyperprior codec (notebook 12): Gaussian tables, float64 side information,
version-2 files, saving and loading, mixed-precision training."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
from keras import ops
from scipy.stats import norm

from course_lib import bitstream
from course_lib.bitstream import BitstreamError, decode_symbols, encode_symbols
from course_lib.codec import LearnedCodec
from course_lib.models import WeightsError, load_codec, save_codec
from course_lib.data import course_photo
from course_lib.hyperprior import (SCALE_BOUND, SCALE_TABLE, GaussianConditional, HyperDecoder, HyperpriorCodec,
                                   gaussian_tables, hyper_synthesis_float64, scale_indices)
from course_lib.transforms import SubPixelConv2D
from course_lib.training import COMPRESSAI_LAMBDAS, RateDistortionTrainer

LAMBDAS = (0.0018, 0.013, 0.0932)


def small_hyperprior(**kwargs):
    keras.utils.set_random_seed(0)
    kwargs.setdefault("residual_stages", (2,))
    codec = HyperpriorCodec(channels=16, latent_channels=24, hyper_channels=8, num_rates=3, **kwargs)
    codec.build()
    # Gains that spread the untrained latents over several integers, and differ by rate.
    codec.log_gain.assign(np.log(np.array([[4.0], [8.0], [16.0]], np.float32)) * np.ones((3, 24), np.float32))
    codec.log_inverse_gain.assign(-codec.log_gain)
    codec.update_tables()
    return codec


@pytest.fixture(scope="module")
def codec():
    return small_hyperprior()


@pytest.fixture(scope="module")
def photo():
    return course_photo("astronaut")[100:293, 50:307]  # 193 x 257: not a multiple of 16 or 64


def test_gaussian_conditional_matches_scipy():
    y = np.array([-3.0, -0.4, 0.0, 0.7, 2.0, 9.0], np.float32)
    means = np.array([0.0, 0.1, -0.2, 0.0, 1.5, 0.0], np.float32)
    scales = np.array([1.0, 0.5, 0.05, 2.0, 3.0, 1.0], np.float32)  # 0.05 is raised to the bound
    got = ops.convert_to_numpy(GaussianConditional()(y, means, scales))
    s = np.maximum(scales, SCALE_BOUND).astype(np.float64)
    expected = norm.cdf(y + 0.5, means, s) - norm.cdf(y - 0.5, means, s)
    np.testing.assert_allclose(got, np.maximum(expected, 1e-9), rtol=1e-4)


def test_gaussian_tables_are_valid_and_close_to_the_gaussian():
    tables = gaussian_tables()
    assert tables.channels == SCALE_TABLE.size
    for k in (0, 20, 63):
        counts = tables.pmf[k, :tables.support_size[k]].astype(np.float64) / 2 ** tables.precision
        values = np.arange(tables.support_size[k]) + tables.offset[k]
        exact = norm.cdf(values + 0.5, 0, SCALE_TABLE[k]) - norm.cdf(values - 0.5, 0, SCALE_TABLE[k])
        assert np.abs(counts - exact).max() < 2e-4, k
        assert tables.offset[k] == -(tables.support_size[k] // 2)  # symmetric around 0
    # The table is a pure function of a few constants: the same integers twice.
    assert gaussian_tables() == tables


def test_scale_indices_pick_the_nearest_scale_in_log():
    k = scale_indices(SCALE_TABLE * np.exp(0.01))
    assert np.array_equal(k, np.arange(SCALE_TABLE.size))
    assert scale_indices(np.array([0.0, 1e-3, 1e6])).tolist() == [0, 0, SCALE_TABLE.size - 1]


def test_symbols_with_rows_round_trip_with_escapes():
    tables = gaussian_tables()
    rng = np.random.default_rng(1)
    rows = rng.integers(0, tables.channels, (5, 7, 9))
    values = np.round(rng.normal(0, SCALE_TABLE[rows])).astype(np.int64)
    values[0, 0, 0], values[1, 2, 3] = 10_000, -70_000  # far outside any support: escapes
    words = encode_symbols(values, rows, tables)
    assert np.array_equal(decode_symbols(words, rows, tables), values)
    with pytest.raises(ValueError, match="rows"):
        encode_symbols(values, rows + tables.channels, tables)


def test_float64_side_information_matches_the_network(codec):
    z = np.random.default_rng(2).integers(-4, 5, (3, 5, 8)).astype(np.float32)
    means, scales = codec.hyper_decoder(z[None])
    means64, scales64 = hyper_synthesis_float64(codec.hyper_decoder, z)
    assert means64.shape == (12, 20, 24) and scales64.dtype == np.float64
    np.testing.assert_allclose(ops.convert_to_numpy(means)[0], means64, atol=1e-5)
    np.testing.assert_allclose(np.maximum(ops.convert_to_numpy(scales)[0], SCALE_BOUND), scales64, atol=1e-5)


@pytest.mark.parametrize("rate", [0.0, 1.5, 2.0])
def test_round_trip_equals_quantized_forward(codec, photo, rate):
    data = codec.compress(photo, rate)
    assert data[:3] == b"RZ\x02"
    decoded = codec.decompress(data)
    assert decoded.shape == photo.shape and decoded.dtype == np.uint8
    assert np.array_equal(decoded, codec.quantized_forward(photo, rate))


def test_compress_and_reconstruct_is_the_file_and_what_it_decodes_to(codec, photo):
    for rate in (0.0, 1.5):
        data, picture = codec.compress_and_reconstruct(photo, rate)
        assert data == codec.compress(photo, rate)
        np.testing.assert_array_equal(picture, codec.decompress(data))


def test_float64_side_information_is_the_same_on_one_blas_thread_or_many():
    """hyper_synthesis_float64 keeps NumPy's BLAS on one thread (faster on a busy 2-core machine); the
    products it sums, kernel offset by kernel offset, are what the default threads give, bit for bit.
    Shipped-size layers, so that BLAS would share the products out among threads."""
    decoder = HyperDecoder(64, 128)
    decoder.build((1, None, None, 64))
    rng = np.random.default_rng(3)
    for layer in decoder.stack:
        for weight in layer.weights:
            weight.assign(rng.normal(0.0, 0.05, weight.shape).astype(np.float32))
    z = rng.integers(-6, 7, (8, 12, 64)).astype(np.float64)
    x = z
    for layer in decoder.stack:  # the same sums with BLAS as it comes
        if isinstance(layer, (SubPixelConv2D, keras.layers.Conv2D)):
            conv = layer.conv if isinstance(layer, SubPixelConv2D) else layer
            kernel = ops.convert_to_numpy(conv.kernel).astype(np.float64)
            padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
            h, w = x.shape[:2]
            x = np.broadcast_to(ops.convert_to_numpy(conv.bias).astype(np.float64), (h, w, kernel.shape[-1])).copy()
            for i in range(3):
                for j in range(3):
                    x += padded[i:i + h, j:j + w] @ kernel[i, j]
            if isinstance(layer, SubPixelConv2D):
                x = x.reshape(h, w, 2, 2, -1).transpose(0, 2, 1, 3, 4).reshape(2 * h, 2 * w, -1)
        else:
            x = np.maximum(x, 0.0)
    means, scales = hyper_synthesis_float64(decoder, z)
    np.testing.assert_array_equal(means, x[..., :128])
    np.testing.assert_array_equal(scales, np.maximum(np.logaddexp(0.0, x[..., 128:]), SCALE_BOUND))


def test_file_size_matches_the_estimate(codec, photo):
    # Rate 0 only: at the larger gains this untrained model's scales are far too small, most
    # latents escape, and the escape code is cheaper than the float model's capped 30 bits.
    # The trained model is checked on Kodak (test_shipped_weights.py).
    data = codec.compress(photo, 0)
    estimate = codec.estimate_bits(photo, 0) / 8 + bitstream.HEADER_SIZE_HYPERPRIOR
    assert abs(len(data) - estimate) <= 0.02 * estimate + 8, (len(data), estimate)
    assert len(codec.compress(photo, 2)) > len(codec.compress(photo, 0))  # larger gains, more bits


def test_header_holds_both_streams(codec, photo):
    data = codec.compress(photo, 1)
    header = bitstream.read_header(data)
    assert (header.version, header.height, header.width) == (2, 193, 257)
    assert header.side_words > 0 and header.words > 0
    assert len(data) == bitstream.HEADER_SIZE_HYPERPRIOR + 4 * (header.side_words + header.words)


def test_bad_version_2_files_get_one_line_errors(codec, photo):
    data = codec.compress(photo, 0)
    flipped = bytearray(data)
    flipped[-3] ^= 0x10
    cases = {"truncated": data[:-4], "trailing": data + b"\0\0\0\0", "header only": data[:12],
             "flipped payload bit": bytes(flipped)}
    for name, bad in cases.items():
        with pytest.raises(BitstreamError) as info:
            codec.decompress(bad)
        assert "\n" not in str(info.value), name
    other = small_hyperprior(seed=1)
    other.prior.matrices[0].assign(other.prior.matrices[0] + 0.1)
    other.update_tables()
    with pytest.raises(BitstreamError, match="model id|checksum"):
        other.decompress(data)


def test_versions_are_not_confused(codec, photo):
    factorized = LearnedCodec(channels=16, latent_channels=24)
    factorized.build()
    factorized.update_tables()
    with pytest.raises(BitstreamError, match="version 2"):
        factorized.decompress(codec.compress(photo, 0))
    with pytest.raises(BitstreamError, match="version 1"):
        codec.decompress(factorized.compress(photo, 0))


def test_save_and_load_verify_every_table(codec, photo, tmp_path):
    save_codec(codec, "hp", tmp_path)
    loaded = load_codec("hp", tmp_path)
    assert isinstance(loaded, HyperpriorCodec) and loaded.residual_stages == (2,)
    data = codec.compress(photo, 1)
    assert np.array_equal(loaded.decompress(data), codec.decompress(data))
    scale_file = tmp_path / "hp.scale_tables.npz"
    damaged = bytearray(scale_file.read_bytes())
    damaged[-1] ^= 1
    scale_file.write_bytes(bytes(damaged))
    with pytest.raises(WeightsError, match="SHA-256"):
        load_codec("hp", tmp_path)


def test_initial_gains_follow_the_lambdas():
    codec = HyperpriorCodec(channels=16, latent_channels=24, hyper_channels=8, num_rates=3)
    codec.build()
    codec.initialize_gains(LAMBDAS)
    gain, inverse = (ops.convert_to_numpy(g) for g in codec.gains(2.0))
    np.testing.assert_allclose(gain, np.sqrt(0.0932 / np.exp(np.mean(np.log(LAMBDAS)))), rtol=1e-5)
    np.testing.assert_allclose(gain * inverse, 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="3 positive lambdas"):
        codec.initialize_gains(COMPRESSAI_LAMBDAS)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_trains_under_both_precisions(precision):
    codec = HyperpriorCodec(channels=16, latent_channels=24, hyper_channels=8, num_rates=3, precision=precision)
    codec.build()
    if precision == "bfloat16":
        assert codec.encoder.stack[0].compute_dtype == "bfloat16"
        assert codec.encoder.stack[1].compute_dtype == "float32"  # GDN
    trainer = RateDistortionTrainer(codec, LAMBDAS)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    trainer.built = True
    images = np.random.default_rng(0).random((4, 64, 64, 3)).astype(np.float32)
    before = trainer.evaluate(images, batch_size=4, verbose=0, return_dict=True)["loss"]
    history = trainer.fit(images, batch_size=2, epochs=4, verbose=0).history
    after = trainer.evaluate(images, batch_size=4, verbose=0, return_dict=True)["loss"]
    assert np.all(np.isfinite(history["loss"])) and after < before  # every rate, rounded latents
    out = codec(images[:1], rate=1)
    assert out["x_hat"].dtype == "float32" and out["bits"].dtype == "float32"


def test_weights_trained_in_bfloat16_load_in_float32(tmp_path):
    trained = HyperpriorCodec(channels=16, latent_channels=24, hyper_channels=8, precision="bfloat16")
    trained.build()
    trained.save_weights(tmp_path / "w.weights.h5")
    plain = HyperpriorCodec(channels=16, latent_channels=24, hyper_channels=8)
    plain.build()
    plain.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(trained.weights, plain.weights):
        assert np.array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))


def test_call_needs_multiples_of_64(codec):
    with pytest.raises(ValueError, match="multiples of 64"):
        codec(np.zeros((1, 48, 64, 3), np.float32))


def _reseal(data: bytes, key: bytes) -> bytes:
    """Recompute a version-2 file's CRC, as a crafted (not merely damaged) file would."""
    crc = bitstream.checksum(data[:15], key, data[19:])
    return data[:15] + crc.to_bytes(4, "big") + data[19:]


def test_crafted_version_2_files_never_crash(codec, photo):
    """Mutated files with a valid CRC decode to an image of the announced size or raise
    BitstreamError; never another exception (the fuzz test of format version 2)."""
    rng = np.random.default_rng(3)
    small = photo[:64, :96]
    good = codec.compress(small, 1)
    outcomes = {"decoded": 0, "error": 0}
    for trial in range(120):
        mutated = bytearray(good)
        kind = trial % 3
        if kind == 0:  # flip bits in the payload (both streams)
            for _ in range(int(rng.integers(1, 4))):
                position = int(rng.integers(19, len(mutated)))
                mutated[position] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:  # move the boundary between the two streams
            header = bitstream.read_header(good)
            side = max(0, header.side_words + int(rng.integers(-2, 3)))
            words = header.side_words + header.words - side
            if words < 0:
                continue
            mutated[9:12], mutated[12:15] = side.to_bytes(3, "big"), words.to_bytes(3, "big")
        else:  # random words in place of y's stream
            header = bitstream.read_header(good)
            start = 19 + 4 * header.side_words
            mutated[start:] = rng.bytes(len(mutated) - start)
        try:
            decoded = codec.decompress(_reseal(bytes(mutated), codec.model_key))
            assert decoded.shape == small.shape and decoded.dtype == np.uint8
            outcomes["decoded"] += 1
        except BitstreamError as exc:
            assert "\n" not in str(exc)
            outcomes["error"] += 1
    assert outcomes["error"] > 0  # the decoder does notice some crafted files


def test_residual_stages_name_the_same_resolution_in_both_transforms():
    from course_lib.transforms import Decoder, Encoder

    encoder, decoder = Encoder(8, 8, residual_stages=(2,)), Decoder(8, residual_stages=(2,))
    encoder.build((None, 64, 64, 3))
    decoder.build((None, 4, 4, 8))
    assert [layer.name for layer in encoder.stack].index("residual_2") == 6  # right after downsample_2, gdn_2: 1/8
    assert [layer.name for layer in decoder.stack].index("residual_0") == 2  # after upsample_0: 1/8
    assert "residual_2" not in [layer.name for layer in decoder.stack]


def test_model_key_covers_the_hyper_decoder(photo):
    a, b = small_hyperprior(), small_hyperprior()
    assert a.model_key == b.model_key and a.tables == b.tables
    kernel = b.hyper_decoder.stack[-1].kernel
    kernel.assign(kernel * 1.01)  # another h_s with the same z tables: its files must not pass for a's
    assert b.tables == a.tables and b.model_key != a.model_key
    with pytest.raises(BitstreamError):
        a.decompress(b.compress(photo[:64, :64], 0))


def test_a_coarser_scale_table_codes_the_same_values():
    coarse = SCALE_TABLE[::4]
    tables = gaussian_tables(scales=coarse)
    assert tables.channels == 16
    rng = np.random.default_rng(4)
    scales = np.exp(rng.uniform(np.log(0.2), np.log(40), (6, 8)))
    rows = scale_indices(scales, coarse)
    assert np.all(np.abs(np.log(coarse[rows]) - np.log(scales)) <= np.log(coarse[1] / coarse[0]) / 2 + 1e-9)
    values = np.round(rng.normal(0, scales)).astype(np.int64)
    assert np.array_equal(decode_symbols(encode_symbols(values, rows, tables), rows, tables), values)


@pytest.mark.parametrize("stream", ["z", "y"])
def test_resealed_trailing_or_missing_words_are_refused(codec, photo, stream):
    """Issue 16: a version-2 file decodes only if both streams are exactly the coder's output; the header
    stores both lengths, and a crafted file (lengths and CRC updated) with a word added to or taken from
    either stream is refused with one line."""
    good = codec.compress(photo[:64, :96], 1)
    header = bitstream.read_header(good)
    z = good[19:19 + 4 * header.side_words]
    y = good[19 + 4 * header.side_words:]
    for extra in (bytes(4), b"\xff" * 4, bytes(400)):
        for z2, y2 in ((z + extra, y), (z, y + extra)) if stream == "z" else ((z, y + extra),):
            crafted = bitstream.Header(header.model_id, header.rate_byte, header.height, header.width,
                                       len(y2) // 4, 2, len(z2) // 4).to_bytes() + bytes(4) + z2 + y2
            with pytest.raises(BitstreamError, match="after the end|not what the encoder") as info:
                codec.decompress(_reseal(crafted, codec.model_key))
            assert "\n" not in str(info.value)
    z2, y2 = (z[:-4], y) if stream == "z" else (z, y[:-4])
    crafted = bitstream.Header(header.model_id, header.rate_byte, header.height, header.width,
                               len(y2) // 4, 2, len(z2) // 4).to_bytes() + bytes(4) + z2 + y2
    with pytest.raises(BitstreamError, match="missing words|not what the encoder|too short|beyond"):
        codec.decompress(_reseal(crafted, codec.model_key))


def test_bomb_headers_and_max_pixels_version_2(codec, photo):
    """A 19-byte file with a valid CRC announcing 7071 x 7071 (or 65535 x 65535) is refused at once;
    the caller's max_pixels is honoured."""
    import time

    for side, message in ((7071, "payload too short: 0 bytes cannot hold the 8x111x111 hyper-latents z"),
                          (65535, "invalid image size")):
        head = bitstream.Header(codec.model_key[0], 0, side, side, 0, 2, 0).to_bytes()
        start = time.perf_counter()
        with pytest.raises(BitstreamError, match=message):
            codec.decompress(_reseal(head + bytes(4), codec.model_key))
        assert time.perf_counter() - start < 1.0
    data = codec.compress(photo[:64, :96], 0)
    assert codec.decompress(data, max_pixels=64 * 96).shape == (64, 96, 3)
    with pytest.raises(BitstreamError, match="max_pixels"):
        codec.decompress(data, max_pixels=64 * 96 - 1)


def test_y_stream_too_short_for_its_rows_is_refused_before_decoding(codec, photo):
    """Once z has named every latent's table row, y's stream must hold at least the rows' minimum bits."""
    import dataclasses

    data = codec.compress(photo[:64, :96], 2)
    header = bitstream.read_header(data)
    rows = np.zeros((codec.latent_channels, 4, 6), np.int64) + codec.scale_tables.channels - 1  # widest rows
    short = dataclasses.replace(header, words=1)
    with pytest.raises(BitstreamError, match="payload too short.*latents y of a 64x96 image"):
        bitstream.unpack_hyperprior_latents(data, short, rows, codec.scale_tables)

