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


@pytest.mark.parametrize("text, expected", [
    ("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 avx512_vnni\n", True),
    ("processor\t: 0\nflags\t\t: fpu sse2 amx_tile amx_bf16\n", True),
    ("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n", False),   # AVX-512 without BF16
    ("processor\t: 0\nbugs\t\t: avx512_bf16\n", False),                            # only the flags line counts
    ("", False),
])
def test_cpu_has_fast_bfloat16_reads_the_flags_line(text, expected):
    assert config.cpu_has_fast_bfloat16(text) is expected


def test_cpu_has_fast_bfloat16_on_this_machine_matches_proc_cpuinfo():
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo here")
    assert config.cpu_has_fast_bfloat16() is (" avx512_bf16" in text or " amx_bf16" in text)
