"""The fast static scan: what doit needs to know about files while it loads the task graph.

Regular expressions over the text, no parsing and no third-party imports, so a no-op build stays
cheap. A file that is not valid UTF-8 is still scanned (bad bytes read as U+FFFD): the graph loads,
and `check` names the file, line and byte (tito.model.devfile).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_EXP_RE = re.compile(r"^#\|\s*default_exp\s+(\S+)\s*$", re.MULTILINE)
# `from tinytorch.core.layers import Dense`, `import tinytorch.core.layers as L`,
# `from tinytorch.core import layers, tensor`
FROM_CORE_MODULE_RE = re.compile(r"^\s*from\s+tinytorch\.core\.(\w+)\s+import\b")
IMPORT_CORE_MODULE_RE = re.compile(r"^\s*import\s+tinytorch\.core\.(\w+)")
FROM_CORE_RE = re.compile(r"^\s*from\s+tinytorch\.core\s+import\s+\(?([\w\s,]+)\)?")
IMPORT_NAME_RE = re.compile(r"^\s*(?:from\s+(\w+)\s+import|import\s+(\w+))", re.MULTILINE)


def read_text(path: Path) -> str:
    """The file's text ('' when it does not exist); undecodable bytes become U+FFFD."""
    try:
        return Path(path).read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str | None:
    try:
        return sha256_bytes(Path(path).read_bytes())
    except FileNotFoundError:
        return None


def default_export_name(text: str) -> str | None:
    """`layers` for a file holding `#| default_exp core.layers`; None without a `core.` target."""
    match = DEFAULT_EXP_RE.search(text)
    if match and match.group(1).startswith("core."):
        return match.group(1)[len("core."):]
    return None


@dataclass(frozen=True)
class CoreImport:
    """A `tinytorch.core.<name>` import found in a file, with its 1-based line."""

    name: str
    line: int


def scan_core_imports_in(text: str) -> list[CoreImport]:
    """The `tinytorch.core` modules that Python source text imports, found by a line scan."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
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


def scan_core_imports(path: Path) -> list[CoreImport]:
    """The `tinytorch.core` modules a Python file imports."""
    return scan_core_imports_in(read_text(path))


def scan_support_imports(path: Path, support: Path) -> list[Path]:
    """The helpers in `support` (tests/support/) a test file imports, directly or through other helpers."""
    found: list[Path] = []
    pending = [Path(path)]
    while pending:
        for match in IMPORT_NAME_RE.finditer(read_text(pending.pop())):
            helper = Path(support) / f"{match.group(1) or match.group(2)}.py"
            if helper.is_file() and helper not in found:
                found.append(helper)
                pending.append(helper)
    return found
