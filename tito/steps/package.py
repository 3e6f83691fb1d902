"""`doit package`: the tinytorch wheel, built from the exported tree, proven in a fresh virtualenv.

The generated modules are not in git, so the wheel is built from a staging folder holding the
package as exported (tinytorch/ only: the build tooling tito/ is not part of what learners install).
The check installs the wheel into a new virtual environment and imports every public name of every
module from it, outside the repository, so nothing can come from the working tree by accident.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from tito.steps.generated import write_atomic

DIST_DIR = Path("dist")
PYPROJECT = """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "tinytorch"
version = "{version}"
description = "A deep-learning framework built from scratch on NumPy, one module at a time"
requires-python = ">=3.10"
dependencies = ["numpy>=1.24"]

[tool.setuptools.packages.find]
include = ["tinytorch", "tinytorch.*"]
"""


def package_version(root: Path) -> str:
    """`__version__` from tinytorch/__init__.py (read, not imported), or 0.0.0 when it has none."""
    init = Path(root) / "tinytorch" / "__init__.py"
    text = init.read_text(encoding="utf-8") if init.is_file() else ""
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return match.group(1) if match else "0.0.0"


def wheel_path(root: Path) -> Path:
    return Path(root) / DIST_DIR / f"tinytorch-{package_version(root)}-py3-none-any.whl"


def public_names_by_module(root: Path) -> dict[str, list[str]]:
    """`__all__` of every generated module in tinytorch/core, read without importing anything."""
    names = {}
    for path in sorted((Path(root) / "tinytorch" / "core").glob("[!_.]*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
                names[f"tinytorch.core.{path.stem}"] = ast.literal_eval(node.value)
    return names


def _run(command: list, cwd: Path) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(map(str, command))}` failed:\n{done.stdout[-3000:]}")
    return done.stdout


def build_and_check(root: str):
    """doit action for `package`."""
    from doit.exceptions import TaskFailed

    root_path = Path(root)
    target = wheel_path(root_path)
    names = public_names_by_module(root_path)
    if not names:
        return TaskFailed("tinytorch/core holds no exported module: run `doit export` first.")
    with tempfile.TemporaryDirectory(prefix="tinytorch-package-") as scratch:
        scratch = Path(scratch)
        stage = scratch / "stage"
        shutil.copytree(root_path / "tinytorch", stage / "tinytorch",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
        (stage / "pyproject.toml").write_text(PYPROJECT.format(version=package_version(root_path)))
        try:
            # No build isolation: the build uses this environment's setuptools, so it works offline.
            _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                  "-w", scratch / "wheels", stage], scratch)
            built = next((scratch / "wheels").glob("tinytorch-*.whl"))
            env_dir = scratch / "venv"
            venv.create(env_dir, with_pip=True)
            python = env_dir / "bin" / "python"
            _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", built], scratch)
            probe = "\n".join(f"from {module} import {', '.join(items)}" for module, items in names.items() if items)
            probe += "\nimport tinytorch, sys\nassert 'site-packages' in tinytorch.__file__, tinytorch.__file__\n"
            _run([python, "-c", probe], scratch)  # cwd is the scratch folder: only the installed wheel is seen
        except (RuntimeError, StopIteration) as error:
            return TaskFailed(f"package check failed: {error}\nNext: fix it, then `doit package`.")
        write_atomic(target, built.read_bytes())
    count = sum(len(items) for items in names.values())
    print(f"{target.relative_to(root_path)}: installs into a fresh venv and imports {count} public names "
          f"from {len(names)} modules")
    return None
