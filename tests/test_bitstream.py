"""Range coding with integer tables and the .rcz file format."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from course_lib import bitstream
from course_lib.bitstream import (HEADER_SIZE, LATENT_LIMIT, BitstreamError, EntropyTables, decode_latents,
                                  encode_latents, pack, read_header, unpack)
from course_lib.entropy import integer_pmf

CHANNELS = 6


def laplace_tables(scales, support=12, tail=1e-3):
    """Tables of discretised Laplacians, support [-support, support] plus escape."""
    values = np.arange(-support, support + 1)
    pmf = np.zeros((len(scales), values.size + 1), np.int32)
    for c, s in enumerate(scales):
        p = np.exp(-np.abs(values) / s)
        pmf[c] = integer_pmf(np.append(p / p.sum() * (1 - tail), tail), 2 ** 16)
    return EntropyTables(pmf=pmf, offset=np.full(len(scales), -support, np.int32),
                         support_size=np.full(len(scales), values.size, np.int32), precision=16).validate()


@pytest.fixture(scope="module")
def tables():
    return laplace_tables(np.geomspace(0.5, 4, CHANNELS))


def latents(shape, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.5, 4, CHANNELS)[:, None, None]
    return np.round(rng.laplace(size=(CHANNELS, *shape)) * scales).astype(np.int32)


def test_round_trip_with_escapes_and_extremes(tables):
    values = latents((9, 7))
    values[0, 0, 0], values[1, 0, 0] = LATENT_LIMIT, -LATENT_LIMIT  # the largest escapes
    values[2, 0, :4] = [13, -13, 14, -14]  # just outside the support
    words = encode_latents(values, tables)
    assert words.dtype == np.uint32
    decoded = decode_latents(words, tables, 9 * 7).reshape(values.shape)
    np.testing.assert_array_equal(decoded, values)


def test_file_layout(tables):
    values = latents((2, 3))
    data = pack(values, tables, height=20, width=33, rate_byte=7)
    header = read_header(data)
    assert data[:2] == b"RZ" and HEADER_SIZE == 16
    assert (header.height, header.width, header.rate_byte, header.model_id) == (20, 33, 7, tables.model_id)
    assert len(data) == HEADER_SIZE + 4 * header.words
    header2, decoded = unpack(data, tables)
    assert header2 == header
    np.testing.assert_array_equal(decoded, values)


def test_pack_refuses_bad_input(tables):
    with pytest.raises(ValueError, match="shape"):
        pack(latents((2, 2)), tables, height=20, width=33)
    with pytest.raises(ValueError, match="within"):
        pack(np.full((CHANNELS, 1, 1), LATENT_LIMIT + 1, np.int32), tables, 16, 16)
    with pytest.raises(ValueError, match="integers"):
        pack(latents((1, 1)).astype(np.float32), tables, 16, 16)
    with pytest.raises(ValueError, match="size"):
        pack(latents((1, 1)), tables, 0, 16)


def test_actual_size_matches_the_ideal_information_content(tables):
    values = latents((40, 60))
    payload_bytes = len(pack(values, tables, 640, 960)) - HEADER_SIZE
    ideal_bytes = tables.ideal_bits(values) / 8
    assert abs(payload_bytes - ideal_bytes) <= 0.005 * ideal_bytes + 8


def test_rate_estimate_of_a_fitted_prior_matches_the_file_size():
    """Laplacian latents, a FactorizedPrior fitted to them, its exported tables:
    the float estimate -sum log2 P(y_hat) predicts the payload within 0.5% + 16 bytes."""
    import keras
    import tensorflow as tf

    from course_lib.entropy import FactorizedPrior, bits_from_likelihoods

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    scales = np.geomspace(0.3, 6, 8).astype(np.float32)
    y = (rng.laplace(size=(1, 32, 48, 8)) * scales).astype(np.float32)  # latents of a 512x768 image
    prior = FactorizedPrior()
    optimizer = keras.optimizers.Adam(0.02)

    @tf.function
    def step(y):
        with tf.GradientTape() as tape:
            noisy = y + tf.random.uniform(tf.shape(y), -0.5, 0.5)
            loss = tf.reduce_mean(bits_from_likelihoods(prior(noisy), axis=(0, 1, 2)))
        grads = tape.gradient(loss, prior.trainable_variables)
        optimizer.apply_gradients(zip(grads, prior.trainable_variables))

    prior(y)
    for _ in range(200):
        step(tf.constant(y))
    y_hat = np.round(y)
    estimate_bytes = float(bits_from_likelihoods(prior(y_hat))) / 8
    tables = prior.export_tables()
    values = np.transpose(y_hat[0], (2, 0, 1)).astype(np.int32)
    payload_bytes = len(pack(values, tables, 512, 768)) - HEADER_SIZE
    assert estimate_bytes > 1000  # not a degenerate all-zero case
    assert abs(payload_bytes - estimate_bytes) <= 0.005 * estimate_bytes + 16


def test_tables_save_load_and_fingerprint(tables, tmp_path):
    path = tables.save(tmp_path / "t.npz")
    assert EntropyTables.load(path) == tables
    changed = tables.pmf.copy()
    changed[0, 11] += 1  # move one count between two likely symbols
    changed[0, 12] -= 1
    other = EntropyTables(changed, tables.offset, tables.support_size, tables.precision).validate()
    assert other.fingerprint() != tables.fingerprint()
    broken = changed.copy()
    broken[1, 0] += 1  # row no longer sums to 2**16
    with pytest.raises(ValueError, match="sum"):
        EntropyTables(broken, tables.offset, tables.support_size, 16).validate()
    np.savez(tmp_path / "bad.npz", pmf=tables.pmf)
    with pytest.raises(ValueError, match="missing"):
        EntropyTables.load(tmp_path / "bad.npz")


# --------------------------------------------------------------------------- bad files
@pytest.fixture(scope="module")
def small_file(tables):
    return pack(latents((2, 2), seed=3), tables, 30, 17, rate_byte=0)


def header_with(data, **fields):
    """Rewrite header fields of a valid file (the CRC is left as it was)."""
    b = bytearray(data)
    for name, (offset, size) in {"version": (2, 1), "height": (5, 2), "width": (7, 2), "words": (9, 3)}.items():
        if name in fields:
            b[offset:offset + size] = fields[name].to_bytes(size, "big")
    return bytes(b)


@pytest.mark.parametrize("make, message", [
    (lambda d: b"", "empty file"),
    (lambda d: b"\x89PNG\r\n\x1a\n" + bytes(40), "wrong magic"),
    (lambda d: b"hello world, not an image file", "wrong magic"),
    (lambda d: d[:10], "truncated"),
    (lambda d: d[:-1], "truncated"),
    (lambda d: d + b"\0", "unexpected bytes"),
    (lambda d: header_with(d, version=9), "version"),
    (lambda d: header_with(d, height=0), "image size"),
    (lambda d: header_with(d, height=65535, width=65535), "image size"),
    (lambda d: header_with(d, words=2 ** 24 - 1), "truncated"),
    (lambda d: header_with(d, height=31), "checksum"),
    (lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:], "checksum"),
])
def test_bad_files_raise_bitstream_error(tables, small_file, make, message):
    with pytest.raises(BitstreamError, match=message) as info:
        unpack(make(small_file), tables)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_file_from_another_model_is_refused(tables, small_file):
    other = laplace_tables(np.geomspace(0.5, 4, CHANNELS) * 1.5)
    assert other.model_id != tables.model_id  # (the ids of these two fixed tables differ)
    with pytest.raises(BitstreamError, match="model id"):
        unpack(small_file, other)


def test_every_single_bit_flip_is_detected(tables, small_file):
    for byte in range(len(small_file)):
        for bit in range(8):
            flipped = bytearray(small_file)
            flipped[byte] ^= 1 << bit
            with pytest.raises(BitstreamError):
                unpack(bytes(flipped), tables)


def test_fuzz_random_truncated_and_flipped_files(tables, small_file):
    """1,200 mutated files: each either raises BitstreamError or (astronomically
    unlikely) decodes; nothing else may escape."""
    rng = np.random.default_rng(0)
    outcomes = {"error": 0, "decoded": 0}
    for i in range(1200):
        kind = i % 4
        if kind == 0:  # random bytes, some behind a valid magic and version
            data = rng.bytes(int(rng.integers(0, 64)))
            if i % 8 == 0:
                data = b"RZ\x01" + data
        elif kind == 1:  # truncated
            data = small_file[:int(rng.integers(0, len(small_file)))]
        elif kind == 2:  # several random bit flips
            b = bytearray(small_file)
            for pos in rng.integers(0, 8 * len(b), size=int(rng.integers(1, 6))):
                b[pos // 8] ^= 1 << (pos % 8)
            data = bytes(b)
        else:  # a random byte overwritten, or random bytes spliced in
            b = bytearray(small_file)
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
            data = bytes(b) if bytes(b) != small_file else small_file[:-4]
        try:
            unpack(data, tables)
            outcomes["decoded"] += 1
        except BitstreamError:
            outcomes["error"] += 1
    assert outcomes["decoded"] == 0


def test_crafted_payload_with_valid_checksum_never_crashes(tables):
    """Random payloads given a correct CRC: the decoder returns latents within
    the limits or raises BitstreamError, never another exception."""
    rng = np.random.default_rng(1)
    for n_words in (0, 1, 2, 5, 50):
        for _ in range(20):
            payload = rng.bytes(4 * n_words)
            header = bitstream.Header(tables.model_id, 0, 64, 64, n_words).to_bytes()
            crc = bitstream.checksum(header, tables.fingerprint(), payload)
            try:
                _, values = unpack(header + crc.to_bytes(4, "big") + payload, tables)
                assert values.shape == (CHANNELS, 4, 4) and np.abs(values).max() <= LATENT_LIMIT
            except BitstreamError:
                pass


# --------------------------------------------------------------------------- hostile files (issue 16)
def reseal(header: bitstream.Header, payload: bytes, key: bytes) -> bytes:
    """A file with the given header fields and payload and a *valid* CRC, as a crafted file would have."""
    head = header.to_bytes()
    return head + bitstream.checksum(head, key, payload).to_bytes(4, "big") + payload


def test_minimum_bits_bound_what_the_coder_spends(tables):
    """A long run of each row's likeliest symbol (the cheapest message there is) costs at least
    minimum_bits per value, and not much more: the bound is tight."""
    from course_lib.hyperprior import gaussian_tables

    for t in (tables, gaussian_tables()):
        bounds = t.minimum_bits()
        assert bounds.shape == (t.channels,) and np.all(bounds > 0)
        for row in range(t.channels):
            likeliest = int(np.argmax(t.pmf[row])) + int(t.offset[row])
            n = 20_000
            spent = 32 * bitstream.encode_symbols(np.full(n, likeliest), np.full(n, row), t).size
            assert spent >= n * bounds[row], (row, spent, n * bounds[row])
            assert spent <= 1.02 * n * bounds[row] + 64 + 0.0001 * n


@pytest.mark.parametrize("height, width, message", [(7071, 7071, "payload too short"),
                                                    (4096, 4096, "payload too short"),
                                                    (65535, 65535, "image size")])
def test_bomb_header_is_refused_fast_without_allocating(tables, height, width, message):
    """A 16-byte file with a valid CRC announcing a huge image and no payload: refused in well under
    2 s, with no allocation the size of the image (traced by tracemalloc)."""
    import time
    import tracemalloc

    bomb = reseal(bitstream.Header(tables.model_id, 0, height, width, 0), b"", tables.fingerprint())
    assert len(bomb) == HEADER_SIZE
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(BitstreamError, match=message) as info:
            unpack(bomb, tables)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "\n" not in str(info.value) and seconds < 0.5 and peak < 1_000_000


def test_payload_bound_and_max_pixels(tables):
    """A payload one word shorter than the tables' bound is refused; the caller's max_pixels too."""
    count = 64 * 64  # latents of a 1024 x 1024 image
    needed = count * tables.minimum_bits().sum()
    short = int(needed // 32) - 2
    header = bitstream.Header(tables.model_id, 0, 1024, 1024, short)
    with pytest.raises(BitstreamError, match="payload too short.*1024x1024 image"):
        unpack(reseal(header, bytes(4 * short), tables.fingerprint()), tables)
    with pytest.raises(BitstreamError, match="payload too short"):
        decode_latents(np.zeros(short, np.uint32), tables, count)
    data = pack(latents((2, 3)), tables, 20, 33)
    assert unpack(data, tables, max_pixels=20 * 33)[0].height == 20
    with pytest.raises(BitstreamError, match="max_pixels=659") as info:
        unpack(data, tables, max_pixels=20 * 33 - 1)
    assert "\n" not in str(info.value)
    for bad in (0, -1, 1.5, True, "big"):
        with pytest.raises(ValueError, match="max_pixels"):
            read_header(data, max_pixels=bad)


@pytest.mark.parametrize("edit, message", [
    (lambda w: np.append(w, np.uint32(0)), "after the end"),  # a zero word passes constriction's own end test
    (lambda w: np.append(w, np.arange(100, dtype=np.uint32)), "after the end"),  # 400 hidden bytes
    (lambda w: w[:-1], "missing words|not what the encoder"),
    (lambda w: w[:-2], "missing words|not what the encoder|payload too short"),
    (lambda w: w[:0], "payload too short"),
])
def test_resealed_payload_must_be_exactly_the_coders_output(tables, edit, message):
    values = latents((5, 7), seed=4)
    words = encode_latents(values, tables)
    changed = edit(words)
    with pytest.raises(BitstreamError, match=message):
        decode_latents(changed, tables, 35)
    header = bitstream.Header(tables.model_id, 0, 80, 112, int(changed.size))
    with pytest.raises(BitstreamError, match=message) as info:
        unpack(reseal(header, changed.astype("<u4").tobytes(), tables.fingerprint()), tables)
    assert "\n" not in str(info.value)


def _a_real_panic() -> BaseException:
    """The exception a Rust panic inside constriction raises (pyo3's PanicException)."""
    import constriction

    decoder = constriction.stream.queue.RangeDecoder(np.zeros(2, np.uint32))
    try:
        decoder.decode(constriction.stream.model.Uniform(), np.array([1], np.int32))  # a 1-symbol uniform panics
    except BaseException as exc:  # noqa: BLE001 - that is what we are after
        return exc
    raise AssertionError("expected a panic")


@pytest.mark.parametrize("raised, becomes_bitstream_error", [
    (KeyboardInterrupt(), False), (MemoryError(), False), (TimeoutError("from a signal handler"), False),
    (SystemExit(3), False), (RuntimeError("the caller's"), False),
    (AssertionError("invalid compressed data"), True), (ValueError("bad data"), True), (_a_real_panic(), True),
])
def test_only_the_coders_own_errors_become_bitstream_errors(tables, monkeypatch, raised, becomes_bitstream_error):
    """The decoder relabels bad data, never the caller's exceptions (a KeyboardInterrupt, a MemoryError,
    a TimeoutError raised by a signal handler while the coder runs)."""
    import constriction

    class Decoder:
        def __init__(self, words):
            pass

        def decode(self, model, amount):
            raise raised

    data = pack(latents((2, 2)), tables, 32, 32)
    monkeypatch.setattr(constriction.stream.queue, "RangeDecoder", Decoder)
    if becomes_bitstream_error:
        with pytest.raises(BitstreamError, match="range decoder failed"):
            unpack(data, tables)
    else:
        with pytest.raises(type(raised)) as info:
            unpack(data, tables)
        assert info.value is raised
