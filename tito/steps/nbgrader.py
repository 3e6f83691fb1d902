"""NBGrader metadata: validation (schema version 3) and the student versions of cells.

`validate` implements the rules nbgrader 0.9.6 enforces (see docs/build-notes.md, "NBGrader rules"), plus
the house rules of docs/module-format.md, and reports each problem as `path:line: message`:

- metadata problems point at the cell's `# %%` marker line, where the metadata is written;
- marker problems (`### BEGIN SOLUTION`, `### BEGIN HIDDEN TESTS`, ...) point at the marker's own line.

`clear_solutions` and `remove_hidden_tests` turn a cell's source into what students see.
`duplicate_public_names` is the one check that needs every module at once.

Nothing here runs the code being checked. Only the standard library is imported at load time.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from tito.model.devfile import Cell, DevFile, cell_metadata_errors

SCHEMA_VERSION = 3
REQUIRED_KEYS = ("schema_version", "grade", "locked", "solution")
BOOLEAN_KEYS = ("grade", "locked", "solution")
ALLOWED_KEYS = {"schema_version", "grade", "locked", "solution", "grade_id", "points", "task", "checksum",
                "cell_type"}
GRADE_ID_RE = re.compile(r"^[a-zA-Z0-9_\-]*$")

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
SOLUTION_MARKERS = (BEGIN_SOLUTION, END_SOLUTION)  # the export drops these lines, keeping what is between
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
# nbgrader recognises a marker anywhere in a line ("BEGIN SOLUTION" in the line), so we do too: a line
# such as `# BEGIN SOLUTION` is a marker to nbgrader even though the house spelling has three #.
SOLUTION_WORDS = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_WORDS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


# --- validation -----------------------------------------------------------------------------------


def validate(dev: DevFile, require_metadata: bool = True) -> list[str]:
    """Every NBGrader and house-rule problem in a dev file's cells, as `"{path}:{line}: message"`.

    The path is printed as the DevFile names it (relative to the project root). An empty list means
    the file is fine. `require_metadata=False` accepts code cells without nbgrader metadata.
    """
    path, cells = dev.path, dev.cells
    problems: list[tuple[int, str]] = []
    first_use: dict[str, int] = {}  # grade_id -> marker line of the first graded/solution/locked cell
    for cell in cells:
        problems += _metadata_problems(path, cell, first_use, require_metadata)
        problems += _marker_problems(cell)
    # Sorted by line so the report reads top to bottom; a stable sort keeps each line's messages in order.
    problems.sort(key=lambda item: item[0])
    return [f"{path}:{line}: {message}" for line, message in problems]


def _metadata_problems(path: Path, cell: Cell, first_use: dict[str, int],
                       require_metadata: bool) -> list[tuple[int, str]]:
    line = cell.marker_line or cell.line
    found = [(e.line, e.message) for e in cell_metadata_errors(path, cell)]
    if "incorrectly_encoded_metadata" in cell.metadata:
        return found  # the JSON itself is broken: any further message would only guess
    meta = cell.metadata.get("nbgrader")
    if meta is None:
        if cell.kind == "code" and require_metadata:
            found.append((line, 'code cell without nbgrader metadata: the house rule (docs/module-format.md) is '
                                'that every code cell carries it on its marker line, e.g. `# %% nbgrader={"grade": '
                                'false, "grade_id": "my-cell", "locked": false, "schema_version": 3, '
                                '"solution": false}`'))
        return found
    if not isinstance(meta, dict):
        return found  # cell_metadata_errors already said it must be a JSON object

    def problem(message: str) -> None:
        found.append((line, message))

    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        problem(f"nbgrader metadata is missing {', '.join(repr(k) for k in missing)}: every nbgrader cell needs "
                f"{', '.join(REQUIRED_KEYS)}")
    for key in sorted(set(meta) - ALLOWED_KEYS):
        problem(f"unknown nbgrader key {key!r}: nbgrader rejects it (allowed: {', '.join(sorted(ALLOWED_KEYS))}); "
                "check its spelling")
    version = meta.get("schema_version")
    if "schema_version" in meta and (isinstance(version, bool) or version != SCHEMA_VERSION):
        problem(f'"schema_version" is {version!r}: it must be {SCHEMA_VERSION}')
    for key in BOOLEAN_KEYS:
        if key in meta and not isinstance(meta[key], bool):
            problem(f'"{key}" is {meta[key]!r}: it must be true or false (JSON booleans, not strings or numbers)')
    if "task" in meta and not isinstance(meta["task"], bool):
        problem(f'"task" is {meta["task"]!r}: it must be true or false')

    graded, solution, locked = (meta.get(key) is True for key in ("grade", "solution", "locked"))
    task = meta.get("task") is True

    grade_id = meta.get("grade_id")
    if grade_id is None:
        problem('no "grade_id": every nbgrader cell needs a unique one (letters, digits, "-" and "_")')
    elif not isinstance(grade_id, str) or not grade_id:
        problem(f'"grade_id" is {grade_id!r}: it must be a non-empty string of letters, digits, "-" and "_"')
    elif not GRADE_ID_RE.match(grade_id):
        bad = "".join(sorted({ch for ch in grade_id if not re.match(r"[a-zA-Z0-9_\-]", ch)}))
        problem(f'"grade_id" {grade_id!r} contains {bad!r}: only letters, digits, "-" and "_" are allowed')
    elif graded or solution or locked:
        if grade_id in first_use:
            problem(f'duplicate "grade_id" {grade_id!r}: line {first_use[grade_id]} already uses it; grade ids '
                    "of graded, solution and locked cells must be unique, so rename one")
        else:
            first_use[grade_id] = line

    if "points" in meta:
        points = meta["points"]
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            problem(f'"points" is {points!r}: it must be a number >= 0')
        elif not graded:
            problem('"points" on a cell that is not graded: nbgrader accepts this, TinyTorch is stricter because '
                    'the points would count nowhere; remove "points" or set "grade": true')
    elif graded:
        problem('a graded cell ("grade": true) needs "points": add e.g. "points": 5')

    if task and cell.kind != "markdown":
        problem('"task": true on a code cell: task cells must be markdown cells')
    if cell.kind == "markdown" and graded != solution:
        problem('a markdown cell must be graded and solution together, or neither: set "grade" and "solution" '
                "both true (a written answer that is graded) or both false")
    return found


def _marker_problems(cell: Cell) -> list[tuple[int, str]]:
    """Unbalanced, nested or misplaced BEGIN/END SOLUTION and BEGIN/END HIDDEN TESTS markers."""
    if cell.kind != "code":
        return []  # prose may mention the markers; nbgrader only clears them in code cells
    meta = cell.nbgrader if isinstance(cell.nbgrader, dict) else {}
    found = []
    found += _balance(cell, SOLUTION_WORDS, "SOLUTION", allowed=meta.get("solution") is True,
                      where='cells with "solution": true')
    found += _balance(cell, HIDDEN_WORDS, "HIDDEN TESTS", allowed=meta.get("grade") is True,
                      where='graded cells ("grade": true)')
    return found


def _balance(cell: Cell, words: tuple[str, str], name: str, allowed: bool, where: str) -> list[tuple[int, str]]:
    begin_word, end_word = words
    exact_begin, exact_end = f"### {begin_word}", f"### {end_word}"
    found = []
    open_at = None  # the dev-file line of the BEGIN still waiting for its END
    for offset, text in enumerate(cell.source.splitlines()):
        line = cell.line + offset
        is_begin, is_end = begin_word in text, end_word in text
        if not (is_begin or is_end):
            continue
        exact = exact_begin if is_begin else exact_end
        if text.strip() != exact:
            found.append((line, f"write the marker on a line of its own, exactly as `{exact}` (nbgrader sees "
                                f"{text.strip()!r} as a marker, but the export would keep it)"))
        if not allowed:
            found.append((line, f"`{exact}` in a cell that is not one of the {where}: the marker belongs only "
                                "there; fix the cell's nbgrader metadata or remove the marker"))
        if is_begin:
            if open_at is not None:
                found.append((line, f"`{exact_begin}` inside the block opened at line {open_at}: blocks cannot "
                                    f"nest; close the first with `{exact_end}` before opening another"))
            else:
                open_at = line
        elif open_at is None:
            found.append((line, f"`{exact_end}` without a `{exact_begin}` before it in this cell"))
        else:
            open_at = None
    if open_at is not None:
        found.append((open_at, f"`{exact_begin}` is never closed: add `{exact_end}` in the same cell"))
    return found


# --- the student version of a cell ----------------------------------------------------------------


def clear_solutions(source: str, stub_for: str) -> str:
    """Replace each BEGIN..END SOLUTION block with `raise NotImplementedError("...")`.

    The stub sits at the BEGIN line's indentation and names what to implement: the function or method
    that encloses the block ("Implement Dense.forward (see the docstring above)"), or, for a block at
    the top level of the cell, `stub_for` (the cell's grade_id). Raises ValueError on unbalanced or
    nested markers; `validate` reports those with their lines first.
    """
    lines = source.splitlines()
    kept: list[str] = []
    inside = False
    for number, text in enumerate(lines, start=1):
        if SOLUTION_WORDS[0] in text:
            if inside:
                raise ValueError(f"line {number} of the cell: nested {BEGIN_SOLUTION}")
            inside = True
            indent = text[: len(text) - len(text.lstrip())]
            what = _what_to_implement(source, number, stub_for)
            # json.dumps gives a double-quoted literal that Python reads back unchanged.
            kept.append(f"{indent}raise NotImplementedError({json.dumps(what, ensure_ascii=False)})")
        elif SOLUTION_WORDS[1] in text:
            if not inside:
                raise ValueError(f"line {number} of the cell: {END_SOLUTION} without {BEGIN_SOLUTION}")
            inside = False
        elif not inside:
            kept.append(text)
    if inside:
        raise ValueError(f"the cell has a {BEGIN_SOLUTION} without {END_SOLUTION}")
    return "\n".join(kept) + ("\n" if source.endswith("\n") else "")


def remove_hidden_tests(source: str) -> str:
    """Drop every BEGIN..END HIDDEN TESTS block, marker lines included."""
    kept: list[str] = []
    inside = False
    for text in source.splitlines():
        if HIDDEN_WORDS[0] in text:
            inside = True
        elif HIDDEN_WORDS[1] in text:
            inside = False
        elif not inside:
            kept.append(text)
    return "\n".join(kept) + ("\n" if source.endswith("\n") else "")


def _what_to_implement(source: str, line: int, stub_for: str) -> str:
    """The stub's message for a solution block starting at `line` (1-based, within the cell)."""
    chain = _enclosing_definitions(source, line)
    if not chain:
        return f"Implement the code of cell {stub_for!r} (see the instructions above)"
    # Point at the nearest docstring: the function's own, else its class's (often where __init__'s
    # arguments are described), else the prose above the cell.
    hint = "see the instructions above"
    for node in reversed(chain):
        if ast.get_docstring(node):
            hint = "see the docstring above" if node is chain[-1] else f"see the docstring of {node.name} above"
            break
    return f"Implement {'.'.join(node.name for node in chain)} ({hint})"


def _enclosing_definitions(source: str, line: int) -> list[ast.AST]:
    """The classes and functions around `line`, outermost first; [] if the cell does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    chain = []
    nodes = list(tree.body)
    while nodes:
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and \
                    node.lineno < line <= _block_end(node, lines):
                chain.append(node)
                nodes = list(node.body)
                break
        else:
            break
    return chain


def _block_end(node: ast.AST, lines: list[str]) -> int:
    """The last line of a definition, counting comments and blank lines indented under it.

    ast's end_lineno stops at the last statement, but a solution block may end in comments (or be
    empty), and its BEGIN marker still belongs to the definition above it.
    """
    end = node.end_lineno
    for number in range(end + 1, len(lines) + 1):
        text = lines[number - 1]
        if text.strip() and len(text) - len(text.lstrip()) <= node.col_offset:
            break
        end = number
    return end


# --- across modules -------------------------------------------------------------------------------


def duplicate_public_names(modules_exports: dict[str, list[str]]) -> list[str]:
    """Public names exported by more than one module, one message per clash.

    `modules_exports` maps a module key ("04_layers") to the public names its export defines
    (`tito.steps.export.public_names`). Imports are not definitions, so re-exporting an import is fine.
    """
    owner: dict[str, str] = {}
    problems = []
    for key in sorted(modules_exports):
        for name in modules_exports[key]:
            if name in owner and owner[name] != key:
                problems.append(f"{name!r} is exported by both {owner[name]} and {key}: a later "
                                f"`from tinytorch.core... import {name}` would get whichever was imported last. "
                                f"Rename one, or have {key} import it from {owner[name]} instead of defining it")
            else:
                owner.setdefault(name, key)
    return problems
