"""``python -m course_lib <subcommand> ...``: the course's command line (:mod:`course_lib.cli`).

    python -m course_lib compress in.png out.rcz [--weights NAME_OR_PATH] [--rate R] [--max-pixels N]
    python -m course_lib decompress in.rcz out.png [--weights NAME_OR_PATH] [--max-pixels N]
    python -m course_lib train | train-restoration | ship | evaluate | baselines | restore ...
    python -m course_lib --help

``.rcz`` is the course's compressed-image format (see :mod:`course_lib.bitstream`).
Without ``--weights``, ``compress`` uses the model ``learned_codec`` from
``data/weights/manifest.json`` and ``decompress`` the model whose id the file
names. ``--weights`` takes a model name from that manifest or a path to a
``.weights.h5`` file saved with :func:`course_lib.models.save_codec` (its
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
second. Outputs are written to a temporary file beside the target and renamed
once complete, so a failed run leaves no partial file. An animated or
multi-page input is compressed from its first frame, and weights measured with
TensorFlow's oneDNN kernels set otherwise than in this process may decode
pixels one level apart (:meth:`course_lib.codec.LearnedCodec.quantized_forward`);
each says so in a one-line warning on stderr.
"""

import sys

from .cli import EXIT_BAD_INPUT, main  # noqa: F401  (EXIT_BAD_INPUT: importable from here as before)

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
