"""course_lib.checks: the exercises' self-check helpers."""

import numpy as np
import pytest

from course_lib.checks import (CheckFailed, digest, expect_call, expect_close, expect_digest, expect_equal,
                               expect_true, passed)


def failure(function, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as raised:
        function(*args, **kwargs)
    return str(raised.value)


def test_close_passes_within_tolerance_and_names_the_answer_otherwise():
    expect_close("answer_bpp", 0.5 + 1e-12, 0.5)
    expect_close("latents", np.ones((2, 3)), np.ones((2, 3)) + 1e-7, rtol=1e-6)
    message = failure(expect_close, "answer_bpp", 0.6, 0.5, hint="8 × bytes / (H × W)")
    assert message == "answer_bpp: too large. Hint: 8 × bytes / (H × W)" and "0.5" not in message
    assert failure(expect_close, "answer_bpp", None, 0.5).startswith("answer_bpp: expected a number, got NoneType")
    assert failure(expect_close, "answer_bpp", "0.5", 0.5).startswith("answer_bpp: expected a number")
    assert "shape" in failure(expect_close, "latents", np.ones(3), np.ones(4))
    assert "1 of 3 values" in failure(expect_close, "latents", [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert "NaN" in failure(expect_close, "answer_bpp", float("nan"), 0.5)


def test_equal_accepts_lists_for_tuples_and_numpy_scalars():
    expect_equal("predicted_shape", [1, 19, 13, 64], (1, 19, 13, 64))
    expect_equal("answer_jump", np.int64(16), 16)
    expect_equal("order", np.arange(4), np.arange(4))
    assert failure(expect_equal, "order", np.arange(3), np.arange(4)).startswith("order: not the expected value")
    assert failure(expect_equal, "answer_jump", None, 16).startswith("answer_jump:")


def test_digest_does_not_depend_on_the_type_and_hides_the_value():
    assert digest(48) == digest(48.0) == digest(np.int64(48)) == digest(np.float32(48.0), None)
    assert digest(38.1308, 2) == digest(38.13, 2) != digest(38.14, 2)
    assert digest(-0.0001, 2) == digest(0.0, 2)
    assert digest([2, 4, 6]) == digest((2, 4, 6)) == digest(np.array([2, 4, 6]))
    assert digest({"a": True, "b": 1}) == digest({"b": 1, "a": True})
    assert len(digest(48)) == 16 and "48" not in digest(48)
    with pytest.raises(ValueError):
        digest(0.5)  # a fraction needs `decimals`
    expect_digest("answer_ratio", 48.0000001, digest(48, 3), decimals=3)
    assert failure(expect_digest, "answer_ratio", 47.0, digest(48, 3), decimals=3, hint="24 / bpp") == \
        "answer_ratio: not the expected value (rounded to 3 decimals). Hint: 24 / bpp"
    assert "expected a number" in failure(expect_digest, "answer_ratio", None, digest(48, 3), decimals=3)
    assert "cannot be the answer" in failure(expect_digest, "zigzag", object(), digest([0, 1]))


def test_true_and_call():
    expect_true("worst_center", True, "never shown")
    assert failure(expect_true, "worst_center", False, "off the grid", hint="centre of a square") == \
        "worst_center: off the grid. Hint: centre of a square"
    assert expect_call("zigzag", lambda n: list(range(n)), 3) == [0, 1, 2]
    assert failure(expect_call, "zigzag", None) == "zigzag: must be a function (or class), got NoneType"

    def stub(n):
        raise NotImplementedError("write the body of zigzag")

    with pytest.raises(CheckFailed) as raised:
        expect_call("zigzag", stub, 8)
    assert str(raised.value) == "zigzag: calling it raised NotImplementedError: write the body of zigzag"
    assert isinstance(raised.value.__cause__, NotImplementedError)
    assert issubclass(CheckFailed, AssertionError)


def test_passed_prints_one_line(capsys):
    passed(2, "0.333 bits each")
    assert capsys.readouterr().out == "exercise 2: correct. 0.333 bits each\n"
