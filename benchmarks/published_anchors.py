"""Where the course's codecs stand against published learned codecs: BD-rates on Kodak with their PSNR windows.

    python benchmarks/published_anchors.py [--results docs/results/kodak_rd_hyperprior.json] [--window 28 35]

Reads an ``evaluate --json`` result (the course codec's Kodak points and the
classical codecs measured in the same run) and CompressAI's published Kodak
curves (``docs/results/published_kodak_compressai.json``, with their source).
Prints the BD-rate (PCHIP, RGB PSNR) of every curve against JPEG 4:2:0 of
that run, over the curves' overlap and over ``--window``, each with the PSNR
interval it averages over: a BD-rate without its window means little, since
the gap between codecs changes along the curve. The published curves come from
another machine and another JPEG-free pipeline, but JPEG is ours, measured on
the same 24 images, so every row shares one anchor.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "docs" / "results" / "published_kodak_compressai.json"


def rows(results: dict, published: dict, window) -> list[dict]:
    from course_lib.rd import bd_rate, bd_window

    anchor = results["baselines"]["jpeg420"]
    curves = {results.get("model", "course codec"): {k: [p[k] for p in results["points"]] for k in ("bpp", "psnr")}}
    curves.update({name: results["baselines"][name] for name in ("webp", "jpeg2000")})
    curves.update(published["models"])
    out = []
    for name, curve in curves.items():
        row = {"name": name}
        for key, win in (("overlap", None), ("window", window)):
            try:
                row[key] = bd_rate(anchor["bpp"], anchor["psnr"], curve["bpp"], curve["psnr"], window=win)
                row[key + "_db"] = bd_window(anchor["psnr"], curve["psnr"], win)
            except ValueError:
                row[key], row[key + "_db"] = None, None
        out.append(row)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=str(ROOT / "docs" / "results" / "kodak_rd_hyperprior.json"),
                        help="a JSON file written by python -m course_lib.evaluate --json")
    parser.add_argument("--window", type=float, nargs=2, default=(28.0, 35.0), metavar=("LOW", "HIGH"))
    args = parser.parse_args(argv)
    try:
        results = json.loads(Path(args.results).read_text())
        published = json.loads(PUBLISHED.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"BD-rate against JPEG 4:2:0 measured in `{results.get('command', args.results)}` "
          f"({results['images']} images; PCHIP, RGB PSNR; negative = fewer bits)")
    low, high = args.window
    print(f"  {'codec':>62} {'overlap':>8} {'over (dB)':>13} {f'{low:g}-{high:g} dB':>9}")
    for row in rows(results, published, tuple(args.window)):
        overlap = "n/a" if row["overlap"] is None else f"{row['overlap']:+.1f} %"
        span = "" if row["overlap_db"] is None else f"{row['overlap_db'][0]:.2f}-{row['overlap_db'][1]:.2f}"
        fixed = "n/a" if row["window"] is None else f"{row['window']:+.1f} %"
        print(f"  {row['name']:>62} {overlap:>8} {span:>13} {fixed:>9}")
    print(f"  (n/a: the curve does not span the window; no extrapolation. Published curves: {PUBLISHED.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
