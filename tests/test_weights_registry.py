"""Issue 16, items 7 and 8: weights are what the manifest claims. The bytes hashed are the bytes loaded,
manifest paths stay inside the weights folder, config values are checked with one-line errors naming the
manifest and the key, and a load under another oneDNN setting than the recorded one says so."""

import json
import os
import shutil
import subprocess
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest

from course_lib import registry
from course_lib import files
from course_lib.__main__ import main
from course_lib.codec import LearnedCodec
from course_lib.models import WeightsError, load_codec, save_codec
from course_lib.config import WEIGHTS_DIR, ReproducibilityWarning, onednn_enabled

from conftest import saved_tiny_codec


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry")
    return (*saved_tiny_codec(folder), folder)


def run_main(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


# --------------------------------------------------------------------------- item 7: weights
def _copy_weights(setup, tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(setup[1].parent, folder)
    return folder


def _edit_entry(folder, **changes):
    manifest = json.loads((folder / "manifest.json").read_text())
    for key, value in changes.items():
        if key == "config" and isinstance(value, dict):
            manifest["tiny"]["config"].update(value)
        else:
            manifest["tiny"][key] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_loaded_weights_are_the_bytes_that_were_hashed(setup, tmp_path, monkeypatch):
    """Replace the file right after the check read it: the load must not see the replacement."""
    codec = setup[0]
    folder = _copy_weights(setup, tmp_path)
    keras.utils.set_random_seed(1)
    other = LearnedCodec(channels=8, latent_channels=12)
    other.build()
    other.update_tables()
    save_codec(other, "other", tmp_path / "other")
    read_file = files.read_file

    def read_then_swap(path, *args, **kwargs):
        content = read_file(path, *args, **kwargs)
        swapped = tmp_path / "other" / path.name.replace("tiny", "other")
        shutil.copyfile(swapped, path)  # the attacker's file arrives just after the check
        return content

    monkeypatch.setattr(registry, "read_file", read_then_swap)
    loaded = load_codec("tiny", folder=folder)
    for mine, theirs in zip(loaded.weights, codec.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert loaded.tables == codec.tables
    monkeypatch.undo()
    with pytest.raises(WeightsError, match="SHA-256 does not match"):  # the next load sees the swap
        load_codec("tiny", folder=folder)


def test_tampered_tables_are_refused(setup, tmp_path):
    folder = _copy_weights(setup, tmp_path)
    tables = folder / "tiny.tables.npz"
    content = bytearray(tables.read_bytes())
    content[len(content) // 2] ^= 1
    tables.write_bytes(bytes(content))
    with pytest.raises(WeightsError, match="tiny.tables.npz: SHA-256 does not match"):
        load_codec("tiny", folder=folder)


@pytest.mark.parametrize("key, value", [
    ("file", "/etc/passwd"), ("file", "/no/such/file.weights.h5"), ("tables", "../outside.npz"),
    ("tables", "sub/../../outside.npz"), ("file", "link.weights.h5"),
])
def test_manifest_paths_must_stay_inside_the_weights_folder(setup, tmp_path, monkeypatch, key, value):
    folder = _copy_weights(setup, tmp_path)
    (tmp_path / "outside.npz").write_bytes(b"secret")
    (folder / "link.weights.h5").symlink_to(tmp_path / "outside.npz")
    _edit_entry(folder, **{key: value})
    opened, read_file = [], files.read_file

    def recording_read_file(path, *args, **kwargs):
        opened.append(path.name)
        return read_file(path, *args, **kwargs)

    monkeypatch.setattr(registry, "read_file", recording_read_file)
    with pytest.raises(WeightsError) as caught:
        load_codec("tiny", folder=folder)
    message = str(caught.value)
    assert message == f"{folder / 'manifest.json'}: entry 'tiny': {key!r} = {value!r} is not a file inside the weights folder"
    assert "outside.npz" not in opened and "passwd" not in opened  # refused before it was opened


@pytest.mark.parametrize("changes, fragment", [
    ({"config": {"tile": 0}}, "config 'tile' must be an integer in 1..1024, got 0"),
    ({"config": {"channels": "64"}}, "config 'channels' must be an integer"),
    ({"config": {"num_rates": True}}, "config 'num_rates' must be an integer"),
    ({"config": {"residual_stages": [0, 5]}}, "config 'residual_stages' must be a list of distinct stages"),
    ({"config": {"kind": "transformer"}}, "config 'kind' must be one of 'factorized', 'hyperprior'"),
    ({"config": {"hyper_channels": 4}}, "unknown config key 'hyper_channels'"),
    ({"config": {"precision": "float16"}}, "config 'precision' must be one of"),
    ({"config": {"latent_channels": 10 ** 9}}, "config 'latent_channels' must be an integer in 1..1024"),
    ({"config": {"latent_channels": 16}}, "does not fit model 'tiny'"),
    ({"config": [1, 2]}, "'config' must be an object"),
    ({"sha256": 42}, "'sha256' must be a SHA-256"),
    ({"tables": None}, "'tables' must be a file name"),
    ({"scale_tables": "tiny.tables.npz", "scale_tables_sha256": "x", "config": {"kind": "hyperprior"}},
     "'scale_tables_sha256' must be a SHA-256"),
])
def test_manifest_values_are_checked_with_one_line_naming_manifest_and_key(setup, tmp_path, changes, fragment):
    folder = _copy_weights(setup, tmp_path)
    _edit_entry(folder, **changes)
    with pytest.raises(WeightsError) as caught:
        load_codec("tiny", folder=folder)
    message = str(caught.value)
    assert "\n" not in message and fragment in message, message
    if "fit" in fragment:
        assert message.startswith(str(folder / "tiny.weights.h5")), message
    else:
        assert message.startswith(f"{folder / 'manifest.json'}: entry 'tiny'"), message


def test_a_broken_manifest_exits_2_with_one_line(setup, capsys, tmp_path):
    codec, weights, image, folder = setup
    copied = _copy_weights(setup, tmp_path)
    _edit_entry(copied, config={"tile": 0})
    status, out, err = run_main(capsys, "compress", image, tmp_path / "o.rcz", "--weights", copied / "tiny.weights.h5")
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: ") and "manifest.json: entry 'tiny': config 'tile' must be" in err, err


def test_restoration_entries_get_the_same_checks(tmp_path):
    from course_lib.restoration import RestorationNet, load_restorer, save_restorer

    keras.utils.set_random_seed(0)
    model = RestorationNet(depth=2, width=4)
    model.build()
    save_restorer(model, "r", tmp_path)
    assert load_restorer("r", tmp_path).count_params() == model.count_params()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["r"]["config"]["depth"] = 0
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="entry 'r': config 'depth' must be an integer in 2..256, got 0"):
        load_restorer("r", tmp_path)
    manifest["r"]["config"]["depth"], manifest["r"]["file"] = 2, "/etc/passwd"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="not a file inside the weights folder"):
        load_restorer("r", tmp_path)


def test_write_manifest_replaces_the_file_whole_in_the_shipped_format(tmp_path):
    first = {"b": {"file": "b.weights.h5", "config": {"channels": 8}}, "a": {"file": "a.weights.h5"}}
    path = registry.write_manifest(tmp_path, first)
    assert path == tmp_path / "manifest.json"
    assert path.read_text() == json.dumps(first, indent=2, sort_keys=True) + "\n"
    registry.write_manifest(tmp_path, {"a": first["a"]})
    assert registry.read_manifest(tmp_path) == {"a": first["a"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]  # no partial file left behind
    # The shipped manifest is already in this format: rewriting it changes no byte.
    shipped = registry.read_manifest(WEIGHTS_DIR)
    registry.write_manifest(tmp_path, shipped)
    assert (tmp_path / "manifest.json").read_bytes() == (WEIGHTS_DIR / "manifest.json").read_bytes()


# --------------------------------------------------------------------------- item 8: oneDNN
def test_onednn_setting_is_read_as_tensorflow_reads_it():
    script = "from course_lib.config import onednn_enabled; print(onednn_enabled())"
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert result.stdout.strip() == "False", result.stderr[-500:]
    assert isinstance(onednn_enabled(), bool)  # this process: TensorFlow's own answer


def test_load_warns_when_the_recorded_onednn_setting_differs(setup, tmp_path, capsys):
    codec, weights, image, folder = setup
    assert json.loads((weights.parent / "manifest.json").read_text())["tiny"]["onednn"] == onednn_enabled()
    copied = _copy_weights(setup, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReproducibilityWarning)
        load_codec("tiny", folder=copied)  # same setting: silent
        _edit_entry(copied, onednn=None)
        load_codec("tiny", folder=copied)  # unrecorded (older entries): silent
    _edit_entry(copied, onednn=not onednn_enabled())
    with pytest.warns(ReproducibilityWarning, match="oneDNN kernels .* decoded pixels may differ by one level"):
        load_codec("tiny", folder=copied)
    status, out, err = run_main(capsys, "compress", image, tmp_path / "o.rcz", "--weights", copied / "tiny.weights.h5")
    assert status == 0 and err.startswith("warning: tiny was measured with TensorFlow's oneDNN") and err.count("\n") == 1


