import numpy as np
import pytest

from course_lib import config


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_fast_mode_reads_environment(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_FAST", value)
    assert config.fast_mode() is expected
    assert config.pick(full=100, fast=1) == (1 if expected else 100)
    assert ("FAST" in config.describe()) is expected


def test_set_seed_makes_numpy_repeatable():
    config.set_seed(3)
    a = np.random.rand(4)
    config.set_seed(3)
    b = np.random.rand(4)
    config.set_seed(4)
    c = np.random.rand(4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
