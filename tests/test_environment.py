"""The set-up files agree with each other: one source of truth for versions."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _requirements():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        spec = line.split(";")[0].strip()
        name, _, version = spec.partition("==")
        assert version, f"requirements.txt: {line!r} is not pinned with =="
        pins.setdefault(name.lower(), set()).add(version)
    return pins


def test_every_requirement_is_pinned_once():
    pins = _requirements()
    for name, versions in pins.items():
        assert len(versions) == 1, f"{name} pinned to several versions: {versions}"
    # The stack the course is written for.
    for name in ("keras", "numpy", "pillow", "constriction", "jupyterlab", "ipywidgets", "nbval"):
        assert name in pins, f"{name} missing from requirements.txt"
    assert pins.get("tensorflow-cpu") == pins.get("tensorflow") == {"2.21.0"}


def test_environment_yml_defers_to_requirements():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*-r requirements\.txt\s*$", text, re.M), \
        "environment.yml must install requirements.txt through pip"
    pins = _requirements()
    # Any package that environment.yml names itself must carry the same pin.
    for name, version in re.findall(r"^\s*-\s*([A-Za-z0-9_.-]+)\s*[=]=?\s*([0-9][^\s]*)\s*$", text, re.M):
        if name.lower() == "python":
            continue
        assert pins.get(name.lower()) == {version}, f"environment.yml pins {name}={version}, requirements.txt {pins.get(name.lower())}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make lab" in readme
    assert "make test" in ci


def test_notebooks_are_committed_without_outputs():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    for path in notebooks:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs"), f"{path.name} has stored outputs: run `make strip`"
                assert cell.get("execution_count") is None, f"{path.name} has execution counts"


def test_notebooks_are_numbered_and_follow_the_template():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert re.match(r"^\d\d_[a-z0-9_]+\.ipynb$", path.name), path.name
        nb = json.loads(path.read_text())
        text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        for heading in ("Goals", "Summary", "Exercises", "Further reading"):
            assert heading in text, f"{path.name}: missing the template's '{heading}' section"
