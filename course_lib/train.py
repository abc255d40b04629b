"""``python -m course_lib.train ...``: the older spelling of ``python -m course_lib train ...`` (notebook 07).

    python -m course_lib.train --data DIR --lmbda 0.0067 --steps 20000 --out runs/q3
    python -m course_lib.train --data DIR --lmbda 0.0018 0.0067 0.025 0.0932 --steps 200000 --out runs/vr
    python -m course_lib.train --out RUN --ship NAME [--kodak DIR]

Several lambdas train one variable-rate codec (one gain vector per lambda).
Run the same command again to resume from the last checkpoint in ``OUT/backup``.
The training itself is :mod:`course_lib.training`; the command line, :mod:`course_lib.cli`.
"""

from __future__ import annotations

import sys

from .cli import main as command_line

__all__ = ["main"]


def main(argv=None) -> int:
    """``python -m course_lib train ARGS``; returns the exit status. Used by the command line."""
    return command_line(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
