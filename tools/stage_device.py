"""Fill ``.device/`` (ignored by git) with what a codec training run on a lent GPU machine needs (issue 13).

The device machine has JAX, NumPy, SciPy, h5py and Pillow but neither TensorFlow nor Keras, no network,
and receives only this repository's working tree (at most 64 MiB, ignored folders only when named in
``carry``). This script puts into ``.device/``:

* ``wheels/``: the Python 3.12 manylinux x86-64 wheels of what is missing there (Keras and its
  ``namex`` and ``optree``, ``constriction`` for the range coder), fetched with ``pip download``;
* ``config.json``: the run's :class:`course_lib.training_setup.TrainConfig` (from a CPU run's
  ``config.json``: model, widths, lambdas, precision, how it starts), with ``data`` set to
  ``.device/train`` (and ``init`` to ``.device/init.weights.h5`` with ``--init``);
* ``init.weights.h5`` (with ``--init``): the weights to continue;
* ``val/``: the photos ``split_folder`` holds out of the source folder (the CPU runs' validation set);
* ``train/``: as many of the other photos as keep the whole tree under ``--limit-mb``, evenly
  spaced in name order; ``subset.json`` names them and says how they were chosen.

    python tools/stage_device.py --config /work/runs/hpw1/config.json [--init RUN/codec.weights.h5]

docs/gpu_training.md gives the ``run`` call that uses it. Run it again right before that call: the
tree's size (other untracked files) can have changed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.runs import split_folder  # noqa: E402  (no TensorFlow, no Keras)

#: Missing on the device machine (its package list: docs/gpu_training.md), with the versions of this .venv.
WHEELS = ("keras==3.15.1", "namex==0.1.0", "optree==0.20.0", "constriction==0.5.0")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
MIB = 1 << 20


def travelling_files(root: Path, skip: str = ".device") -> set[Path]:
    """The files that travel without ``carry``: tracked, and untracked but not ignored (``skip`` aside)."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True).stdout.decode().split("\0")
    return {root / name for name in listed if name and not name.startswith(skip + "/")}


def tree_bytes(root: Path, skip: str = ".device") -> int:
    """Bytes of the :func:`travelling_files`."""
    return sum(p.stat().st_size for p in travelling_files(root, skip) if p.is_file() and not p.is_symlink())


def travels_with_tree(root: Path, path: Path, skip: str = ".device") -> bool:
    """Whether ``path`` is one of the :func:`travelling_files`."""
    return Path(path).resolve() in {p.resolve() for p in travelling_files(root, skip)}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def evenly_spaced(sizes: list[int], budget: int) -> list[int]:
    """Indices of the most items of ``sizes``, evenly spaced (0, N/n, 2N/n, ... rounded down), within ``budget`` bytes.

    Raises ``ValueError`` when not even one item fits.
    """
    for count in range(len(sizes), 0, -1):
        chosen = [i * len(sizes) // count for i in range(count)]
        if sum(sizes[i] for i in chosen) <= budget:
            return chosen
    raise ValueError(f"{budget / MIB:.1f} MiB left for training photos: not even one fits")


def fetch_wheels(folder: Path, wheels=WHEELS) -> None:
    """``pip download`` the wheels for the device machine's Python 3.12 into ``folder`` (skipped when there)."""
    folder.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        name = wheel.split("==")[0].replace("-", "_")
        if list(folder.glob(f"{name}-{wheel.split('==')[1]}-*.whl")):
            continue
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                   "--python-version", "3.12", "--implementation", "cp", "-d", str(folder), wheel]
        for platform in PLATFORMS:
            command += ["--platform", platform]
        subprocess.run(command, check=True)


def stage(photos: Path, out: Path, config: Path, init: Path | None = None, val_count: int = 16,
          limit_mb: float = 60.0, root: Path = ROOT, wheels=WHEELS) -> dict:
    """Stage ``out``; returns ``subset.json``'s content (with the byte counts of every part)."""
    for sub in ("train", "val"):
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "init.weights.h5").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    if wheels:
        fetch_wheels(out / "wheels", wheels)
    values = json.loads(Path(config).read_text())
    def where(path: Path) -> str:  # the device run starts in the repository's root
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    values.update(data=where(out / "train"), val_count=val_count)
    travels = init is not None and travels_with_tree(root, init, out.name)
    if init:
        # Weights the tree carries anyway (a shipped codec in data/weights) are used where they are: no second
        # copy, and the run's record finds their manifest entry (the whole lineage) beside them.
        if not travels:
            shutil.copyfile(init, out / "init.weights.h5")
        start = Path(init).resolve() if travels else out / "init.weights.h5"
        values.update(init=where(start), widen_from=None, init_transforms=None, gains_from_lmbdas=False)
    (out / "config.json").write_text(json.dumps(values, indent=2))
    train_paths, val_paths = split_folder(photos, val_count)
    (out / "val").mkdir()
    for path in val_paths:
        shutil.copyfile(path, out / "val" / path.name)
    used = {"tree": tree_bytes(root, out.name), "wheels": folder_bytes(out / "wheels"), "val": folder_bytes(out / "val"),
            "config_and_init": (out / "config.json").stat().st_size
            + (init.stat().st_size if init and not travels else 0)}
    budget = int(limit_mb * MIB) - sum(used.values()) - 64 * 1024  # subset.json and slack
    chosen = [train_paths[i] for i in evenly_spaced([p.stat().st_size for p in train_paths], budget)]
    (out / "train").mkdir()
    for path in chosen:
        shutil.copyfile(path, out / "train" / path.name)
    used["train"] = folder_bytes(out / "train")
    subset = {"source": str(photos), "train": [p.name for p in chosen],
              "validation": [p.name for p in val_paths], "bytes": used, "total_mib": round(sum(used.values()) / MIB, 2),
              "init": str(init) if init else None,
              "description": f"{len(chosen)} of the {len(train_paths)} training photos of {photos} (evenly spaced "
                             f"by name; listed in the run record's data_subset); validation: the {len(val_paths)} "
                             f"photos split_folder holds out of {photos}, as the CPU runs; never Kodak"}
    (out / "subset.json").write_text(json.dumps(subset, indent=1))
    return subset


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="a CPU run's config.json (the model to train)")
    parser.add_argument("--init", type=Path, help="weights to continue (default: the config's start, e.g. "
                                                  "--widen-from a shipped codec, which travels with the tree)")
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "train")
    parser.add_argument("--out", type=Path, default=ROOT / ".device")
    parser.add_argument("--val-count", type=int, default=16)
    parser.add_argument("--limit-mb", type=float, default=60.0, help="the whole tree with .device (the limit is 64)")
    args = parser.parse_args(argv)
    subset = stage(args.photos, args.out.resolve(), Path(args.config), args.init, args.val_count, args.limit_mb)
    sizes = ", ".join(f"{name} {size / MIB:.1f}" for name, size in subset["bytes"].items())
    print(f"{args.out}: {len(subset['train'])} training photos, "
          f"{len(subset['validation'])} validation photos; MiB: {sizes}; total {subset['total_mib']} "
          f"of {args.limit_mb:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
