"""benchmarks/published_anchors.py: BD-rates against one JPEG anchor, each with its PSNR window."""

import json
import sys

from course_lib.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
import published_anchors  # noqa: E402


def fake_results():
    # A JPEG anchor and a "course codec" that needs exactly half of JPEG's bits at every PSNR.
    psnr = [24.0, 27.0, 30.0, 33.0, 36.0, 39.0]
    jpeg = {"bpp": [0.2, 0.35, 0.6, 1.0, 1.6, 2.5], "psnr": psnr}
    return {"command": "test", "images": 24, "model": "half",
            "points": [{"bpp": b / 2, "psnr": p} for b, p in zip(jpeg["bpp"], psnr)],
            "baselines": {"jpeg420": jpeg, "webp": jpeg, "jpeg2000": {"bpp": [0.5, 1.0], "psnr": [30.0, 31.0]}}}


def test_rows_state_their_windows():
    published = json.loads(published_anchors.PUBLISHED.read_text())
    rows = {r["name"]: r for r in published_anchors.rows(fake_results(), published, (28.0, 35.0))}
    assert abs(rows["half"]["overlap"] + 50.0) < 1e-6 and rows["half"]["overlap_db"] == (24.0, 39.0)
    assert abs(rows["half"]["window"] + 50.0) < 1e-6 and rows["half"]["window_db"] == (28.0, 35.0)
    assert rows["webp"]["overlap"] == 0.0
    assert rows["jpeg2000"]["window"] is None  # spans 30-31 dB only: no extrapolation
    assert len(rows) == 3 + len(published["models"])


def test_command_line(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(fake_results()))
    assert published_anchors.main(["--results", str(path)]) == 0
    out = capsys.readouterr().out
    assert "-50.0 %" in out and "28-35 dB" in out and "bmshj2018-hyperprior" in out
    assert published_anchors.main(["--results", str(tmp_path / "missing.json")]) == 2
