"""A dev file, read once: its cells with their lines, directives, NBGrader metadata and imports.

Every step that needs more than the static scan (check, export, release notebooks, grading, the
learner's track) takes a `DevFile`, so one task reads and parses the file once. jupytext is imported
inside `DevFile.read`: loading the task graph must not pay for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tito.model.layout import Module
from tito.model.scan import CoreImport, scan_core_imports_in

CELL_MARKER_RE = re.compile(r"^# %%")
DIRECTIVE_RE = re.compile(r"^#\|\s*(\w+)\s*(.*?)\s*$")
# Keys jupytext itself writes into cell metadata; anything else on a marker line is a typo.
JUPYTEXT_KEYS = {"lines_to_next_cell", "title", "cell_marker", "lines_to_end_of_cell_marker"}


class DevFileError(Exception):
    """A problem in a dev file, located at a line."""

    def __init__(self, path: Path, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass
class Cell:
    """One cell of a dev file."""

    index: int
    kind: str  # "code", "markdown" or "raw"
    source: str
    metadata: dict
    line: int  # 1-based line of the cell's first source line in the dev file
    marker_line: int  # 1-based line of its `# %%` marker (0 when the cell has none)
    directives: dict = field(default_factory=dict)  # {"export": "", "default_exp": "core.x"}

    @property
    def nbgrader(self) -> dict | None:
        return self.metadata.get("nbgrader")

    @property
    def grade_id(self) -> str | None:
        meta = self.nbgrader
        return meta.get("grade_id") if isinstance(meta, dict) else None

    @property
    def exported(self) -> bool:
        return "export" in self.directives

    @property
    def graded(self) -> bool:
        meta = self.nbgrader
        return isinstance(meta, dict) and meta.get("grade") is True

    @property
    def solution(self) -> bool:
        meta = self.nbgrader
        return isinstance(meta, dict) and meta.get("solution") is True


@dataclass
class DevFile:
    """A dev file's full contents. `path` is how messages name it (relative to the project root)."""

    path: Path
    text: str
    cells: list[Cell]
    core_imports: list[CoreImport]
    module: Module | None = None

    @classmethod
    def read(cls, file: Path, shown_as: Path | None = None, module: Module | None = None) -> DevFile:
        """Read and parse `file`; DevFileError (with line and byte) when it is not UTF-8."""
        shown = Path(shown_as) if shown_as is not None else display_path(Path(file))
        text = decode_utf8(Path(file).read_bytes(), shown)
        return cls(shown, text, parse_cells(text), scan_core_imports_in(text), module)

    @classmethod
    def of(cls, module: Module) -> DevFile:
        """A module's dev file, named relative to the project root in messages."""
        return cls.read(module.dev_file, module.dev_file.relative_to(module.root), module)

    @property
    def code_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.kind == "code"]

    @property
    def exported_cells(self) -> list[Cell]:
        return [c for c in self.code_cells if c.exported]

    @property
    def graded_cells(self) -> list[Cell]:
        return [c for c in self.code_cells if c.graded]


def display_path(file: Path) -> Path:
    """`modules/source/NN_name/name_dev.py` when the file sits in a project tree, else the path as given."""
    parts = file.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i:i + 2] == ("modules", "source"):
            return Path(*parts[i:])
    return file


def decode_utf8(data: bytes, shown: Path) -> str:
    """`data` as text, or DevFileError naming the line and byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = data[error.start:error.start + 1]
        raise DevFileError(shown, line, f"byte 0x{byte.hex()} at offset {error.start} is not UTF-8 (the file "
                           "was probably saved in another encoding, such as Latin-1). Re-save it as UTF-8: "
                           "in most editors, 'Save with encoding' -> UTF-8, then run the build again") from None


def utf8_error(file: Path, shown: Path) -> DevFileError | None:
    """The DevFileError naming the line and byte where `file` stops being UTF-8; None when it is UTF-8
    (or missing). For any file the build runs: dev files, test files, helpers, examples."""
    try:
        decode_utf8(Path(file).read_bytes(), Path(shown))
    except DevFileError as error:
        return error
    except FileNotFoundError:
        return None
    return None


def parse_cells(text: str) -> list[Cell]:
    """All cells of jupytext percent-format text, each with its first line in the file."""
    import jupytext  # imported here: too slow for graph loading

    notebook = jupytext.reads(text, fmt="py:percent")
    marker_lines = [n for n, line in enumerate(text.splitlines(), start=1) if CELL_MARKER_RE.match(line)]
    # A file may start with code before its first marker; jupytext makes that a cell of its own.
    leading = len(notebook.cells) - len(marker_lines)
    cells = []
    for index, nb_cell in enumerate(notebook.cells):
        marker = marker_lines[index - leading] if index >= leading else 0
        first_line = marker + 1 if marker else _first_line_of(text, nb_cell.source)
        cell = Cell(index, nb_cell.cell_type, nb_cell.source, dict(nb_cell.metadata), first_line, marker)
        cell.directives = directives(cell.source) if cell.kind == "code" else {}
        cells.append(cell)
    return cells


def _first_line_of(text: str, source: str) -> int:
    first = source.strip().splitlines()[0] if source.strip() else ""
    for number, line in enumerate(text.splitlines(), start=1):
        if first and line.strip() == first:
            return number
    return 1


def directives(source: str) -> dict:
    """Every `#| name value` line of a code cell, by name (the export drops these lines)."""
    found = {}
    for line in source.splitlines():
        match = DIRECTIVE_RE.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def directive_line(source: str, name: str) -> int:
    """0-based index of the `#| name` line within a cell."""
    for index, line in enumerate(source.splitlines()):
        match = DIRECTIVE_RE.match(line)
        if match and match.group(1) == name:
            return index
    return 0


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
