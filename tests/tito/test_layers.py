"""tito's layers, checked by reading the imports (docs/design.md, "tito's layers").

    front     tito/tasks.py, tito/cli.py   may import steps, teaching and model
    teaching  tito/teaching/               may import steps and model
    steps     tito/steps/                  may import the model
    model     tito/model/                  imports neither steps, teaching nor the front

No import cycles among tito's files, and the `tinytorch` package never imports `tito`. Every import
counts, at the top of a file or inside a function: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TITO = REPO / "tito"

# layer -> the layers it may import (itself included)
ALLOWED = {
    "front": {"front", "teaching", "steps", "model"},
    "teaching": {"teaching", "steps", "model"},
    "steps": {"steps", "model"},
    "model": {"model"},
}


def layer_of(module: str) -> str | None:
    """'model', 'steps', 'teaching' or 'front' for a tito module name; None for tito/__init__."""
    parts = module.split(".")
    if parts[0] != "tito" or len(parts) == 1:
        return None
    if parts[1] in ("model", "steps", "teaching"):
        return parts[1]
    return "front"


def module_name(path: Path, package_root: Path) -> str:
    relative = path.relative_to(package_root.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every import in a file, at any depth, absolute names resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
            # `from tito.steps import export` imports tito.steps.export
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def tito_imports(package_root: Path) -> dict[str, list[tuple[str, int]]]:
    """For every file of a tito tree: the tito modules it imports, with lines."""
    graph = {}
    for path in sorted(package_root.rglob("*.py")):
        name = module_name(path, package_root)
        known = {module_name(p, package_root) for p in package_root.rglob("*.py")}
        graph[name] = [(m, line) for m, line in imported_modules(path) if m in known]
    return graph


def layer_violations(package_root: Path) -> list[str]:
    problems = []
    for importer, imports in tito_imports(package_root).items():
        source = layer_of(importer)
        for imported, line in imports:
            target = layer_of(imported)
            if source and target and target not in ALLOWED[source]:
                problems.append(f"{importer} (line {line}) imports {imported}: the {source} layer may import "
                                f"only {', '.join(sorted(ALLOWED[source]))}")
    return problems


def cycles(package_root: Path) -> list[list[str]]:
    """Import cycles among tito's modules (each reported once, as a path)."""
    graph = {name: sorted({m for m, _ in imports}) for name, imports in tito_imports(package_root).items()}
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in graph.get(node, []):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])
    return found


def test_every_tito_file_belongs_to_a_layer():
    names = {module_name(p, TITO) for p in TITO.rglob("*.py")}
    front = sorted(n for n in names if layer_of(n) == "front")
    assert front == ["tito.cli", "tito.tasks"], f"only tasks.py and cli.py are the front, found {front}"


def test_layers_import_only_downwards():
    assert layer_violations(TITO) == []


def test_no_import_cycles():
    assert cycles(TITO) == []


def test_tinytorch_never_imports_tito():
    offenders = [f"{path.relative_to(REPO)}:{line}" for path in sorted((REPO / "tinytorch").rglob("*.py"))
                 for module, line in imported_modules(path) if module.split(".")[0] == "tito"]
    assert offenders == []


def test_dodo_stays_thin():
    code = [line for line in (REPO / "dodo.py").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith(("#", '"""'))]
    assert code == ["from tito.tasks import *  # noqa: F401,F403  (task_* functions and DOIT_CONFIG)"]


# --- the checks themselves can fail ------------------------------------------------------------------


def _copy_of_tito(tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "tito"
    shutil.copytree(TITO, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_a_model_file_that_imports_a_step_is_reported(tmp_path):
    copy = _copy_of_tito(tmp_path)
    graph_file = copy / "model" / "graph.py"
    graph_file.write_text(graph_file.read_text() + "\n\ndef _bad():\n    from tito.steps.export import build_export\n")
    [problem] = layer_violations(copy)
    assert "tito.model.graph" in problem and "tito.steps.export" in problem and "model layer" in problem


def test_a_cycle_is_reported(tmp_path):
    copy = _copy_of_tito(tmp_path)
    inputs = copy / "steps" / "inputs.py"
    inputs.write_text(inputs.read_text() + "\nfrom tito.steps import runner  # noqa\n")
    runner = copy / "steps" / "runner.py"
    runner.write_text(runner.read_text() + "\nfrom tito.steps import inputs  # noqa\n")
    assert any({"tito.steps.inputs", "tito.steps.runner"} <= set(cycle) for cycle in cycles(copy))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
