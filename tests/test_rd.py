"""Bjøntegaard delta rate and PSNR against answers known in closed form."""
import numpy as np
import pytest

from course_lib import rd
from course_lib.rd import bd_psnr, bd_rate, psnr_at_rate

# A smooth, concave RD curve like a real codec's: PSNR grows with log-rate.
BPP = np.array([0.12, 0.25, 0.4, 0.6, 0.9, 1.3, 1.9, 2.6])
PSNR = 30.0 + 6.0 * np.log2(BPP / 0.5) - 0.4 * np.log2(BPP / 0.5) ** 2


@pytest.mark.parametrize("method", ["pchip", "cubic"])
@pytest.mark.parametrize("k", [0.7, 1.0, 1.25])
def test_scaled_rate_gives_exact_bd_rate(method, k):
    assert bd_rate(BPP, PSNR, k * BPP, PSNR, method) == pytest.approx((k - 1) * 100, abs=1e-9)


@pytest.mark.parametrize("method", ["pchip", "cubic"])
@pytest.mark.parametrize("shift", [-0.8, 0.0, 1.5])
def test_shifted_psnr_gives_exact_bd_psnr(method, shift):
    assert bd_psnr(BPP, PSNR, BPP, PSNR + shift, method) == pytest.approx(shift, abs=1e-9)


def test_sign_convention_better_codec_is_negative_rate_positive_psnr():
    assert bd_rate(BPP, PSNR, BPP, PSNR + 1.0) < 0
    assert bd_psnr(BPP, PSNR, BPP * 0.8, PSNR) > 0


def test_order_of_points_does_not_matter():
    order = np.random.default_rng(0).permutation(len(BPP))
    expected = bd_rate(BPP, PSNR, BPP * 0.9, PSNR + 0.3)
    assert bd_rate(BPP[order], PSNR[order], BPP * 0.9, PSNR + 0.3) == pytest.approx(expected)


def test_pchip_and_cubic_agree_on_a_smooth_curve():
    # A different curve shape for the test codec, so that the result is not trivially exact.
    test_psnr = 30.5 + 6.5 * np.log2(BPP / 0.5) - 0.3 * np.log2(BPP / 0.5) ** 2
    by_pchip = bd_rate(BPP, PSNR, BPP, test_psnr, "pchip")
    by_cubic = bd_rate(BPP, PSNR, BPP, test_psnr, "cubic")
    assert by_pchip < -5
    assert abs(by_pchip - by_cubic) < 1.0
    assert abs(bd_psnr(BPP, PSNR, BPP, test_psnr, "pchip") - bd_psnr(BPP, PSNR, BPP, test_psnr, "cubic")) < 0.05


def test_cubic_matches_the_classic_polyfit_formula():
    # Bjøntegaard's original script: polyfit of log-rate on PSNR, integrate, exponentiate.
    test_bpp, test_psnr = BPP * 0.85, PSNR + 0.2 * np.sin(np.arange(len(BPP)))
    low, high = max(PSNR.min(), test_psnr.min()), min(PSNR.max(), test_psnr.max())
    averages = []
    for rate, quality in ((BPP, PSNR), (test_bpp, test_psnr)):
        integral = np.polyint(np.polyfit(quality, np.log(rate), 3))
        averages.append((np.polyval(integral, high) - np.polyval(integral, low)) / (high - low))
    expected = (np.exp(averages[1] - averages[0]) - 1) * 100
    assert bd_rate(BPP, PSNR, test_bpp, test_psnr, "cubic") == pytest.approx(expected, rel=1e-6)


def test_too_few_points():
    with pytest.raises(ValueError, match="at least 4"):
        bd_rate(BPP[:3], PSNR[:3], BPP[:3], PSNR[:3], "cubic")
    with pytest.raises(ValueError, match="at least 2"):
        bd_rate(BPP[:1], PSNR[:1], BPP, PSNR)
    assert bd_rate(BPP[:3], PSNR[:3], BPP[:3] * 2, PSNR[:3]) == pytest.approx(100.0)


def test_non_overlapping_curves():
    with pytest.raises(ValueError, match="do not overlap"):
        bd_rate(BPP[:3], PSNR[:3], BPP[5:], PSNR[5:])
    with pytest.raises(ValueError, match="do not overlap"):
        bd_psnr(BPP[:3], PSNR[:3], BPP[5:], PSNR[5:])


def test_duplicates_and_bad_values():
    with pytest.raises(ValueError, match="repeated"):
        bd_rate([0.2, 0.4, 0.8], [30, 30, 32], BPP, PSNR)
    with pytest.raises(ValueError, match="positive"):
        bd_rate([0.0, 0.4, 0.8], [28, 30, 32], BPP, PSNR)
    with pytest.raises(ValueError, match="finite"):
        bd_rate([0.2, 0.4, 0.8], [28, 30, np.inf], BPP, PSNR)
    with pytest.raises(ValueError, match="lengths"):
        bd_rate([0.2, 0.4], [28, 30, 31], BPP, PSNR)
    with pytest.raises(ValueError, match="method"):
        bd_rate(BPP, PSNR, BPP, PSNR, "linear")


def test_rd_points_and_rd_table_read_one_curve_shape():
    from course_lib.rd import rd_points, rd_table

    curve = {"quality": [10, 50], "bpp": [0.25, 1.0], "psnr": [27.5, 33.25], "msssim": [0.9, float("nan")]}
    assert rd_points(curve, "quality") == [{"quality": 10, "bpp": 0.25, "psnr": 27.5, "msssim": 0.9},
                                           {"quality": 50, "bpp": 1.0, "psnr": 33.25, "msssim": curve["msssim"][1]}]
    lines = rd_table(curve, "quality").splitlines()
    assert lines[0].split() == ["quality", "bpp", "PSNR", "dB", "MS-SSIM"]
    assert lines[1].split() == ["10", "0.2500", "27.500", "0.9000"] and lines[2].split()[-1] == "nan"
    with pytest.raises(KeyError):
        rd_points(curve, "rate")  # the knob must be named as the curve names it


def test_psnr_at_rate_goes_through_the_points_and_never_extrapolates():
    assert np.allclose(psnr_at_rate(BPP, PSNR, BPP), PSNR)
    between = psnr_at_rate(BPP, PSNR, [0.3, 1.0])
    assert PSNR[1] < between[0] < PSNR[2] and PSNR[4] < between[1] < PSNR[5]
    # The same interpolant as the BD-rate's: a curve shifted up by 1 dB is 1 dB above everywhere.
    assert np.allclose(psnr_at_rate(BPP, PSNR + 1.0, [0.3, 1.0]) - between, 1.0)
    assert np.isnan(psnr_at_rate(BPP, PSNR, [0.1, 3.0])).all()
    order = np.random.default_rng(1).permutation(len(BPP))
    assert np.allclose(psnr_at_rate(BPP[order], PSNR[order], [0.3, 1.0]), between)
    with pytest.raises(ValueError, match="positive"):
        psnr_at_rate(BPP, PSNR, [0.0])


def test_chained_bd_rates_are_exact_over_a_common_window():
    """Three curves over one PSNR window: B against A equals the chain of B and A against the anchor."""
    psnr = np.linspace(28, 36, 7)
    anchor = np.exp(0.4 * (psnr - 28)) * 0.2
    a = anchor * np.exp(-0.25 + 0.02 * (psnr - 28))     # not a constant factor: the gap changes along the curve
    b = anchor * np.exp(-0.55 + 0.05 * np.sin(psnr))
    window = (29.0, 35.0)
    a_vs_anchor = rd.bd_rate(anchor, psnr, a, psnr, window=window)
    b_vs_anchor = rd.bd_rate(anchor, psnr, b, psnr, window=window)
    b_vs_a = rd.bd_rate(a, psnr, b, psnr, window=window)
    assert rd.chained_bd_rate(b_vs_anchor, a_vs_anchor) == pytest.approx(b_vs_a, abs=1e-9)
    assert rd.chained_bd_rate(-40.0, -25.0) == pytest.approx(-20.0)   # 0.60 / 0.75 = 0.8
    assert rd.chained_bd_rate(-25.0, -25.0) == 0.0
