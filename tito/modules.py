"""Find the curriculum's modules and read their files.

Two kinds of reading live here:

- a fast *static scan* (regular expressions, no third-party imports) used while doit loads the task
  graph: module folders, the `#| default_exp` target and the `tinytorch` imports of any Python file;
- a full *cell reader* (jupytext, imported lazily) used by tasks that need every cell with its
  metadata and its first line in the dev file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

SOURCE_DIR = Path("modules") / "source"
RELEASE_DIR = Path("modules") / "release"
PACKAGE_DIR = Path("tinytorch") / "core"
TESTS_DIR = Path("tests")
SUPPORT_DIR = TESTS_DIR / "support"  # helpers that test files import by name (`from contract_tensor import ...`)
EXAMPLES_DIR = Path("examples")
REPORTS_DIR = Path("reports")

MODULE_DIR_RE = re.compile(r"^(\d\d)_([a-z][a-z0-9_]*)$")
DEFAULT_EXP_RE = re.compile(r"^#\|\s*default_exp\s+(\S+)\s*$", re.MULTILINE)
# `from tinytorch.core.layers import Dense`, `import tinytorch.core.layers as L`,
# `from tinytorch.core import layers, tensor`
FROM_CORE_MODULE_RE = re.compile(r"^\s*from\s+tinytorch\.core\.(\w+)\s+import\b")
IMPORT_CORE_MODULE_RE = re.compile(r"^\s*import\s+tinytorch\.core\.(\w+)")
FROM_CORE_RE = re.compile(r"^\s*from\s+tinytorch\.core\s+import\s+\(?([\w\s,]+)\)?")


@dataclass(frozen=True)
class Module:
    """One curriculum module: `modules/source/NN_name/`."""

    root: Path
    key: str  # "04_layers"
    number: int  # 4
    name: str  # "layers"

    @property
    def folder(self) -> Path:
        return self.root / SOURCE_DIR / self.key

    @property
    def dev_file(self) -> Path:
        return self.folder / f"{self.name}_dev.py"

    @property
    def test_files(self) -> list[Path]:
        return sorted(self.folder.glob(f"test_{self.name}*.py"))

    @cached_property
    def export_name(self) -> str:
        """The `core.<name>` module this one exports to, read from `#| default_exp`.

        Falls back to the module's own name when the directive is missing, so that the graph still
        loads; `check` and `export` report the missing directive with its file and line.
        """
        match = DEFAULT_EXP_RE.search(read_text(self.dev_file))
        if match and match.group(1).startswith("core."):
            return match.group(1)[len("core."):]
        return self.name

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


def discover(root: Path) -> list[Module]:
    """Every `modules/source/NN_name/` that holds `name_dev.py`, in curriculum order."""
    source = Path(root) / SOURCE_DIR
    if not source.is_dir():
        return []
    found = []
    for folder in sorted(source.iterdir()):
        match = MODULE_DIR_RE.match(folder.name)
        if not (match and folder.is_dir()):
            continue
        module = Module(Path(root), folder.name, int(match.group(1)), match.group(2))
        if module.dev_file.is_file():
            found.append(module)
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


def find_module(root: Path, key: str) -> Module:
    """The module named `key` ("04_layers", or just "04" or "layers")."""
    modules = discover(root)
    for module in modules:
        if key in (module.key, f"{module.number:02d}", module.name):
            return module
    known = ", ".join(m.key for m in modules) or "none"
    raise LookupError(f"no module {key!r} under {SOURCE_DIR}/ (known: {known})")


# --- the static scan -------------------------------------------------------------------------------


def read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


@dataclass(frozen=True)
class CoreImport:
    """A `tinytorch.core.<name>` import found in a file, with its 1-based line."""

    name: str
    line: int


def scan_core_imports(path: Path) -> list[CoreImport]:
    """The `tinytorch.core` modules a Python file imports, found by a line scan (no parsing)."""
    found = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if "tinytorch" not in line:
            continue
        for pattern in (FROM_CORE_MODULE_RE, IMPORT_CORE_MODULE_RE):
            match = pattern.match(line)
            if match:
                found.append(CoreImport(match.group(1), number))
        match = FROM_CORE_RE.match(line)
        if match:
            for name in re.split(r"[\s,]+", match.group(1)):
                if name and name != "as":
                    found.append(CoreImport(name, number))
    return found


IMPORT_NAME_RE = re.compile(r"^\s*(?:from\s+(\w+)\s+import|import\s+(\w+))", re.MULTILINE)


def scan_support_imports(path: Path, root: Path) -> list[Path]:
    """The tests/support/*.py helpers a test file imports, directly or through other helpers."""
    support = Path(root) / SUPPORT_DIR
    found: list[Path] = []
    pending = [Path(path)]
    while pending:
        for match in IMPORT_NAME_RE.finditer(read_text(pending.pop())):
            helper = support / f"{match.group(1) or match.group(2)}.py"
            if helper.is_file() and helper not in found:
                found.append(helper)
                pending.append(helper)
    return found


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str | None:
    try:
        return sha256_bytes(Path(path).read_bytes())
    except FileNotFoundError:
        return None


# --- the cell reader -------------------------------------------------------------------------------

CELL_MARKER_RE = re.compile(r"^# %%")
# Keys jupytext itself writes into cell metadata; anything else on a marker line is a typo.
JUPYTEXT_KEYS = {"lines_to_next_cell", "title", "cell_marker", "lines_to_end_of_cell_marker"}


@dataclass
class Cell:
    """One cell of a dev file."""

    index: int
    kind: str  # "code" or "markdown"
    source: str
    metadata: dict
    line: int  # 1-based line of the cell's first source line in the dev file
    marker_line: int  # 1-based line of its `# %%` marker (0 when the cell has none)
    directives: dict = field(default_factory=dict)  # "export": True, "default_exp": "core.x"

    @property
    def nbgrader(self) -> dict | None:
        return self.metadata.get("nbgrader")

    @property
    def exported(self) -> bool:
        return "export" in self.directives


class DevFileError(Exception):
    """A problem in a dev file, located at a line."""

    def __init__(self, path: Path, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


DIRECTIVE_RE = re.compile(r"^#\|\s*(\w+)\s*(.*?)\s*$")


def read_cells(path: Path) -> list[Cell]:
    """All cells of a jupytext percent-format file, each with its first line in the file."""
    import jupytext  # imported here: too slow for graph loading

    text = read_text(path)
    notebook = jupytext.reads(text, fmt="py:percent")
    marker_lines = [n for n, line in enumerate(text.splitlines(), start=1) if CELL_MARKER_RE.match(line)]
    # A file may start with code before its first marker; jupytext makes that a cell of its own.
    leading = len(notebook.cells) - len(marker_lines)
    cells = []
    for index, nb_cell in enumerate(notebook.cells):
        marker = marker_lines[index - leading] if index >= leading else 0
        first_line = marker + 1 if marker else _first_line_of(text, nb_cell.source)
        cell = Cell(index, nb_cell.cell_type, nb_cell.source, dict(nb_cell.metadata), first_line, marker)
        cell.directives = _directives(cell.source) if cell.kind == "code" else {}
        cells.append(cell)
    return cells


def _first_line_of(text: str, source: str) -> int:
    first = source.strip().splitlines()[0] if source.strip() else ""
    for number, line in enumerate(text.splitlines(), start=1):
        if first and line.strip() == first:
            return number
    return 1


def _directives(source: str) -> dict:
    """`#| name value` lines at the top of a code cell (blank lines and comments may come between)."""
    found = {}
    for line in source.splitlines():
        match = DIRECTIVE_RE.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def cell_metadata_errors(path: Path, cell: Cell) -> list[DevFileError]:
    """Marker-line metadata that jupytext could not read as JSON, or stray words on a marker."""
    errors = []
    line = cell.marker_line or cell.line
    bad = cell.metadata.get("incorrectly_encoded_metadata")
    if bad is not None:
        errors.append(DevFileError(path, line, f"cell metadata is not valid JSON: {bad!r}. "
                                   'Write it as nbgrader={"grade": false, ...} with double quotes, '
                                   "lower-case true/false, and no trailing commas."))
    for key, value in cell.metadata.items():
        if key == "incorrectly_encoded_metadata" or key in JUPYTEXT_KEYS:
            continue
        if key != "nbgrader":
            errors.append(DevFileError(path, line, f"unexpected text {key!r} on the cell marker: "
                                       "only nbgrader={...} metadata belongs there"))
        elif not isinstance(value, dict):
            errors.append(DevFileError(path, line, f"nbgrader metadata must be a JSON object, got {value!r}"))
    return errors
