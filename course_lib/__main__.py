"""Command line of the learned codec (notebook 06).

    python -m course_lib compress in.png out.rcz [--weights NAME_OR_PATH] [--rate R] [--max-pixels N]
    python -m course_lib decompress in.rcz out.png [--weights NAME_OR_PATH] [--max-pixels N]

``.rcz`` is the course's compressed-image format (see :mod:`course_lib.bitstream`).
Without ``--weights``, ``compress`` uses the model ``learned_codec`` from
``data/weights/manifest.json`` and ``decompress`` the model whose id the file
names. ``--weights`` takes a model name from that manifest or a path to a
``.weights.h5`` file saved with :func:`course_lib.codec.save_codec` (its
manifest beside it holds the configuration and SHA-256).

Bad input (unreadable image, damaged ``.rcz`` file, missing or altered
weights) exits with status 2 and a one-line message on stderr; no traceback.
So does an output path that would overwrite the input (the same file, also
through another name or a link), a ``.rcz`` file larger than the format
allows (checked before reading it), and, for ``decompress``, an output path
that is a folder or lacks a known image suffix, and an image (to compress, or
announced by a file's header) with more than ``--max-pixels`` pixels (default
:data:`course_lib.data.MAX_PIXELS`), refused before anything that size is
allocated. Without ``--weights``, ``decompress`` checks that the payload can
hold the image its header announces with the model's integer tables alone
(:mod:`course_lib.registry`, :func:`course_lib.bitstream.check_sizes`),
before importing TensorFlow, so a crafted file is refused in a fraction of a
second. Outputs are written to a
temporary file beside the target and renamed once complete, so a failed run
leaves no partial file. An animated or multi-page input is compressed from its
first frame, and weights measured with TensorFlow's oneDNN kernels set otherwise
than in this process may decode pixels one level apart
(:meth:`course_lib.codec.LearnedCodec.quantized_forward`); each says so in a
one-line warning on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from .config import import_tensorflow_quietly  # noqa: E402  (light: no TensorFlow until called)
from .bitstream import MAX_FILE_BYTES  # noqa: E402  (NumPy and constriction only)
from .data import MAX_PIXELS  # noqa: E402  (NumPy and Pillow only)

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse prints usage and error on two lines; we keep the promise of one line."""

    def error(self, message):
        raise _UsageError(f"{message} (see: python -m course_lib --help)")


class _UsageError(Exception):
    pass


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m course_lib", description="Learned image codec of the course (.rcz files).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    compress = commands.add_parser("compress", help="image (PNG, JPEG, ...) -> .rcz")
    compress.add_argument("input", help="image file to compress")
    compress.add_argument("output", help="compressed file to write (.rcz)")
    compress.add_argument("--weights", help="model name in data/weights/manifest.json or a .weights.h5 path")
    compress.add_argument("--rate", type=float, default=0.0, help="rate level in [0, num_rates - 1] (default 0)")
    compress.add_argument("--max-pixels", type=_positive_int, default=MAX_PIXELS,
                          help=f"refuse larger images (default {MAX_PIXELS:,})")
    decompress = commands.add_parser("decompress", help=".rcz -> PNG image")
    decompress.add_argument("input", help="compressed file (.rcz)")
    decompress.add_argument("output", help="image file to write (PNG recommended)")
    decompress.add_argument("--weights", help="model name or .weights.h5 path (default: the file's model id)")
    decompress.add_argument("--max-pixels", type=_positive_int, default=MAX_PIXELS,
                            help=f"refuse files that announce larger images (default {MAX_PIXELS:,})")
    return parser


def _model_for_file(data: bytes, header, max_pixels: int) -> str:
    """The manifest's model whose id the file's header names, after refusing a file whose payload cannot
    hold the image it announces (a decompression bomb) with that model's integer tables: NumPy only, so
    this runs before TensorFlow is imported."""
    from .bitstream import check_sizes
    from .registry import entry_for_model_id, read_verified, tables_from_bytes

    folder, name, entry = entry_for_model_id(header.model_id)
    path, content = read_verified(folder, name, entry, "tables")
    check_sizes(data, tables_from_bytes(content, path), max_pixels)
    return name


def _check_output(args) -> None:
    """Refuse, before any work, an output path that cannot be written or would replace the input.

    ``OSError``/``ValueError`` with one line naming the path: a folder, a
    missing folder, the input file itself (by any name or link), or for
    ``decompress`` a name without a known image suffix.
    """
    from .data import image_format

    target = Path(args.output)
    if args.command == "decompress":
        image_format(target)
    elif target.is_dir():
        raise IsADirectoryError(f"{target}: is a directory; give a file name such as {target / 'image.rcz'}")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{target}: folder {target.parent} does not exist")
    if target.exists() and os.path.exists(args.input) and os.path.samefile(args.input, target):
        raise OSError(f"{target}: is the input file {args.input}; choose another output path")


def _print_warnings(caught) -> None:
    """The library's warnings about the input or the weights (first frame only, another oneDNN
    setting), one line each on stderr; others (a dependency's deprecations) are dropped."""
    from .config import ReproducibilityWarning
    from .data import ImageLoadWarning

    for warning in caught:
        if issubclass(warning.category, (ImageLoadWarning, ReproducibilityWarning)):
            print(f"warning: {' '.join(str(warning.message).split())}", file=sys.stderr)


def run(args) -> None:
    from .bitstream import read_header
    from .data import load_image, read_file, save_image, write_file

    # Check the paths and the input before the slow TensorFlow import, so bad files fail fast.
    _check_output(args)
    if args.command == "compress":
        image = load_image(args.input, max_pixels=args.max_pixels)
    else:
        data = read_file(args.input, max_bytes=MAX_FILE_BYTES)
        header = read_header(data, max_pixels=args.max_pixels)
        model = args.weights or _model_for_file(data, header, args.max_pixels)
    import_tensorflow_quietly()
    from .codec import load_codec

    if args.command == "compress":
        codec = load_codec(args.weights)
        data = codec.compress(image, rate=args.rate)
        write_file(args.output, data)
        print(f"{args.input}: {image.shape[1]}x{image.shape[0]} -> {len(data)} bytes "
              f"({8 * len(data) / (image.shape[0] * image.shape[1]):.3f} bpp) in {args.output}")
    else:
        codec = load_codec(model)
        image = codec.decompress(data, max_pixels=args.max_pixels)
        save_image(image, args.output)
        print(f"{args.input} -> {image.shape[1]}x{image.shape[0]} image in {args.output}")


def main(argv=None) -> int:
    """Entry point; returns the exit status (0, or 2 for bad input)."""
    import warnings

    try:
        args = _parser().parse_args(argv)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                run(args)
            finally:
                _print_warnings(caught)
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
