"""The library's shape (issue 15): modules import downwards only, stay short, and declare their public surface.

Read from the source files with ``ast`` (no module is imported to build the graph), so function-level
imports count as much as top-level ones.
"""
import ast
import importlib
import inspect
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "course_lib"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
MAX_LINES = 500
#: A docstring that says where a public name comes from: the notebook that introduces it, or the
#: command line / demo it exists for.
INTRODUCED = re.compile(r"notebooks? \d+|command line|the demo|slider demo", re.IGNORECASE)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _library_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import of a course_lib module in ``path``, at any depth."""
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            if node.level == 1 and node.module:
                found.append((node.module.split(".")[0], names))
            elif node.level == 1:
                found += [(n, []) for n in names if n in MODULES]
            elif node.module == "course_lib":
                found += [(n, []) for n in names if n in MODULES]
            elif node.module and node.module.startswith("course_lib."):
                found.append((node.module.split(".")[1], names))
        elif isinstance(node, ast.Import):
            found += [(a.name.split(".")[1], []) for a in node.names if a.name.startswith("course_lib.")]
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the course_lib modules it imports (function-level imports included)."""
    return {m: {dep for dep, _ in _library_imports(PACKAGE / f"{m}.py") if dep != m and dep in MODULES}
            for m in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt, path)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [])):
            return cycle
    return None


def test_find_cycle_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_import_graph_is_acyclic():
    assert find_cycle(import_graph()) is None


@pytest.mark.parametrize("module", MODULES + ["__main__", "__init__"])
def test_module_is_short(module):
    lines = len((PACKAGE / f"{module}.py").read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"course_lib/{module}.py has {lines} lines (> {MAX_LINES}): split it by concept"


def _public_surface(module: str) -> list[str]:
    mod = importlib.import_module(f"course_lib.{module}")
    assert hasattr(mod, "__all__"), f"course_lib.{module} has no __all__"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"course_lib.{module}.__all__ names what it does not define: {missing}"
    return list(mod.__all__)


@pytest.mark.parametrize("module", MODULES)
def test_public_names_say_where_they_come_from(module):
    mod = importlib.import_module(f"course_lib.{module}")
    silent = []
    for name in _public_surface(module):
        obj = getattr(mod, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", "") == mod.__name__:
            if not INTRODUCED.search(inspect.getdoc(obj) or ""):
                silent.append(name)
    assert not silent, (f"course_lib.{module}: these public names do not say which notebook introduces them "
                        f"(or that they serve the command line / demo): {silent}")


def test_no_private_name_crosses_a_module():
    crossings = []
    for path in sorted(PACKAGE.glob("*.py")) + sorted((ROOT / "tests").glob("*.py")):
        for module, names in _library_imports(path):
            crossings += [f"{path.relative_to(ROOT)}: {module}.{n}" for n in names
                          if n.startswith("_") and not n.startswith("__")]
    assert not crossings, "private names imported across modules: " + ", ".join(crossings)


def _notebook_uses() -> dict[tuple[str, str], str]:
    """(module, name) -> notebook, for every course_lib name a notebook or app imports or reads."""
    uses = {}
    paths = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "apps").glob("*.ipynb"))
    for path in paths:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        tree = ast.parse(source)
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "course_lib":
                for a in node.names:
                    if a.name in MODULES:
                        aliases[a.asname or a.name] = a.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("course_lib."):
                for a in node.names:
                    uses[(node.module.split(".")[1], a.name)] = path.name
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("course_lib.") and a.asname:
                        aliases[a.asname] = a.name.split(".")[1]
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                uses[(aliases[node.value.id], node.attr)] = path.name
    return uses


def test_notebooks_use_only_the_public_surface():
    uses = _notebook_uses()
    assert len(uses) > 50, "the scan found too few uses: is it reading the notebooks?"
    outside = sorted(f"{nb}: {m}.{n}" for (m, n), nb in uses.items() if n not in _public_surface(m))
    assert not outside, "notebooks use names outside the modules' __all__: " + ", ".join(outside)


def test_package_docstring_lists_the_layers_in_import_order():
    """course_lib/__init__.py's table is the map a reader starts from: every module, each below what it imports."""
    import course_lib

    order = []
    for line in course_lib.__doc__.splitlines():
        if line.startswith("``"):
            order += re.findall(r"``(\w+)``", line.split("  ")[0])
    assert sorted(order) == MODULES, f"modules missing from or unknown to the table: {set(order) ^ set(MODULES)}"
    graph, seen = import_graph(), set()
    for module in order:
        assert graph[module] <= seen, f"{module} imports {sorted(graph[module] - seen)}, listed below it"
        seen.add(module)
