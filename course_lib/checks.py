"""Self-checks for the exercises (every notebook from 00 on).

A self-check compares a student's answer with a reference that the check computes itself (from ``course_lib``
functions or from the student's own inputs), or with a digest of the expected value, so that neither the check
cell nor its output shows the answer. Every failure raises :class:`CheckFailed` with a message that starts with
the variable's name and gives a hint, never the expected value::

    expect_close("answer_bpp", answer_bpp, metrics.bits_per_pixel(24_576, (512, 768)), hint="8 × bytes / (H × W)")
    expect_digest("answer_ratio", answer_ratio, "3f2a...", decimals=6, hint="24 bpp divided by your bpp")
    order = expect_call("zigzag", zigzag, 8)          # a student's function: errors become CheckFailed too

Authors compute a digest once with :func:`digest` (``digest(48, decimals=6)``) and paste it into the check.

Only the standard library and NumPy: this module sits at the bottom of ``course_lib``.
"""

from __future__ import annotations

import hashlib
import numbers

import numpy as np

__all__ = ["CheckFailed", "digest", "expect_close", "expect_equal", "expect_digest", "expect_true", "expect_call",
           "passed"]


class CheckFailed(AssertionError):
    """An answer is wrong; the message starts with the answer's variable name and ends with a hint.

    Introduced in notebook 00 (every notebook's exercises use it).
    """


def _fail(name: str, problem: str, hint: str = "") -> None:
    raise CheckFailed(f"{name}: {problem}" + (f". Hint: {hint}" if hint else ""))


def _as_array(name: str, value, hint: str) -> np.ndarray:
    """``value`` as a float64 array; CheckFailed for None, strings and anything that is not numbers."""
    if value is None or isinstance(value, (str, bytes)):
        _fail(name, f"expected a number, got {type(value).__name__}", hint)
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # TensorFlow tensors
        value = value.numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        _fail(name, f"expected a number, got {type(value).__name__}", hint)
    return array


def expect_close(name: str, value, reference, *, rtol: float = 1e-6, atol: float = 1e-9, hint: str = "") -> None:
    """``value`` (a number or an array) equals ``reference`` within ``atol + rtol * |reference|``, elementwise.

    The message never shows ``reference``; it says whether the shape is wrong, or by how much (relative) the
    answer is off when that helps without giving it away ("too large", "too small").
    Introduced in notebook 00 (every notebook's exercises use it).
    """
    actual = _as_array(name, value, hint)
    expected = np.asarray(reference, dtype=np.float64)
    if actual.shape != expected.shape:
        _fail(name, f"shape {actual.shape} is not the expected one" if actual.ndim or expected.ndim
              else "expected a single number", hint)
    if not np.all(np.isfinite(actual)):
        _fail(name, "contains NaN or infinity", hint)
    if not np.allclose(actual, expected, rtol=rtol, atol=atol):
        if expected.ndim == 0:
            _fail(name, "too large" if actual > expected else "too small", hint)
        _fail(name, f"{int(np.sum(~np.isclose(actual, expected, rtol=rtol, atol=atol)))} of {expected.size} "
                    "values are wrong", hint)


def expect_equal(name: str, value, reference, *, hint: str = "") -> None:
    """``value == reference`` exactly (integers, shapes, booleans, strings, lists, dicts); the message hides both.

    Introduced in notebook 00 (every notebook's exercises use it).
    """
    if isinstance(reference, tuple) and isinstance(value, list):
        value = tuple(value)
    try:
        same = value == reference
        if isinstance(same, np.ndarray):
            same = same.shape == np.shape(reference) and bool(same.all())
        same = bool(same)
    except (TypeError, ValueError):
        same = False
    if not same:
        _fail(name, "not the expected value", hint)


def _canonical(value, decimals: int | None) -> str:
    """A text form of ``value`` that does not depend on its Python or NumPy type (1 == 1.0 == np.int64(1))."""
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, numbers.Real):
        if decimals is None:
            if float(value) != int(value):
                raise ValueError("give `decimals` to digest a number that is not an integer")
            return str(int(value))
        text = f"{float(value):.{decimals}f}"
        return "0" if float(text) == 0 else text  # -0.000 and 0.000 agree
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_canonical(item, decimals) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_canonical(k, None)}:{_canonical(v, decimals)}"
                              for k, v in sorted(value.items(), key=lambda kv: repr(kv[0]))) + "}"
    raise TypeError(f"cannot digest a {type(value).__name__}")


def digest(value, decimals: int | None = None) -> str:
    """The digest :func:`expect_digest` compares with: SHA-256 (16 hex digits) of ``value`` rounded to ``decimals``.

    Integers, booleans, strings and (nested) lists, tuples and dicts of them digest as they are; other numbers need
    ``decimals``. Choose ``decimals`` so that the expected value is not within a rounding step of a boundary
    (``digest(38.1308, 3)`` is safe: any answer within 0.0005 of 38.1308 rounds to 38.131).
    Used to write the checks of notebooks 00-13 (authors, not students, call it).
    """
    return hashlib.sha256(_canonical(value, decimals).encode()).hexdigest()[:16]


def expect_digest(name: str, value, expected_digest: str, *, decimals: int | None = None, hint: str = "") -> None:
    """``value``, rounded to ``decimals``, has the digest ``expected_digest`` (from :func:`digest`).

    Introduced in notebook 00 (every notebook's exercises use it).
    """
    if decimals is not None and (value is None or isinstance(value, (str, bytes))):
        _fail(name, f"expected a number, got {type(value).__name__}", hint)
    try:
        actual = digest(value, decimals)
    except (TypeError, ValueError):
        _fail(name, f"expected a number, got {type(value).__name__}" if decimals is not None
              else f"a {type(value).__name__} cannot be the answer", hint)
    if actual != expected_digest:
        _fail(name, "not the expected value" + (f" (rounded to {decimals} decimals)" if decimals is not None else ""),
              hint)


def expect_true(name: str, condition, problem: str, *, hint: str = "") -> None:
    """Fail with ``name: problem`` unless ``condition`` holds (for properties an answer must have).

    Introduced in notebook 00 (every notebook's exercises use it).
    """
    if not bool(condition):
        _fail(name, problem, hint)


def expect_call(name: str, function, *args, **kwargs):
    """``function(*args, **kwargs)``, where ``function`` is a student's answer: not callable, or raising, fails.

    The error the function raised is chained to the CheckFailed, so its traceback is still shown.
    Introduced in notebook 00 (every notebook's exercises use it).
    """
    if not callable(function):
        _fail(name, f"must be a function (or class), got {type(function).__name__}")
    try:
        return function(*args, **kwargs)
    except CheckFailed:
        raise
    except Exception as error:  # noqa: BLE001: any error in the student's code is reported under its name
        raise CheckFailed(f"{name}: calling it raised {type(error).__name__}: {error}") from error


def passed(exercise: int, note: str = "") -> None:
    """Print the success line of exercise ``exercise`` (``note``: what the student can learn from the result).

    Introduced in notebook 00 (every notebook's exercises use it).
    """
    print(f"exercise {exercise}: correct" + (f". {note}" if note else ""))
