"""Rate-distortion curves: Bjøntegaard delta rate and delta PSNR (notebook 01).

Two codecs are compared by their RD curves, (bits per pixel, PSNR) points, not
by one operating point. The Bjøntegaard delta (BD) measures the average gap
between two curves over the PSNR (or rate) interval where both are defined:

* BD-rate: the mean horizontal gap in log-rate, reported as a percentage,
  ``100 * (exp(mean(log R_test - log R_anchor)) - 1)``. Negative means the test
  codec needs fewer bits for the same quality (it wins).
* BD-PSNR: the mean vertical gap in dB at the same log-rate. Positive means the
  test codec gives higher quality for the same rate.

Two ways to interpolate between the measured points:

* ``"cubic"``: the original proposal, a least-squares cubic polynomial through
  (PSNR, log-rate) (Bjøntegaard 2001, VCEG-M33). Needs at least 4 points.
* ``"pchip"``: piecewise cubic Hermite interpolation (monotone, no overshoot),
  integrated exactly; the practice of the JVET/AOM common test conditions and
  of most learned-compression papers. Needs at least 2 points.

Both agree within a fraction of a percent on smooth curves; ``"pchip"`` is the
default because a cubic polynomial can wiggle on curves with 6-8 points.

An RD curve is a dict of lists, one entry per setting of the codec's knob:
``{setting: [...], "bpp": [...], "psnr": [...], "msssim": [...]}``, where the knob is named by the
codec's own word (``"quality"`` for the classical codecs, ``"rate"`` for the learned codec's rate
levels). :func:`rd_points` turns it into the list of points the results files hold and
:func:`rd_table` prints it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["METHODS", "bd_psnr", "bd_rate", "bd_window", "chained_bd_rate", "psnr_at_rate", "rd_points",
           "rd_table"]

METHODS = ("pchip", "cubic")


def _prepare(x, y, name: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one curve and sort it by ``x`` (the integration variable)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{name}: rate and quality have different lengths ({x.size} vs {y.size})")
    needed = 4 if method == "cubic" else 2
    if x.size < needed:
        raise ValueError(f"{name}: method {method!r} needs at least {needed} RD points, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"{name}: RD points must be finite (a lossless point has PSNR = inf; drop it)")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if np.any(np.diff(x) == 0):
        duplicates = np.unique(x[1:][np.diff(x) == 0])
        raise ValueError(f"{name}: repeated values {duplicates.tolist()} on the integration axis; "
                         "a curve must be a function of it (average or drop the duplicates)")
    return x, y


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")


def _log_rate(rate, name: str) -> np.ndarray:
    rate = np.asarray(rate, dtype=np.float64)
    if np.any(~np.isfinite(rate)) or np.any(rate <= 0):
        raise ValueError(f"{name}: rates must be positive and finite (bits per pixel or bytes)")
    return np.log(rate)


def _mean_over(x: np.ndarray, y: np.ndarray, low: float, high: float, method: str) -> float:
    """Mean of the interpolant of y(x) over [low, high]."""
    if method == "cubic":
        poly = np.polynomial.Polynomial.fit(x, y, 3)
        integral = poly.integ()
        return float((integral(high) - integral(low)) / (high - low))
    from scipy.interpolate import PchipInterpolator

    return float(PchipInterpolator(x, y).integrate(low, high) / (high - low))


def _overlap(xa: np.ndarray, xt: np.ndarray, axis: str) -> tuple[float, float]:
    low, high = max(xa[0], xt[0]), min(xa[-1], xt[-1])
    if not low < high:
        raise ValueError(f"the two curves do not overlap in {axis}: anchor spans "
                         f"[{xa[0]:.4g}, {xa[-1]:.4g}], test spans [{xt[0]:.4g}, {xt[-1]:.4g}]")
    return low, high


def bd_rate(anchor_bpp, anchor_psnr, test_bpp, test_psnr, method: str = "pchip", window=None) -> float:
    """Bjøntegaard delta rate of ``test`` against ``anchor``, in percent.

    Args:
        anchor_bpp, anchor_psnr: the reference curve, N >= 2 (pchip) or N >= 4
            (cubic) points in any order; rates in bpp (or bytes: only ratios matter),
            quality in dB (PSNR, or MS-SSIM in dB).
        test_bpp, test_psnr: the curve under test, same units.
        method: ``"pchip"`` (default) or ``"cubic"``.
        window: ``(low, high)`` in dB: average over this quality interval
            instead of the whole overlap; both curves must span it (no
            extrapolation). :func:`bd_window` says which interval is used.

    Returns:
        The average rate difference over the overlapping quality interval, in
        percent: -20 means the test codec needs 20 % fewer bits.

    Raises ValueError for too few points, non-finite or non-positive values,
    repeated quality values, or curves whose quality ranges do not overlap.
    Introduced in notebook 01.
    """
    _check_method(method)
    qa, ra = _prepare(anchor_psnr, _log_rate(anchor_bpp, "anchor"), "anchor", method)
    qt, rt = _prepare(test_psnr, _log_rate(test_bpp, "test"), "test", method)
    low, high = bd_window(anchor_psnr, test_psnr, window)
    mean_gap = _mean_over(qt, rt, low, high, method) - _mean_over(qa, ra, low, high, method)
    return float((np.exp(mean_gap) - 1.0) * 100.0)


def psnr_at_rate(bpp, psnr, at_bpp) -> np.ndarray:
    """The PSNR of the curve ``(bpp, psnr)`` at the rates ``at_bpp``: PCHIP through (log-rate, PSNR), as the
    BD-rate interpolates; ``nan`` outside the curve's measured rates (no extrapolation).

    What "a point below JPEG's curve at its own bpp" means: ``psnr_learned - psnr_at_rate(jpeg_bpp,
    jpeg_psnr, bpp_learned) < 0``. Used by the command line (``evaluate`` prints it for every point).
    """
    from scipy.interpolate import PchipInterpolator

    rate, quality = _prepare(_log_rate(bpp, "curve"), psnr, "curve", "pchip")
    at = _log_rate(at_bpp, "at_bpp")
    inside = (at >= rate[0]) & (at <= rate[-1])
    return np.where(inside, PchipInterpolator(rate, quality)(np.clip(at, rate[0], rate[-1])), np.nan)


def bd_window(anchor_psnr, test_psnr, window=None) -> tuple[float, float]:
    """The quality interval (dB) a BD-rate averages over: the curves' overlap, or ``window``.

    Raises ValueError when the curves do not overlap, or when ``window`` is
    given and one of the curves does not span it. Every BD-rate the course
    prints states this interval. Introduced in notebook 12.
    """
    qa = np.sort(np.asarray(anchor_psnr, np.float64).ravel())
    qt = np.sort(np.asarray(test_psnr, np.float64).ravel())
    low, high = _overlap(qa, qt, "quality (dB)")
    if window is None:
        return float(low), float(high)
    w_low, w_high = float(window[0]), float(window[1])
    if not w_low < w_high:
        raise ValueError(f"window must be (low, high) with low < high, got {window}")
    if w_low < low or w_high > high:
        raise ValueError(f"the curves overlap in [{low:.2f}, {high:.2f}] dB and do not span the window "
                         f"[{w_low:g}, {w_high:g}] dB")
    return w_low, w_high


def chained_bd_rate(test_vs_anchor: float, reference_vs_anchor: float) -> float:
    """BD-rate (%) of a test codec against a reference codec, from both BD-rates (%) against one anchor.

    Rates multiply: the test codec needs ``1 + test/100`` times the anchor's bits, the reference
    ``1 + reference/100`` times, so against the reference it needs their ratio. Exact when both
    BD-rates average over the same PSNR window (their mean log-rate gaps then subtract); only
    approximate when their windows differ. Introduced in notebook 01 (its exercise 3 checks with it).
    """
    return 100.0 * ((1.0 + test_vs_anchor / 100.0) / (1.0 + reference_vs_anchor / 100.0) - 1.0)


def bd_psnr(anchor_bpp, anchor_psnr, test_bpp, test_psnr, method: str = "pchip") -> float:
    """Bjøntegaard delta PSNR of ``test`` against ``anchor``, in dB.

    Same arguments and errors as :func:`bd_rate`; the curves are integrated over
    their overlapping log-rate interval. Positive means the test codec gives a
    higher quality at the same rate. Introduced in notebook 01.
    """
    _check_method(method)
    ra, qa = _prepare(_log_rate(anchor_bpp, "anchor"), anchor_psnr, "anchor", method)
    rt, qt = _prepare(_log_rate(test_bpp, "test"), test_psnr, "test", method)
    low, high = _overlap(ra, rt, "rate")
    return _mean_over(rt, qt, low, high, method) - _mean_over(ra, qa, low, high, method)


def rd_points(curve: dict, setting: str = "rate") -> list[dict]:
    """An RD curve as a list of points ``{setting: s, "bpp": b, "psnr": p, "msssim": m}`` (results files, manifests).

    ``setting`` names the curve's knob (``"rate"`` or ``"quality"``). Used by the command line (``evaluate``, ``ship``).
    """
    return [{setting: s, "bpp": b, "psnr": p, "msssim": m}
            for s, b, p, m in zip(curve[setting], curve["bpp"], curve["psnr"], curve["msssim"])]


def rd_table(curve: dict, setting: str = "rate") -> str:
    """An RD curve as a text table: the knob ``setting``, bpp, PSNR (dB) and MS-SSIM, one row per point.

    The one table printer of the command line (``evaluate``, ``baselines``); MS-SSIM not measured shows ``nan``.
    """
    rows = [f"  {setting:>8} {'bpp':>7} {'PSNR dB':>8} {'MS-SSIM':>8}"]
    for s, b, p, m in zip(curve[setting], curve["bpp"], curve["psnr"], curve["msssim"]):
        rows.append(f"  {s:>8g} {b:>7.4f} {p:>8.3f} {m:>8.4f}")
    return "\n".join(rows)
