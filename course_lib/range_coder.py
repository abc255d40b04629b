"""Range coding of integer latents with integer tables (notebook 05).

The encoder turns integers (latents y_hat (C, h, w), or the residuals of
notebook 12's hyperprior) into a stream of 32-bit words with ``constriction``'s
range coder (``constriction.stream.queue``), each value with a categorical
model taken from a row of integer tables (:class:`EntropyTables`). Encoder and
decoder read the *same integers*, so they agree bit for bit on any machine;
the floats of the learned prior are never used for coding.

Escapes: each row's table covers a finite support [lo_c, lo_c + size_c - 1]
plus one extra *escape* symbol. A value outside the support is coded as the
escape symbol, and after all symbols the escaped values follow, each as
(direction bit, bit length n of the overshoot d + 1 (uniform over 0..21), the
n low bits of d + 1 (uniform)), an Elias-gamma-like code through
``constriction``'s uniform models. Every integer with |y_hat| <= 2**20 is codable.

Decoding is safe against crafted input: a payload too short for the values it
must hold is refused before decoding (:meth:`EntropyTables.minimum_bits`), and
since ``constriction``'s decoder cannot see where its input ends, the decoded
values are coded again and must reproduce the payload word for word. Only the
coder's own errors (``AssertionError``/``ValueError`` from ``constriction``, or
a Rust panic) become :class:`BitstreamError`; anything else propagates.
The ``.rcz`` file around the words is :mod:`course_lib.bitstream`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import constriction
import numpy as np

__all__ = ["LATENT_LIMIT", "BitstreamError", "EntropyTables", "encode_symbols", "decode_symbols",
           "encode_latents", "decode_latents", "check_payload_holds"]

#: Largest |latent| the escape code can carry; the codec clips to it.
LATENT_LIMIT = 2 ** 20
#: Escaped overshoots d + 1 are below 2 * LATENT_LIMIT + 2 <= 2**22, so their bit length is 0..21.
_ESCAPE_LENGTHS = 22
#: ``constriction``'s categorical models hold probabilities as 24-bit weights.
_CODER_PRECISION = 24


class BitstreamError(ValueError):
    """A compressed file cannot be decoded: empty, truncated, corrupted, foreign,
    or made by a different model. The message is one line naming the problem.
    Introduced in notebook 05."""


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
        symbols, below, overshoot = _split_rows(self, v.reshape(-1), channel_rows(self, count))
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
    """Inverse of :func:`encode_symbols` (notebook 12): uint32 words and the rows -> int32 values, shaped like ``rows``.

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


def channel_rows(tables: EntropyTables, count: int) -> np.ndarray:
    """The table row of each of ``count`` positions in each channel, channel by channel: row = channel."""
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
    return encode_symbols(values, channel_rows(tables, values[0].size), tables)


def decode_latents(words: np.ndarray, tables: EntropyTables, count: int) -> np.ndarray:
    """Inverse of :func:`encode_latents`: uint32 words -> int32 latents (C, count). Introduced in notebook 05.

    Raises :class:`BitstreamError` unless the words are exactly what
    :func:`encode_latents` produces (see :func:`decode_symbols`); a payload
    too short for ``count`` positions is refused before anything of that size
    is allocated.
    """
    check_payload_holds(np.size(words), count * float(tables.minimum_bits().sum()),
                        f"{tables.channels} x {count:,} latents")
    return decode_symbols(words, channel_rows(tables, count), tables).reshape(tables.channels, count)
