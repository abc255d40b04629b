"""Training a codec under any Keras backend: JAX on a lent GPU machine that has no TensorFlow (issue 13).

The same model, loss and starting weights as ``python -m course_lib train``
(:mod:`course_lib.training_setup`), trained by a loop that needs neither TensorFlow nor ``tf.data``:

* :class:`CropSampler` draws random crops with horizontal flips from photos in memory, in NumPy,
  in the same order as :func:`course_lib.data.training_dataset` for the same seed;
* :class:`StatelessTrainer` is one training step written with Keras' stateless API
  (``stateless_call`` and ``Optimizer.stateless_apply``), differentiated by ``jax.value_and_grad``
  under JAX and by a ``tf.GradientTape`` under TensorFlow, compiled by ``jax.jit`` or ``tf.function``;
* :func:`train_on_device` runs it against a wall-clock budget: it stops when the next checkpoint
  would not fit, and writes ``codec.weights.h5`` (optionally in parts small enough to travel
  back from the device machine), ``config.json`` (a :class:`~course_lib.training_setup.TrainConfig`,
  so that ``python -m course_lib ship --run RUN`` takes the folder) and ``history.json`` (the
  record: steps, wall seconds, lambdas, command, losses, time per step).

Command line: ``python -m course_lib.device_training train --config CONFIG.json --out RUN
--budget-seconds S ...`` and ``python -m course_lib.device_training join RUN`` (docs/gpu_training.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
from keras import ops

from .data import image_paths, load_image, random_crops
from .files import sha256_file
from .json_files import write_json
from .runs import CODEC_WEIGHTS, center_crop, machine, split_folder
from .training_setup import (TrainConfig, build_codec, image_rates, psnr_from_mse, rate_distortion_terms,
                             start_provenance, start_weights)

__all__ = ["CropSampler", "StatelessTrainer", "join_parts", "main", "train_on_device"]

#: The largest file the device machine sends back is 16 MiB; weights are cut into parts below it.
PART_MB = 15


class CropSampler:
    """Random ``crop`` x ``crop`` crops of photos with random horizontal flips, in NumPy, seeded.

    ``images``: a folder (every image in it, read with :func:`course_lib.data.load_image`) or a
    list of uint8 RGB arrays. Images smaller than the crop are skipped. :meth:`batch` returns
    float32 (batch_size, crop, crop, 3) in [0, 1]; the crops come in the order
    :func:`course_lib.data.training_dataset` draws them for the same seed (each pass over the
    photos in a new random order). Raises ``FileNotFoundError`` for a path that is not a folder
    and ``ValueError`` when no image is large enough. Used by the command line (``device_training``).
    """

    def __init__(self, images, crop: int, batch_size: int, seed: int = 0):
        where = ""
        if isinstance(images, (str, os.PathLike)):
            where = f"{images}: "
            paths = image_paths(images)
            with ThreadPoolExecutor(8) as pool:  # PNG decoding releases the GIL
                images = list(pool.map(load_image, paths))
        self.crop, self.batch_size = int(crop), int(batch_size)
        self.pool = [im for im in images if min(im.shape[:2]) >= self.crop]
        if not self.pool:
            raise ValueError(f"{where}no image is at least {self.crop}x{self.crop} pixels")
        self.crops = random_crops(self.pool, self.crop, np.random.default_rng(seed))

    def batch(self) -> np.ndarray:
        """The next batch, float32 (batch_size, crop, crop, 3) in [0, 1]."""
        return np.stack([next(self.crops) for _ in range(self.batch_size)]).astype(np.float32) / 255.0


class StatelessTrainer:
    """One rate-distortion training step of a codec with Keras' stateless API, on JAX or TensorFlow.

    The state (trainable values, non-trainable values such as the noise seed, the optimizer's
    values) is passed through the step as values: ``stateless_call`` computes the loss from them.
    Under JAX the optimizer updates them with ``stateless_apply`` and the Keras variables wait
    for :meth:`write_back` (before saving); under TensorFlow, whose optimizer has no stateless
    form, it updates the variables and the state reads them back. :meth:`step` takes a batch
    (B, H, W, 3) in [0, 1], a rate point and its lambda, and returns (loss, bpp, mse) as backend
    tensors (not yet fetched, so that JAX can run ahead). Used by the command line (``device_training``).
    """

    def __init__(self, codec, optimizer: keras.optimizers.Optimizer):
        self.codec, self.optimizer = codec, optimizer
        optimizer.build(codec.trainable_variables)
        self.state = ([v.value for v in codec.trainable_variables], [v.value for v in codec.non_trainable_variables],
                      [v.value for v in optimizer.variables])
        backend = keras.backend.backend()
        if backend == "jax":
            import jax

            value_and_grad, self._compile = jax.value_and_grad(self._loss, has_aux=True), jax.jit
            self._apply = optimizer.stateless_apply
        elif backend == "tensorflow":
            import tensorflow as tf

            def value_and_grad(trainable, *args):
                with tf.GradientTape() as tape:
                    tape.watch(trainable)
                    loss, aux = self._loss(trainable, *args)
                return (loss, aux), tape.gradient(loss, trainable)

            def apply(optimizer_values, grads, trainable):
                variables = codec.trainable_variables
                optimizer.apply_gradients(zip(grads, variables))
                return [v.value for v in variables], [v.value for v in optimizer.variables]

            self._compile, self._apply = tf.function, apply
        else:
            raise ValueError(f"device training runs on the jax or tensorflow backend, not {backend!r}")
        self._value_and_grad = value_and_grad
        self._step = self._compile(self._train_step)
        self._evaluate = self._compile(self._evaluate_step)

    def _loss(self, trainable, non_trainable, images, rate, lmbda):
        outputs, non_trainable = self.codec.stateless_call(trainable, non_trainable, images, rate=rate,
                                                           training=True)
        loss, bpp, mse255 = rate_distortion_terms(outputs, images, lmbda)
        return loss, (bpp, mse255, non_trainable)

    def _train_step(self, state, images, rate, lmbda):
        trainable, non_trainable, optimizer_values = state
        (loss, (bpp, mse255, non_trainable)), grads = self._value_and_grad(trainable, non_trainable, images, rate,
                                                                           lmbda)
        trainable, optimizer_values = self._apply(optimizer_values, grads, trainable)
        return (trainable, non_trainable, optimizer_values), (loss, bpp, mse255)

    def _evaluate_step(self, state, images, rate, lmbda):
        trainable, non_trainable, _ = state
        outputs, _ = self.codec.stateless_call(trainable, non_trainable, images, rate=rate, training=False)
        return rate_distortion_terms(outputs, images, lmbda)

    def step(self, images, rate, lmbda):
        """One training step at rate point ``rate`` (lambda ``lmbda``), or one per image (two vectors of B);
        returns (loss, bpp, mse) tensors."""
        self.state, metrics = self._step(self.state, images, np.int32(rate), np.float32(lmbda))
        return metrics

    def evaluate(self, crops: np.ndarray, lmbdas, batch_size: int) -> dict:
        """Validation as ``RateDistortionTrainer.test_step``: rounded latents, every rate point, batch means.

        ``crops``: float32 (N, H, W, 3) in [0, 1]. Returns val_loss, val_bpp, val_mse, val_psnr (dB).
        """
        rows = []
        for start in range(0, len(crops), batch_size):
            images = crops[start:start + batch_size]
            per_rate = [self._evaluate(self.state, images, np.int32(r), np.float32(lmbda))
                        for r, lmbda in enumerate(lmbdas)]
            loss, bpp, mse = np.mean([[float(ops.convert_to_numpy(v)) for v in terms] for terms in per_rate], axis=0)
            rows.append((loss, bpp, mse, float(psnr_from_mse(mse))))
        return dict(zip(("val_loss", "val_bpp", "val_mse", "val_psnr"), (float(v) for v in np.mean(rows, axis=0))))

    def scale_learning_rate(self, factor: float) -> None:
        """Multiply the optimizer's learning rate (a value of the state) by ``factor``."""
        values = list(self.state[2])
        for i, variable in enumerate(self.optimizer.variables):
            if variable.name == "learning_rate":
                values[i] = values[i] * factor
        self.state = (self.state[0], self.state[1], values)
        if keras.backend.backend() == "tensorflow":  # its optimizer reads the variables
            self.write_back()

    def write_back(self) -> None:
        """Copy the state into the codec's and the optimizer's variables (before saving the weights)."""
        trainable, non_trainable, optimizer_values = self.state
        for variables, values in ((self.codec.trainable_variables, trainable),
                                  (self.codec.non_trainable_variables, non_trainable),
                                  (self.optimizer.variables, optimizer_values)):
            for variable, value in zip(variables, values):
                variable.assign(value)


# --------------------------------------------------------------------------- weights in parts
def _split(path: Path, part_mb: float) -> list[str]:
    """Cut ``path`` into ``path.part0``, ``path.part1``, ... of at most ``part_mb`` MiB and delete it."""
    size, names = int(part_mb * (1 << 20)), []
    for old in path.parent.glob(path.name + ".part*"):
        old.unlink()
    with open(path, "rb") as f:
        for i, block in enumerate(iter(lambda: f.read(size), b"")):
            part = path.with_name(f"{path.name}.part{i}")
            part.with_suffix(".tmp").write_bytes(block)
            part.with_suffix(".tmp").replace(part)
            names.append(part.name)
    path.unlink()
    return names


def join_parts(run_dir) -> Path:
    """Join ``RUN/codec.weights.h5.part*`` into ``RUN/codec.weights.h5`` and check the SHA-256 in ``history.json``.

    Returns the weights' path; raises ``ValueError`` when the joined file's checksum differs from
    the record's (a part is missing or from another checkpoint). Used by the command line
    (``device_training join``).
    """
    run = Path(run_dir)
    record = json.loads((run / "history.json").read_text())
    parts = record.get("weights_parts") or []
    if not parts:
        raise ValueError(f"{run / 'history.json'}: records no weights parts (the weights are whole)")
    target = run / CODEC_WEIGHTS
    with open(target.with_suffix(".tmp"), "wb") as out:
        for name in parts:
            if not (run / name).is_file():
                raise FileNotFoundError(f"{run / name}: missing part of {CODEC_WEIGHTS}")
            out.write((run / name).read_bytes())
    if sha256_file(target.with_suffix(".tmp")) != record["weights_sha256"]:
        target.with_suffix(".tmp").unlink()
        raise ValueError(f"{run}: the joined parts do not match the recorded SHA-256 of {CODEC_WEIGHTS}")
    target.with_suffix(".tmp").replace(target)
    return target


# --------------------------------------------------------------------------- the run
def _machine() -> str:
    text = machine()
    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        text += f", JAX {jax.__version__} on {device.platform.upper()} ({getattr(device, 'device_kind', '?')})"
    else:
        import tensorflow as tf

        text += f", TensorFlow {tf.__version__}"
    return text + f", Keras {keras.__version__}"


def _validation_crops(config: TrainConfig, val_data) -> np.ndarray | None:
    paths = image_paths(val_data) if val_data else split_folder(config.data, config.val_count)[1]
    crops = [center_crop(load_image(p), config.val_crop) for p in paths]
    crops = [c for c in crops if min(c.shape[:2]) >= config.val_crop]
    return np.stack(crops).astype(np.float32) / 255.0 if crops else None


class _Run:
    """The run folder: checkpoints (weights, whole or in parts) and the record, written after each one."""

    def __init__(self, out: Path, config: TrainConfig, record: dict, part_mb: float | None):
        self.out, self.config, self.record, self.part_mb = out, config, record, part_mb
        self.history: dict[str, list] = {"epoch": [], "step": [], "seconds": []}

    def checkpoint(self, trainer: StatelessTrainer, row: dict, steps: int, seconds: float) -> None:
        trainer.write_back()
        path = self.out / CODEC_WEIGHTS
        trainer.codec.save_weights(str(path))
        self.record["weights_sha256"] = sha256_file(path)
        if self.part_mb:
            self.record["weights_parts"] = _split(path, self.part_mb)
        self.history["epoch"].append(len(self.history["epoch"]))
        self.history["step"].append(steps)
        self.history["seconds"].append(round(seconds, 1))
        for key, value in row.items():
            self.history.setdefault(key, []).append(value)
        self.write(steps, seconds)

    def write(self, steps: int, seconds: float) -> None:
        self.record.update(history=self.history, steps=steps, wall_seconds=round(seconds, 1),
                           date=time.strftime("%Y-%m-%d"))
        write_json(self.out / "history.json", self.record)


def _means(window: list) -> dict:
    loss, bpp, mse = np.mean([[float(v) for v in ops.convert_to_numpy(ops.stack(m))] for m in window], axis=0)
    return {"loss": float(loss), "bpp": float(bpp), "mse": float(mse),
            "psnr": float(psnr_from_mse(mse))}


def train_on_device(config: TrainConfig, budget_seconds: float, *, val_data=None, checkpoint_seconds: float = 120.0,
                    log_every: int = 100, part_mb: float | None = None, lr_drop_at: float | None = None,
                    command: str = "", data_note: str | None = None, started: float | None = None,
                    extra: dict | None = None, log=print) -> dict:
    """Train ``config``'s codec from its starting weights until ``budget_seconds`` or ``config.steps`` steps.

    The budget counts from ``started`` (``time.monotonic()``; default: now), so it can include the
    process's start. The loop stops before the step whose end, plus the time the last checkpoint
    took, would pass the budget; it checkpoints every ``checkpoint_seconds`` and at the end.
    ``lr_drop_at``: divide the learning rate by 10 at this fraction of the budget. ``part_mb``:
    keep the weights only as parts of at most this many MiB (:func:`join_parts` joins them).
    ``extra``: entries added to the record. Writes ``config.out``/``config.json``, ``history.json``
    and the weights; returns the record.
    Used by the command line (``device_training train``).
    """
    started = time.monotonic() if started is None else started
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", dataclasses.asdict(config))
    keras.utils.set_random_seed(config.seed)
    sampler = CropSampler(config.data, config.crop, config.batch_size, config.seed)
    val = _validation_crops(config, val_data)
    codec = build_codec(config)
    start_weights(codec, config)
    optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clipnorm)
    trainer = StatelessTrainer(codec, optimizer)
    record = {"command": command, "data": data_note or f"{config.data}: {len(sampler.pool)} photos", "lmbdas":
              list(config.lmbdas), "backend": keras.backend.backend(), "machine": _machine(),
              "precision": config.precision, "batch_size": config.batch_size, "crop": config.crop,
              "budget_seconds": budget_seconds, "training_photos": len(sampler.pool),
              "validation_crops": 0 if val is None else len(val), "start": start_provenance(config),
              **(extra or {}), "log": []}
    run = _Run(out, config, record, part_mb)
    rates = np.random.default_rng(config.seed + 1)

    def elapsed():
        return time.monotonic() - started

    log(f"ready: {len(sampler.pool)} photos, {record['validation_crops']} validation crops, "
        f"{elapsed():.0f} s after the start")
    if val is not None:  # the starting point, measured on this machine (also compiles the evaluation)
        t0 = time.monotonic()
        record["validation_at_start"] = trainer.evaluate(val, config.lmbdas, config.batch_size)
        record["validation_seconds"] = round(time.monotonic() - t0, 2)
        log(f"start: {_text(record['validation_at_start'])} ({record['validation_seconds']:.1f} s)")
    reserve = record.get("validation_seconds", 0.0) + 5.0  # until a checkpoint has been timed
    steps, window, window_start, last_checkpoint, dropped = 0, [], None, time.monotonic(), False
    step_seconds, stopped = 0.0, "steps"
    while steps < config.steps:
        if elapsed() + reserve + 2 * step_seconds > budget_seconds:
            stopped = "budget"
            break
        if lr_drop_at and not dropped and elapsed() >= lr_drop_at * budget_seconds:
            trainer.scale_learning_rate(0.1)
            dropped, record["learning_rate_dropped_at_step"] = True, steps
        if config.lambda_per_image:  # one rate point per image, as RateDistortionTrainer(lambda_per_image=True)
            rate = np.asarray(image_rates(config.batch_size, len(config.lmbdas), rates.permutation))
        else:
            rate = int(rates.integers(len(config.lmbdas)))
        window.append(trainer.step(sampler.batch(), rate, np.asarray(config.lmbdas, np.float32)[rate]))
        steps += 1
        if len(window) >= 2:  # at most two steps in flight, so that the clock sees the work done
            ops.convert_to_numpy(window[-2][0])
        if steps == 1:  # the first step compiles: timed on its own
            _means(window)
            record["compile_seconds"] = round(elapsed(), 1)
            log(f"first step done {record['compile_seconds']} s after the start (compiling)")
            window, window_start = [], time.monotonic()
        elif len(window) == log_every or (time.monotonic() - last_checkpoint > checkpoint_seconds):
            row = _means(window)  # fetching the metrics waits for the steps to finish
            step_seconds = (time.monotonic() - window_start) / len(window)
            record["log"].append({"step": steps, "seconds": round(elapsed(), 1), **{k: round(v, 5) for k, v in
                                  row.items()}, "seconds_per_step": round(step_seconds, 5)})
            log(f"step {steps} · {elapsed():.0f} s · {_text(row)} · {1 / step_seconds:.1f} steps/s")
            window, window_start = [], time.monotonic()
            if time.monotonic() - last_checkpoint > checkpoint_seconds:
                t0 = time.monotonic()
                run.checkpoint(trainer, {**row, **_validate(trainer, val, config)}, steps, elapsed())
                reserve = 1.5 * (time.monotonic() - t0) + 2.0
                last_checkpoint, window_start = time.monotonic(), time.monotonic()
    row = _means(window) if window else {}
    if window and window_start is not None:
        step_seconds = (time.monotonic() - window_start) / len(window)
    trained = [e["seconds_per_step"] for e in record["log"]]
    record.update(stopped=stopped, seconds_per_step=round(float(np.median(trained)) if trained else step_seconds, 5))
    t0 = time.monotonic()
    validation = _validate(trainer, val, config) if steps else record.get("validation_at_start", {})
    run.checkpoint(trainer, {**row, **validation}, steps, elapsed())
    log(f"last checkpoint: {time.monotonic() - t0:.1f} s")
    log(f"stopped ({stopped}) after {steps} steps, {elapsed():.0f} s of a {budget_seconds:g} s budget")
    return record


def _validate(trainer: StatelessTrainer, val, config: TrainConfig) -> dict:
    return {} if val is None else trainer.evaluate(val, config.lmbdas, config.batch_size)


def _text(row: dict) -> str:
    return " · ".join(f"{k} {v:.4g}" for k, v in row.items())


# --------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m course_lib.device_training",
                                  description="Train a codec under any Keras backend (KERAS_BACKEND=jax on a GPU "
                                              "machine without TensorFlow) against a wall-clock budget.")
    commands = top.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train from existing weights until the budget or --steps")
    train.add_argument("--config", required=True, help="a TrainConfig JSON (a CPU run's config.json): model, "
                                                       "widths, lambdas, precision, starting weights")
    train.add_argument("--out", required=True, help="run folder (config.json, history.json, weights)")
    train.add_argument("--budget-seconds", type=float, required=True, help="stop cleanly before this much wall time "
                                                                           "since the process started")
    train.add_argument("--data", help="folder of training photos (default: the config's)")
    train.add_argument("--val-data", help="folder of validation photos (default: --val-count held out of --data)")
    train.add_argument("--subset", help="the staging's subset.json: which photos, recorded with the run")
    start = train.add_mutually_exclusive_group()
    start.add_argument("--init", help="start from these weights (.weights.h5) instead of the config's start")
    start.add_argument("--widen-from", help="start from this shipped codec widened (instead of the config's start)")
    for flag, kind in (("--batch-size", int), ("--crop", int), ("--learning-rate", float), ("--steps", int),
                       ("--seed", int)):
        train.add_argument(flag, type=kind, help="default: the config's" + (" (steps: no limit)" if flag == "--steps"
                                                                             else ""))
    train.add_argument("--lr-drop-at", type=float, help="divide the learning rate by 10 at this fraction of the budget")
    train.add_argument("--checkpoint-seconds", type=float, default=120.0)
    train.add_argument("--log-every", type=int, default=200, help="steps between log lines")
    train.add_argument("--part-mb", type=float, help=f"keep the weights as parts of at most this many MiB "
                                                     f"(the device machine sends back files up to 16 MiB: {PART_MB})")
    join = commands.add_parser("join", help="join a run's weights parts into codec.weights.h5 (checksum checked)")
    join.add_argument("run")
    return top


def _config(args) -> TrainConfig:
    path = Path(args.config)
    if not path.is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    values = json.loads(path.read_text())
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"{path}: not a TrainConfig: unknown keys {unknown}")
    config = TrainConfig(**values)
    changes = {"out": args.out, "steps": args.steps or 1_000_000}
    for name in ("data", "batch_size", "crop", "learning_rate", "seed"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.init or args.widen_from:
        changes.update(init=args.init, widen_from=args.widen_from, init_transforms=None, gains_from_lmbdas=False)
    config = dataclasses.replace(config, **changes)
    if not (config.init or config.widen_from or config.init_transforms):
        raise ValueError("a device run continues a codec: give --init or --widen-from (or a config that has one)")
    if config.init and not Path(config.init).is_file():
        raise FileNotFoundError(f"--init {config.init}: no such file")
    step = 64 if config.model == "hyperprior" else 16
    if config.crop % step:
        raise ValueError(f"--crop must be a multiple of {step} for the {config.model} model, got {config.crop}")
    return config


def _process_age() -> float:
    """Seconds since this process started (Linux: from /proc; elsewhere 0), so that imports count."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return max(0.0, float(Path("/proc/uptime").read_text().split()[0]) - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def main(argv=None) -> int:
    """``python -m course_lib.device_training train|join ...``; returns the exit status (2: bad input).

    The budget counts from the start of the process (the imports included).
    Used by the command line (docs/gpu_training.md gives the device machine's call).
    """
    started = time.monotonic() - _process_age()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    try:
        if args.command == "join":
            print(join_parts(args.run))
            return 0
        config = _config(args)
        subset = json.loads(Path(args.subset).read_text()) if args.subset else {}
        command = " ".join([f"KERAS_BACKEND={keras.backend.backend()}", "python -m course_lib.device_training", *argv])
        record = train_on_device(config, args.budget_seconds, val_data=args.val_data,
                                 checkpoint_seconds=args.checkpoint_seconds, log_every=args.log_every,
                                 part_mb=args.part_mb, lr_drop_at=args.lr_drop_at, command=command,
                                 data_note=subset.get("description"), started=started,
                                 extra={"data_subset": subset} if subset else None,
                                 log=lambda text: print(text, flush=True))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in record.items() if k not in ("log", "history")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
