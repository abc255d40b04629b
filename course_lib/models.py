"""The shipped models: save a codec under a name, load it back verified (notebooks 06 and 12).

A codec is saved as its weights (``name.weights.h5``), its integer entropy
tables (``name.tables.npz``; the hyperprior codec adds ``name.scale_tables.npz``)
and an entry in the folder's ``manifest.json`` that records the constructor
arguments, the SHA-256 of every file and, once shipped, the training record.
:func:`load_codec` builds either kind of codec (``config["kind"]``: the
factorized :class:`course_lib.codec.LearnedCodec` or the
:class:`course_lib.hyperprior.HyperpriorCodec`) from its entry, loading only
bytes whose checksum it verified. The manifest itself (reading, checking,
finding entries, provenance) is :mod:`course_lib.registry`, which needs no
TensorFlow; this module sits above both codecs, so that neither imports the other
to be loaded.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from .codec import TRAINING_QUANTIZATION, LearnedCodec
from .config import WEIGHTS_DIR, ReproducibilityWarning, onednn_enabled
from .files import sha256_file
from .hyperprior import HyperpriorCodec
from .registry import (MANIFEST, WeightsError, check_config, find_entry, first_line, integer_in, one_of,
                       read_manifest, read_verified, tables_from_bytes, write_manifest)
from .transforms import MAX_BLOCKS_PER_STAGE

__all__ = ["CODEC_CONFIG", "HYPERPRIOR_CONFIG", "save_codec", "load_codec", "load_weights_from_bytes",
           # raised by load_codec; defined in course_lib.registry
           "WeightsError"]


#: What a codec's manifest ``config`` may hold: key -> (test of the value, what it must be).
#: The bounds refuse what would crash (``"tile": 0``) or exhaust memory at build time.
CODEC_CONFIG = {
    "kind": one_of("factorized", "hyperprior"),
    "channels": integer_in(1, 1024),
    "latent_channels": integer_in(1, 1024),
    "num_rates": integer_in(1, 256),
    "tile": integer_in(1, 1024),
    "seed": integer_in(0, 2 ** 31 - 1),
    "residual_stages": (lambda v: isinstance(v, list) and len(set(map(repr, v))) == len(v)
                        and all(s in (0, 1, 2) and not isinstance(s, bool) for s in v),
                        "a list of distinct stages among 0, 1, 2"),
    "blocks_per_stage": integer_in(0, MAX_BLOCKS_PER_STAGE),
    "precision": one_of("float32", "bfloat16"),
    "train_quantization": one_of(*TRAINING_QUANTIZATION),
}
#: The hyperprior codec's ``config`` (notebook 12): the factorized keys and ``hyper_channels``.
HYPERPRIOR_CONFIG = {**CODEC_CONFIG, "hyper_channels": integer_in(1, 1024)}


def save_codec(codec: LearnedCodec, name: str, folder=None) -> Path:
    """Save weights, entropy tables and a manifest entry; returns the weights path.

    Writes ``folder/name.weights.h5``, ``folder/name.tables.npz`` and adds
    ``name: {file, sha256, tables, tables_sha256, model_id, config, onednn}`` to
    ``folder/manifest.json`` (``folder`` defaults to ``data/weights``);
    ``onednn`` records whether TensorFlow's oneDNN kernels were on
    (:func:`course_lib.config.onednn_enabled`), which :func:`load_codec` compares.
    Exports the tables first if the codec has none. Introduced in notebook 06.
    """
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tables = codec.tables if codec.tables is not None else codec.update_tables()
    weights = folder / f"{name}.weights.h5"
    codec.save_weights(weights)
    tables_path = tables.save(folder / f"{name}.tables.npz")
    manifest = read_manifest(folder)
    manifest[name] = {"file": weights.name, "sha256": sha256_file(weights),
                      "tables": tables_path.name, "tables_sha256": sha256_file(tables_path),
                      "model_id": tables.model_id, "config": codec.codec_config()}
    onednn = onednn_enabled()
    if onednn is not None:  # the numerical setting its files and figures are made with (quantized_forward)
        manifest[name]["onednn"] = onednn
    scale_tables = getattr(codec, "scale_tables", None)
    if scale_tables is not None:  # the hyperprior codec (notebook 12): the Gaussian's tables too
        scale_path = scale_tables.save(folder / f"{name}.scale_tables.npz")
        manifest[name].update(scale_tables=scale_path.name, scale_tables_sha256=sha256_file(scale_path),
                              model_id=codec.model_key[0])
    write_manifest(folder, manifest)
    return weights


def load_weights_from_bytes(model, content: bytes, path: Path, name: str) -> None:
    """Load the bytes of a ``.weights.h5`` file (checked by :func:`course_lib.registry.verify_file`) into a built
    Keras model (notebook 08's restoration network loads this way too).

    Keras 3 loads weights from a path only, so the bytes are written to a
    private temporary folder (readable by this user alone, removed
    afterwards) and loaded from there: what was hashed is what is loaded.
    Raises :class:`WeightsError` naming ``path`` when they do not fit the model.
    """
    with tempfile.TemporaryDirectory(prefix="course_lib_weights_") as private:
        copy = Path(private) / "verified.weights.h5"
        copy.write_bytes(content)
        try:
            model.load_weights(copy)
        except (ValueError, OSError, KeyError, TypeError) as exc:
            raise WeightsError(f"{path}: does not fit model {name!r} as its manifest entry configures it "
                               f"({first_line(exc)})") from None


def _warn_if_onednn_differs(name: str, entry: dict) -> None:
    """A :class:`ReproducibilityWarning` when the entry records another oneDNN setting than this process's."""
    recorded, current = entry.get("onednn"), onednn_enabled()
    if isinstance(recorded, bool) and current is not None and recorded != current:
        state = {True: "on", False: "off"}
        warnings.warn(f"{name} was measured with TensorFlow's oneDNN kernels {state[recorded]}, this process has "
                      f"them {state[current]} (TF_ENABLE_ONEDNN_OPTS): decoded pixels may differ by one level "
                      "from files and figures made there", ReproducibilityWarning, stacklevel=3)


def load_codec(name_or_path=None, folder=None) -> LearnedCodec:
    """Load a saved codec, verifying the SHA-256 of its weights and tables.

    See :func:`course_lib.registry.find_entry` for ``name_or_path``. Raises :class:`WeightsError`
    (one line) if anything is missing, a checksum differs, a path in the
    manifest leads outside its folder or a configuration value is invalid.
    Each file is read once and loaded from the bytes whose checksum was
    verified. Warns (:class:`ReproducibilityWarning`) when the entry records
    a oneDNN setting other than this process's (see
    :meth:`LearnedCodec.quantized_forward`). The returned codec has its
    entropy tables loaded and is ready to compress. Introduced in notebook 06.
    """
    folder, name, entry = find_entry(name_or_path, folder)
    where = f"{folder / MANIFEST}: entry {name!r}"
    if "config" not in entry:
        raise WeightsError(f"{where} lacks 'config'")
    kind = entry["config"].get("kind", "factorized") if isinstance(entry["config"], dict) else None
    config = check_config(entry["config"], HYPERPRIOR_CONFIG if kind == "hyperprior" else CODEC_CONFIG, where)
    config.pop("kind", None)
    keys = ["file", "tables"] + (["scale_tables"] if kind == "hyperprior" else [])
    files = {key: read_verified(folder, name, entry, key) for key in keys}
    codec = HyperpriorCodec(**config) if kind == "hyperprior" else LearnedCodec(**config)
    codec.build()
    load_weights_from_bytes(codec, files["file"][1], files["file"][0], name)
    codec.tables = tables_from_bytes(files["tables"][1], files["tables"][0])
    tables_path = files["tables"][0]
    if kind == "hyperprior":
        codec.scale_tables = tables_from_bytes(files["scale_tables"][1], files["scale_tables"][0])
        belongs = (codec.tables.channels == codec.hyper_channels
                   and codec.model_key[0] == entry.get("model_id", codec.model_key[0]))
    else:
        belongs = (codec.tables.channels == codec.latent_channels
                   and codec.tables.model_id == entry.get("model_id", codec.tables.model_id))
    if not belongs:
        raise WeightsError(f"{tables_path}: tables do not belong to model {name!r}")
    _warn_if_onednn_differs(name, entry)
    return codec
