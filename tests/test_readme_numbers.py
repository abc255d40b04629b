"""The README quotes the hyperprior's Kodak numbers and BD-rates: they must be those of the results files."""

import json
import re

import pytest

from course_lib.config import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()
RESULTS = PROJECT_ROOT / "docs" / "results"


#: The shipped hyperpriors' Kodak results, each quoted in a table of its own.
HYPERPRIOR_RESULTS = ["kodak_rd_hyperprior.json", "kodak_rd_hyperprior_wide.json"]


@pytest.mark.parametrize("results", HYPERPRIOR_RESULTS)
def test_hyperprior_table_matches_its_results_file(results):
    points = json.loads((RESULTS / results).read_text())["points"]
    for label, key, digits in (("bpp", "bpp", 3), ("PSNR (dB)", "psnr", 2), ("MS-SSIM", "msssim", 3)):
        row = f"| {label} | " + " | ".join(f"{p[key]:.{digits}f}" for p in points) + " |"
        assert row in README, f"README lacks the row {row!r}: copy it from docs/results/{results}"
    gaps = json.loads((RESULTS / results).read_text())["psnr_above_baseline_at_same_bpp"]["jpeg420"]
    row = "| dB above JPEG 4:2:0 at the same bpp | " + " | ".join(
        "n/a" if g is None else f"{g:+.2f}".replace("-", "−") for g in gaps) + " |"
    assert row in README, f"README lacks the row {row!r}: copy it from docs/results/{results}"


@pytest.mark.parametrize("results", HYPERPRIOR_RESULTS)
def test_hyperprior_bd_rates_match_and_state_their_windows(results):
    result = json.loads((RESULTS / results).read_text())
    for name in ("jpeg420", "webp", "jpeg2000"):
        value, window = result["bd_rate"][name], result["bd_rate_psnr_window"][name]
        if value is None:
            continue
        quoted = f"{value:+.1f} %".replace("-", "−") + f" over {window[0]:.2f}–{window[1]:.2f} dB"
        assert quoted in README, f"README should quote {quoted!r} for {name} from docs/results/{results}"


def test_training_speed_quotes_match_their_results_files():
    text = " ".join(README.split())
    for results in ("training_speed.json", "training_speed_from_shipped.json"):
        r = json.loads((RESULTS / results).read_text())
        f32, bf16 = r["rows"]
        for quoted in (f"{r['bfloat16_over_float32_time']:.2f}× the time",
                       f"{bf16['median_step_seconds']:.3f} s against {f32['median_step_seconds']:.3f} s",
                       f"{bf16['val_psnr']:.2f} dB against {f32['val_psnr']:.2f} dB",
                       f"{bf16['val_bpp']:.3f} bpp against {f32['val_bpp']:.3f} bpp"):
            assert quoted in text, f"README should quote {quoted!r} from docs/results/{results}"


def test_every_bd_rate_in_the_readme_states_a_window():
    # A BD-rate is quoted as a signed percentage; its paragraph or table must name a dB interval.
    for block in re.split(r"\n\s*\n", README):
        if re.search(r"BD-rate", block) and re.search(r"[−+-]\d+\.\d %", block):
            assert re.search(r"\d+(\.\d+)?\s*[–-]\s*\d+(\.\d+)? dB", block), f"no PSNR window in:\n{block[:300]}"


def test_slider_latency_table_matches_its_results_file():
    r = json.loads((RESULTS / "slider_latency.json").read_text())
    for quoted in (f"| {r['p50_ms']:.1f} ms / {r['p95_ms']:.1f} ms (≤ 50 / ≤ 150 ms) |",
                   f"| {r['widget_p50_ms']:.1f} ms / {r['widget_p95_ms']:.1f} ms |",
                   f"slowest {r['first_visit_max_ms']:.0f} ms) | {r['first_visit_ms']:.0f} ms",
                   f"| {r['peak_rss_mb']:.0f} MB", f"load average {r['load_average_at_start']:.2f} at the start",
                   f"first codec (`{r['learned_codec']}`)"):
        assert quoted in README, f"README should quote {quoted!r} from docs/results/slider_latency.json"


def test_fuzz_totals_match_their_results_file():
    f = json.loads((RESULTS / "fuzz_bitstream.json").read_text())
    t = f["totals"]
    text = " ".join(README.split())
    for quoted in (f"of {f['cases']:,} files, {t['documented error']:,} were refused",
                   f"{t['correct decode']} decoded correctly", f"{t['valid file, other image']} were valid files",
                   f"{t['silent wrong output']} silent wrong outputs", f"{t['other exception']} other exceptions",
                   f"{t['crash']} crashes", f"{t['hang']} hangs", f"{t['over memory']} over the memory limit"):
        assert quoted in text, f"README should quote {quoted!r} from docs/results/fuzz_bitstream.json"


def test_transform_ceiling_quotes_match_their_results_file():
    rows = json.loads((RESULTS / "transform_ceiling.json").read_text())["models"]
    top = rows["learned_hyperprior"]["rows"][-1]
    text = " ".join(README.split())
    for quoted in (f"give {top['unquantized_psnr']:.2f} dB at the top rate point",
                   f"{top['unquantized_psnr'] - top['rounded_psnr']:.2f} dB above what its files give "
                   f"({top['rounded_psnr']:.2f} dB)",
                   f"the factorized codec's {rows['learned_codec']['rows'][-1]['unquantized_psnr']:.2f} dB"):
        assert quoted in text, f"README should quote {quoted!r} from docs/results/transform_ceiling.json"


def test_wide_hyperprior_against_the_narrow_one_matches_the_results_files():
    from course_lib.rd import bd_rate, bd_window

    narrow, wide = (json.loads((RESULTS / f).read_text())["points"] for f in HYPERPRIOR_RESULTS)
    curves = [[p["bpp"] for p in c] for c in (narrow, wide)], [[p["psnr"] for p in c] for c in (narrow, wide)]
    value = bd_rate(curves[0][0], curves[1][0], curves[0][1], curves[1][1])
    low, high = bd_window(curves[1][0], curves[1][1])
    quoted = f"against the narrow `learned_hyperprior` {value:+.1f} %".replace("-", "−") + f" over {low:.2f}–{high:.2f} dB"
    assert quoted in " ".join(README.split()), f"README should quote {quoted!r}"


def test_codec_speed_and_the_wide_ceiling_match_their_results_files():
    text = " ".join(README.split())
    speed = json.loads((RESULTS / "codec_speed.json").read_text())["models"]
    hp, wide = speed["learned_hyperprior"]["ratio"], speed["learned_hyperprior_wide"]["ratio"]
    for quoted in (f"`learned_hyperprior` takes {hp:.2f}× the factorized codec's time",
                   f"`learned_hyperprior_wide` {wide:.2f}× ({wide / hp:.1f}× the narrow hyperprior's)"):
        assert quoted in text, f"README should quote {quoted!r} from docs/results/codec_speed.json"
    top = json.loads((RESULTS / "transform_ceiling.json").read_text())["models"]["learned_hyperprior_wide"]["rows"][-1]
    quoted = (f"give {top['unquantized_psnr']:.2f} dB from unquantized latents at the top rate point, "
              f"{top['unquantized_psnr'] - top['rounded_psnr']:.2f} dB above its files ({top['rounded_psnr']:.2f} dB)")
    assert quoted in text, f"README should quote {quoted!r} from docs/results/transform_ceiling.json"


def test_gradient_noise_quotes_match_their_results_file():
    r = json.loads((RESULTS / "gradient_noise.json").read_text())
    text = " ".join(README.split())
    assert f"±{100 * r['relative_spread_of_each_v']:.0f} %" in text
    for name in ("transforms E, D", "gains"):
        row = r["parts"][name]
        quoted = (f"from {row['per batch']['relative_noise']:.2f} to {row['per image']['relative_noise']:.2f} for "
                  + ("the transforms E and D" if name == "transforms E, D" else "the gains")
                  + f" ({row['noise_ratio']:.2f}×)")
        assert quoted in text, f"README should quote {quoted!r} from docs/results/gradient_noise.json"
    row = r["parts"]["entropy model"]
    quoted = f"{row['per batch']['relative_noise']:.2f} against {row['per image']['relative_noise']:.2f}"
    assert quoted in text, f"README should quote {quoted!r} from docs/results/gradient_noise.json"


def test_the_per_image_lambda_experiment_is_quoted_from_its_results_file():
    r = json.loads((RESULTS / "wide_lambda_per_image_experiment.json").read_text())
    text = " ".join(README.split())
    window = r["bd_rate_vs_shipped_psnr_window"]
    for quoted in (f"lowered the validation loss from {r['start']['final_validation_loss']:.3f} to "
                   f"{r['final_validation']['val_loss']:.3f}",
                   f"{r['bd_rate_vs_shipped']:+.1f} %".replace("-", "−")
                   + f" BD-rate against the shipped weights over {window[0]:.2f}–{window[1]:.2f} dB",
                   f"its top point {r['psnr_above_jpeg420_at_same_bpp'][-1]:+.2f} dB".replace("-", "−")):
        assert quoted in text, f"README should quote {quoted!r} from docs/results/wide_lambda_per_image_experiment.json"
    assert r["start"]["sha256"] != r["weights_sha256"], "the experiment's weights are not the shipped ones"
