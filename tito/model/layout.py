"""Where things live in a TinyTorch checkout, and which curriculum modules exist.

A module is a folder `modules/source/NN_name/` holding `name_dev.py`. Discovering the modules reads
each dev file once, with the fast static scan (tito.model.scan): its `#| default_exp` target and its
`tinytorch.core` imports. Nothing here writes a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tito.model.scan import (
    CoreImport,
    DynamicImport,
    default_export_name,
    read_text,
    scan_core_imports_in,
    scan_dynamic_imports_in,
)

SOURCE_DIR = Path("modules") / "source"
RELEASE_DIR = Path("modules") / "release"
PACKAGE_DIR = Path("tinytorch") / "core"
TESTS_DIR = Path("tests")
SUPPORT_DIR = TESTS_DIR / "support"  # helpers that test files import by name (`from contract_tensor import ...`)
EXAMPLES_DIR = Path("examples")
REPORTS_DIR = Path("reports")

MODULE_DIR_RE = re.compile(r"^(\d\d)_([a-z][a-z0-9_]*)$")


@dataclass(frozen=True)
class Module:
    """One curriculum module: `modules/source/NN_name/`, as the static scan saw it."""

    root: Path
    key: str  # "04_layers"
    number: int  # 4
    name: str  # "layers"
    # `core.<export_name>` from `#| default_exp`; the module's own name when the directive is missing,
    # so the graph still loads (`check` and `export` report the missing directive with its line).
    export_name: str
    imports: tuple[CoreImport, ...]  # the dev file's `tinytorch.core` imports, with their lines
    # imports the scan cannot follow (importlib, __import__, exec): its tasks depend on every export
    dynamic_imports: tuple[DynamicImport, ...] = ()

    @property
    def folder(self) -> Path:
        return self.root / SOURCE_DIR / self.key

    @property
    def dev_file(self) -> Path:
        return self.folder / f"{self.name}_dev.py"

    @property
    def test_files(self) -> list[Path]:
        return sorted(self.folder.glob(f"test_{self.name}*.py"))

    @property
    def export_file(self) -> Path:
        return self.root / PACKAGE_DIR / f"{self.export_name}.py"

    @property
    def progressive_test(self) -> Path:
        return self.root / TESTS_DIR / f"module_{self.number:02d}" / "test_progressive_integration.py"

    @property
    def release_notebook(self) -> Path:
        return self.root / RELEASE_DIR / self.key / f"{self.name}.ipynb"

    @property
    def report_dir(self) -> Path:
        return self.root / REPORTS_DIR / self.key


def module_folders(root: Path) -> list[tuple[Path, re.Match]]:
    """(folder, name match) of every `modules/source/NN_name/` folder, in curriculum order."""
    source = Path(root) / SOURCE_DIR
    if not source.is_dir():
        return []
    found = []
    for folder in sorted(source.iterdir()):
        match = MODULE_DIR_RE.match(folder.name)
        if match and folder.is_dir():
            found.append((folder, match))
    return found


def discover(root: Path) -> list[Module]:
    """Every `modules/source/NN_name/` that holds `name_dev.py`, in curriculum order."""
    root = Path(root)
    found = []
    for folder, match in module_folders(root):
        number, name = int(match.group(1)), match.group(2)
        dev_file = folder / f"{name}_dev.py"
        if not dev_file.is_file():
            continue
        text = read_text(dev_file)
        found.append(Module(root, folder.name, number, name, default_export_name(text) or name,
                            tuple(scan_core_imports_in(text)), tuple(scan_dynamic_imports_in(text))))
    return found


def misnamed_module_folders(root: Path) -> list[Path]:
    """Folders under modules/source that look like modules but that `discover` skips."""
    source = Path(root) / SOURCE_DIR
    if not source.is_dir():
        return []
    odd = []
    for folder in sorted(source.iterdir()):
        if not folder.is_dir() or folder.name.startswith((".", "_")):
            continue
        match = MODULE_DIR_RE.match(folder.name)
        if not match or not (folder / f"{match.group(2)}_dev.py").is_file():
            odd.append(folder)
    return odd


def select_module(modules: list[Module], key: str) -> Module:
    """The module named `key` ("04_layers", or just "04" or "layers") among `modules`."""
    for module in modules:
        if key in (module.key, f"{module.number:02d}", module.name):
            return module
    known = ", ".join(m.key for m in modules) or "none"
    raise LookupError(f"no module {key!r} under {SOURCE_DIR}/ (known: {known})")


def find_module(root: Path, key: str) -> Module:
    """The module named `key` ("04_layers", or just "04" or "layers") in the checkout at `root`."""
    return select_module(discover(root), key)


def example_scripts(root: Path) -> list[Path]:
    """Every `examples/<name>/train.py`, sorted by name."""
    return sorted((Path(root) / EXAMPLES_DIR).glob("*/train.py"))
