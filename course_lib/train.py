"""Command line for rate-distortion training (notebook 07).

    python -m course_lib.train --data DIR --lmbda 0.0067 --steps 20000 --out runs/q3
    python -m course_lib.train --data DIR --lmbda 0.0018 0.0067 0.025 0.0932 --steps 200000 --out runs/vr

Several lambdas train one variable-rate codec (one gain vector per lambda).
Run the same command again to resume from the last checkpoint in ``OUT/backup``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(prog="python -m course_lib.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="folder of training photos (never Kodak)")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, history, final weights")
    parser.add_argument("--lmbda", type=float, nargs="+", default=[0.0067],
                        help="lambda(s) of L = bpp + lambda * MSE(0-255); several = variable-rate codec")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256, help="training crop side in pixels (multiple of 16)")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--lr-drop-at", type=float, default=0.9,
                        help="fraction of --steps after which the learning rate is divided by 10")
    parser.add_argument("--steps-per-epoch", type=int, default=500, help="steps between checkpoints/validation")
    parser.add_argument("--val-count", type=int, default=16, help="images of --data held out for validation")
    parser.add_argument("--channels", type=int, default=64, help="N")
    parser.add_argument("--latent-channels", type=int, default=128, help="M")
    parser.add_argument("--init", help="start from these codec weights (.weights.h5)")
    parser.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="factorized", choices=["factorized", "hyperprior"],
                        help="factorized prior (notebooks 05-07) or mean-scale hyperprior (notebook 12)")
    parser.add_argument("--precision", default="float32", choices=["float32", "bfloat16"],
                        help="bfloat16: train E and D under mixed_bfloat16 (AVX-512 BF16 CPUs, GPUs)")
    parser.add_argument("--hyper-channels", type=int, default=64, help="K, channels of z (hyperprior)")
    parser.add_argument("--residual-stages", type=int, nargs="*", choices=[0, 1, 2],
                        help="where E and D have residual blocks: 0 = 1/2, 1 = 1/4, 2 = 1/8 resolution "
                             "(default: 0 1 2 for factorized, 2 for hyperprior)")
    parser.add_argument("--init-transforms", metavar="NAME_OR_PATH",
                        help="hyperprior: start E and D from this shipped factorized codec (same N, M, stages), "
                             "gains fitted to --lmbda")
    parser.add_argument("--gains-from-lambdas", action="store_true",
                        help="start rate r's gains at sqrt(lambda_r / lambda_mid) instead of 1 (without --init)")
    parser.add_argument("--ship", metavar="NAME",
                        help="do not train: save the run in --out as data/weights/NAME with its provenance")
    parser.add_argument("--kodak", help="with --ship: also measure the Kodak RD points for the manifest")
    parser.add_argument("--quiet", action="store_true", help="one log line per epoch instead of a progress bar")
    args = parser.parse_args(argv)
    if args.ship:
        from .training import ship

        entry = ship(args.out, args.ship, kodak=args.kodak)
        print(json.dumps(entry, indent=2))
        return 0
    if not args.data:
        parser.error("--data is required for training")
    if not 0.0 < args.lr_drop_at <= 1.0:
        parser.error(f"--lr-drop-at must lie in (0, 1], got {args.lr_drop_at}")
    step = 64 if args.model == "hyperprior" else 16
    if args.crop % step:
        parser.error(f"--crop must be a multiple of {step} for the {args.model} model, got {args.crop}")

    from .training import TrainConfig, train

    config = TrainConfig(data=args.data, out=args.out, lmbdas=args.lmbda, steps=args.steps,
                         batch_size=args.batch_size, crop=args.crop, learning_rate=args.learning_rate,
                         lr_drop_at=args.lr_drop_at, steps_per_epoch=args.steps_per_epoch, val_count=args.val_count,
                         channels=args.channels, latent_channels=args.latent_channels, init=args.init,
                         strategy=args.strategy, seed=args.seed, model=args.model, precision=args.precision,
                         hyper_channels=args.hyper_channels, residual_stages=args.residual_stages,
                         gains_from_lmbdas=args.gains_from_lambdas, init_transforms=args.init_transforms)
    _, record = train(config, verbose=2 if args.quiet else 1)
    last = {k: v[-1] for k, v in record["history"].items() if k != "epoch"}
    print("final:", ", ".join(f"{k}={v:.4g}" for k, v in sorted(last.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
