"""The weights registry: manifests, checked files, entries (no TensorFlow: importable before it).

A weights folder (``data/weights`` by default) holds ``manifest.json``, a JSON object ``{name: entry}``; an entry
names its files (``file``, ``tables``, ...) with their SHA-256s, its ``config`` and its provenance. Everything here
reads and checks: paths must stay inside the folder, digests must match the bytes that are then used, and every
problem is a one-line :class:`WeightsError` naming the manifest, the entry and the key, or the file. Loading the
networks themselves is :func:`course_lib.models.load_codec`'s job; the command line uses this module to refuse a
damaged or crafted file before it imports TensorFlow. :func:`write_manifest` is the one writer of manifests;
:func:`check_config` checks an entry's constructor arguments against a model's rules, and :func:`training_runs`,
:func:`weights_provenance`, :func:`training_totals` and :func:`describe_shipped` read the provenance an entry
records.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

from .config import WEIGHTS_DIR
from .files import read_file, sha256_file
from .range_coder import EntropyTables

__all__ = ["DEFAULT_MODEL", "MANIFEST", "WeightsError", "find_entry", "read_manifest", "write_manifest",
           "check_config", "training_runs", "training_totals", "weights_provenance", "describe_shipped"]

#: Model loaded by :func:`course_lib.models.load_codec` and the command line when no weights are named.
DEFAULT_MODEL = "learned_codec"
MANIFEST = "manifest.json"


class WeightsError(ValueError):
    """Weights cannot be loaded: unknown name, missing file or manifest entry, a
    file whose SHA-256 differs from the manifest's, a manifest path outside the
    weights folder, or a configuration value of the wrong type or range. The
    message is one line naming the file, or the manifest, entry and key.
    Introduced in notebook 03 (which skips the trained part without weights)."""


def entry_file(folder: Path, name: str, entry: dict, key: str) -> Path:
    """The file a manifest entry names under ``key`` (``"file"``, ``"tables"``, ...), inside ``folder``.

    The value must be a relative path that stays inside the weights folder:
    an absolute path, a ``..`` component or a symbolic link that leads out
    raise :class:`WeightsError` naming the manifest, entry and key, before
    anything is opened and with the same message whether or not the outside
    path exists.
    """
    where = f"{folder / MANIFEST}: entry {name!r}"
    if key not in entry:
        raise WeightsError(f"{where} lacks {key!r}")
    value = entry[key]
    if not isinstance(value, str) or not value or "\0" in value:
        raise WeightsError(f"{where}: {key!r} must be a file name, got {value!r}")
    relative = Path(value)
    if (relative.is_absolute() or relative.anchor or ".." in relative.parts
            or not (folder / relative).resolve().is_relative_to(folder.resolve())):
        raise WeightsError(f"{where}: {key!r} = {value!r} is not a file inside the weights folder")
    return folder / relative


def read_verified(folder: Path, name: str, entry: dict, key: str) -> tuple[Path, bytes]:
    """(path, bytes) of the file an entry names under ``key``, checked against its ``key + "_sha256"``
    (``"sha256"`` for ``"file"``); see :func:`entry_file` and :func:`verify_file`."""
    path = entry_file(folder, name, entry, key)
    digest_key = "sha256" if key == "file" else f"{key}_sha256"
    digest = entry.get(digest_key)
    if not (isinstance(digest, str) and re.fullmatch("[0-9a-f]{64}", digest)):
        raise WeightsError(f"{folder / MANIFEST}: entry {name!r}: {digest_key!r} must be a SHA-256 "
                           f"(64 lowercase hex digits), got {digest!r}")
    return path, verify_file(path, digest, name)


def read_manifest(folder: Path) -> dict:
    """The manifest (``{name: entry}``) of a weights folder; ``{}`` when it has none.

    Raises :class:`WeightsError` when the file is unreadable or not a JSON object.
    Introduced in notebook 12 (which reads the shipped models' records).
    """
    path = folder / MANIFEST
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise WeightsError(f"{path}: manifest must be a JSON object of {{name: entry}}")
    return manifest


def find_entry(name_or_path=None, folder=None) -> tuple[Path, str, dict]:
    """Locate a codec: (folder, name, manifest entry).

    ``name_or_path`` is a name in ``folder/manifest.json`` (default folder
    ``data/weights``, default name :data:`DEFAULT_MODEL`) or a path to a
    ``.weights.h5`` file that has an entry in the manifest beside it.
    Introduced in notebook 08.
    """
    if name_or_path is not None and str(name_or_path).endswith(".weights.h5"):
        path = Path(name_or_path)
        if not path.is_file():
            raise WeightsError(f"{path}: no such weights file")
        folder = path.parent
        manifest = read_manifest(folder)
        for name, entry in manifest.items():
            if isinstance(entry, dict) and entry.get("file") == path.name:
                return folder, name, entry
        raise WeightsError(f"{path}: no entry for this file in {folder / MANIFEST} "
                           "(it records the configuration and SHA-256; save with save_codec)")
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    name = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    manifest = read_manifest(folder)
    if name not in manifest:
        known = ", ".join(sorted(manifest)) or "none"
        raise WeightsError(f"no model {name!r} in {folder / MANIFEST} (known: {known}); "
                           "pass a path to a .weights.h5 file")
    if not isinstance(manifest[name], dict):
        raise WeightsError(f"{folder / MANIFEST}: entry {name!r} must be an object, got {manifest[name]!r}")
    return folder, name, manifest[name]


def verify_file(path: Path, digest: str, name: str) -> bytes:
    """The bytes of ``path``, read once, if their SHA-256 is ``digest``; else :class:`WeightsError`.

    Load from the returned bytes, never from ``path`` again (see
    :func:`course_lib.models.load_weights_from_bytes`): a file replaced between the check and a
    second read would be loaded unchecked.
    """
    try:
        content = read_file(path)
    except FileNotFoundError:
        raise WeightsError(f"{path}: missing file of model {name!r}") from None
    except OSError as exc:
        raise WeightsError(f"{exc} (a file of model {name!r})") from None
    if hashlib.sha256(content).hexdigest() != digest:
        raise WeightsError(f"{path}: SHA-256 does not match the manifest (damaged or replaced file)")
    return content


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if empty), for one-line errors."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class _NamedBytes(io.BytesIO):
    """Verified bytes that messages written for a path (``f"{path}: ..."``) name by the file they came from."""

    def __init__(self, content: bytes, path: Path):
        super().__init__(content)
        self.path = path

    def __str__(self) -> str:
        return str(self.path)


def tables_from_bytes(content: bytes, path: Path) -> EntropyTables:
    """:class:`EntropyTables` from the bytes of a ``.npz`` file (checked by :func:`verify_file`).

    Raises :class:`WeightsError` (one line naming ``path``) for anything but well-formed tables.
    """
    try:
        return EntropyTables.load(_NamedBytes(content, path))
    except (ValueError, OSError, EOFError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as exc:
        message = first_line(exc)
        raise WeightsError(message if message.startswith(str(path)) else f"{path}: {message}") from None


def entry_for_model_id(model_id: int, folder=None) -> tuple[Path, str, dict]:
    """(folder, name, entry) of the manifest's codec whose ``model_id`` is ``model_id`` (a file header's)."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    for name, entry in read_manifest(folder).items():
        if isinstance(entry, dict) and entry.get("model_id") == model_id:
            return folder, name, entry
    raise WeightsError(f"no model with id {model_id} in {folder / MANIFEST}; pass --weights")


def write_manifest(folder: Path, manifest: dict) -> Path:
    """Write ``manifest`` (``{name: entry}``) as ``folder/manifest.json``: sorted keys, 2-space indent.

    The one writer of manifests (codecs, restoration networks, shipping). The
    text goes to a temporary file beside it first and then replaces the manifest,
    so a reader never sees half a file. Returns the path. Used by
    :func:`course_lib.models.save_codec` (notebook 06) and the command line's ``ship``.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    partial = folder / f".{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    partial.replace(path)
    return path


# --------------------------------------------------------------------------- config and provenance of an entry
def integer_in(low: int, high: int) -> tuple:
    """A :func:`check_config` rule: an integer (not a bool) in ``low..high``."""
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high,
            f"an integer in {low}..{high}")


def one_of(*choices) -> tuple:
    """A :func:`check_config` rule: one of the given strings."""
    return lambda v: isinstance(v, str) and v in choices, "one of " + ", ".join(map(repr, choices))


#: A :func:`check_config` rule: ``true`` or ``false``.
BOOLEAN = (lambda v: isinstance(v, bool), "true or false")


def check_config(config, rules: dict, where: str) -> dict:
    """A manifest entry's ``config`` checked against ``rules`` (key -> (test, what the value must be)).

    Returns a copy. Raises :class:`WeightsError` naming ``where`` (the manifest
    and entry) and the key for a config that is not an object, an unknown key
    or a value of the wrong type or range, so a broken manifest never reaches
    a constructor (where ``"tile": 0`` would surface as a ``ZeroDivisionError``).
    Used by :func:`course_lib.models.load_codec` (notebook 06) and the restoration loader (notebook 08).
    """
    if not isinstance(config, dict):
        raise WeightsError(f"{where}: 'config' must be an object of constructor arguments, got {config!r}")
    for key, value in config.items():
        if key not in rules:
            raise WeightsError(f"{where}: unknown config key {key!r} (known: {', '.join(sorted(rules))})")
        test, expected = rules[key]
        if not test(value):
            raise WeightsError(f"{where}: config {key!r} must be {expected}, got {value!r}")
    return dict(config)


def weights_provenance(path) -> dict:
    """Where a weights file a run started from (``--init``) came from.

    Returns its path and SHA-256 and, when a manifest beside the file lists
    an entry with that checksum (e.g. a copy of ``data/weights``), that
    entry's name and ``training`` record, so a shipped model that continues
    an earlier one keeps the whole chain of commands that produced it.
    Used by the command line (``train --init``, ``ship``).
    """
    path = Path(path)
    digest = sha256_file(path)
    record = {"file": str(path), "sha256": digest}
    try:
        manifest = read_manifest(path.parent)
    except WeightsError:
        manifest = {}
    for name, entry in manifest.items():
        if isinstance(entry, dict) and entry.get("sha256") == digest:
            record.update(name=name, training=entry.get("training"))
            break
    return record


def training_runs(entry: dict) -> list[dict]:
    """The training runs behind a manifest entry, oldest first.

    A run that started from earlier weights (``--init``) records their entry's
    ``training`` under ``training.init.training``; this follows that chain.
    Introduced in notebook 10 (notebook 12 sums the hyperprior's runs with it).
    """
    runs, record = [], entry.get("training")
    while isinstance(record, dict):
        runs.append(record)
        init = record.get("init")
        record = init.get("training") if isinstance(init, dict) else None
    return runs[::-1]


def training_totals(entry: dict) -> dict:
    """Steps and wall-clock seconds of all the training behind a manifest entry: ``{"steps", "wall_seconds"}``.

    Follows :func:`training_runs`' chain from the newest record. A record that merges several run folders
    (its ``commands`` list them) states ``total_steps`` and ``total_wall_seconds`` for itself and everything
    before it, so the walk stops there. Steps that trained a codec whose transforms were copied
    (``init_transforms``) are not counted: they trained another model. Introduced in notebook 12 (notebooks 07
    and 10 print it too).
    """
    steps, seconds, record = 0, 0.0, entry.get("training")
    while isinstance(record, dict):
        if "total_steps" in record:
            return {"steps": steps + int(record["total_steps"]),
                    "wall_seconds": seconds + float(record.get("total_wall_seconds", 0))}
        steps += int(record.get("steps", 0))
        seconds += float(record.get("wall_seconds", 0))
        init = record.get("init")
        record = init.get("training") if isinstance(init, dict) else None
    return {"steps": steps, "wall_seconds": seconds}


def describe_shipped(name: str | None = None, folder=None) -> str:
    """One paragraph on a shipped codec, from its manifest entry only (so no text can drift from it):
    architecture, every training run (steps, wall time), cumulative steps and time, λs, and the Kodak range.
    Introduced in notebook 07."""
    _, name, entry = find_entry(name, folder)
    config = entry.get("config", {})
    runs = training_runs(entry)
    totals = training_totals(entry)
    commands = runs[-1].get("commands", [r.get("command") for r in runs]) if runs else []
    kind = config.get("kind", "factorized")
    lines = [f"{name}: {kind} codec, N = {config.get('channels')}, M = {config.get('latent_channels')}, "
             f"{config.get('num_rates')} rate points"]
    if runs:
        lines.append(f"trained {totals['steps']:,} steps in all by {len(commands)} command(s), "
                     f"{totals['wall_seconds'] / 3600:.1f} h on {runs[-1].get('machine', 'an unrecorded machine')} "
                     f"(the last run: {int(runs[-1].get('steps', 0)):,} steps); λ = {runs[-1].get('lmbdas')}")
    kodak = entry.get("kodak")
    if kodak:
        bpp, psnr = [p["bpp"] for p in kodak], [p["psnr"] for p in kodak]
        lines.append(f"Kodak (real files): {min(bpp):.2f}-{max(bpp):.2f} bpp, {min(psnr):.1f}-{max(psnr):.1f} dB")
    return "; ".join(lines)
