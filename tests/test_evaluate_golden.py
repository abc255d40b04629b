"""Golden files for the command lines that print results (as CompressAI's tests/expected/): ``evaluate``
(the shipped codec against the classical codecs), ``evaluate --restoration`` and ``baselines`` on two
small course photos, compared with the JSON stored in ``tests/expected/``.

A deliberate change of the numbers (new weights, another quality ladder) is recorded by regenerating
the files and reviewing their diff::

    GENERATE_EXPECTED=1 TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python -m pytest -q tests/test_evaluate_golden.py
"""

import json
import math
import os
from pathlib import Path

import pytest

from course_lib.cli import main
from course_lib.data import course_photo, save_image

EXPECTED = Path(__file__).parent / "expected"
#: Keys that differ between runs for reasons other than the results: where and how long.
VOLATILE = {"command", "seconds"}
#: The learned codec's and the networks' floats may differ in the last digits on another CPU (oneDNN
#: or not, notebook 06); the classical codecs' are exact. BD-rates are percentages, hence their own bound.
RELATIVE, ABSOLUTE, BD_ABSOLUTE = 1e-3, 1e-6, 0.1
#: A PSNR difference (dB) inherits the PSNRs' bound: RELATIVE of about 30 dB.
GAP_ABSOLUTE = 0.03

COMMANDS = {
    "evaluate_two_images": ["evaluate", "--workers", "1"],
    "evaluate_restoration_two_images": ["evaluate", "--restoration"],
    "baselines_two_images": ["baselines", "--workers", "1", "--codecs", "jpeg420", "webp", "jpeg2000"],
}


@pytest.fixture(scope="module")
def two_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two_images")
    save_image(course_photo("coffee")[100:164, 200:296], folder / "coffee.png")     # 64 x 96
    save_image(course_photo("chelsea")[60:108, 150:230], folder / "chelsea.png")   # 48 x 80
    return folder


def differences(expected, actual, where="") -> list[str]:
    """Where ``actual`` differs from ``expected`` beyond the tolerances (an empty list when it does not)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if set(expected) - VOLATILE != set(actual) - VOLATILE:
            return [f"{where or 'top'}: keys {sorted(set(expected) ^ set(actual))} differ"]
        return [d for key in expected if key not in VOLATILE
                for d in differences(expected[key], actual[key], f"{where}.{key}")]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(actual)} values, expected {len(expected)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in differences(e, a, f"{where}[{i}]")]
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        bound = (BD_ABSOLUTE if ".bd_rate" in where else GAP_ABSOLUTE if ".psnr_above" in where
                 else max(ABSOLUTE, RELATIVE * abs(expected)))
        return [] if math.isclose(expected, actual, rel_tol=0, abs_tol=bound) else [f"{where}: {actual} != {expected}"]
    return [] if expected == actual else [f"{where}: {actual!r} != {expected!r}"]


def test_differences_sees_a_changed_number_and_a_missing_key():
    assert differences({"a": [1.0, 2.0], "seconds": 3}, {"a": [1.0, 2.0], "seconds": 9}) == []
    assert differences({"a": [1.0, 2.0]}, {"a": [1.0, 2.1]}) == [".a[1]: 2.1 != 2.0"]
    assert differences({"a": 1, "b": None}, {"a": 1}) == ["top: keys ['b'] differ"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_output_matches_the_golden_file(name, two_images, tmp_path, capsys):
    out = tmp_path / "result.json"
    status = main([*COMMANDS[name], "--data", str(two_images), "--json", str(out)])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert f"wrote {out}" in printed.out
    actual = json.loads(out.read_text())
    path = EXPECTED / f"{name}.json"
    if os.environ.get("GENERATE_EXPECTED") == "1":
        path.write_text(json.dumps({k: v for k, v in actual.items() if k not in VOLATILE}, indent=2) + "\n")
        pytest.skip(f"regenerated {path.name}")
    expected = json.loads(path.read_text())
    found = differences(expected, actual)
    assert not found, f"{name} differs from {path} (GENERATE_EXPECTED=1 rewrites it):\n" + "\n".join(found[:20])
