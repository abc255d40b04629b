"""The course's benchmarks of trained models: the learned codec against the classical codecs and the
restoration networks' gains (notebooks 07, 08).

    python -m course_lib evaluate --data DIR [--weights NAME_OR_PATH] [--json PATH] [--plot PATH]
    python -m course_lib evaluate --restoration [NAME_OR_PATH] --data DIR [--json PATH]
                                  [--learned-restoration NAME_OR_PATH]

(``python -m course_lib.evaluate ...`` is the same command; the classical codecs alone:
``python -m course_lib baselines``, :func:`course_lib.baselines.classical_benchmark`.) For every rate point of the codec,
each image is compressed to a real ``.rcz`` file and decompressed from it; the rate is the file's
size (header included), the distortion is measured on the decoded pixels. JPEG 4:2:0, WebP and
JPEG 2000 are measured on the same images in the same run, and the Bjøntegaard delta rate (PCHIP)
of the learned codec against each is reported.
"""

from __future__ import annotations

if __name__ == "__main__":  # `python -m course_lib.evaluate ARGS`: an alias of `python -m course_lib evaluate ARGS`
    import runpy
    import sys

    sys.argv[1:1] = ["evaluate"]
    runpy.run_module("course_lib", run_name="__main__", alter_sys=True)  # exits

import os
import time
from typing import Sequence

import numpy as np

from . import metrics
from .baselines import image_list, rd_curve
from .data import load_folder
from .json_files import write_json
from .models import load_codec
from .plots import rd_plot
from .progress import progress as progress_line
from .rd import bd_rate, bd_window, psnr_at_rate, rd_points, rd_table
from .registry import DEFAULT_MODEL, WeightsError, find_entry
from .restoration import (DEFAULT_MODEL as RESTORATION_MODEL, LEARNED_MODEL, benchmark_summary,
                          evaluate_restoration, load_restorer, results_table)

__all__ = ["BD_WINDOW", "COMPARED", "EVALUATE_QUALITIES", "bd_windows", "codec_benchmark",
           "compare_with_baselines", "learned_rd_curve", "restoration_benchmark"]

#: Classical codecs the learned codec is compared with (jpeg420 is the anchor).
COMPARED = ("jpeg420", "webp", "jpeg2000")


def learned_rd_curve(codec, images, rates: Sequence[float] | None = None, msssim: bool = True,
                     progress: bool = True) -> dict[str, list]:
    """Mean bpp / PSNR / MS-SSIM per rate point, from real files: ``{"rate", "bpp", "psnr", "msssim"}``.

    ``images``: list or ``{name: image}`` dict of uint8 RGB arrays (or one image). ``rates``
    default to the codec's trained levels 0 .. num_rates - 1. Each image is
    compressed with ``codec.compress`` and decoded with ``codec.decompress``.
    Introduced in notebook 07.
    """
    images = image_list(images)
    rates = list(range(codec.num_rates)) if rates is None else list(rates)
    jobs = [(rate, image) for rate in rates for image in images]
    rows = []
    for rate, image in progress_line(jobs, desc="learned codec", enabled=progress):
        data = codec.compress(image, rate)
        decoded = codec.decompress(data)
        rows.append((metrics.bits_per_pixel(len(data), image.shape), metrics.psnr(image, decoded),
                     metrics.ms_ssim(image, decoded) if msssim else np.nan))
    curve = {"rate": rates, "bpp": [], "psnr": [], "msssim": []}
    for k in range(len(rates)):
        group = rows[k * len(images):(k + 1) * len(images)]  # this rate's images
        for column, key in enumerate(("bpp", "psnr", "msssim")):
            curve[key].append(float(np.mean([row[column] for row in group])))
    return curve


#: Quality ladders that differ from ``baselines.DEFAULT_QUALITIES`` here: WebP's lowest default
#: (quality 5) gives 28.1 dB on Kodak, so quality 0 is added for BD-rates over windows from 28 dB.
EVALUATE_QUALITIES = {"webp": (0, 5, 15, 30, 50, 70, 80, 88, 92)}

#: The PSNR window (dB) of the course's headline BD-rates on Kodak (issue 13: from below
#: the factorized codec's lowest point to where photos are stored).
BD_WINDOW = (28.0, 35.0)


def compare_with_baselines(learned: dict, baseline_curves: dict, window=None) -> dict[str, float]:
    """BD-rate (PCHIP, percent) of the learned curve against each baseline curve.

    Over the curves' PSNR overlap, or over ``window`` (dB) when given.
    ``nan`` where the curves do not overlap in PSNR or do not span ``window``
    (BD-rate is undefined there). :func:`bd_windows` gives the intervals.
    Introduced in notebook 07.
    """
    out = {}
    for name, curve in baseline_curves.items():
        try:
            out[name] = bd_rate(curve["bpp"], curve["psnr"], learned["bpp"], learned["psnr"], "pchip", window)
        except ValueError:
            out[name] = float("nan")
    return out


def bd_windows(learned: dict, baseline_curves: dict, window=None) -> dict[str, list | None]:
    """The PSNR interval [low, high] (dB) behind each BD-rate of :func:`compare_with_baselines`; None if undefined.

    Used by the command line (``evaluate``).
    """
    out = {}
    for name, curve in baseline_curves.items():
        try:
            out[name] = list(bd_window(curve["psnr"], learned["psnr"], window))
        except ValueError:
            out[name] = None
    return out


def name_of(weights) -> str:
    """The model a ``--weights`` argument names (the default model when None)."""
    return DEFAULT_MODEL if weights is None else str(weights)


def weights_sha256(weights) -> str:
    """The SHA-256 of the weights file a ``--weights`` argument names (from its manifest entry),
    so that a results file can be matched to the weights that produced it."""
    return find_entry(weights)[2]["sha256"]


def codec_benchmark(data, weights=None, json_path=None, plot_path=None, limit: int | None = None,
                    workers: int = 2, command: str | None = None) -> dict:
    """``python -m course_lib evaluate``: the learned codec against JPEG 4:2:0, WebP and JPEG 2000.

    Loads the images of ``data`` and the codec ``weights`` (name or path; default the shipped
    one), measures every curve from real files, prints the tables and the BD-rates (over the
    curves' overlap and over :data:`BD_WINDOW`), and writes the RD plot (``plot_path``, default
    ``rd_plot.png`` beside ``json_path``) and the results (``json_path``). Returns the results.
    Raises ``FileNotFoundError``, :class:`course_lib.data.ImageLoadError` or
    :class:`course_lib.registry.WeightsError` on bad input. Used by the command line.
    """
    images = load_folder(data, limit=limit)
    codec = load_codec(weights)
    started = time.perf_counter()
    print(f"{len(images)} images from {data}")
    learned = learned_rd_curve(codec, images)
    baselines = {name: rd_curve(images, name, qualities=EVALUATE_QUALITIES.get(name), workers=workers)
                 for name in COMPARED}
    bd = compare_with_baselines(learned, baselines)
    windows = bd_windows(learned, baselines)
    bd_fixed = compare_with_baselines(learned, baselines, BD_WINDOW)
    gaps = {name: [None if np.isnan(g) else round(float(g), 3) for g in
                   np.asarray(learned["psnr"]) - psnr_at_rate(curve["bpp"], curve["psnr"], learned["bpp"])]
            for name, curve in baselines.items()}
    print("learned codec (bpp from the real files)")
    print(rd_table(learned, "rate"))
    for name, gap in gaps.items():
        print(f"  dB above {name} at the same bpp: " + " ".join("n/a" if g is None else f"{g:+.2f}" for g in gap))
    for name, curve in baselines.items():
        print(name)
        print(rd_table(curve, "quality"))
    print(f"\nBD-rate of {name_of(weights)} (PCHIP, RGB PSNR; negative = fewer bits for the same quality)")
    print(f"  {'':>12} {'overlap':>8}  {'PSNR window':>15}   {f'{BD_WINDOW[0]:g}-{BD_WINDOW[1]:g} dB':>9}")
    for name, value in bd.items():
        window = "none" if windows[name] is None else f"{windows[name][0]:.2f}-{windows[name][1]:.2f} dB"
        fixed = "n/a" if np.isnan(bd_fixed[name]) else f"{bd_fixed[name]:+.1f} %"
        overlap = "n/a" if np.isnan(value) else f"{value:+.1f} %"
        print(f"  vs {name:>9}: {overlap:>9}  {window:>15}   {fixed:>9}")
    if any(np.isnan(v) for v in bd_fixed.values()):
        print(f"  (n/a: a curve does not span {BD_WINDOW[0]:g}-{BD_WINDOW[1]:g} dB; no extrapolation)")
    elapsed = time.perf_counter() - started
    print(f"{elapsed:.0f} s")

    plot_path = plot_path or (os.path.join(os.path.dirname(json_path) or ".", "rd_plot.png") if json_path else None)
    if plot_path:
        label = name_of(weights).replace("_", " ")
        fig = rd_plot({label: learned, **baselines}, highlight=label,
                      title=f"{len(images)} images from {os.path.basename(os.path.normpath(data))}")
        fig.savefig(plot_path, dpi=120)
        print(f"wrote {plot_path}")
    result = {"command": command, "points": rd_points(learned, "rate"),
              "model": name_of(weights), "weights_sha256": weights_sha256(weights),
              "psnr_above_baseline_at_same_bpp": gaps, "bd_rate": bd, "bd_rate_psnr_window": windows,
              f"bd_rate_{BD_WINDOW[0]:g}_{BD_WINDOW[1]:g}_db": bd_fixed,
              "baselines": baselines, "images": len(images), "seconds": round(elapsed, 1)}
    if json_path:
        # BD-rates of non-overlapping curves are nan, which JSON cannot hold: written as null.
        write_json(json_path, result)
        print(f"wrote {json_path}")
    return result


def restoration_benchmark(data, restoration=None, codec_weights=None, json_path=None, limit=None,
                          learned_restoration=None) -> dict:
    """``python -m course_lib evaluate --restoration``: the restoration networks' Delta PSNR, returned and printed.

    Loads the images of ``data``, the restoration network ``restoration`` for
    the JPEG rows (name or path; default :data:`course_lib.restoration.DEFAULT_MODEL`), the network
    ``learned_restoration`` for the learned codec's rows (default
    :data:`course_lib.restoration.LEARNED_MODEL` when shipped, otherwise the JPEG network, with a
    note) and the codec ``codec_weights`` (default the shipped one; when none
    is shipped the learned-codec rows are skipped with a note and
    ``learned_lowest_rate`` is null), prints the Delta-PSNR table and
    optionally writes the JSON of :func:`course_lib.restoration.benchmark_summary` plus the full table
    and the networks used. Raises on a missing folder, image, codec or network that was named.
    Used by the command line (notebook 08 quotes its results).
    """
    images = load_folder(data, limit=limit)
    model = load_restorer(restoration)
    try:
        codec = load_codec(codec_weights)
    except WeightsError as exc:
        if codec_weights is not None:  # a codec the user named must exist
            raise
        codec = None
        print(f"note: no learned codec weights ({exc}); learned-codec rows skipped")
    networks = {"jpeg": str(restoration or RESTORATION_MODEL), "learned": None}
    codec_model = model
    if codec is not None:
        networks["learned"] = str(learned_restoration or LEARNED_MODEL)
        try:
            codec_model = load_restorer(networks["learned"])
        except WeightsError as exc:
            if learned_restoration is not None:  # a network the user named must exist
                raise
            networks["learned"] = networks["jpeg"]
            print(f"note: no network trained on the learned codec ({exc}); its rows use the JPEG network")
    started = time.perf_counter()
    print(f"{len(images)} images from {data}; restoration network {model.restoration_config()}, "
          f"{model.count_params():,} parameters; networks used: {networks}")
    results = evaluate_restoration(model, images, codec=codec, codec_model=codec_model)
    summary = benchmark_summary(results)
    print(results_table(results))
    print("\nDelta PSNR (dB, RGB, restored minus decoded):")
    for name, value in summary["delta_psnr"].items():
        print(f"  {name:>20}: " + ("n/a (no codec weights)" if value is None else f"{value:+.2f}"))
    elapsed = time.perf_counter() - started
    print(f"{elapsed:.0f} s")
    result = {**summary, "results": results, "networks": networks, "images": len(images),
              "seconds": round(elapsed, 1)}
    if json_path:
        write_json(json_path, result)
        print(f"wrote {json_path}")
    return result
