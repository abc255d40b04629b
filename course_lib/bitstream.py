"""Bits on disk: range coding of integer latents and the ``.rcz`` file format (notebook 05).

The encoder turns the integer latents y_hat (C, h, w) into a stream of 32-bit
words with ``constriction``'s range coder (``constriction.stream.queue``), one
categorical model per channel taken from integer tables
(:class:`EntropyTables`). Encoder and decoder read the *same integers*, so
they agree bit for bit on any machine; the floats of the learned prior are
never used for coding.

Escapes: each channel's table covers a finite support [lo_c, lo_c + size_c - 1]
plus one extra *escape* symbol. A latent outside the support is coded as the
escape symbol, and after all channels the escaped values follow, each as
(direction bit, bit length n of the overshoot d + 1 (uniform over 0..21), the
n low bits of d + 1 (uniform)), an Elias-gamma-like code through
``constriction``'s uniform models. Every integer with |y_hat| <= 2**20 is codable.

File format (``.rcz``, "residual compression, z"), 16-byte header, big-endian:

======  =====  ==========================================================
offset  bytes  field
======  =====  ==========================================================
0       2      magic ``b"RZ"``
2       1      format version (1)
3       1      model id: first byte of the SHA-256 fingerprint of the tables
4       1      rate byte (the codec maps it to a rate level)
5       2      image height in pixels (1..65535)
7       2      image width in pixels (1..65535)
9       3      payload length in 32-bit words
12      4      CRC-32 of header bytes 0..11, the tables' full fingerprint
               and the payload
16      4 n    payload: n little-endian uint32 words from the range coder
======  =====  ==========================================================

Version 2 (the hyperprior codec of notebook 12) has a 19-byte header: bytes
0..8 as above (version byte 2), then the lengths in words of z's stream (3
bytes) and of y's stream (3 bytes), then the CRC-32 of header bytes 0..14, the
model's key (a SHA-256 of both its tables) and the payload; the payload is
z's stream followed by y's. y's latents are coded as residuals round(y - mu),
each with the table row of its scale index, which the decoder recomputes from
z before reading y's stream.

Anything wrong with a file (empty, truncated, foreign, corrupted, made by
another model) raises :class:`BitstreamError`, a ``ValueError`` with a
one-line message that names the problem. The CRC covers the header too, so
a flipped bit in the image size cannot produce a silently wrong image.

The CRC's key (the tables' fingerprint, or the model key) is public, so a
*crafted* file can carry a valid CRC. Two more rules make decoding safe
against such files:

* **Bounded by the input.** Before anything the size of the image is
  allocated, the header's image size is checked against ``max_pixels`` (the
  caller's limit, by default :data:`course_lib.data.MAX_PIXELS`, the largest
  image the encoder accepts) and against the payload: every value coded with
  a table row costs at least :meth:`EntropyTables.minimum_bits` bits, so a
  payload shorter than that sum cannot hold the announced latents (with the
  shipped factorized tables each latent position, 128 channels, costs at
  least 48.7 bits: a genuine 7071 x 7071 file holds at least 1.19 MB). In
  version 2 the bound applies to z's stream first, then to y's stream once
  z has named each latent's row; z can announce near-certain latents for y
  (a position of y may cost almost nothing), so for version-2 files
  ``max_pixels`` is the bound that matters.
* **Exact payloads.** ``constriction``'s range decoder does not notice when
  its input runs out (it reads zeros past the end), and its only end-of-data
  test, ``maybe_exhausted()``, cannot tell all cases apart (a trailing zero
  word passes it). So the decoded values are range-coded again, and the file
  is accepted only if that reproduces its payload word for word: no
  trailing words, no missing words, no words the encoder cannot produce.

Only the coder's own errors (bad data: ``AssertionError``/``ValueError`` from
``constriction``, or a Rust panic) become :class:`BitstreamError`; anything
else, ``KeyboardInterrupt``, ``MemoryError`` or an exception raised by a
signal handler, propagates unchanged.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import constriction
import numpy as np

from .data import MAX_PIXELS

MAGIC = b"RZ"
VERSION = 1
HEADER_SIZE = 16
#: Format version of the hyperprior codec's files (notebook 12) and its header size.
HYPERPRIOR_VERSION = 2
HEADER_SIZE_HYPERPRIOR = 19
#: File name extension of compressed images.
FILE_EXTENSION = ".rcz"
#: Largest |latent| the escape code can carry; the codec clips to it.
LATENT_LIMIT = 2 ** 20
#: Escaped overshoots d + 1 are below 2 * LATENT_LIMIT + 2 <= 2**22, so their bit length is 0..21.
_ESCAPE_LENGTHS = 22
#: Most 32-bit words one stream can hold: what its 3-byte length field counts (64 MiB of payload).
MAX_WORDS = 2 ** 24 - 1
#: Bytes of the largest ``.rcz`` file the format can describe (version 2: two streams at MAX_WORDS each);
#: nothing larger needs to be read.
MAX_FILE_BYTES = max(HEADER_SIZE + 4 * MAX_WORDS, HEADER_SIZE_HYPERPRIOR + 2 * 4 * MAX_WORDS)
#: ``constriction``'s categorical models hold probabilities as 24-bit weights.
_CODER_PRECISION = 24


class BitstreamError(ValueError):
    """A compressed file cannot be decoded: empty, truncated, corrupted, foreign,
    or made by a different model. The message is one line naming the problem."""


# --------------------------------------------------------------------------- tables
@dataclass(frozen=True, eq=False)
class EntropyTables:
    """Integer probability tables for the range coder, one row per latent channel.

    Attributes:
        pmf: (C, L) int32 counts. Row c holds ``support_size[c]`` symbol counts,
            then the escape count, then zeros; the non-zero part is >= 1 and
            sums to ``2**precision``.
        offset: (C,) int32, the smallest latent value lo_c of each support.
        support_size: (C,) int32, number of latent values in each support.
        precision: bits of the counts (sum = 2**precision), 8..24.

    Made by :meth:`course_lib.entropy.FactorizedPrior.export_tables`; saved
    with :meth:`save` as a ``.npz`` beside the weights. Introduced in notebook 05.
    """

    pmf: np.ndarray
    offset: np.ndarray
    support_size: np.ndarray
    precision: int

    @property
    def channels(self) -> int:
        return int(self.pmf.shape[0])

    def validate(self) -> "EntropyTables":
        """Raise ``ValueError`` unless the tables are well formed; return them."""
        pmf, offset, size = self.pmf, self.offset, self.support_size
        if not (isinstance(pmf, np.ndarray) and pmf.dtype == np.int32 and pmf.ndim == 2):
            raise ValueError("tables: pmf must be a 2-D int32 array")
        channels, width = pmf.shape
        for name, a in (("offset", offset), ("support_size", size)):
            if not (isinstance(a, np.ndarray) and a.dtype == np.int32 and a.shape == (channels,)):
                raise ValueError(f"tables: {name} must be an int32 array of shape ({channels},)")
        if not 8 <= int(self.precision) <= 24:
            raise ValueError(f"tables: precision {self.precision} is outside 8..24 bits")
        if channels < 1 or np.any(size < 1) or np.any(size + 1 > width):
            raise ValueError("tables: support sizes must be >= 1 and fit the pmf rows")
        if np.any(np.abs(offset.astype(np.int64)) > LATENT_LIMIT):
            raise ValueError(f"tables: offsets must lie within +-{LATENT_LIMIT}")
        used = np.arange(width)[None, :] <= size[:, None]
        if np.any(pmf[used] < 1) or np.any(pmf[~used] != 0):
            raise ValueError("tables: every symbol needs a count >= 1 and padding must be 0")
        if np.any(pmf.astype(np.int64).sum(axis=1) != 2 ** int(self.precision)):
            raise ValueError(f"tables: every row must sum to 2**{self.precision}")
        return self

    def fingerprint(self) -> bytes:
        """SHA-256 (32 bytes) of the tables' content; its first byte is the model id."""
        h = hashlib.sha256(b"course_lib entropy tables v1")
        h.update(np.asarray([self.precision, *self.pmf.shape], "<i8").tobytes())
        for a in (self.pmf, self.offset, self.support_size):
            h.update(np.ascontiguousarray(a, "<i4").tobytes())
        return h.digest()

    @property
    def model_id(self) -> int:
        """One byte that identifies the tables (stored in each file's header)."""
        return self.fingerprint()[0]

    def save(self, path) -> Path:
        """Write the tables to a ``.npz`` file (int32 arrays, no pickles)."""
        path = Path(path)
        np.savez(path, pmf=self.pmf, offset=self.offset, support_size=self.support_size,
                 precision=np.int32(self.precision))
        return path

    @classmethod
    def load(cls, path) -> "EntropyTables":
        """Read and validate tables written by :meth:`save` (``ValueError`` if malformed)."""
        with np.load(path, allow_pickle=False) as f:
            missing = {"pmf", "offset", "support_size", "precision"} - set(f.files)
            if missing:
                raise ValueError(f"{path}: not an entropy-table file (missing {sorted(missing)})")
            tables = cls(pmf=f["pmf"], offset=f["offset"], support_size=f["support_size"],
                         precision=int(f["precision"]))
        return tables.validate()

    def __eq__(self, other) -> bool:
        return isinstance(other, EntropyTables) and self.fingerprint() == other.fingerprint()

    def ideal_bits(self, values: np.ndarray) -> float:
        """Information content in bits of integer latents (C, ...) under the tables,
        escape fields included: what the range coder produces, give or take a
        few bytes of termination."""
        symbols, below, overshoot = self._split(values)
        bits = 0.0
        for c in range(self.channels):
            counts = self.pmf[c, :self.support_size[c] + 1].astype(np.float64)
            bits += float(np.sum(self.precision - np.log2(counts[symbols[c]])))
        lengths, _ = _bit_length_and_low_bits(overshoot + 1)
        return bits + float(np.sum(1 + np.log2(_ESCAPE_LENGTHS) + lengths))

    def minimum_bits(self) -> np.ndarray:
        """(C,) float64: the fewest bits the range coder spends on one value coded with each row.

        -log2 of the row's largest probability as the coder holds it:
        ``constriction`` rescales the counts to 24-bit weights (``perfect=False``),
        which gives a symbol at most 2 units of 2**-24 above its share (we allow
        3, for rounding) and leaves every other symbol at least 1 unit. The
        coder's output is never shorter than the information content under
        its own probabilities, so n values coded with rows r_i need at least
        sum_i minimum_bits()[r_i] bits of payload (escape fields only add).
        Used to refuse files whose payload cannot hold the image they announce.
        Introduced in notebook 05.
        """
        unit = 2.0 ** -_CODER_PRECISION
        largest = self.pmf.max(axis=1).astype(np.float64) / 2.0 ** int(self.precision)
        others = self.support_size.astype(np.float64)  # symbols besides the largest (escape included)
        return -np.log2(np.minimum(largest + 3 * unit, 1.0 - others * unit))

    def _split(self, values: np.ndarray):
        """Latents (C, ...) -> table symbols (C, N) int32, and for the escaped
        latents (channel by channel, in raster order) whether each lies below
        its support and how far beyond the support's edge it lies (d >= 0)."""
        v = np.asarray(values)
        if v.ndim < 1 or v.shape[0] != self.channels:
            raise ValueError(f"latents must have {self.channels} channels first, got shape {v.shape}")
        count = v[0].size
        symbols, below, overshoot = _split_rows(self, v.reshape(-1), _channel_rows(self, count))
        return symbols.reshape(self.channels, count), below, overshoot

    def model(self, channel: int):
        """The ``constriction`` categorical model of one channel (symbols 0..size, size = escape)."""
        counts = self.pmf[channel, :self.support_size[channel] + 1]
        # Integer-valued float64 probabilities: constriction rescales them to its
        # own fixed point exactly the same way on every machine.
        return constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)


def _bit_length_and_low_bits(v: np.ndarray):
    """For integers v >= 1: n = floor(log2 v) and v - 2**n (its n low bits)."""
    v = np.asarray(v, np.int64)
    n = np.zeros(v.shape, np.int64)
    for bit in range(_ESCAPE_LENGTHS):  # exact integer bit length, no float log2
        n += (v >> (bit + 1)) > 0
    return n, v - (np.int64(1) << n)


# --------------------------------------------------------------------------- range coding
def _split_rows(tables: EntropyTables, values: np.ndarray, rows: np.ndarray):
    """Integers (N,) coded with table rows (N,) -> symbols (N,), and for the escaped ones
    (in coding order) whether each lies below its support and by how much it overshoots."""
    v = np.asarray(values)
    if not np.issubdtype(v.dtype, np.integer):
        raise ValueError(f"latents must be integers, got dtype {v.dtype}")
    v = v.astype(np.int64)
    if v.size and np.abs(v).max() > LATENT_LIMIT:
        raise ValueError(f"latents must lie within +-{LATENT_LIMIT}")
    index = v - tables.offset[rows]
    size = tables.support_size[rows].astype(np.int64)
    outside = (index < 0) | (index >= size)
    symbols = np.where(outside, size, index).astype(np.int32)
    index, size = index[outside], size[outside]
    below = index < 0
    return symbols, below, np.where(below, -index - 1, index - size)


def _coding_order(rows: np.ndarray, row_count: int):
    """Positions grouped by table row (row 0 first, raster order within a row) and each row's count."""
    rows = np.asarray(rows).ravel()
    if rows.size and (rows.min() < 0 or rows.max() >= row_count):
        raise ValueError(f"table rows must lie in 0..{row_count - 1}")
    return np.argsort(rows, kind="stable"), np.bincount(rows, minlength=row_count)


def _encode_fields(tables: EntropyTables, counts: np.ndarray, symbols: np.ndarray, below: np.ndarray,
                   lengths: np.ndarray, low_bits: np.ndarray) -> np.ndarray:
    """The range coder's words for symbols in coding order (``counts[r]`` of them with row r),
    then the escape fields: direction bits, bit lengths, low bits (those of length > 0)."""
    encoder = constriction.stream.queue.RangeEncoder()
    start = 0
    for row, count in enumerate(counts):
        if count:
            encoder.encode(symbols[start:start + count].astype(np.int32, copy=False), tables.model(row))
        start += count
    if below.size:
        encoder.encode(below.astype(np.int32), constriction.stream.model.Uniform(2))
        encoder.encode(lengths.astype(np.int32), constriction.stream.model.Uniform(_ESCAPE_LENGTHS))
        has_bits = lengths > 0  # a uniform model needs at least 2 symbols
        encoder.encode(low_bits[has_bits].astype(np.int32), constriction.stream.model.Uniform(),
                       (np.int64(1) << lengths[has_bits]).astype(np.int32))
    return encoder.get_compressed()


def encode_symbols(values: np.ndarray, rows: np.ndarray, tables: EntropyTables) -> np.ndarray:
    """Range-code integers, each with the table row named beside it; returns uint32 words.

    ``values`` and ``rows`` have the same shape; ``rows`` are indices into
    ``tables`` (a channel for the factorized prior, a scale for the Gaussian
    conditional of notebook 12). The decoder must know ``rows`` before it
    decodes. Symbols are coded row by row (raster order within a row), then
    the escape fields of all values outside their supports, in the same order.
    """
    values, rows = np.asarray(values).ravel(), np.asarray(rows).ravel()
    if values.shape != rows.shape:
        raise ValueError(f"values and rows differ in size: {values.size} vs {rows.size}")
    order, counts = _coding_order(rows, tables.channels)
    symbols, below, overshoot = _split_rows(tables, values[order], rows[order])
    lengths, low_bits = _bit_length_and_low_bits(overshoot + 1)
    return _encode_fields(tables, counts, symbols, below, lengths, low_bits)


def check_payload_holds(words: int, bits: float, what: str) -> None:
    """Raise :class:`BitstreamError` unless ``words`` 32-bit words can hold ``bits``
    bits, a lower bound from :meth:`EntropyTables.minimum_bits` (one word of slack
    for rounding). ``what`` names the values in the message. Introduced in notebook 05."""
    if 32 * (int(words) + 1) < bits:
        raise BitstreamError(f"payload too short: {4 * int(words)} bytes cannot hold {what}, "
                             f"which need at least {int(bits // 8):,} bytes under this model's tables")


def _is_coder_error(exc: BaseException) -> bool:
    """Whether an exception is ``constriction``'s way of saying the data are bad: an
    ``AssertionError`` or ``ValueError`` it raises, or a Rust panic (pyo3 raises it as
    ``pyo3_runtime.PanicException``, a ``BaseException`` that cannot be imported by name)."""
    kind = type(exc)
    return (isinstance(exc, (AssertionError, ValueError))
            or (kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"))


def _decode(decoder, model, amount):
    """``decoder.decode(model, amount)``; only the coder's own errors become :class:`BitstreamError`."""
    try:
        return decoder.decode(model, amount)
    except BaseException as exc:
        if not _is_coder_error(exc):
            raise  # KeyboardInterrupt, MemoryError, a signal handler's TimeoutError: not ours to relabel
        raise BitstreamError(f"corrupted payload: the range decoder failed ({type(exc).__name__})") from None


def decode_symbols(words: np.ndarray, rows: np.ndarray, tables: EntropyTables) -> np.ndarray:
    """Inverse of :func:`encode_symbols`: uint32 words and the rows -> int32 values, shaped like ``rows``.

    Raises :class:`BitstreamError` unless ``words`` are exactly what
    :func:`encode_symbols` makes of the values they decode to: a payload too
    short for the rows (checked before decoding), words the decoder cannot
    read, trailing or missing words, or any other words the encoder cannot
    produce (the decoded values are coded again and compared word for word).
    """
    words = np.ascontiguousarray(words, np.uint32)
    rows = np.asarray(rows)
    order, counts = _coding_order(rows, tables.channels)
    check_payload_holds(words.size, float(counts @ tables.minimum_bits()), f"{rows.size:,} values")
    flat_rows = rows.ravel()[order]
    decoder = constriction.stream.queue.RangeDecoder(words)
    symbols = np.empty(flat_rows.size, np.int32)
    start = 0
    for row, count in enumerate(counts):
        if count:
            symbols[start:start + count] = _decode(decoder, tables.model(row), int(count))
        start += count
    escaped = symbols == tables.support_size[flat_rows]
    values = symbols + tables.offset[flat_rows]
    k = int(escaped.sum())
    below, lengths, low_bits = np.zeros(0, bool), np.zeros(0, np.int64), np.zeros(0, np.int64)
    if k:
        below = np.asarray(_decode(decoder, constriction.stream.model.Uniform(2), k), bool)
        lengths = np.asarray(_decode(decoder, constriction.stream.model.Uniform(_ESCAPE_LENGTHS), k), np.int64)
        low_bits = np.zeros(k, np.int64)
        has_bits = lengths > 0
        if has_bits.any():
            low_bits[has_bits] = _decode(decoder, constriction.stream.model.Uniform(),
                                         (np.int64(1) << lengths[has_bits]).astype(np.int32))
        overshoot = (np.int64(1) << lengths) + low_bits - 1
        escaped_rows = flat_rows[escaped]
        lo = tables.offset[escaped_rows].astype(np.int64)
        hi = lo + tables.support_size[escaped_rows] - 1
        values[escaped] = np.where(below, lo - 1 - overshoot, hi + 1 + overshoot)
    if values.size and np.abs(values).max() > LATENT_LIMIT:
        raise BitstreamError(f"corrupted payload: a latent lies beyond +-{LATENT_LIMIT}")
    coded = _encode_fields(tables, counts, symbols, below, lengths, low_bits)
    if coded.size < words.size:
        raise BitstreamError(f"corrupted payload: {words.size - coded.size} words after the end of the coded data")
    if coded.size > words.size:
        raise BitstreamError(f"corrupted payload: the coded data end {coded.size - words.size} words "
                             "after the payload (missing words)")
    if not np.array_equal(coded, words):
        raise BitstreamError("corrupted payload: its words are not what the encoder makes of the values they decode to")
    out = np.empty(flat_rows.size, np.int32)
    out[order] = values
    return out.reshape(rows.shape)


def _channel_rows(tables: EntropyTables, count: int) -> np.ndarray:
    return np.repeat(np.arange(tables.channels, dtype=np.int64), count)


def encode_latents(values: np.ndarray, tables: EntropyTables) -> np.ndarray:
    """Range-code integer latents (C, ...) with one table row per channel; returns uint32 words.

    Channel c's symbols go first, channel by channel, then the escape fields
    of all latents outside their supports (:func:`encode_symbols` with row =
    channel). Introduced in notebook 05.
    """
    values = np.asarray(values)
    if values.ndim < 1 or values.shape[0] != tables.channels:
        raise ValueError(f"latents must have {tables.channels} channels first, got shape {values.shape}")
    return encode_symbols(values, _channel_rows(tables, values[0].size), tables)


def decode_latents(words: np.ndarray, tables: EntropyTables, count: int) -> np.ndarray:
    """Inverse of :func:`encode_latents`: uint32 words -> int32 latents (C, count).

    Raises :class:`BitstreamError` unless the words are exactly what
    :func:`encode_latents` produces (see :func:`decode_symbols`); a payload
    too short for ``count`` positions is refused before anything of that size
    is allocated.
    """
    check_payload_holds(np.size(words), count * float(tables.minimum_bits().sum()),
                        f"{tables.channels} x {count:,} latents")
    return decode_symbols(words, _channel_rows(tables, count), tables).reshape(tables.channels, count)


# --------------------------------------------------------------------------- file format
@dataclass(frozen=True)
class Header:
    """The fields of a ``.rcz`` header (see the module docstring).

    ``words``: payload words (version 1) or words of y's stream (version 2);
    ``side_words``: words of z's stream (version 2 only).
    """

    model_id: int
    rate_byte: int
    height: int
    width: int
    words: int = 0
    version: int = VERSION
    side_words: int = 0

    @property
    def size(self) -> int:
        """Header bytes, CRC included."""
        return HEADER_SIZE if self.version == VERSION else HEADER_SIZE_HYPERPRIOR

    def to_bytes(self) -> bytes:
        """The header without its CRC (bytes 0..11, or 0..14 in version 2)."""
        head = (MAGIC + bytes([self.version, self.model_id, self.rate_byte])
                + self.height.to_bytes(2, "big") + self.width.to_bytes(2, "big"))
        if self.version == VERSION:
            return head + self.words.to_bytes(3, "big")
        return head + self.side_words.to_bytes(3, "big") + self.words.to_bytes(3, "big")


def _checksum(header: bytes, key: bytes, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(key, zlib.crc32(header)))


def latent_size(height: int, width: int, factor: int = 16) -> tuple[int, int]:
    """Latent grid (h, w) of an image: each side divided by ``factor``, rounded up."""
    return -(-int(height) // factor), -(-int(width) // factor)


def _check_image_fields(height: int, width: int, rate_byte: int) -> None:
    if not (1 <= height <= 65535 and 1 <= width <= 65535 and height * width <= MAX_PIXELS):
        raise ValueError(f"image size {height}x{width} is outside what the format stores "
                         f"(sides 1..65535, at most {MAX_PIXELS / 1e6:.0f} Mpx)")
    if not 0 <= rate_byte <= 255:
        raise ValueError(f"rate byte {rate_byte} is outside 0..255")


def _words(values: np.ndarray, rows: np.ndarray, tables: EntropyTables) -> bytes:
    words = encode_symbols(values, rows, tables)
    if words.size > MAX_WORDS:
        raise ValueError(f"payload of {words.size} words exceeds the format's limit of {MAX_WORDS}")
    return words.astype("<u4").tobytes()


def pack(values: np.ndarray, tables: EntropyTables, height: int, width: int, rate_byte: int = 0) -> bytes:
    """A complete ``.rcz`` file: header + range-coded latents (C, h, w).

    ``height``/``width``: size of the image in pixels (1..65535 each, at most
    ``course_lib.data.MAX_PIXELS`` pixels). Introduced in notebook 05.
    """
    height, width, rate_byte = int(height), int(width), int(rate_byte)
    _check_image_fields(height, width, rate_byte)
    expected = (tables.channels, *latent_size(height, width))
    if np.shape(values) != expected:
        raise ValueError(f"latents of a {height}x{width} image must have shape {expected}, got {np.shape(values)}")
    payload = _words(values, _channel_rows(tables, int(np.prod(expected[1:]))), tables)
    header = Header(tables.model_id, rate_byte, height, width, len(payload) // 4).to_bytes()
    crc = _checksum(header, tables.fingerprint(), payload)
    return header + crc.to_bytes(4, "big") + payload


def pack_hyperprior(side: np.ndarray, side_tables: EntropyTables, residuals: np.ndarray, rows: np.ndarray,
                    scale_tables: EntropyTables, key: bytes, height: int, width: int, rate_byte: int = 0) -> bytes:
    """A complete ``.rcz`` version-2 file: header + z's stream + y's stream (notebook 12).

    ``side``: z_hat (K, h', w') coded with ``side_tables`` (one row per channel);
    ``residuals``: round(y - mu) (M, h, w) coded with ``scale_tables`` at the
    given ``rows`` (same shape: each latent's scale index, which the decoder
    recomputes from z_hat); ``key``: the model's 32-byte fingerprint (its
    first byte is the header's model id; all of it enters the CRC).
    """
    height, width, rate_byte = int(height), int(width), int(rate_byte)
    _check_image_fields(height, width, rate_byte)
    if np.shape(residuals) != np.shape(rows):
        raise ValueError(f"residuals {np.shape(residuals)} and rows {np.shape(rows)} differ in shape")
    side = np.asarray(side)
    if side.ndim != 3 or side.shape[0] != side_tables.channels:
        raise ValueError(f"z must have shape ({side_tables.channels}, h, w), got {side.shape}")
    side_payload = _words(side, _channel_rows(side_tables, side[0].size), side_tables)
    payload = _words(residuals, rows, scale_tables)
    header = Header(key[0], rate_byte, height, width, len(payload) // 4, HYPERPRIOR_VERSION,
                    len(side_payload) // 4).to_bytes()
    body = side_payload + payload
    return header + _checksum(header, key, body).to_bytes(4, "big") + body


def _check_max_pixels(max_pixels) -> int:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    return int(max_pixels)


def read_header(data: bytes, max_pixels: int = MAX_PIXELS) -> Header:
    """Parse and sanity-check a header (format version 1 or 2) without decoding anything.

    Checks the magic bytes, the version, the image size (at most
    ``max_pixels`` pixels: the caller's limit, by default the largest image
    the encoder accepts) and that the file holds exactly the announced
    payload. Raises :class:`BitstreamError`.
    """
    max_pixels = _check_max_pixels(max_pixels)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) == 0:
        raise BitstreamError("empty file")
    if data[:2] != MAGIC[:len(data[:2])]:
        raise BitstreamError("not a .rcz file (wrong magic bytes)")
    if len(data) < 3:
        raise BitstreamError(f"truncated file: {len(data)} bytes, shorter than the {HEADER_SIZE}-byte header")
    version = data[2]
    if version not in (VERSION, HYPERPRIOR_VERSION):
        raise BitstreamError(f"unsupported format version {version} "
                             f"(this library reads versions {VERSION} and {HYPERPRIOR_VERSION})")
    size = HEADER_SIZE if version == VERSION else HEADER_SIZE_HYPERPRIOR
    if len(data) < size:
        raise BitstreamError(f"truncated file: {len(data)} bytes, shorter than the {size}-byte header")
    height, width = int.from_bytes(data[5:7], "big"), int.from_bytes(data[7:9], "big")
    if height < 1 or width < 1 or height * width > MAX_PIXELS:
        raise BitstreamError(f"invalid image size {height}x{width} in the header")
    if height * width > max_pixels:
        raise BitstreamError(f"image of {height}x{width} = {height * width:,} pixels exceeds the limit "
                             f"max_pixels={max_pixels:,}")
    if version == VERSION:
        side_words, words = 0, int.from_bytes(data[9:12], "big")
    else:
        side_words, words = int.from_bytes(data[9:12], "big"), int.from_bytes(data[12:15], "big")
    payload_bytes = len(data) - size
    announced = 4 * (words + side_words)
    if payload_bytes < announced:
        raise BitstreamError(f"truncated file: header announces {announced} payload bytes, file holds {payload_bytes}")
    if payload_bytes > announced:
        raise BitstreamError(f"{payload_bytes - announced} unexpected bytes after the payload")
    return Header(model_id=data[3], rate_byte=data[4], height=height, width=width, words=words,
                  version=version, side_words=side_words)


def _verify(data: bytes, header: Header, key: bytes) -> None:
    if header.model_id != key[0]:
        raise BitstreamError(f"file was made by model id {header.model_id}, this codec's model id is {key[0]}")
    crc_at = header.size - 4
    if _checksum(data[:crc_at], key, data[header.size:]) != int.from_bytes(data[crc_at:header.size], "big"):
        raise BitstreamError("checksum mismatch: the file is corrupted (or made by a different model)")


def _check_grid_fits(header: Header, tables: EntropyTables, words: int, factor: int, name: str) -> tuple[int, int]:
    """The (h, w) grid of latents of the header's image at ``factor`` pixels per latent,
    once :func:`check_payload_holds` says ``words`` can hold its C x h x w values."""
    h, w = latent_size(header.height, header.width, factor)
    check_payload_holds(words, h * w * float(tables.minimum_bits().sum()),
                        f"the {tables.channels}x{h}x{w} {name} of a {header.height}x{header.width} image")
    return h, w


def check_sizes(data: bytes, tables: EntropyTables, max_pixels: int = MAX_PIXELS) -> Header:
    """The cheap checks of :func:`unpack` (version 1) or :func:`unpack_hyperprior_side` (version 2), without the
    checksum and without decoding: the header's fields, ``max_pixels``, and whether the payload (version 1) or z's
    stream (version 2, ``tables`` being z's) can hold the latents it announces (:func:`check_payload_holds`).

    Needs only the integer tables, so a caller can refuse a decompression bomb before loading the rest of the
    model (the command line does so before importing TensorFlow). Returns the header; raises :class:`BitstreamError`.
    """
    header = read_header(data, max_pixels)
    if header.version == VERSION:
        _check_grid_fits(header, tables, header.words, 16, "latents")
    else:
        _check_grid_fits(header, tables, header.side_words, 64, "hyper-latents z")
    return header


def unpack(data: bytes, tables: EntropyTables, factor: int = 16,
           max_pixels: int = MAX_PIXELS) -> tuple[Header, np.ndarray]:
    """Read a ``.rcz`` file made with ``tables``: returns (header, latents (C, h, w) int32).

    ``max_pixels``: the largest image (height x width) to decode; larger ones
    are refused before anything is allocated (see the module docstring).
    Raises :class:`BitstreamError` for anything but an intact file from the same model.
    """
    header = read_header(data, max_pixels)
    if header.version != VERSION:
        raise BitstreamError(f"file is format version {header.version} (a hyperprior codec's file); "
                             "this factorized codec reads version 1")
    data = bytes(data)
    _verify(data, header, tables.fingerprint())
    h, w = _check_grid_fits(header, tables, header.words, factor, "latents")
    words = np.frombuffer(data[HEADER_SIZE:], "<u4").astype(np.uint32)
    values = decode_latents(words, tables, h * w)
    return header, values.reshape(tables.channels, h, w)


def unpack_hyperprior_side(data: bytes, side_tables: EntropyTables, key: bytes,
                           factor: int = 64, max_pixels: int = MAX_PIXELS) -> tuple[Header, np.ndarray]:
    """First half of reading a version-2 file: check it whole, decode z_hat (K, h', w') int32.

    ``factor``: pixels per z position along each side; ``max_pixels`` as in
    :func:`unpack`. Raises :class:`BitstreamError`.
    """
    header = read_header(data, max_pixels)
    if header.version != HYPERPRIOR_VERSION:
        raise BitstreamError(f"file is format version {header.version} (a factorized codec's file); "
                             f"this hyperprior codec reads version {HYPERPRIOR_VERSION}")
    data = bytes(data)
    _verify(data, header, key)
    h, w = _check_grid_fits(header, side_tables, header.side_words, factor, "hyper-latents z")
    start = header.size
    words = np.frombuffer(data[start:start + 4 * header.side_words], "<u4").astype(np.uint32)
    return header, decode_latents(words, side_tables, h * w).reshape(side_tables.channels, h, w)


def unpack_hyperprior_latents(data: bytes, header: Header, rows: np.ndarray,
                              scale_tables: EntropyTables) -> np.ndarray:
    """Second half: y's residuals round(y - mu), shaped like ``rows`` (the scale indices from z_hat).

    Refuses y's stream if it cannot hold the latents with these rows
    (:meth:`EntropyTables.minimum_bits`), before decoding; raises :class:`BitstreamError`.
    """
    rows = np.asarray(rows)
    counts = np.bincount(rows.ravel(), minlength=scale_tables.channels)[:scale_tables.channels]
    check_payload_holds(header.words, float(counts @ scale_tables.minimum_bits()),
                        f"the {'x'.join(map(str, rows.shape))} latents y of a {header.height}x{header.width} image")
    start = header.size + 4 * header.side_words
    words = np.frombuffer(bytes(data)[start:start + 4 * header.words], "<u4").astype(np.uint32)
    return decode_symbols(words, rows, scale_tables)
