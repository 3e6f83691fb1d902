"""`check:<key>`: everything that can be known about a dev file without exporting it.

Directives, cell metadata, syntax of exported cells and import order (the export's own checks),
NBGrader's rules (tito.steps.nbgrader), and the house rule that a module measures itself: a
`## Systems Analysis` section with at least one `analyze_*` function that the file calls.
Nothing is written.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tito.model.devfile import DevFile, DevFileError
from tito.model.graph import Graph
from tito.model.layout import MODULE_DIR_RE, SOURCE_DIR, discover, misnamed_module_folders
from tito.steps.export import ExportError, build_export, package_code, public_names
from tito.steps.nbgrader import duplicate_public_names, validate

ANALYSIS_HEADING = "## Systems Analysis"


def module_errors(root: Path, key: str) -> list[str]:
    """Every problem in one module's dev file, as `file:line: message` lines, without repeats.

    The file is read and parsed once; the export's checks, NBGrader's rules and the Systems Analysis
    rule all look at that one DevFile.
    """
    graph = Graph.load(root)
    try:
        dev = DevFile.of(graph.module(key))
    except DevFileError as error:
        return [str(error)]
    errors: list[str] = []
    try:
        build_export(dev, graph)
    except ExportError as error:
        errors += error.messages
    errors += validate(dev)
    errors += systems_analysis_errors(dev)
    return list(dict.fromkeys(errors))


def systems_analysis_errors(dev: DevFile) -> list[str]:
    """The `## Systems Analysis` section exists and runs at least one `analyze_*` function it defines."""
    path, cells = dev.path, dev.cells
    headings = [i for i, c in enumerate(cells) if c.kind == "markdown"
                and any(line.strip().startswith(ANALYSIS_HEADING) for line in c.source.splitlines())]
    if not headings:
        return [f"{path}:1: no `{ANALYSIS_HEADING}` section: add a markdown cell with that heading, followed "
                "by `analyze_*` functions that measure the module's memory and time, and call them"]
    defined, called = {}, set()
    for cell in cells[headings[0] + 1:]:
        if cell.kind != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as error:
            return [f"{path}:{cell.line + (error.lineno or 1) - 1}: syntax error in a Systems Analysis cell"]
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("analyze_"):
                defined.setdefault(node.name, cell.line + node.lineno - 1)
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                func = node.value.func
                if isinstance(func, ast.Name):
                    called.add(func.id)
    heading_line = cells[headings[0]].line
    if not defined:
        return [f"{path}:{heading_line}: the Systems Analysis section defines no `analyze_*` function"]
    if not set(defined) & called:
        names = ", ".join(sorted(defined))
        return [f"{path}:{heading_line}: the Systems Analysis defines {names} but never calls one, so nothing "
                "is measured when the file runs: add a call such as `analyze_...()` at the end of its cell"]
    return []


def check_module(root: str, key: str):
    """doit action for `check:<key>`."""
    from doit.exceptions import TaskFailed

    errors = module_errors(Path(root), key)
    if errors:
        return TaskFailed("\n".join(errors) + f"\n{len(errors)} problem(s). Fix them, then run `doit check:{key}`.")
    print(f"{key}: ok")
    return None


def layout_errors(root: str) -> list[str]:
    """Folders under modules/source that the build would skip, and curriculum numbers used twice."""
    root_path = Path(root)
    errors = []
    for folder in misnamed_module_folders(root_path):
        match = MODULE_DIR_RE.match(folder.name)
        if match:
            errors.append(f"{folder.relative_to(root_path)}: has no {match.group(2)}_dev.py, so the build skips "
                          "it: restore the dev file, or remove the folder")
        else:
            errors.append(f"{folder.relative_to(root_path)}: not a module folder, so the build skips it: name it "
                          "NN_name (two digits, e.g. 04_layers) with NN_name/name_dev.py inside")
    by_number: dict[int, list[str]] = {}
    for module in discover(root_path):
        by_number.setdefault(module.number, []).append(module.key)
    for number, keys in sorted(by_number.items()):
        if len(keys) > 1:
            errors.append(f"{SOURCE_DIR}/: modules {' and '.join(keys)} share the number {number:02d}; "
                          "curriculum numbers must be unique")
    return errors


def layout_is_ok(root: str) -> bool:
    """doit `uptodate` for `check:layout`: nothing to report means nothing to run."""
    return not layout_errors(root)


def check_layout(root: str):
    """doit action for `check:layout`."""
    from doit.exceptions import TaskFailed

    errors = layout_errors(root)
    if errors:
        return TaskFailed("\n".join(errors) + "\nRename the folders, then run `doit check`.")
    return None


# --- across modules -------------------------------------------------------------------------------


def module_public_names(dev: DevFile) -> list[str]:
    """The public names that a dev file's `#| export` cells define, as the export computes them."""
    try:
        return public_names("\n\n".join(package_code(cell.source) for cell in dev.exported_cells))
    except SyntaxError:
        return []  # check:NN reports the syntax error with its line; nothing to compare here


def check_public_names(root: str):
    """doit action for `check:public-names`: no public name is exported by two modules."""
    from doit.exceptions import TaskFailed

    exports = {}
    for module in discover(Path(root)):
        try:
            exports[module.key] = module_public_names(DevFile.of(module))
        except DevFileError:
            exports[module.key] = []  # check:NN names the bad byte; the other modules are still compared
    problems = duplicate_public_names(exports)
    if problems:
        return TaskFailed("\n".join(problems) + f"\n{len(problems)} clash(es). Fix them, then run `doit check`.")
    print(f"public names: {sum(map(len, exports.values()))} across {len(exports)} modules, no clash")
    return None
