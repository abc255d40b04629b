"""The README quotes the hyperprior's Kodak numbers and BD-rates: they must be those of the results files."""

import json
import re

from course_lib.config import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()
RESULTS = PROJECT_ROOT / "docs" / "results"


def test_hyperprior_table_matches_its_results_file():
    points = json.loads((RESULTS / "kodak_rd_hyperprior.json").read_text())["points"]
    for label, key, digits in (("bpp", "bpp", 3), ("PSNR (dB)", "psnr", 2), ("MS-SSIM", "msssim", 3)):
        row = f"| {label} | " + " | ".join(f"{p[key]:.{digits}f}" for p in points) + " |"
        assert row in README, f"README lacks the row {row!r}: copy it from docs/results/kodak_rd_hyperprior.json"


def test_hyperprior_bd_rates_match_and_state_their_windows():
    result = json.loads((RESULTS / "kodak_rd_hyperprior.json").read_text())
    for name in ("jpeg420", "webp", "jpeg2000"):
        value, window = result["bd_rate"][name], result["bd_rate_psnr_window"][name]
        if value is None:
            continue
        quoted = f"{value:+.1f} %".replace("-", "−") + f" over {window[0]:.2f}–{window[1]:.2f} dB"
        assert quoted in README, f"README should quote {quoted!r} for {name}"


def test_every_bd_rate_in_the_readme_states_a_window():
    # A BD-rate is quoted as a signed percentage; its paragraph or table must name a dB interval.
    for block in re.split(r"\n\s*\n", README):
        if re.search(r"BD-rate", block) and re.search(r"[−+-]\d+\.\d %", block):
            assert re.search(r"\d+(\.\d+)?\s*[–-]\s*\d+(\.\d+)? dB", block), f"no PSNR window in:\n{block[:300]}"
