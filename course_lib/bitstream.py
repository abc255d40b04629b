"""Bits on disk: the ``.rcz`` file format around the range coder's words (notebook 05).

The integer latents y_hat (C, h, w) become 32-bit words with the range coder
of :mod:`course_lib.range_coder` (one integer table row per channel,
:class:`EntropyTables`, escapes for values outside the tables); this module
wraps those words in a checked file and reads them back. The coder's names
(``EntropyTables``, ``BitstreamError``, ``encode_latents``, ...) are
re-exported here, so ``bitstream`` stays the one place notebooks go for bits.

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

import zlib
from dataclasses import dataclass

import numpy as np

from .data import MAX_PIXELS
from .range_coder import (LATENT_LIMIT, BitstreamError, EntropyTables, channel_rows, check_payload_holds,
                          decode_latents, decode_symbols, encode_latents, encode_symbols)

__all__ = ["MAGIC", "VERSION", "HEADER_SIZE", "HYPERPRIOR_VERSION", "HEADER_SIZE_HYPERPRIOR", "FILE_EXTENSION",
           "MAX_WORDS", "MAX_FILE_BYTES", "Header", "checksum", "pack", "unpack", "read_header",
           "check_sizes", "pack_hyperprior", "unpack_hyperprior_side", "unpack_hyperprior_latents",
           # the range coder's names (course_lib.range_coder), re-exported for notebook 05
           "LATENT_LIMIT", "BitstreamError", "EntropyTables", "encode_symbols", "decode_symbols", "encode_latents",
           "decode_latents", "check_payload_holds"]

MAGIC = b"RZ"
VERSION = 1
HEADER_SIZE = 16
#: Format version of the hyperprior codec's files (notebook 12) and its header size.
HYPERPRIOR_VERSION = 2
HEADER_SIZE_HYPERPRIOR = 19
#: File name extension of compressed images.
FILE_EXTENSION = ".rcz"
#: Most 32-bit words one stream can hold: what its 3-byte length field counts (64 MiB of payload).
MAX_WORDS = 2 ** 24 - 1
#: Bytes of the largest ``.rcz`` file the format can describe (version 2: two streams at MAX_WORDS each);
#: nothing larger needs to be read.
MAX_FILE_BYTES = max(HEADER_SIZE + 4 * MAX_WORDS, HEADER_SIZE_HYPERPRIOR + 2 * 4 * MAX_WORDS)


# --------------------------------------------------------------------------- file format
@dataclass(frozen=True)
class Header:
    """The fields of a ``.rcz`` header (see the module docstring).

    ``words``: payload words (version 1) or words of y's stream (version 2);
    ``side_words``: words of z's stream (version 2 only).
    Introduced in notebook 05 (:func:`read_header` returns one).
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


def checksum(header: bytes, key: bytes, payload: bytes) -> int:
    """The CRC-32 a file stores: of its header bytes before the CRC, the model's key (the tables'
    fingerprint, or the hyperprior's model key) and the payload, in that order. Notebook 05
    shows why it covers the header too."""
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
    payload = _words(values, channel_rows(tables, int(np.prod(expected[1:]))), tables)
    header = Header(tables.model_id, rate_byte, height, width, len(payload) // 4).to_bytes()
    crc = checksum(header, tables.fingerprint(), payload)
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
    side_payload = _words(side, channel_rows(side_tables, side[0].size), side_tables)
    payload = _words(residuals, rows, scale_tables)
    header = Header(key[0], rate_byte, height, width, len(payload) // 4, HYPERPRIOR_VERSION,
                    len(side_payload) // 4).to_bytes()
    body = side_payload + payload
    return header + checksum(header, key, body).to_bytes(4, "big") + body


def _check_max_pixels(max_pixels) -> int:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    return int(max_pixels)


def read_header(data: bytes, max_pixels: int = MAX_PIXELS) -> Header:
    """Parse and sanity-check a header (format version 1 or 2) without decoding anything (notebook 05).

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
    if checksum(data[:crc_at], key, data[header.size:]) != int.from_bytes(data[crc_at:header.size], "big"):
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
    """Read a ``.rcz`` file made with ``tables``: returns (header, latents (C, h, w) int32). Notebook 06.

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
    """First half of reading a version-2 file (notebook 12): check it whole, decode z_hat (K, h', w') int32.

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
    """Second half (notebook 12): y's residuals round(y - mu), shaped like ``rows`` (the scale indices from z_hat).

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
