"""Is one rate point per image a less noisy gradient than one per batch? Measured at a shipped codec.

    python benchmarks/gradient_noise.py --data DIR --init learned_hyperprior_wide [--batches 24] [--json PATH]

A variable-rate codec minimises one expected loss, E over the rate points r and the images x of
bpp + lambda_r * MSE. A batch that draws one rate point and a batch whose images each have their own
(every rate point equally often: ``training_setup.image_rates``, ``train --lambda-per-image``) are two
unbiased estimates of the same gradient, with different noise. On the same K batches of training crops
(``--data``, never Kodak), at the shipped weights in float32 with training-mode quantization noise, this
takes both gradients and prints, for each way of drawing and each part of the codec, the noise relative
to the mean gradient,

    v = sum_k ||g_k - mean g||^2 / ((K - 1) ||mean g||^2),

and the ratio v(per image) / v(per batch), measured in the same run on the same crops. A ratio of 0.5
is the noise of a batch twice as large, at no cost per step. K batches estimate v to about
+-sqrt(2 / (K - 1)) of itself: the table prints that too.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from training_speed import config_for, load_split, use_shipped  # noqa: E402  (benchmarks/ is on the path)

DRAWS = ("per batch", "per image")


def parts_of(codec) -> dict:
    """The codec's trainable variables in groups: transforms (E, D), gains, entropy model (the rest)."""
    transforms = {id(v) for layer in (codec.encoder, codec.decoder) for v in layer.trainable_variables}
    gains = {id(v) for v in (codec.log_gain, codec.log_inverse_gain)}
    groups = {"transforms E, D": [], "gains": [], "entropy model": []}
    for index, variable in enumerate(codec.trainable_variables):
        key = "transforms E, D" if id(variable) in transforms else "gains" if id(variable) in gains else \
            "entropy model"
        groups[key].append(index)
    return {name: indices for name, indices in groups.items() if indices}


def measure(args, train_images) -> dict:
    import keras
    import tensorflow as tf

    from course_lib.data import training_dataset
    from course_lib.training import RateDistortionTrainer, build_codec
    from course_lib.training_setup import image_rates

    keras.utils.set_random_seed(args.seed)
    codec = build_codec(config_for(args))
    codec.load_weights(args.init_weights)
    trainer = RateDistortionTrainer(codec, args.lmbda)
    variables = codec.trainable_variables
    groups = parts_of(codec)

    @tf.function
    def gradient(images, rate):
        with tf.GradientTape() as tape:
            loss = trainer.rate_distortion(images, training=True, rate=rate)[0]
        return [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]  # gathered gains: sparse

    rng = np.random.default_rng(args.seed)
    batches = iter(training_dataset(train_images, crop=args.crop, batch_size=args.batch_size, seed=args.seed))
    sums = {draw: [np.zeros(v.shape, np.float64) for v in variables] for draw in DRAWS}
    squares = {draw: {name: 0.0 for name in groups} for draw in DRAWS}
    for _ in range(args.batches):
        images = next(batches)
        rates = {"per batch": np.int32(rng.integers(len(args.lmbda))),
                 "per image": np.asarray(image_rates(args.batch_size, len(args.lmbda), rng.permutation), np.int32)}
        for draw in DRAWS:
            grads = [np.asarray(g, np.float64) for g in gradient(images, tf.constant(rates[draw]))]
            for total, g in zip(sums[draw], grads):
                total += g
            for name, indices in groups.items():
                squares[draw][name] += sum(float(np.sum(grads[i] ** 2)) for i in indices)
    k = args.batches
    rows = {}
    for name, indices in groups.items():
        row = {}
        for draw in DRAWS:
            mean_sq = sum(float(np.sum((sums[draw][i] / k) ** 2)) for i in indices)
            row[draw] = {"mean_gradient_norm": mean_sq ** 0.5,
                         "relative_noise": (squares[draw][name] - k * mean_sq) / ((k - 1) * mean_sq)}
        a = np.concatenate([sums["per batch"][i].ravel() for i in indices])
        b = np.concatenate([sums["per image"][i].ravel() for i in indices])
        row["cosine_of_mean_gradients"] = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        row["noise_ratio"] = row["per image"]["relative_noise"] / row["per batch"]["relative_noise"]
        rows[name] = row
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of training photos (never Kodak)")
    parser.add_argument("--init", required=True, help="the shipped codec to measure at (its architecture, lambdas)")
    parser.add_argument("--batches", type=int, default=24, help="K, batches (each gives one gradient per draw)")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--val-count", type=int, default=16, help="photos held out, as training holds them out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.batches < 3:
        parser.error("--batches must be at least 3")
    args.lmbda, args.model, args.hyper_channels, args.channels, args.latent_channels = [0.0067], "", 64, 0, 0
    problem = use_shipped(args)
    images = None if problem else load_split(args)
    if problem or isinstance(images, str):
        print(f"error: {problem or images}", file=sys.stderr)
        return 2
    if len(args.lmbda) < 2:
        print(f"error: {args.init} has one rate point: nothing to draw", file=sys.stderr)
        return 2
    rows = measure(args, images[0])
    spread = (2 / (args.batches - 1)) ** 0.5
    print(f"{args.init} (N={args.channels}, M={args.latent_channels}, {len(args.lmbda)} rate points), "
          f"{args.batches} batches of {args.batch_size} x {args.crop}^2 training crops, seed {args.seed}; "
          f"{platform.machine()}, {os.cpu_count()} cores")
    print(f"  relative noise v of one step's gradient (each v within about +-{100 * spread:.0f} % of itself)")
    print(f"  {'part':<16} {'v per batch':>12} {'v per image':>12} {'ratio':>6} {'cos(means)':>11}")
    for name, row in rows.items():
        print(f"  {name:<16} {row['per batch']['relative_noise']:12.3f} {row['per image']['relative_noise']:12.3f} "
              f"{row['noise_ratio']:6.2f} {row['cosine_of_mean_gradients']:11.3f}")
    if args.json:
        from course_lib.json_files import write_json

        write_json(args.json, {"command": "python benchmarks/gradient_noise.py " + " ".join(argv or sys.argv[1:]),
                               "machine": f"{platform.machine()}, {os.cpu_count()} cores", "model": args.init,
                               "lmbdas": args.lmbda, "batches": args.batches, "batch_size": args.batch_size,
                               "crop": args.crop, "relative_spread_of_each_v": spread, "parts": rows})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
