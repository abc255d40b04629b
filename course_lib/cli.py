"""The course's command line: ``python -m course_lib <subcommand> ...`` (``--help`` lists them).

    python -m course_lib compress in.png out.rcz [--weights NAME_OR_PATH] [--rate R] [--max-pixels N]
    python -m course_lib decompress in.rcz out.png [--weights NAME_OR_PATH] [--max-pixels N]
    python -m course_lib train --data DIR --out RUN [--lmbda L ...] [--steps S ...]     # resumes RUN
    python -m course_lib train-restoration --data DIR --out RUN [--steps S ...]         # resumes RUN
    python -m course_lib ship --run RUN [--name NAME] [--kodak DIR]                    # codec or restoration run
    python -m course_lib evaluate --data DIR [--weights NAME_OR_PATH] [--json PATH] [--plot PATH]
    python -m course_lib evaluate --restoration [NAME_OR_PATH] --data DIR [--json PATH]
    python -m course_lib baselines --data DIR [--json PATH]
    python -m course_lib restore in.jpg out.png [--weights NAME_OR_PATH]

The older spellings stay: ``python -m course_lib.train ...`` (= ``train``; ``--ship NAME`` ships
the run in ``--out``), ``python -m course_lib.evaluate ...``, ``python -m course_lib.baselines ...``
and ``python -m course_lib.restoration train|ship|restore ...`` run the same code.

One error policy for every subcommand: bad input (a missing folder or file, an unreadable image,
a damaged ``.rcz`` file, missing or altered weights, a number out of range) exits with status 2
and one line ``error: ...`` on stderr, no traceback. Arguments, folders, images and manifests are
checked before TensorFlow is imported, so such input fails in a fraction
of a second; TensorFlow is then imported with its start-up notices muted
(:func:`course_lib.config.import_tensorflow_quietly`) and ``TF_CPP_MIN_LOG_LEVEL=3`` (set here, the
one place the library sets it). The modules that need TensorFlow are therefore imported inside the
subcommands, after those checks.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before any TensorFlow import in this process

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from .baselines import available_codecs, classical_benchmark  # noqa: E402  (Pillow and NumPy only)
from .bitstream import MAX_FILE_BYTES, check_sizes, read_header  # noqa: E402  (NumPy and constriction only)
from .config import ReproducibilityWarning, import_tensorflow_quietly  # noqa: E402
from .data import MAX_PIXELS, ImageLoadWarning, image_format, image_paths, load_image, save_image  # noqa: E402
from .files import read_file, write_file  # noqa: E402
from .metrics import bits_per_pixel  # noqa: E402  (NumPy only at import)
from .registry import entry_for_model_id, find_entry, read_verified, tables_from_bytes  # noqa: E402
from .runs import CODEC_WEIGHTS, read_record, run_kind  # noqa: E402

__all__ = ["EXIT_BAD_INPUT", "main", "parser"]

#: Exit status of every subcommand on bad input.
EXIT_BAD_INPUT = 2
PROG = "python -m course_lib"


class UsageError(Exception):
    """A command line that argparse refuses; printed as one line like every other bad input."""


class Parser(argparse.ArgumentParser):
    """argparse prints usage and error on two lines; we keep the promise of one line."""

    def error(self, message):
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _whole_number(minimum: int, wanted: str):
    """An argparse type: a whole number >= ``minimum`` (``wanted`` is the message's description)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value
    return parse


#: argparse types: a whole number >= 1, and >= 0.
positive_int = _whole_number(1, "a positive whole number")
count = _whole_number(0, "a whole number >= 0")


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _add_codec_commands(commands) -> None:
    compress = commands.add_parser("compress", help="image (PNG, JPEG, ...) -> .rcz")
    compress.add_argument("input", help="image file to compress")
    compress.add_argument("output", help="compressed file to write (.rcz)")
    compress.add_argument("--weights", help="model name in data/weights/manifest.json or a .weights.h5 path")
    compress.add_argument("--rate", type=float, default=0.0, help="rate level in [0, num_rates - 1] (default 0)")
    compress.add_argument("--max-pixels", type=positive_int, default=MAX_PIXELS,
                          help=f"refuse larger images (default {MAX_PIXELS:,})")
    decompress = commands.add_parser("decompress", help=".rcz -> PNG image")
    decompress.add_argument("input", help="compressed file (.rcz)")
    decompress.add_argument("output", help="image file to write (PNG recommended)")
    decompress.add_argument("--weights", help="model name or .weights.h5 path (default: the file's model id)")
    decompress.add_argument("--max-pixels", type=positive_int, default=MAX_PIXELS,
                            help=f"refuse files that announce larger images (default {MAX_PIXELS:,})")


def _add_train(commands) -> None:
    train = commands.add_parser("train", help="train (or resume) a learned codec: L = R + lambda D (notebook 07)",
                                description="Several lambdas train one variable-rate codec (one gain vector per "
                                            "lambda). Run the same command again to resume from OUT/backup.")
    train.add_argument("--data", help="folder of training photos (never Kodak)")
    train.add_argument("--out", required=True, help="run folder: checkpoints, history, final weights")
    train.add_argument("--lmbda", type=positive_float, nargs="+", default=[0.0067],
                       help="lambda(s) of L = bpp + lambda * MSE(0-255); several = variable-rate codec")
    train.add_argument("--steps", type=positive_int, default=20_000)
    train.add_argument("--batch-size", type=positive_int, default=8)
    train.add_argument("--crop", type=positive_int, default=256, help="training crop side in pixels (multiple of 16)")
    train.add_argument("--learning-rate", type=positive_float, default=1e-4)
    train.add_argument("--lr-drop-at", type=positive_float, default=0.9,
                       help="fraction of --steps after which the learning rate is divided by 10")
    train.add_argument("--steps-per-epoch", type=positive_int, default=500, help="steps between checkpoints/validation")
    train.add_argument("--val-count", type=count, default=16, help="images of --data held out for validation")
    train.add_argument("--channels", type=positive_int, default=64, help="N")
    train.add_argument("--latent-channels", type=positive_int, default=128, help="M")
    train.add_argument("--init", help="start from these codec weights (.weights.h5)")
    train.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"])
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--model", default="factorized", choices=["factorized", "hyperprior"],
                       help="factorized prior (notebooks 05-07) or mean-scale hyperprior (notebook 12)")
    train.add_argument("--precision", default="float32", choices=["float32", "bfloat16"],
                       help="bfloat16: train E and D under mixed_bfloat16 (AVX-512 BF16 CPUs, GPUs)")
    train.add_argument("--hyper-channels", type=positive_int, default=64, help="K, channels of z (hyperprior)")
    train.add_argument("--residual-stages", type=int, nargs="*", choices=[0, 1, 2],
                       help="where E and D have residual blocks: 0 = 1/2, 1 = 1/4, 2 = 1/8 resolution "
                            "(default: 0 1 2, all three, for both models)")
    train.add_argument("--init-transforms", metavar="NAME_OR_PATH",
                       help="hyperprior: start E and D from this shipped factorized codec (same N, M, stages), "
                            "gains fitted to --lmbda")
    train.add_argument("--widen-from", metavar="NAME_OR_PATH",
                       help="start from this narrower shipped codec widened to --channels, --latent-channels and "
                            "--hyper-channels: the same function, more channels (same model, stages and --lmbda)")
    train.add_argument("--gains-from-lambdas", action="store_true",
                       help="start rate r's gains at sqrt(lambda_r / lambda_mid) instead of 1 (without --init)")
    train.add_argument("--lambda-per-image", action="store_true",
                       help="each image of a batch draws its own lambda (every lambda equally often when "
                            "--batch-size is a multiple of their number) instead of one per batch")
    train.add_argument("--ship", metavar="NAME",
                       help="do not train: save the run in --out as data/weights/NAME with its provenance")
    train.add_argument("--kodak", help="with --ship: also measure the Kodak RD points for the manifest")
    train.add_argument("--quiet", action="store_true", help="one log line per epoch instead of a progress bar")


def _add_train_restoration(commands) -> None:
    train = commands.add_parser("train-restoration", help="train (or resume) a restoration network (notebook 08)")
    train.add_argument("--data", required=True, help="folder of training photos (never Kodak)")
    train.add_argument("--out", required=True, help="run folder: checkpoints, history, final weights")
    train.add_argument("--steps", type=positive_int, default=8000)
    train.add_argument("--batch-size", type=positive_int, default=16)
    train.add_argument("--crop", type=positive_int, default=64, help="training crop side in pixels")
    train.add_argument("--degradations", nargs="+", default=["jpeg"], choices=["jpeg", "codec"],
                       help="artefacts to remove; several = each crop draws one")
    train.add_argument("--qualities", type=positive_int, nargs=2, default=[10, 40], metavar=("LOW", "HIGH"),
                       help="JPEG quality range, both ends included")
    train.add_argument("--codec", help="codec name or .weights.h5 path for the 'codec' degradation")
    train.add_argument("--depth", type=positive_int, default=10, help="3x3 convolutions")
    train.add_argument("--width", type=positive_int, default=48, help="channels")
    train.add_argument("--residual-blocks", action="store_true", help="pair the convolutions into residual blocks")
    train.add_argument("--plain", action="store_true", help="no global skip: output the image itself")
    train.add_argument("--space-to-depth", type=positive_int, default=2)
    train.add_argument("--learning-rate", type=positive_float, default=1e-3)
    train.add_argument("--steps-per-epoch", type=positive_int, default=250, help="steps between checkpoints/validation")
    train.add_argument("--val-count", type=count, default=16)
    train.add_argument("--init", help="start from these restoration weights (.weights.h5)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--quiet", action="store_true", help="one log line per epoch instead of a progress bar")


def _add_measurements(commands) -> None:
    ship = commands.add_parser("ship", help="copy a run's weights to data/weights with a manifest entry")
    ship.add_argument("--run", required=True, help="run folder written by train or train-restoration")
    ship.add_argument("--name", help="model name (default: learned_codec or restoration)")
    ship.add_argument("--folder", help="weights folder (default data/weights)")
    ship.add_argument("--kodak", help="Kodak folder for the metrics (a restoration run's default: "
                                      "course_lib.data.kodak_dir(); a codec run: none)")
    ship.add_argument("--codec", help="restoration runs: codec weights for the learned-codec rows (default: the "
                                      "run's --codec, else the shipped codec, if any)")
    evaluate = commands.add_parser("evaluate", help="RD curves and BD-rates against the classical codecs (notebook 07)")
    evaluate.add_argument("--data", required=True, help="folder of test images (e.g. Kodak)")
    evaluate.add_argument("--weights", help="model name in data/weights/manifest.json or a .weights.h5 path")
    evaluate.add_argument("--json", help="write the results to this JSON file")
    evaluate.add_argument("--plot", help="save the RD plot here (default: rd_plot.png beside --json, or none)")
    evaluate.add_argument("--limit", type=positive_int, help="use only the first N images")
    evaluate.add_argument("--workers", type=positive_int, default=2, help="processes for the classical codecs")
    evaluate.add_argument("--restoration", nargs="?", const=True, default=None, metavar="NAME_OR_PATH",
                          help="instead: Delta PSNR of the restoration network (notebook 08) on JPEG q=10..40 "
                               "and the codec of --weights; default network: the shipped one")
    evaluate.add_argument("--learned-restoration", metavar="NAME_OR_PATH",
                          help="with --restoration: the network for the learned codec's rows "
                               "(default: restoration_learned when shipped, else the JPEG network)")
    baselines = commands.add_parser("baselines", help="RD curves of the classical codecs, BD-rates vs JPEG 4:2:0")
    baselines.add_argument("--data", required=True, help="folder of images (e.g. Kodak)")
    baselines.add_argument("--json", help="write the curves and BD-rates to this JSON file")
    baselines.add_argument("--limit", type=positive_int, help="use only the first N images")
    baselines.add_argument("--codecs", nargs="+", choices=available_codecs(),
                           help="subset of the codecs (default: all available)")
    baselines.add_argument("--workers", type=positive_int, default=2, help="encoding processes (default 2)")
    baselines.add_argument("--no-msssim", action="store_true", help="skip MS-SSIM (faster)")
    restore = commands.add_parser("restore", help="repair one decoded image with a restoration network")
    restore.add_argument("input")
    restore.add_argument("output", help="PNG recommended")
    restore.add_argument("--weights", help="restoration model name or .weights.h5 path")


def parser() -> argparse.ArgumentParser:
    """The parser of ``python -m course_lib`` with every subcommand. Used by the command line."""
    top = Parser(prog=PROG, description="The course's command line: the learned codec (.rcz files), training, "
                                        "shipping, evaluation and restoration.")
    commands = top.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="SUBCOMMAND")
    _add_codec_commands(commands)
    _add_train(commands)
    _add_train_restoration(commands)
    _add_measurements(commands)
    return top


def _command_line(argv) -> str:
    return " ".join([PROG, *argv])


def _train(args, argv) -> None:
    if args.ship:
        read_record(args.out)
        if not (Path(args.out) / CODEC_WEIGHTS).is_file():
            raise FileNotFoundError(f"{Path(args.out) / CODEC_WEIGHTS}: no such file (is {args.out} a codec run?)")
        import_tensorflow_quietly()
        from .ship import ship_codec

        print(json.dumps(ship_codec(args.out, args.ship, kodak=args.kodak), indent=2))
        return
    if not args.data:
        raise UsageError(f"--data is required for training (see: {PROG} train --help)")
    if not args.lr_drop_at <= 1.0:
        raise UsageError(f"--lr-drop-at must lie in (0, 1], got {args.lr_drop_at}")
    step = 64 if args.model == "hyperprior" else 16
    if args.crop % step:
        raise UsageError(f"--crop must be a multiple of {step} for the {args.model} model, got {args.crop}")
    _check_training_inputs(args)
    if args.init_transforms:
        find_entry(args.init_transforms)
    stages = _check_widening(args) if args.widen_from else args.residual_stages
    import_tensorflow_quietly()
    from .training import TrainConfig, train

    config = TrainConfig(data=args.data, out=args.out, lmbdas=args.lmbda, steps=args.steps,
                         batch_size=args.batch_size, crop=args.crop, learning_rate=args.learning_rate,
                         lr_drop_at=args.lr_drop_at, steps_per_epoch=args.steps_per_epoch, val_count=args.val_count,
                         channels=args.channels, latent_channels=args.latent_channels, init=args.init,
                         strategy=args.strategy, seed=args.seed, model=args.model, precision=args.precision,
                         hyper_channels=args.hyper_channels, residual_stages=stages,
                         gains_from_lmbdas=args.gains_from_lambdas, init_transforms=args.init_transforms,
                         widen_from=args.widen_from, lambda_per_image=args.lambda_per_image)
    _, record = train(config, verbose=2 if args.quiet else 1)
    _print_final(record)


def _check_training_inputs(args) -> None:
    """A training run's folder, held-out count and --init file, checked before TensorFlow is imported."""
    paths = image_paths(args.data)
    if len(paths) <= args.val_count:
        raise ValueError(f"{args.data}: {len(paths)} images, need more than --val-count {args.val_count}")
    if args.init and not Path(args.init).is_file():
        raise FileNotFoundError(f"--init {args.init}: no such file")


def _check_widening(args) -> list:
    """``--widen-from``'s manifest entry against the other options, before TensorFlow is imported;
    returns the residual stages to build (the source's unless given)."""
    for flag, value in (("--init", args.init), ("--init-transforms", args.init_transforms)):
        if value:
            raise UsageError(f"--widen-from replaces {flag}: pass one of them")
    _, name, entry = find_entry(args.widen_from)
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    kind = config.get("kind", "factorized")
    if kind != args.model:
        raise UsageError(f"--widen-from {name}: {name} is a {kind} codec, pass --model {kind}")
    widths = [("--channels", args.channels, "channels"), ("--latent-channels", args.latent_channels, "latent_channels")]
    if kind == "hyperprior":
        widths.append(("--hyper-channels", args.hyper_channels, "hyper_channels"))
    for flag, value, key in widths:
        if value < int(config.get(key, 0)):
            raise UsageError(f"{flag} {value} is narrower than {name}'s {config[key]}: widening only adds channels")
    if len(args.lmbda) != config.get("num_rates"):
        raise UsageError(f"--widen-from {name}: {len(args.lmbda)} lambdas for {name}'s "
                         f"{config.get('num_rates')} rate point(s); pass the lambdas it was trained for")
    stages = config.get("residual_stages", [0, 1, 2])
    if args.residual_stages is not None and sorted(set(args.residual_stages)) != sorted(stages):
        raise UsageError(f"--residual-stages {args.residual_stages}: {name} has its blocks at {stages}")
    return list(stages)


def _print_final(record: dict) -> None:
    last = {k: v[-1] for k, v in record["history"].items() if k != "epoch" and v}
    print("final:", ", ".join(f"{k}={v:.4g}" for k, v in sorted(last.items())))


def _train_restoration(args, argv) -> None:
    if args.crop % args.space_to_depth:
        raise UsageError(f"--crop must be a multiple of --space-to-depth ({args.space_to_depth})")
    low, high = args.qualities
    if not low <= high <= 100:
        raise UsageError(f"--qualities must satisfy 1 <= LOW <= HIGH <= 100, got {low} {high}")
    if args.depth < 2 or (args.residual_blocks and args.depth % 2):
        raise UsageError(f"--depth must be >= 2 (and even with --residual-blocks), got {args.depth}")
    _check_training_inputs(args)
    if "codec" in args.degradations:
        find_entry(args.codec)
    import_tensorflow_quietly()
    from .restoration_training import RestorationTrainConfig, train

    config = RestorationTrainConfig(
        data=args.data, out=args.out, steps=args.steps, batch_size=args.batch_size, crop=args.crop,
        degradations=args.degradations, qualities=args.qualities, codec=args.codec, depth=args.depth,
        width=args.width, residual_blocks=args.residual_blocks, global_skip=not args.plain,
        space_to_depth=args.space_to_depth, learning_rate=args.learning_rate,
        steps_per_epoch=args.steps_per_epoch, val_count=args.val_count, init=args.init, seed=args.seed)
    _, record = train(config, verbose=2 if args.quiet else 1, command=_command_line(argv))
    _print_final(record)


def _ship(args, argv) -> None:
    run_kind(args.run)
    if args.kodak and not Path(args.kodak).is_dir():
        raise FileNotFoundError(f"--kodak {args.kodak}: not a folder")
    import_tensorflow_quietly()
    from .ship import ship

    entry = ship(args.run, args.name, args.folder, args.kodak, args.codec)
    if "kind" not in entry:  # a codec: its whole entry, as `train --ship` prints it
        print(json.dumps(entry, indent=2))


def _evaluate(args, argv) -> None:
    image_paths(args.data)  # a missing folder fails here, before TensorFlow
    if args.restoration is not None:
        for name in (args.restoration, args.learned_restoration):
            if isinstance(name, str):
                find_entry(name)
        if args.weights is not None:
            find_entry(args.weights)
        import_tensorflow_quietly()
        from .evaluate import restoration_benchmark

        restoration_benchmark(args.data, None if args.restoration is True else args.restoration,
                              codec_weights=args.weights, json_path=args.json, limit=args.limit,
                              learned_restoration=args.learned_restoration)
        return
    find_entry(args.weights)
    import_tensorflow_quietly()
    from .evaluate import codec_benchmark

    codec_benchmark(args.data, args.weights, args.json, args.plot, args.limit, args.workers,
                    command=_command_line(argv))


def _baselines(args, argv) -> None:
    classical_benchmark(args.data, args.json, args.limit, args.codecs, args.workers, msssim=not args.no_msssim)


def check_output(source, output, image: bool) -> None:
    """Refuse, before any work, an output path that cannot be written or would replace the input.

    ``OSError``/``ValueError`` with one line naming the path: a folder, a missing folder, the
    input file itself (by any name or link), or for an ``image`` a name without a known image suffix.
    """
    target = Path(output)
    if image:
        image_format(target)
    elif target.is_dir():
        raise IsADirectoryError(f"{target}: is a directory; give a file name such as {target / 'image.rcz'}")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{target}: folder {target.parent} does not exist")
    if target.exists() and os.path.exists(source) and os.path.samefile(source, target):
        raise OSError(f"{target}: is the input file {source}; choose another output path")


def _restore(args, argv) -> None:
    check_output(args.input, args.output, image=True)
    image = load_image(args.input)
    if args.weights is not None:
        find_entry(args.weights)
    import_tensorflow_quietly()
    from .restoration import load_restorer, restore

    save_image(restore(image, load_restorer(args.weights)), args.output)
    print(f"{args.input} -> {args.output}")


def _compress(args, argv) -> None:
    check_output(args.input, args.output, image=False)
    image = load_image(args.input, max_pixels=args.max_pixels)
    if args.weights is not None:
        find_entry(args.weights)
    import_tensorflow_quietly()
    from .models import load_codec

    codec = load_codec(args.weights)
    data = codec.compress(image, rate=args.rate)
    write_file(args.output, data)
    print(f"{args.input}: {image.shape[1]}x{image.shape[0]} -> {len(data)} bytes "
          f"({bits_per_pixel(len(data), image.shape):.3f} bpp) in {args.output}")


def _decompress(args, argv) -> None:
    check_output(args.input, args.output, image=True)
    data = read_file(args.input, max_bytes=MAX_FILE_BYTES)
    header = read_header(data, max_pixels=args.max_pixels)
    if args.weights is None:
        # The model the header names; a file whose payload cannot hold the image it announces (a
        # decompression bomb) is refused with that model's integer tables, before TensorFlow.
        folder, model, entry = entry_for_model_id(header.model_id)
        path, content = read_verified(folder, model, entry, "tables")
        check_sizes(data, tables_from_bytes(content, path), args.max_pixels)
    else:
        model = args.weights
        find_entry(model)
    import_tensorflow_quietly()
    from .models import load_codec

    image = load_codec(model).decompress(data, max_pixels=args.max_pixels)
    save_image(image, args.output)
    print(f"{args.input} -> {image.shape[1]}x{image.shape[0]} image in {args.output}")


COMMANDS = {"compress": _compress, "decompress": _decompress, "train": _train,
            "train-restoration": _train_restoration, "ship": _ship, "evaluate": _evaluate,
            "baselines": _baselines, "restore": _restore}


def _print_warnings(caught) -> None:
    """The library's warnings about the input or the weights (first frame only, another oneDNN
    setting), one line each on stderr; others (a dependency's deprecations) are dropped."""
    for warning in caught:
        if issubclass(warning.category, (ImageLoadWarning, ReproducibilityWarning)):
            print(f"warning: {' '.join(str(warning.message).split())}", file=sys.stderr)


def main(argv=None) -> int:
    """``python -m course_lib``: run one subcommand; returns the exit status (0, or 2 for bad input).

    Used by the command line (``course_lib/__main__.py`` and the older ``python -m course_lib.X`` spellings).
    """
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    try:
        args = parser().parse_args(argv)
        if args.command in ("compress", "decompress", "restore"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    COMMANDS[args.command](args, argv)
                finally:
                    _print_warnings(caught)
        else:
            COMMANDS[args.command](args, argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, OSError, RuntimeError) as exc:
        # ImageLoadError, BitstreamError and WeightsError are ValueErrors; OSError
        # covers unreadable or unwritable paths. One line, no traceback.
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
