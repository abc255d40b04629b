"""Do weights trained under one Keras backend give the same forward pass under another? (issue 13)

A device run (``python -m course_lib.device_training``, JAX) saves ``codec.weights.h5``; the course
ships and evaluates it under TensorFlow. Where the run trained, save a probe: the codec's bits and
reconstructions of fixed, seeded test images at every rate point (float32, and as the run's
precision trained it). Here, load the same weights under TensorFlow and compare:

    KERAS_BACKEND=jax python tools/check_device_weights.py RUN --save probe.npz
    python tools/check_device_weights.py RUN --compare probe.npz      # the TensorFlow .venv

RUN is a run folder (config.json and codec.weights.h5, or its parts with history.json). Prints the
largest relative difference of the bits and the largest difference of x_hat (0-255 scale) per rate
point; exits 1 when one is above --tolerance-bits or --tolerance-pixels.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from course_lib.device_training import join_parts  # noqa: E402
from course_lib.runs import CODEC_WEIGHTS  # noqa: E402
from course_lib.training_setup import TrainConfig, build_codec  # noqa: E402


def probe_images(size: int = 128, count: int = 2, seed: int = 0) -> np.ndarray:
    """Seeded test images (count, size, size, 3) in [0, 1]: smooth colour fields, an edge and grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(count):
        phase = rng.uniform(0, 2 * np.pi, 3)
        smooth = 0.5 + 0.3 * np.sin(2 * np.pi * (x[..., None] * rng.uniform(0.5, 3, 3) + phase))
        edge = 0.2 * (x + 0.3 * y > rng.uniform(0.3, 0.7))[..., None]
        images.append(np.clip(smooth + edge + rng.normal(0, 0.04, (size, size, 3)), 0, 1))
    return np.stack(images).astype(np.float32)


def forward(run: Path, precision: str) -> dict:
    """bits (R, B) and x_hat (R, B, H, W, 3) of the probe images at every rate point, rounded latents."""
    config = TrainConfig(**json.loads((run / "config.json").read_text()))
    codec = build_codec(config, precision=precision)
    weights = run / CODEC_WEIGHTS
    if not weights.is_file():  # a device run sends its weights back in parts
        copy = Path(tempfile.mkdtemp())
        for name in ["history.json", *json.loads((run / "history.json").read_text())["weights_parts"]]:
            shutil.copy(run / name, copy / name)
        weights = join_parts(copy)
    codec.load_weights(str(weights))
    images = probe_images()
    outputs = [codec(images, rate=float(r), training=False) for r in range(codec.num_rates)]
    return {"bits": np.stack([keras.ops.convert_to_numpy(o["bits"]) for o in outputs]),
            "x_hat": np.stack([keras.ops.convert_to_numpy(o["x_hat"]) for o in outputs])}


def differences(mine: dict, theirs: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per rate point: largest relative difference of the bits, largest |x_hat difference| on 0-255."""
    bits = np.max(np.abs(mine["bits"] - theirs["bits"]) / np.maximum(np.abs(theirs["bits"]), 1.0), axis=1)
    pixels = np.max(np.abs(mine["x_hat"] - theirs["x_hat"]), axis=(1, 2, 3, 4)) * 255.0
    return bits, pixels


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--save", help="write the probe (.npz) computed under this process's backend")
    action.add_argument("--compare", help="compare this backend's float32 forward pass with a saved probe")
    parser.add_argument("--tolerance-bits", type=float, default=1e-3, help="relative")
    parser.add_argument("--tolerance-pixels", type=float, default=0.5, help="0-255 scale")
    args = parser.parse_args(argv)
    run, backend = Path(args.run), keras.backend.backend()
    trained_as = json.loads((run / "config.json").read_text()).get("precision", "float32")
    if args.save:
        probe = {f"{key}_float32": value for key, value in forward(run, "float32").items()}
        probe.update({f"{key}_trained": value for key, value in forward(run, trained_as).items()})
        np.savez_compressed(args.save, backend=backend, precision=trained_as, **probe)
        print(f"{args.save}: {backend}, bits per rate point (float32) {probe['bits_float32'].mean(axis=1).round(1)}")
        return 0
    saved = np.load(args.compare)
    theirs = {key: saved[f"{key}_float32"] for key in ("bits", "x_hat")}
    mine = forward(run, "float32")
    bits, pixels = differences(mine, theirs)
    print(f"{backend} float32 vs {saved['backend']} float32, per rate point:")
    print(f"  bits, largest relative difference: {np.array2string(bits, precision=2)}")
    print(f"  x_hat, largest difference (0-255): {np.array2string(pixels, precision=3)}")
    if str(saved["precision"]) != "float32":
        trained = {key: saved[f"{key}_trained"] for key in ("bits", "x_hat")}
        bits_t, pixels_t = differences(trained, theirs)
        print(f"  ({saved['backend']} {saved['precision']} vs its float32: bits {np.array2string(bits_t, precision=2)},"
              f" x_hat {np.array2string(pixels_t, precision=2)})")
    ok = bool(np.all(bits <= args.tolerance_bits) and np.all(pixels <= args.tolerance_pixels))
    print("same forward pass" if ok else "DIFFERENT: above the tolerance")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
