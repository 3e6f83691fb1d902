"""The fast static scan: what doit needs to know about files while it loads the task graph.

Regular expressions over the text, no parsing and no third-party imports, so a no-op build stays
cheap. A file that is not valid UTF-8 is still scanned (bad bytes read as U+FFFD): the graph loads,
and `check` names the file, line and byte (tito.model.devfile).

Static imports give the graph its edges. Imports it cannot follow (importlib.import_module,
`__import__`, exec or eval of code that imports tinytorch) are found too, with their lines
(`scan_dynamic_imports_in`): the graph then makes the task that runs such a file depend on every
export (tito.model.graph), and `check` names the line.
"""

from __future__ import annotations

import functools
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
# Calls that import code by a name or text known only when they run. A method such as `model.eval()`
# or a longer name such as `evaluate(` is not one of them: only `importlib.` may come right before the
# name (checked by hand: a look-behind here makes the scan of every file several times slower).
DYNAMIC_CALL_RE = re.compile(r"(import_module|__import__|exec|eval)\s*\(")
LITERAL_ARGUMENT_RE = re.compile(r"\s*[rRbBuU]{0,2}['\"]")  # a plain string literal (not an f-string)


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


@dataclass(frozen=True)
class DynamicImport:
    """A call that may import tinytorch code the static scan cannot follow, with its 1-based line."""

    call: str  # "importlib.import_module", "__import__", "exec" or "eval"
    line: int


@functools.lru_cache(maxsize=1024)  # the graph asks about the same files many times while it loads
def scan_dynamic_imports_in(text: str) -> tuple[DynamicImport, ...]:
    """Calls in Python source text that may import tinytorch in a way no static scan can follow.

    A call counts when its line mentions `tinytorch` (`importlib.import_module("tinytorch.core.x")`,
    `exec("from tinytorch.core.x import y")`), or when importlib.import_module, `__import__` or exec gets
    something other than a string literal in a file that mentions tinytorch at all (the name is built
    elsewhere). Comment lines are skipped; so is eval of a name (usually arithmetic, not imports).
    """
    if "tinytorch" not in text:
        return ()
    found: list[DynamicImport] = []
    for match in DYNAMIC_CALL_RE.finditer(text):  # one pass of the regex engine; most files have no match
        call, at = match.group(1), match.start()
        if call == "import_module" and text.endswith("importlib.", 0, at):
            call = "importlib.import_module"
        elif at and (text[at - 1].isalnum() or text[at - 1] in "_."):
            continue  # a method, or part of a longer name
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", match.end())
        line = text[start:end if end >= 0 else len(text)]
        number = text.count("\n", 0, start) + 1
        if line.lstrip().startswith("#") or (found and found[-1].line == number):
            continue
        literal = LITERAL_ARGUMENT_RE.match(text, match.end()) is not None
        if "tinytorch" in line or (not literal and call != "eval"):
            found.append(DynamicImport(call, number))
    return tuple(found)


def scan_core_imports(path: Path) -> list[CoreImport]:
    """The `tinytorch.core` modules a Python file imports."""
    return scan_core_imports_in(read_text(path))


def scan_dynamic_imports(path: Path) -> tuple[DynamicImport, ...]:
    """The dynamic imports (see scan_dynamic_imports_in) of a Python file."""
    return scan_dynamic_imports_in(read_text(path))


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
