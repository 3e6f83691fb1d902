"""The doit task creators. `dodo.py` re-exports everything here.

Every task is a plain dict whose actions are module-level functions given as `(function, args)`, so
`doit -n 2` can pickle them under any start method. Inputs are derived from the code: the static
`tinytorch.core` imports of dev files, test files and examples (see tito.model.graph).

Loading this file reads the dev files' text with regular expressions and imports nothing heavy.
This is the front: it imports the model (tito.model) and the build steps (tito.steps).

Loading it also starts the build (`_start_build`, below): doit imports the dodo file before it opens
its database, so this is where a second build waits for the first (tito.steps.lock) and where a damaged
database is moved aside (tito.steps.statedb).
"""

from __future__ import annotations

import functools
import shlex
import sys
from pathlib import Path

from tito.model.graph import Graph
from tito.model.layout import REPORTS_DIR, example_scripts
from tito.steps import lock, statedb
from tito.steps.check import check_example, check_layout, check_module, check_public_names, files_run_with, layout_is_ok
from tito.steps.export import export_is_current, export_module
from tito.steps.inputs import inputs_unchanged, snapshot_inputs
from tito.steps.lint import lint, lint_configured, linted_files
from tito.steps.memory import example_report_dir, report_folders, report_targets
from tito.steps.notebooks import release_is_current, release_module
from tito.steps.orphans import no_orphans, remove_orphan_files
from tito.steps.package import build_and_check, wheel_path
from tito.steps.progress import (
    RECORD,
    check_student_module,
    is_student_repo,
    skipped,
    sync_paired_notebooks,
    waiting_is_over,
)
from tito.steps.report import build_report
from tito.steps.runner import (
    run_example,
    run_module_tests,
    run_pytest_file,
    run_student_file,
    run_student_module_tests,
)

DOIT_CONFIG = {
    "backend": "sqlite3",  # transactional: a killed build never leaves an unreadable database
    "dep_file": ".doit.sqlite3",
    "action_string_formatting": "new",
    "verbosity": 1,
    # `doit` with no task names: every family of docs/design.md's table. `doit package` (a wheel, installed
    # into a fresh virtualenv, which takes PyPI or a pip cache for numpy) runs only when asked for.
    "default_tasks": ["check", "export", "test", "integrate", "example", "report", "release", "orphans"],
}

TITO_DIR = Path(__file__).resolve().parent
MODEL = [TITO_DIR / "model" / name for name in ("layout.py", "scan.py", "devfile.py", "graph.py")]
STEPS = TITO_DIR / "steps"
# The tooling files each family's output depends on: a change to the exporter re-runs every export.
EXPORTER_SOURCES = [*MODEL, STEPS / "export.py", STEPS / "generated.py", STEPS / "nbgrader.py"]
CHECKER_SOURCES = [*EXPORTER_SOURCES, STEPS / "check.py"]
RELEASE_SOURCES = [*MODEL, STEPS / "notebooks.py", STEPS / "nbgrader.py", STEPS / "generated.py"]
# A dev file and an example run once, under memray: the run gives the verdict and the memory report.
RUNNER_SOURCES = [STEPS / "runner.py", STEPS / "process.py"]
PROFILER_SOURCES = [STEPS / "memory.py", STEPS / "profiled_script.py", STEPS / "generated.py"]
# Tasks that run something snapshot their inputs first (see tito.steps.inputs): an input edited while
# the task runs makes the next build run it again, instead of being recorded as done.
SNAPSHOT = (snapshot_inputs, [])
SNAPSHOT_CHECK = (inputs_unchanged, [])
# A student repository (tinytorch-course.json at the root, see tito.steps.progress) builds the learner's
# code on the same graph; these families do not run there, and say why.
STUDENT_SKIPS = {
    "report": "memory reports profile the course's reference code; `python modules/source/NN_name/name_dev.py` "
              "runs your module's Systems Analysis",
    "release": "the dev files here already are the student versions; open one as a notebook with "
               "`tito module notebook NN_name`",
    "check:lint": "ruff checks the course's own code; your code is yours to style",
}
STUDENT_SOURCES = [STEPS / "progress.py"]


def _student(root: Path) -> bool:
    return is_student_repo(root)


def _skipped_task(root: Path, family: str, name: str | None = "skipped") -> dict:
    """A task that only says why `family` does not run in a student repository (once per course record)."""
    task = {"doc": f"skipped in a student repository: {STUDENT_SKIPS[family]}",
            "file_dep": [str(root / RECORD)], "actions": [(skipped, [family, STUDENT_SKIPS[family]])]}
    return {"name": name, **task} if name else task


def _waits(root: Path) -> list:
    """In a student repository, a task that waited for a module runs again once that module is started."""
    return [(waiting_is_over, [str(root)])] if _student(root) else []


def _root() -> Path:
    # doit changes into the dodo file's folder before loading it: that folder is the project root.
    return Path.cwd()


def _start_build(argv: list[str]) -> None:
    """Before doit opens its database: one build at a time in this checkout, and a database it can read.

    A command that may change something waits for the build lock (held until this process ends), then
    moves a damaged database aside and makes a failure to save the state a clear, failed build.
    Read-only commands (`doit list`, `info`, ...) neither wait nor hold the lock; they repair a damaged
    database only when no build is running (a running build has repaired it already).
    """
    root, args = _root(), argv[1:]
    command_line = shlex.join(["doit", *args])
    dep_file = _dep_file(args)
    if lock.is_read_only(args):
        if statedb.damage(root / dep_file) and lock.try_acquire(root, command_line):
            statedb.repair(root, dep_file)
        return
    if lock.acquire(root, command_line, lock.lock_timeout()):
        statedb.repair(root, dep_file)
        statedb.guard_state_saving(dep_file)


def _dep_file(args: list[str]) -> str:
    """doit's database file: `--db-file` when given, else DOIT_CONFIG's."""
    for index, arg in enumerate(args):
        if arg == "--db-file" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--db-file="):
            return arg.split("=", 1)[1]
    return DOIT_CONFIG["dep_file"]


_start_build(sys.argv)


def _graph() -> Graph:
    return _load_graph(_root())


@functools.lru_cache(maxsize=4)
def _load_graph(root: Path) -> Graph:
    # Every task creator needs the graph; scanning the files once per doit run is enough.
    if _student(root) and not lock.is_read_only(sys.argv[1:]):
        sync_paired_notebooks(root)  # a learner's notebook edits reach the dev file before anything reads it
    return Graph.load(root)


def _paths(paths) -> list[str]:
    return [str(p) for p in paths]


def _rel(path: Path) -> str:
    return str(Path(path).relative_to(_root()))


def task_check():
    """Validate each dev file: metadata, directives, solution markers, imports (writes nothing)."""
    root = _root()
    graph = _graph()
    student = _student(root)
    checker, record = (check_student_module, [root / RECORD, *STUDENT_SOURCES]) if student else (check_module, [])
    for module in graph.modules:
        yield {
            "name": module.key,
            "doc": f"validate {_rel(module.dev_file)} (and that its test files are UTF-8)",
            "file_dep": _paths([module.dev_file, *files_run_with(graph, module), *CHECKER_SOURCES, *record]),
            "actions": [SNAPSHOT, (checker, [str(root), module.key])],
            "uptodate": [SNAPSHOT_CHECK],
        }
    for script in example_scripts(root):
        yield {
            "name": f"example:{script.parent.name}",
            "doc": f"{_rel(script)} is UTF-8; imports the graph cannot follow are named",
            "file_dep": _paths([script, *graph.support_files_of(script), *CHECKER_SOURCES]),
            "actions": [(check_example, [str(root), _rel(script)])],
        }
    yield {
        "name": "public-names",
        "doc": "no public name is exported by two modules",
        "file_dep": _paths([*(m.dev_file for m in graph.modules), *CHECKER_SOURCES]),
        "actions": [(check_public_names, [str(root)])],
    }
    if student:
        yield _skipped_task(root, "check:lint", "lint")
    elif lint_configured(root):  # a tree without [tool.ruff] in pyproject.toml (a fixture, say) has no lint task
        yield {
            "name": "lint",
            "doc": "ruff over tito, tests, examples, benchmarks and the dev files (pyproject.toml [tool.ruff])",
            "file_dep": _paths([*linted_files(root), root / "pyproject.toml", STEPS / "lint.py"]),
            "actions": [(lint, [str(root)])],
        }
    yield {
        "name": "layout",
        "doc": "every folder under modules/source is a module the build sees, with a unique number",
        "uptodate": [(layout_is_ok, [str(root)])],
        "actions": [(check_layout, [str(root)])],
    }


def task_export():
    """Export each dev file's `#| export` cells to tinytorch/core/<name>.py."""
    root = _root()
    for module in _graph().modules:
        yield {
            "name": module.key,
            "doc": f"{_rel(module.dev_file)} -> {_rel(module.export_file)}",
            "file_dep": _paths([module.dev_file, *EXPORTER_SOURCES]),
            "targets": [str(module.export_file)],
            "uptodate": [(export_is_current, [str(module.dev_file), str(module.export_file)])],
            "actions": [(export_module, [str(root), module.key])],
            "clean": True,
        }


def task_test():
    """Run each module's inline tests (the dev file, under memray: reports/NN_name/) and its test files."""
    root = _root()
    graph = _graph()
    student = _student(root)
    for module in graph.modules:
        exports = [m.export_file for m in [module, *graph.modules_run_by(module)]]
        helpers = []
        for test_file in module.test_files:
            exports += graph.exported_files_reached_by(test_file)
            helpers += graph.support_files_of(test_file)
        task = {
            "name": module.key,
            "doc": f"inline tests (and memory report) and {len(module.test_files)} test file(s) of {module.key}",
            "file_dep": _paths(dict.fromkeys([module.dev_file, *module.test_files, *helpers, *exports,
                                              *RUNNER_SOURCES, *(STUDENT_SOURCES if student else PROFILER_SOURCES)])),
            "actions": [SNAPSHOT, (run_student_module_tests if student else run_module_tests, [str(root), module.key])],
            "uptodate": [SNAPSHOT_CHECK, *_waits(root)],
        }
        if not student:  # the learner's test runs the dev file cell by cell, without a profile
            task["targets"] = _paths(report_targets(module.report_dir))
        yield task


def task_integrate():
    """Progressive integration tests (each module with all it stands on) and every example."""
    root = _root()
    graph = _graph()
    yield {"name": None, "doc": "progressive tests of every module, then every example", "task_dep": ["example"]}
    for module in graph.modules:
        test_file = module.progressive_test
        if not test_file.is_file():
            continue
        yield {
            "name": module.key,
            "doc": f"{_rel(test_file)}",
            "file_dep": _paths([test_file, *graph.support_files_of(test_file),
                                *graph.exported_files_reached_by(test_file), *RUNNER_SOURCES,
                                *(STUDENT_SOURCES if _student(root) else [])]),
            "actions": [SNAPSHOT, (run_student_file if _student(root) else run_pytest_file,
                                   [str(root), _rel(test_file), f"integrate:{module.key}"])],
            "uptodate": [SNAPSHOT_CHECK, *_waits(root)],
        }


def task_example():
    """Run each examples/<name>/train.py; each asserts its own target."""
    root = _root()
    graph = _graph()
    student = _student(root)
    for script in example_scripts(root):
        name = script.parent.name
        task = {
            "name": name,
            "doc": f"{_rel(script)} (and its memory report)",
            "file_dep": _paths([script, *graph.exported_files_reached_by(script), *RUNNER_SOURCES,
                                *(STUDENT_SOURCES if student else PROFILER_SOURCES)]),
            "actions": [SNAPSHOT, (run_student_file, [str(root), _rel(script), f"example:{name}"]) if student else
                        (run_example, [str(root), _rel(script), f"example:{name}", _rel(example_report_dir(root, script))])],
            "uptodate": [SNAPSHOT_CHECK, *_waits(root)],
            "verbosity": 2,  # training progress streams as it happens
        }
        if not student:
            task["targets"] = _paths(report_targets(example_report_dir(root, script)))
        yield task


def task_report():
    """reports/index.html and summary.json: every profile's numbers, a chart, the change since last build."""
    root = _root()
    if _student(root):
        return _skipped_task(root, "report", None)
    stats = [folder / "stats.json" for folder in report_folders(root, _graph().modules)]
    reports = root / REPORTS_DIR
    return {
        # Absolute paths, like the test and example tasks' targets: doit orders tasks by matching these strings.
        "file_dep": _paths(stats + [STEPS / "report.py"]),
        "targets": _paths([reports / "index.html", reports / "summary.json"]),
        "actions": [(build_report, [str(root), [_rel(path) for path in stats]])],
    }


def task_release():
    """Student notebooks: modules/release/NN_name/name.ipynb, solutions replaced by stubs."""
    root = _root()
    if _student(root):
        yield _skipped_task(root, "release")
        return
    for module in _graph().modules:
        yield {
            "name": module.key,
            "doc": f"{_rel(module.dev_file)} -> {_rel(module.release_notebook)}",
            "file_dep": _paths([module.dev_file, *RELEASE_SOURCES]),
            "targets": [str(module.release_notebook)],
            "uptodate": [(release_is_current, [str(module.dev_file), str(module.release_notebook)])],
            "actions": [(release_module, [str(root), module.key])],
            "clean": True,
        }


def task_package():
    """Build dist/tinytorch-<version>-py3-none-any.whl and import every public name from a fresh venv."""
    root = _root()
    graph = _graph()
    hand_written = [root / "tinytorch" / "__init__.py", root / "tinytorch" / "core" / "__init__.py"]
    return {
        "file_dep": _paths([*(m.export_file for m in graph.modules), *hand_written, STEPS / "package.py"]),
        "targets": [str(wheel_path(root))],
        "actions": [(build_and_check, [str(root)])],
    }


def task_orphans():
    """Remove generated files (exports, notebooks, reports) whose module or example no longer exists."""
    root = str(_root())
    return {
        "actions": [(remove_orphan_files, [root])],
        "uptodate": [(no_orphans, [root])],
    }
