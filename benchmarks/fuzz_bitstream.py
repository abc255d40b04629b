"""Fuzz the .rcz decoder: damaged files must raise BitstreamError, nothing else.

    python benchmarks/fuzz_bitstream.py --n 10000 [--seed 0] [--version 2]

Makes a tiny random codec (the decoder path is the same for any weights):
the factorized codec for format version 1, the hyperprior codec of notebook 12
for version 2 (two streams, the boundary between them crafted too);
compresses a small photo crop, then feeds its ``decompress`` with
mutated files: random bytes (some behind valid magic and version), truncations,
bit flips, overwritten bytes, inserted and deleted bytes, and "crafted" files
whose header fields or payload were changed *and* whose CRC was recomputed,
so the range decoder itself sees nonsense. Prints how often each error
message occurred (numbers replaced by #), how many crafted files decoded to
an image (possible: a valid checksum is all a decoder can check), and every
unexpected exception type. Exits with status 1 if any unexpected exception
occurred, or if an uncrafted mutation decoded without an error.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import re
import sys
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def mutations(data: bytes, key: bytes, rng: np.random.Generator):
    """Yield (kind, mutated bytes) forever, cycling through the kinds; ``key`` seals crafted files' CRCs."""
    from course_lib import bitstream

    kinds = ["random", "random behind magic", "truncated", "bit flips", "byte overwrite",
             "inserted bytes", "deleted bytes", "crafted header", "crafted payload"]
    while True:
        for kind in kinds:
            b = bytearray(data)
            if kind == "random":
                out = rng.bytes(int(rng.integers(0, 80)))
            elif kind == "random behind magic":
                out = bitstream.MAGIC + data[2:3] + rng.bytes(int(rng.integers(0, 80)))
            elif kind == "truncated":
                out = data[:int(rng.integers(0, len(data)))]
            elif kind == "bit flips":
                for pos in rng.integers(0, 8 * len(b), size=int(rng.integers(1, 9))):
                    b[pos // 8] ^= 1 << (pos % 8)
                out = bytes(b)
            elif kind == "byte overwrite":
                for pos in rng.integers(0, len(b), size=int(rng.integers(1, 4))):
                    b[pos] = (b[pos] + int(rng.integers(1, 256))) % 256  # always a change
                out = bytes(b)
            elif kind == "inserted bytes":
                pos = int(rng.integers(0, len(b) + 1))
                out = bytes(b[:pos]) + rng.bytes(int(rng.integers(1, 9))) + bytes(b[pos:])
            elif kind == "deleted bytes":
                pos = int(rng.integers(0, len(b)))
                out = bytes(b[:pos]) + bytes(b[pos + int(rng.integers(1, 9)):])
            else:
                header = bitstream.read_header(data)
                words = np.frombuffer(data[header.size:], "<u4")
                if kind == "crafted header":  # plausible sizes and rate, valid CRC
                    header = dataclasses.replace(header, rate_byte=int(rng.integers(0, 256)),
                                                 height=int(rng.integers(1, 97)), width=int(rng.integers(1, 97)))
                else:  # random payload words (and, in version 2, a random boundary between the streams), valid CRC
                    words = rng.integers(0, 2 ** 32, size=int(rng.integers(0, 2 * len(words) + 2)), dtype=np.uint32)
                    side = int(rng.integers(0, words.size + 1)) if header.version == 2 else 0
                    header = dataclasses.replace(header, words=int(words.size) - side, side_words=side)
                head, payload = header.to_bytes(), words.astype("<u4").tobytes()
                crc = bitstream._checksum(head, key, payload)
                out = head + crc.to_bytes(4, "big") + payload
            yield kind, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of mutated files (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--version", type=int, default=1, choices=[1, 2],
                        help="format version: 1 = factorized codec, 2 = hyperprior codec (notebook 12)")
    args = parser.parse_args(argv)

    import keras

    from course_lib.bitstream import BitstreamError
    from course_lib.codec import LearnedCodec
    from course_lib.data import course_photo

    keras.utils.set_random_seed(args.seed)
    if args.version == 1:
        codec = LearnedCodec(channels=8, latent_channels=12)
    else:
        from course_lib.hyperprior import HyperpriorCodec

        codec = HyperpriorCodec(channels=8, latent_channels=12, hyper_channels=4, residual_stages=(2,))
    codec.build()
    codec.log_gain.assign(np.full(codec.log_gain.shape, np.log(8.0), np.float32))
    tables = codec.update_tables()
    key = tables.fingerprint() if args.version == 1 else codec.model_key
    data = codec.compress(course_photo("astronaut")[200:240, 180:244])
    print(f"original file (format version {data[2]}): {len(data)} bytes; fuzzing {args.n} mutations (seed {args.seed})")

    rng = np.random.default_rng(args.seed)
    messages = collections.Counter()
    decoded = collections.Counter()
    unexpected = collections.Counter()
    examples = {}
    start = time.perf_counter()
    for _, (kind, mutated) in zip(range(args.n), mutations(data, key, rng)):
        try:
            image = codec.decompress(mutated)
        except BitstreamError as exc:
            message = str(exc)
            if "\n" in message:
                unexpected["multi-line BitstreamError"] += 1
            messages[re.sub(r"\d+", "#", message)] += 1
        except Exception as exc:  # noqa: BLE001 - the point is to catch anything
            unexpected[type(exc).__name__] += 1
            examples.setdefault(type(exc).__name__, (kind, traceback.format_exc()))
        else:
            if mutated == data:
                messages["(unchanged file)"] += 1
            else:
                decoded[kind] += 1
                if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                    unexpected["bad image from decoder"] += 1
    seconds = time.perf_counter() - start

    print(f"\n{args.n} files in {seconds:.1f} s ({1e3 * seconds / args.n:.2f} ms each)\n")
    print("BitstreamError messages:")
    for message, count in messages.most_common():
        print(f"  {count:6d}  {message}")
    print("\ndecoded to an image (only crafted files with a recomputed CRC may):")
    for kind, count in decoded.most_common() or [("none", 0)]:
        print(f"  {count:6d}  {kind}")
    print("\nunexpected exceptions:")
    for name, count in unexpected.most_common() or [("none", 0)]:
        print(f"  {count:6d}  {name}")
    for name, (kind, trace) in examples.items():
        print(f"\nfirst {name} ({kind}):\n{trace}")
    uncrafted_decoded = sum(count for kind, count in decoded.items() if not kind.startswith("crafted"))
    return 1 if unexpected or uncrafted_decoded else 0


if __name__ == "__main__":
    sys.exit(main())
