"""Shipping: a training run becomes weights in ``data/weights`` with their full provenance (notebooks 07, 08).

``python -m course_lib ship --run RUN [--name NAME]`` (or, for a codec run, the older
``python -m course_lib train --out RUN --ship NAME``) copies a run's weights into a weights folder
and writes their manifest entry (:func:`course_lib.registry.write_manifest`): the file and its
SHA-256, the configuration, how they were trained (command, data, steps, wall time, machine and
date, both from the run's record), a *check* on a course photo that a test re-measures from the
shipped file, and the Kodak results measured on the spot (:mod:`course_lib.evaluate`).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import tensorflow as tf

from . import metrics
from .config import WEIGHTS_DIR
from .data import course_photo, image_paths, kodak_dir, load_kodak
from .evaluate import learned_rd_curve
from .rd import rd_points
from .models import load_codec, save_codec
from .registry import WeightsError, find_entry, read_manifest, weights_provenance, write_manifest
from .restoration import (DEFAULT_MODEL as RESTORATION_MODEL, RestorationNet, benchmark_summary,
                          evaluate_restoration, jpeg_artefacts, restore, results_table, save_restorer)
from .restoration_training import RestorationTrainConfig, build_restorer
from .runs import RESTORATION_WEIGHTS, machine, read_record, run_kind
from .training import load_run, training_command
from .training_setup import start_provenance

__all__ = ["CHECK_IMAGE", "CHECK_QUALITY", "CHECK_RATE", "codec_check", "ship", "ship_codec", "ship_restoration",
           "shipped_check"]

#: The image every shipped model is re-checked on (bundled with scikit-image, so the check needs
#: no Kodak folder): its numbers are stored in the manifest and re-measured by the tests.
CHECK_IMAGE = "astronaut"
#: JPEG quality and learned-codec rate at which a restoration network is re-checked.
CHECK_QUALITY, CHECK_RATE = 10, 0
#: The learned codec's default name when shipped.
CODEC_MODEL = "learned_codec"


def _how_trained(record: dict) -> dict:
    """Steps, wall time, machine and date of a run's record (older records lack the last two: now)."""
    return {"steps": record["steps"], "wall_seconds": round(record["wall_seconds"]),
            "machine": record.get("machine") or machine(tf.__version__),
            "date": record.get("date") or datetime.date.today().isoformat()}


def codec_check(codec) -> dict:
    """Bytes, bpp and PSNR of every rate point of ``codec`` on :data:`CHECK_IMAGE`, from real files.

    Stored as a shipped codec's ``check``; tests re-measure it from the shipped weights. Used by the command line
    (``ship``).
    """
    image = course_photo(CHECK_IMAGE)
    check = {"image": CHECK_IMAGE, "points": []}
    for rate in range(codec.num_rates):
        data = codec.compress(image, rate)
        decoded = codec.decompress(data)
        check["points"].append({"rate": rate, "bytes": len(data),
                                "bpp": metrics.bits_per_pixel(len(data), image.shape),
                                "psnr": metrics.psnr(image, decoded)})
    return check


def ship_codec(run_dir, name: str = CODEC_MODEL, folder=None, kodak=None, progress: bool = True) -> dict:
    """Turn a codec training run into shipped weights with full provenance; returns the manifest entry.

    Loads ``run_dir/codec.weights.h5``, freezes the entropy tables, saves the
    codec with :func:`course_lib.models.save_codec`, and adds to its manifest
    entry: ``training`` (command, data, lambdas, steps, wall time, machine,
    date), ``check`` (:func:`codec_check`) and, when a Kodak folder is given,
    ``kodak`` (mean bpp / PSNR / MS-SSIM per rate point). Used by the command line (``ship``,
    ``train --ship``).
    """
    codec, config, record = load_run(run_dir)
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    # Where the run started: as its record measured it when training began (the name it started from may
    # hold other weights now); for older runs, measured here, before saving, since the new weights may
    # replace the very entry the run started from.
    start = record["start"] if "start" in record else start_provenance(config)
    save_codec(codec, name, folder)
    last = {k: v[-1] for k, v in record["history"].items() if k != "epoch" and v}
    # A run of course_lib.device_training records its own command and data subset.
    training = {"command": record.get("command") or training_command(config),
                "data": record.get("data") or f"{config.data}: natural photos (Urban100, Sun-Hays 80, BSDS500 "
                                              f"train+val; not shipped), {config.val_count} held out for validation; "
                                              "never Kodak",
                "lmbdas": config.lmbdas, "batch_size": config.batch_size, "crop": config.crop,
                **_how_trained(record),
                "final_validation": {k: round(v, 4) for k, v in last.items() if k.startswith("val_")}, **start}
    extra = {"training": training, "check": codec_check(codec)}
    if kodak:
        extra["kodak"] = rd_points(learned_rd_curve(codec, load_kodak(kodak), progress=progress))
    manifest = read_manifest(folder)
    manifest[name].update(extra)
    write_manifest(folder, manifest)
    return manifest[name]


def shipped_check(model: RestorationNet, codec=None) -> dict:
    """PSNR (dB) of :data:`CHECK_IMAGE` before and after restoration.

    Without ``codec`` the degradation is JPEG at :data:`CHECK_QUALITY`; with
    a learned codec it is a real file at rate :data:`CHECK_RATE` (the
    ``"rate"`` key says which). Stored in the manifest entry so that a test
    can check that the shipped weights still give the published result.
    Used by the command line (``ship``).
    """
    image = course_photo(CHECK_IMAGE)
    if codec is None:
        degraded, setting = jpeg_artefacts(image, CHECK_QUALITY), {"quality": CHECK_QUALITY}
    else:
        degraded, setting = codec.decompress(codec.compress(image, CHECK_RATE)), {"rate": CHECK_RATE}
    return {"image": CHECK_IMAGE, **setting, "psnr_before": metrics.psnr(image, degraded),
            "psnr_after": metrics.psnr(image, restore(degraded, model))}


def ship_restoration(run_dir, name: str = RESTORATION_MODEL, folder=None, kodak=None, codec=None) -> dict:
    """Turn a restoration training run into shipped weights, measured on Kodak; returns the manifest entry.

    ``kodak``: the Kodak folder (default :func:`course_lib.data.kodak_dir`; required).
    ``codec``: the codec for the learned-codec rows (default: the run's ``--codec`` when it trained
    on the codec's artefacts, else the shipped codec; rows skipped with a note when none is shipped).
    Prints the results table. Used by the command line (``ship``; notebook 08 shows the shipped results).
    """
    run = Path(run_dir)
    config, record = read_record(run)
    config = RestorationTrainConfig(**config)
    model = build_restorer(config)
    model.load_weights(run / RESTORATION_WEIGHTS)
    try:
        # A network trained on a codec's artefacts is measured (and checked) on that codec.
        learned = load_codec(codec or (config.codec if "codec" in config.degradations else None))
    except WeightsError as exc:
        if config.degradations == ["codec"]:
            raise WeightsError(f"the run was trained on the learned codec only, and it cannot be loaded: {exc}") \
                from None
        print(f"note: no learned codec weights ({exc}); learned-codec rows skipped")
        learned = None
    kodak = Path(kodak) if kodak else kodak_dir()
    if kodak is None:
        raise FileNotFoundError("Kodak not found (pass --kodak DIR)")
    results = evaluate_restoration(model, load_kodak(kodak), codec=learned)
    print(results_table(results))
    history = record["history"]
    training = {"command": record["command"],
                "data": f"{config.data}: {len(image_paths(config.data))} natural photos, {config.val_count} held out "
                        "for validation; never Kodak",
                **_how_trained(record),
                "degradations": config.degradations, "qualities": config.qualities, "crop": config.crop,
                "batch_size": config.batch_size,
                "final_validation": {"input_psnr": round(record["validation_input_psnr"], 3),
                                     "restored_psnr": round(history["val_psnr_metric"][-1], 3)}}
    if config.init:
        training["init"] = weights_provenance(config.init)
    if config.codec and "codec" in config.degradations:
        codec_folder, _, codec_entry = find_entry(config.codec)
        training["codec"] = weights_provenance(codec_folder / codec_entry["file"])
    measured = {"kodak": {**benchmark_summary(results),
                          "delta_msssim": {name: r["delta_msssim"] for name, r in results.items()},
                          "psnr_before": {name: r["psnr_before"] for name, r in results.items()},
                          "psnr_after": {name: r["psnr_after"] for name, r in results.items()}},
                "check": shipped_check(model, learned if config.degradations == ["codec"] else None)}
    path = save_restorer(model, name, folder, training=training, metrics=measured)
    print(f"wrote {path} and its entry {name!r} in {path.parent / 'manifest.json'}")
    return read_manifest(path.parent)[name]


def ship(run_dir, name: str | None = None, folder=None, kodak=None, codec=None) -> dict:
    """Ship a codec run or a restoration run (told apart by their weights file); returns the manifest entry.

    ``name`` defaults to ``learned_codec`` for a codec run and :data:`course_lib.restoration.DEFAULT_MODEL`
    for a restoration run; ``codec`` applies to restoration runs only. Used by the command line (``ship``).
    """
    if run_kind(run_dir) == "restoration":
        return ship_restoration(run_dir, name or RESTORATION_MODEL, folder, kodak, codec)
    if codec:
        raise ValueError(f"{run_dir}: --codec applies to restoration runs; this is a codec run")
    return ship_codec(run_dir, name or CODEC_MODEL, folder, kodak)
