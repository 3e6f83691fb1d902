"""`check:lint`: ruff over the project's Python (configured in pyproject.toml's [tool.ruff]).

What is linted: tito/, tests/, examples/, benchmarks/, the dev files and the root's Python files.
The generated package (tinytorch/core/<name>.py) is not: its source, the dev file, is.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tito.model.layout import SOURCE_DIR
from tito.steps.process import run, tail

LINTED_FOLDERS = ("tito", "tests", "examples", "benchmarks")
LINT_TIMEOUT = 300


def lint_configured(root: Path) -> bool:
    """The project configures ruff in pyproject.toml (read as text: graph loading stays cheap)."""
    pyproject = Path(root) / "pyproject.toml"
    return pyproject.is_file() and "[tool.ruff" in pyproject.read_text(encoding="utf-8", errors="replace")


def linted_files(root: Path) -> list[Path]:
    """Every file ruff checks: the task's inputs, so it re-runs only when one of them changes."""
    root = Path(root)
    files = [p for folder in LINTED_FOLDERS for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts]
    files += (root / SOURCE_DIR).glob("*/*.py")
    files += root.glob("*.py")
    return sorted(set(files))


def lint(root: str):
    """doit action for `check:lint`."""
    from doit.exceptions import TaskFailed

    root_path = Path(root)
    if importlib.util.find_spec("ruff") is None:
        return TaskFailed(f"ruff is not installed for {sys.executable}: `pip install -e \".[dev]\"` installs it.")
    folders = [folder for folder in (*LINTED_FOLDERS, str(SOURCE_DIR)) if (root_path / folder).is_dir()]
    targets = [*folders, *(p.name for p in root_path.glob("*.py"))]
    command = [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", *targets]
    code, output, _ = run(root_path, command, LINT_TIMEOUT)
    if code != 0:
        return TaskFailed(f"{tail(output, 80)}\n\nNext: fix each finding above (file:line:column), or let ruff fix "
                          "the ones it can: `ruff check --fix`; then `doit check:lint`.")
    print(output.strip() or "ruff: no findings")
    return None
