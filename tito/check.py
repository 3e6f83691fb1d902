"""`check:<key>`: everything that can be known about a dev file without running it.

Directives, cell metadata, syntax of exported cells and import order (the export's own checks), plus
NBGrader's rules and the house rules of docs/module-format.md. Nothing is written.
"""

from __future__ import annotations

from pathlib import Path

from tito.export import ExportError, build_export
from tito.graph import Graph
from tito.modules import find_module


def module_errors(root: Path, key: str) -> list[str]:
    """Every problem in one module's dev file, as `file:line: message` lines."""
    graph = Graph.load(root)
    module = find_module(root, key)
    try:
        build_export(module, graph)
    except ExportError as error:
        return list(error.messages)
    return []


def check_module(root: str, key: str):
    """doit action for `check:<key>`."""
    from doit.exceptions import TaskFailed

    errors = module_errors(Path(root), key)
    if errors:
        return TaskFailed("\n".join(errors) + f"\n{len(errors)} problem(s). Fix them, then run `doit check:{key}`.")
    print(f"{key}: ok")
    return None
