"""JSON files the library writes: results, run records, manifests (library plumbing, no TensorFlow).

JSON has no NaN: a value that was not measured (MS-SSIM skipped, a BD-rate of curves that do not
overlap) is written as ``null``. :func:`write_json` does that for every results file, so that a
file written by one command is read back by any JSON reader.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["nan_to_none", "write_json"]


def nan_to_none(value):
    """``value`` (nested dicts and lists) with every float NaN replaced by ``None``: JSON has no NaN, only null.

    Used by the command line's results files (``evaluate``, ``baselines``, run records).
    """
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_json(path, value, sort_keys: bool = False) -> Path:
    """Write ``value`` to ``path`` as indented JSON with NaN as ``null`` (:func:`nan_to_none`); returns the path.

    Used by the command line (results files, run records).
    """
    path = Path(path)
    path.write_text(json.dumps(nan_to_none(value), indent=2, sort_keys=sort_keys, allow_nan=False) + "\n")
    return path
