"""Command line of the learned codec (notebook 06).

    python -m course_lib compress in.png out.rcz [--weights NAME_OR_PATH] [--rate R]
    python -m course_lib decompress in.rcz out.png [--weights NAME_OR_PATH]

``.rcz`` is the course's compressed-image format (see :mod:`course_lib.bitstream`).
Without ``--weights``, ``compress`` uses the model ``learned_codec`` from
``data/weights/manifest.json`` and ``decompress`` the model whose id the file
names. ``--weights`` takes a model name from that manifest or a path to a
``.weights.h5`` file saved with :func:`course_lib.codec.save_codec` (its
manifest beside it holds the configuration and SHA-256).

Bad input (unreadable image, damaged ``.rcz`` file, missing or altered
weights) exits with status 2 and a one-line message on stderr; no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from .config import import_tensorflow_quietly  # noqa: E402  (light: no TensorFlow until called)

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse prints usage and error on two lines; we keep the promise of one line."""

    def error(self, message):
        raise _UsageError(f"{message} (see: python -m course_lib --help)")


class _UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m course_lib", description="Learned image codec of the course (.rcz files).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    compress = commands.add_parser("compress", help="image (PNG, JPEG, ...) -> .rcz")
    compress.add_argument("input", help="image file to compress")
    compress.add_argument("output", help="compressed file to write (.rcz)")
    compress.add_argument("--weights", help="model name in data/weights/manifest.json or a .weights.h5 path")
    compress.add_argument("--rate", type=float, default=0.0, help="rate level in [0, num_rates - 1] (default 0)")
    decompress = commands.add_parser("decompress", help=".rcz -> PNG image")
    decompress.add_argument("input", help="compressed file (.rcz)")
    decompress.add_argument("output", help="image file to write (PNG recommended)")
    decompress.add_argument("--weights", help="model name or .weights.h5 path (default: the file's model id)")
    return parser


def _model_for_file(data: bytes):
    """The manifest's codec whose model id matches the file's header."""
    from .bitstream import read_header
    from .codec import WeightsError, read_manifest, load_codec
    from .config import WEIGHTS_DIR

    model_id = read_header(data).model_id
    for name, entry in read_manifest(WEIGHTS_DIR).items():
        if isinstance(entry, dict) and entry.get("model_id") == model_id:
            return load_codec(name)
    raise WeightsError(f"no model with id {model_id} in {WEIGHTS_DIR / 'manifest.json'}; pass --weights")


def run(args) -> None:
    from .bitstream import read_header
    from .data import load_image, save_image

    # Check the input before the slow TensorFlow import, so bad files fail fast.
    if args.command == "compress":
        image = load_image(args.input)
    else:
        path = Path(args.input)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        data = path.read_bytes()
        read_header(data)
    import_tensorflow_quietly()
    from .codec import load_codec

    if args.command == "compress":
        codec = load_codec(args.weights)
        data = codec.compress(image, rate=args.rate)
        Path(args.output).write_bytes(data)
        print(f"{args.input}: {image.shape[1]}x{image.shape[0]} -> {len(data)} bytes "
              f"({8 * len(data) / (image.shape[0] * image.shape[1]):.3f} bpp) in {args.output}")
    else:
        codec = load_codec(args.weights) if args.weights else _model_for_file(data)
        image = codec.decompress(data)
        save_image(image, args.output)
        print(f"{args.input} -> {image.shape[1]}x{image.shape[0]} image in {args.output}")


def main(argv=None) -> int:
    """Entry point; returns the exit status (0, or 2 for bad input)."""
    try:
        args = _parser().parse_args(argv)
        run(args)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, OSError, RuntimeError) as exc:
        # ImageLoadError, BitstreamError and WeightsError are ValueErrors; OSError
        # covers unreadable or unwritable paths. One line, no traceback.
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
