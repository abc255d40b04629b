"""Does bfloat16 training pay? Steps per second float32 vs bfloat16, and quality after equal steps.

    python benchmarks/training_speed.py --data DIR [--steps 400] [--model hyperprior] [--json PATH]
    python benchmarks/training_speed.py --data DIR --init learned_hyperprior [--steps 400] [--json PATH]

Trains the same codec twice from the same seed on the same crops of ``--data``
(never Kodak): once in float32, once with E and D under Keras'
``mixed_bfloat16`` policy (GDN's normalisation, the latents, the hyperprior
and the likelihoods stay float32). For each it prints the median time per
step (after a warm-up that traces the graph), and the loss, bpp and PSNR of
held-out crops after the same number of steps (rounded latents, every rate
point averaged), both evaluated in float32 as a shipped codec runs, so that
the comparison is of the trained weights alone. The speed ratio is measured
in one process, one precision after the other, so both see the same machine.
On a CPU without AVX-512 BF16 (or AMX) bfloat16 is emulated and slower: the
table says so, it does not hide it.

From scratch, a few hundred steps say little about quality: both runs are far
from converged and their difference is mostly noise. ``--init NAME`` starts
both from a shipped codec instead (its architecture and lambdas from the
manifest), where the question is the one a long run asks: does training
onwards in bfloat16 keep the quality float32 training would reach?
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def config_for(args, precision: str = "float32"):
    """The benchmark's codec as a :class:`course_lib.training.TrainConfig` (no run folder)."""
    from course_lib.training import TrainConfig

    return TrainConfig(data=args.data, out="", lmbdas=args.lmbda, channels=args.channels,
                       latent_channels=args.latent_channels, model=args.model, precision=precision,
                       hyper_channels=args.hyper_channels, residual_stages=args.residual_stages)


def validate(codec, config, args, val_crops) -> dict:
    """Loss, bpp, MSE and PSNR of ``codec``'s weights on the held-out crops, run in float32 as shipped codecs run
    (rounded latents, every rate point averaged)."""
    import tensorflow as tf

    from course_lib.training import RateDistortionTrainer, build_codec

    evaluated = codec
    if config.precision != "float32":
        evaluated = build_codec(config, precision="float32")
        evaluated.set_weights(codec.get_weights())
    judge = RateDistortionTrainer(evaluated, args.lmbda)
    judge.compile()
    judge.built = True
    return judge.evaluate(tf.data.Dataset.from_tensor_slices(val_crops).batch(args.batch_size), verbose=0,
                          return_dict=True)


def run(precision: str, args, train_images, val_crops) -> dict:
    import keras
    import tensorflow as tf

    from course_lib.data import training_dataset
    from course_lib.training import RateDistortionTrainer, build_codec

    keras.utils.set_random_seed(args.seed)
    config = config_for(args, precision)
    codec = build_codec(config)
    if args.init_weights:
        codec.load_weights(args.init_weights)
    else:
        codec.initialize_gains(args.lmbda)
    trainer = RateDistortionTrainer(codec, args.lmbda)
    trainer.compile(optimizer=keras.optimizers.Adam(args.learning_rate, global_clipnorm=1.0))
    trainer.built = True
    dataset = training_dataset(train_images, crop=args.crop, batch_size=args.batch_size, seed=args.seed)

    class StepTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self.started)

    timer = StepTimes()
    started = time.perf_counter()
    trainer.fit(dataset, epochs=1, steps_per_epoch=args.steps, verbose=0, shuffle=False, callbacks=[timer])
    wall = time.perf_counter() - started
    result = validate(codec, config, args, val_crops)
    step_seconds = float(np.median(timer.times[args.warmup:]))
    return {"precision": precision, "steps": args.steps, "median_step_seconds": step_seconds,
            "steps_per_second": 1.0 / step_seconds, "wall_seconds": wall,
            **{f"val_{k}": float(v) for k, v in result.items()}}


def use_shipped(args) -> str | None:
    """With ``--init NAME``: take the shipped codec's architecture and lambdas into ``args`` and set
    ``args.init_weights``; returns an error message, or None. (Also used by gradient_noise.py.)"""
    from course_lib.registry import WeightsError, find_entry

    args.init_weights, args.residual_stages = None, None
    if not args.init:
        return None
    try:
        folder, args.init, entry = find_entry(args.init)
    except (OSError, WeightsError) as exc:
        return str(exc)
    shape = entry["config"]
    args.model = "hyperprior" if shape.get("kind") == "hyperprior" else "factorized"
    args.channels, args.latent_channels = shape["channels"], shape["latent_channels"]
    args.hyper_channels = shape.get("hyper_channels", args.hyper_channels)
    args.residual_stages = shape.get("residual_stages")
    args.lmbda = (entry.get("training") or {}).get("lmbdas") or args.lmbda  # untrained codecs: --lmbda
    if len(args.lmbda) != shape.get("num_rates", 1):
        return f"{args.init} has {shape.get('num_rates', 1)} rate point(s); give as many --lmbda"
    args.init_weights = folder / entry["file"]
    return None


def load_split(args):
    """(training photos, held-out photos) of ``args.data`` (``args.val_count`` held out), or an error message."""
    from course_lib.data import load_image
    from course_lib.runs import split_folder

    try:
        train_paths, val_paths = split_folder(args.data, args.val_count)
    except (OSError, ValueError) as exc:
        return str(exc)
    return [load_image(p) for p in train_paths], [load_image(p) for p in val_paths]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of training photos (never Kodak)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=20, help="first steps left out of the median")
    parser.add_argument("--model", default="hyperprior", choices=["factorized", "hyperprior"])
    parser.add_argument("--lmbda", type=float, nargs="+", default=[0.0067])
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--latent-channels", type=int, default=128)
    parser.add_argument("--hyper-channels", type=int, default=64)
    parser.add_argument("--init", help="start both runs from this shipped codec (its configuration and lambdas)")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--val-count", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")

    from course_lib.runs import center_crop

    problem = use_shipped(args)
    images = None if problem else load_split(args)
    if problem or isinstance(images, str):
        print(f"error: {problem or images}", file=sys.stderr)
        return 2
    train_images, val_images = images
    side = min(256, *(min(im.shape[:2]) for im in val_images)) // 64 * 64  # the hyperprior needs multiples of 64
    val_crops = np.stack([center_crop(im, side) for im in val_images]).astype(np.float32) / 255.0

    rows = [run(precision, args, train_images, val_crops) for precision in ("float32", "bfloat16")]
    before = None
    if args.init:  # the shipped weights themselves, the point both runs start from
        from course_lib.training import build_codec

        config = config_for(args)
        shipped = build_codec(config)
        shipped.load_weights(args.init_weights)
        before = {f"val_{k}": float(v) for k, v in validate(shipped, config, args, val_crops).items()}
    start = f"from the shipped {args.init}" if args.init else "from scratch"
    print(f"{args.model} codec, N={args.channels}, M={args.latent_channels}, batch {args.batch_size} x "
          f"{args.crop}^2, lambdas {args.lmbda}, {args.steps} steps each {start}, seed {args.seed}; "
          f"{platform.machine()}, {os.cpu_count()} cores; validation in float32")
    print(f"  {'precision':>9} {'s/step':>7} {'steps/s':>8} {'val loss':>9} {'val bpp':>8} {'val PSNR':>9}")
    for r in rows:
        print(f"  {r['precision']:>9} {r['median_step_seconds']:7.3f} {r['steps_per_second']:8.2f} "
              f"{r['val_loss']:9.4f} {r['val_bpp']:8.4f} {r['val_psnr']:9.2f}")
    if before:
        print(f"  {'start':>9} {'':>7} {'':>8} {before['val_loss']:9.4f} {before['val_bpp']:8.4f} "
              f"{before['val_psnr']:9.2f}   (the shipped weights)")
    ratio = rows[1]["median_step_seconds"] / rows[0]["median_step_seconds"]
    print(f"  time per step, bfloat16 / float32: {ratio:.2f}x (same process, same machine)")
    print(f"  after {args.steps} steps, bfloat16 - float32: {rows[1]['val_psnr'] - rows[0]['val_psnr']:+.2f} dB, "
          f"{100 * (rows[1]['val_bpp'] / rows[0]['val_bpp'] - 1):+.1f} % bpp")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": "python benchmarks/training_speed.py " + " ".join(argv or sys.argv[1:]),
                       "machine": f"{platform.machine()}, {os.cpu_count()} cores", "start": start,
                       "validation_precision": "float32", "validation_at_start": before, "rows": rows,
                       "bfloat16_over_float32_time": ratio}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
