"""Fuzz the .rcz decoder with damaged and crafted files: each must decode correctly or raise a one-line BitstreamError.

    python benchmarks/fuzz_bitstream.py --n 20000 [--seed 0] [--versions 1 2] [--time-limit 2] [--memory-limit 64]
                                        [--json docs/results/fuzz_bitstream.json]

Uses the shipped codecs, ``learned_codec`` (format version 1) and
``learned_hyperprior`` (version 2), and a 48 x 64 crop of a course photo;
``--n`` cases are shared between the versions, cycling through the classes:

* damaged, the CRC left as it is (it must catch them): random bytes, random
  bytes behind a valid magic and version, truncations, bit flips, overwritten,
  inserted and deleted bytes;
* crafted, *resealed* (the CRC recomputed with the model's public key, as an
  attacker would): a header field set to an extreme (0, 1, the largest value,
  one off the original, random), a length field changed (in version 2, the
  boundary between z's and y's streams moved), trailing words (zeros, random
  words, up to 400 bytes) or missing words at the end of a stream, random
  payloads, payload bit edits, and memory bombs (a header announcing a huge
  image, 7071 x 7071, 65535 x 65535 ..., over an empty or tiny payload).

Each case ends in one of: a documented error (a one-line ``BitstreamError``),
a correct decode (the original image), a *valid file, other image* (it
decodes to another image and is exactly what the encoder writes for the
values it decodes to: a payload bit edit that happens to give another valid
stream, another valid rate byte, a size on the same latent grid; no checksum
can catch those, since the CRC's key is public), a *silent wrong output*
(another image from a file the encoder could not have written), another
exception (or a multi-line ``BitstreamError``), a crash (a ``BaseException``
that is not an ``Exception``, e.g. a Rust panic getting through; a crash of
the process itself would end this script), a hang (over ``--time-limit``
seconds of the process's CPU time, which other jobs on a shared machine do
not inflate, or 5x that in wall-clock time: a SIGALRM interrupts it where
the platform has one)
or over the memory limit (``--memory-limit`` MiB allocated by Python and
NumPy during the case, traced by ``tracemalloc``).

Prints a table by class and the most frequent error messages (numbers
replaced by #); exits with status 1 if any case is another exception, a
crash, a hang, over the memory limit or a silent wrong output.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import sys
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

DAMAGED = ["random bytes", "random behind magic", "truncated", "bit flips", "byte overwrite",
           "inserted bytes", "deleted bytes"]
CRAFTED = ["header field at an extreme", "length changed", "trailing words", "missing words",
           "random payload", "payload bit edits", "memory bomb"]
OUTCOMES = ["documented error", "correct decode", "valid file, other image", "silent wrong output",
            "other exception", "crash", "hang", "over memory"]
#: Outcomes that fail the run.
FAILURES = ["silent wrong output", "other exception", "crash", "hang", "over memory"]
MODELS = {1: "learned_codec", 2: "learned_hyperprior"}


class Hang(Exception):
    """Raised by the SIGALRM handler when a case runs far past the time limit."""


# --------------------------------------------------------------------------- files
def _layout(data: bytes) -> tuple[int, int]:
    """(CRC offset, header size) for the version byte in ``data`` (version 1's when it is neither)."""
    from course_lib import bitstream

    size = bitstream.HEADER_SIZE_HYPERPRIOR if data[2:3] == bytes([bitstream.HYPERPRIOR_VERSION]) \
        else bitstream.HEADER_SIZE
    return size - 4, size


def reseal(data: bytes, key: bytes) -> bytes:
    """``data`` with its CRC recomputed under ``key``, as a crafted file would carry."""
    from course_lib import bitstream

    crc_at, size = _layout(data)
    if len(data) < size:
        return data
    return data[:crc_at] + bitstream.checksum(data[:crc_at], key, data[size:]).to_bytes(4, "big") + data[size:]


def build(header, streams: list[bytes], key: bytes) -> bytes:
    """A resealed file of ``header`` (lengths taken from the streams: [payload] or [z, y])."""
    import dataclasses

    if header.version == 1:
        header = dataclasses.replace(header, words=len(streams[0]) // 4)
    else:
        header = dataclasses.replace(header, side_words=len(streams[0]) // 4, words=len(streams[1]) // 4)
    return reseal(header.to_bytes() + bytes(4) + b"".join(streams), key)


def split_streams(data: bytes) -> tuple:
    """(header, [payload]) of a version-1 file, (header, [z's stream, y's stream]) of a version-2 one."""
    from course_lib import bitstream

    header = bitstream.read_header(data)
    payload = data[header.size:]
    if header.version == 1:
        return header, [payload]
    return header, [payload[:4 * header.side_words], payload[4 * header.side_words:]]


def _extreme(rng, original: int, nbytes: int) -> int:
    top = 256 ** nbytes - 1
    return int(rng.choice([0, 1, top, top - 1, max(0, original - 1), min(top, original + 1),
                           int(rng.integers(0, top + 1))]))


def mutate(kind: str, data: bytes, key: bytes, rng: np.random.Generator) -> bytes:
    """One file of class ``kind`` made from the genuine file ``data`` (crafted classes resealed with ``key``)."""
    from course_lib import bitstream

    b = bytearray(data)
    if kind == "random bytes":
        return rng.bytes(int(rng.integers(0, 80)))
    if kind == "random behind magic":
        return bitstream.MAGIC + data[2:3] + rng.bytes(int(rng.integers(0, 80)))
    if kind == "truncated":
        return data[:int(rng.integers(0, len(data)))]
    if kind == "bit flips":
        for pos in rng.integers(0, 8 * len(b), size=int(rng.integers(1, 9))):
            b[pos // 8] ^= 1 << (pos % 8)
        return bytes(b)
    if kind == "byte overwrite":
        for pos in rng.integers(0, len(b), size=int(rng.integers(1, 4))):
            b[pos] = (b[pos] + int(rng.integers(1, 256))) % 256  # always a change
        return bytes(b)
    if kind == "inserted bytes":
        pos = int(rng.integers(0, len(b) + 1))
        return bytes(b[:pos]) + rng.bytes(int(rng.integers(1, 9))) + bytes(b[pos:])
    if kind == "deleted bytes":
        pos = int(rng.integers(0, len(b)))
        return bytes(b[:pos]) + bytes(b[pos + int(rng.integers(1, 9)):])

    header, streams = split_streams(data)
    if kind == "header field at an extreme":
        fields = {"version": (2, 1), "model id": (3, 1), "rate byte": (4, 1), "height": (5, 2), "width": (7, 2)}
        fields.update({"words": (9, 3)} if header.version == 1 else {"side words": (9, 3), "words": (12, 3)})
        offset, nbytes = list(fields.values())[int(rng.integers(0, len(fields)))]
        value = _extreme(rng, int.from_bytes(b[offset:offset + nbytes], "big"), nbytes)
        b[offset:offset + nbytes] = value.to_bytes(nbytes, "big")
        return reseal(bytes(b), key)
    if kind == "length changed":  # a length field alone (version 2: often the boundary between the streams)
        if header.version == 2 and rng.random() < 0.7:
            shift = int(rng.integers(-3, 4)) or 1
            side = min(max(header.side_words + shift, 0), header.side_words + header.words)
            b[9:12], b[12:15] = side.to_bytes(3, "big"), (header.side_words + header.words - side).to_bytes(3, "big")
        else:
            offset = 9 if header.version == 1 or rng.random() < 0.5 else 12
            old = int.from_bytes(b[offset:offset + 3], "big")
            b[offset:offset + 3] = max(0, old + (int(rng.integers(-3, 4)) or 1)).to_bytes(3, "big")
        return reseal(bytes(b), key)
    which = int(rng.integers(0, len(streams)))
    if kind == "trailing words":
        count = int(rng.choice([1, 1, 2, 3, 100]))
        extra = bytes(4 * count) if rng.random() < 0.4 else rng.bytes(4 * count)
        streams[which] = streams[which] + extra
        return build(header, streams, key)
    if kind == "missing words":
        streams[which] = streams[which][:max(0, len(streams[which]) - 4 * int(rng.integers(1, 4)))]
        return build(header, streams, key)
    if kind == "random payload":
        streams = [rng.bytes(4 * int(rng.integers(0, len(s) // 2 + 3))) for s in streams]
        return build(header, streams, key)
    if kind == "payload bit edits":
        start = header.size
        for pos in rng.integers(8 * start, 8 * len(b), size=int(rng.integers(1, 9))):
            b[pos // 8] ^= 1 << (pos % 8)
        return reseal(bytes(b), key)
    if kind == "memory bomb":
        import dataclasses

        side = [(7071, 7071), (4096, 4096), (65535, 65535), (65535, 1), (1, 65535),
                (int(rng.integers(1, 65536)), int(rng.integers(1, 65536)))][int(rng.integers(0, 6))]
        header = dataclasses.replace(header, height=side[0], width=side[1])
        if rng.random() < 0.5:
            streams = [rng.bytes(4 * int(rng.integers(0, 17))) for _ in streams]
        return build(header, streams, key)
    raise ValueError(f"unknown mutation class {kind!r}")


def repack(codec, data: bytes) -> bytes:
    """What the encoder writes for the values ``data`` decodes to, under ``data``'s header: equal to
    ``data`` exactly when ``data`` is a valid file."""
    from course_lib import bitstream

    if data[2] == 1:
        header, latents = bitstream.unpack(data, codec.tables)
        return bitstream.pack(latents, codec.tables, header.height, header.width, header.rate_byte)
    from course_lib.hyperprior import HYPER_DOWNSAMPLING, scale_indices

    key = codec.model_key
    header, z = bitstream.unpack_hyperprior_side(data, codec.tables, key, 16 * HYPER_DOWNSAMPLING)
    _, scales = codec.side_information(np.transpose(z, (1, 2, 0)), header.height, header.width)
    rows = np.transpose(scale_indices(scales), (2, 0, 1))
    residuals = bitstream.unpack_hyperprior_latents(data, header, rows, codec.scale_tables)
    return bitstream.pack_hyperprior(z, codec.tables, residuals, rows, codec.scale_tables, key,
                                     header.height, header.width, header.rate_byte)


# --------------------------------------------------------------------------- one case
def _on_alarm(signum, frame):
    raise Hang()


def classify(codec, mutated: bytes, original: bytes, reference: np.ndarray, damaged: bool,
             time_limit: float, memory_limit: int, messages: collections.Counter) -> str:
    """Decode ``mutated`` under the time and memory limits and name the outcome (one of OUTCOMES)."""
    from course_lib.bitstream import BitstreamError

    alarm = hasattr(signal, "setitimer") and signal.getsignal(signal.SIGALRM) is _on_alarm
    tracemalloc.reset_peak()
    start, wall_start = time.process_time(), time.perf_counter()
    if alarm:
        signal.setitimer(signal.ITIMER_REAL, 5 * time_limit)
    try:
        image = codec.decompress(mutated)
    except Hang:
        return "hang"
    except BitstreamError as exc:
        message = str(exc)
        messages[re.sub(r"\d[\d,]*", "#", message)] += 1
        outcome = "documented error" if "\n" not in message else "other exception"
    except KeyboardInterrupt:
        raise
    except Exception:  # noqa: BLE001 - the point is to catch anything
        outcome = "other exception"
    except BaseException:  # noqa: BLE001 - a Rust panic, SystemExit ...
        outcome = "crash"
    else:
        if image.shape == reference.shape and np.array_equal(image, reference):
            outcome = "correct decode"
        elif image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            outcome = "other exception"
        elif not damaged and repack(codec, mutated) == mutated:
            outcome = "valid file, other image"
        else:
            outcome = "silent wrong output"
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
    if time.process_time() - start > time_limit or time.perf_counter() - wall_start > 5 * time_limit:
        return "hang"
    if tracemalloc.get_traced_memory()[1] > memory_limit * 2 ** 20 and outcome != "correct decode":
        return "over memory"
    return outcome


def fuzz(n: int, seed: int = 0, versions=(1, 2), time_limit: float = 2.0, memory_limit: int = 64,
         image=None) -> tuple[dict, collections.Counter, float]:
    """Run ``n`` cases shared between the versions; returns ({(version, class): Counter of outcomes},
    Counter of error messages, seconds)."""
    from course_lib.models import load_codec
    from course_lib.data import course_photo

    image = course_photo("astronaut")[200:248, 180:244] if image is None else image
    rng = np.random.default_rng(seed)
    table = collections.defaultdict(collections.Counter)
    messages = collections.Counter()
    setups = []
    for version in versions:
        codec = load_codec(MODELS[version])
        data = codec.compress(image, 1)
        key = codec.model_key if version == 2 else codec.tables.fingerprint()
        setups.append((version, codec, data, key, codec.decompress(data)))
    kinds = DAMAGED + CRAFTED
    import threading

    can_alarm = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, _on_alarm) if can_alarm else None
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        for i in range(n):
            version, codec, data, key, reference = setups[i % len(setups)]
            kind = kinds[(i // len(setups)) % len(kinds)]
            mutated = mutate(kind, data, key, rng)
            if mutated == data:
                outcome = "correct decode"
            else:
                outcome = classify(codec, mutated, data, reference, kind in DAMAGED, time_limit, memory_limit,
                                   messages)
            table[(version, kind)][outcome] += 1
    finally:
        if not tracing:
            tracemalloc.stop()
        if previous is not None:
            signal.signal(signal.SIGALRM, previous)
    return dict(table), messages, time.perf_counter() - start


def format_table(table: dict) -> str:
    """The table: class / cases / one column per outcome, by version, with a total row."""
    short = ["errors", "correct", "valid,other", "silent wrong", "other exc", "crashes", "hangs", "memory"]
    lines = [f"{'v':>2} {'class':<28}{'cases':>7}" + "".join(f"{s:>13}" for s in short)]
    total = collections.Counter()
    for (version, kind), counts in sorted(table.items(), key=lambda item: (item[0][0], (DAMAGED + CRAFTED).index(
            item[0][1]))):
        total.update(counts)
        lines.append(f"{version:>2} {kind:<28}{sum(counts.values()):>7}"
                     + "".join(f"{counts[o]:>13}" for o in OUTCOMES))
    lines.append(f"{'':>2} {'all':<28}{sum(total.values()):>7}" + "".join(f"{total[o]:>13}" for o in OUTCOMES))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="number of files, shared by the versions (default 20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--versions", type=int, nargs="+", default=[1, 2], choices=[1, 2],
                        help="format versions: 1 = learned_codec, 2 = learned_hyperprior (default both)")
    parser.add_argument("--time-limit", type=float, default=2.0,
                        help="CPU seconds a case may take, 5x that in wall-clock time (default 2)")
    parser.add_argument("--memory-limit", type=int, default=64,
                        help="MiB a refused case may allocate in Python and NumPy (default 64)")
    parser.add_argument("--json", help="also write the table here (the README quotes docs/results/fuzz_bitstream.json)")
    args = parser.parse_args(argv)

    table, messages, seconds = fuzz(args.n, args.seed, args.versions, args.time_limit, args.memory_limit)
    print(f"{args.n} files, format version(s) {' and '.join(map(str, args.versions))} "
          f"({', '.join(MODELS[v] for v in args.versions)}), seed {args.seed}: {seconds:.1f} s "
          f"({1e3 * seconds / max(args.n, 1):.1f} ms each); limits {args.time_limit:g} s and "
          f"{args.memory_limit} MiB per case\n")
    print(format_table(table))
    print("\nvalid,other = valid file, other image: the file is exactly what the encoder writes for the values it "
          "decodes to\n(a payload bit edit that gives another valid stream, another valid rate byte, a size on the "
          "same latent\ngrid). No checksum can catch those: the CRC's key is public. Every other decode to another "
          "image is a\nsilent wrong output.")
    print("\nmost frequent BitstreamError messages:")
    for message, count in messages.most_common(12):
        print(f"  {count:6d}  {message}")
    failures = {o: sum(c[o] for c in table.values()) for o in FAILURES}
    print("\nfailures: " + ", ".join(f"{o} {n}" for o, n in failures.items()))
    if args.json:
        rows = [{"version": version, "class": kind, **{o: counts[o] for o in OUTCOMES}}
                for (version, kind), counts in sorted(table.items())]
        totals = {o: sum(row[o] for row in rows) for o in OUTCOMES}
        record = {"command": "python benchmarks/fuzz_bitstream.py " + " ".join(argv if argv is not None
                                                                              else sys.argv[1:]),
                  "cases": args.n, "seconds": round(seconds, 1), "outcomes": list(OUTCOMES), "totals": totals,
                  "rows": rows}
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return 1 if any(failures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
