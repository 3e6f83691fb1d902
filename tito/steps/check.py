"""`check:<key>`: everything that can be known about a dev file without exporting it.

Directives, cell metadata, syntax of exported cells and import order (the export's own checks),
NBGrader's rules (tito.steps.nbgrader), and the house rule that a module measures itself: a
`## Systems Analysis` section with at least one `analyze_*` function that the file calls.
The files the module's tasks run besides the dev file (its test files, its progressive test and the
helpers they import) must be UTF-8. Imports the graph cannot follow (importlib, `__import__`, exec)
are named with their line, as notes: the tasks that run them depend on every export (tito.model.graph).
`check:example:<name>` does the same for an example script. Nothing is written.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tito.model.devfile import DevFile, DevFileError, utf8_error
from tito.model.graph import Graph
from tito.model.layout import MODULE_DIR_RE, SOURCE_DIR, Module, discover, misnamed_module_folders
from tito.steps.export import ExportError, build_export, package_code, public_names
from tito.steps.nbgrader import duplicate_public_names, validate

ANALYSIS_HEADING = "## Systems Analysis"


def module_errors(root: Path, key: str, graph: Graph | None = None) -> list[str]:
    """Every problem in one module's dev file, as `file:line: message` lines, without repeats; then
    any of its test files (or the helpers they import) that is not UTF-8.

    The dev file is read and parsed once; the export's checks, NBGrader's rules and the Systems Analysis
    rule all look at that one DevFile.
    """
    graph = graph or Graph.load(root)
    module = graph.module(key)
    others = [str(e) for f in files_run_with(graph, module) if (e := utf8_error(f, f.relative_to(graph.root)))]
    try:
        dev = DevFile.of(module)
    except DevFileError as error:
        return [str(error), *others]
    errors: list[str] = []
    try:
        build_export(dev, graph)
    except ExportError as error:
        errors += error.messages
    errors += validate(dev)
    errors += systems_analysis_errors(dev)
    return list(dict.fromkeys(errors + others))


def files_run_with(graph: Graph, module: Module) -> list[Path]:
    """The files a module's test and integrate tasks run besides its dev file: test files, the
    progressive test, and the tests/support helpers they import."""
    tests = [*module.test_files, *([module.progressive_test] if module.progressive_test.is_file() else [])]
    return list(dict.fromkeys([*tests, *(h for t in tests for h in graph.support_files_of(t))]))


def dynamic_import_notes(graph: Graph, module: Module) -> list[str]:
    """One `file:line: ...` note per import that the graph cannot follow, naming the tasks it affects."""
    root = graph.root
    notes = [dynamic_note(module.dev_file.relative_to(root), found, [f"test:{module.key}"])
             for found in module.dynamic_imports]
    for test_file in module.test_files:
        notes += [dynamic_note(path.relative_to(root), found, [f"test:{module.key}"])
                  for path, found in graph.dynamic_imports_of(test_file)]
    if module.progressive_test.is_file():
        notes += [dynamic_note(path.relative_to(root), found, [f"integrate:{module.key}"])
                  for path, found in graph.dynamic_imports_of(module.progressive_test)]
    return list(dict.fromkeys(notes))


def dynamic_note(path: Path, found, tasks: list[str]) -> str:
    verb = "depend" if len(tasks) > 1 else "depends"
    return (f"{path}:{found.line}: note: {found.call}(...) may import tinytorch code that the build cannot see, "
            f"so {' and '.join(tasks)} {verb} on every export (the safe choice: never run against a stale "
            "export, but rerun whenever any module changes). Import it statically instead "
            "(`from tinytorch.core.<name> import ...`) to depend on exactly what it uses.")


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

    graph = Graph.load(Path(root))
    errors = module_errors(Path(root), key, graph)
    for note in dynamic_import_notes(graph, graph.module(key)):
        print(note, file=sys.stderr)  # doit shows a task's stderr as it runs, even when the task passes
    if errors:
        return TaskFailed("\n".join(errors) + f"\n{len(errors)} problem(s). Fix them, then run `doit check:{key}`.")
    print(f"{key}: ok")
    return None


def check_example(root: str, script: str):
    """doit action for `check:example:<name>`: the script is UTF-8; imports the graph cannot follow."""
    from doit.exceptions import TaskFailed

    root_path = Path(root)
    graph = Graph.load(root_path)
    name = Path(script).parent.name
    for path, found in graph.dynamic_imports_of(root_path / script):
        print(dynamic_note(path.relative_to(root_path), found, [f"example:{name}"]),
              file=sys.stderr)
    files = [root_path / script, *graph.support_files_of(root_path / script)]
    errors = [str(e) for f in files if (e := utf8_error(f, f.relative_to(root_path)))]
    if errors:
        return TaskFailed("\n".join(errors) + f"\nFix it, then run `doit check:example:{name}`.")
    print(f"{script}: ok")
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
