"""Run tests, dev files and examples in subprocesses, and turn failures into clear doit messages.

Every script runs once per build: a dev file (in `test:NN`) and an example (in `example:<name>`) run
under memray (tito.steps.memory), so the same run gives the verdict and the memory report. Each run sees
the project root first on PYTHONPATH (tito.steps.process). A file that is not UTF-8 is not run: the task
fails with its line and byte (pytest and memray would otherwise run some such files and fail on others,
with less to go on).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from tito.model.devfile import utf8_error
from tito.model.layout import SUPPORT_DIR, find_module
from tito.model.scan import scan_support_imports
from tito.steps import progress
from tito.steps.generated import HandEdited, reports_disk_full
from tito.steps.memory import ReportError, run_profiled
from tito.steps.process import disk_full_note, run, tail
from tito.steps.status import record_test_result

TEST_TIMEOUT = 900  # seconds; a hung test fails its task instead of hanging the build
EXAMPLE_TIMEOUT = 1800


def not_utf8(root: Path, files: list[Path], task_name: str):
    """A TaskFailed naming the line and byte of the first file (with the helpers it imports) that is not
    UTF-8; None when every file is."""
    from doit.exceptions import TaskFailed

    for path in [root / f for f in files]:
        for file in [path, *scan_support_imports(path, root / SUPPORT_DIR)]:
            error = utf8_error(file, file.relative_to(root))
            if error:
                return TaskFailed(f"{error}\nNothing was run. Next: `doit {task_name}` once the file is UTF-8.")
    return None


def pytest_command(files: list[Path]) -> list[str]:
    """pytest on `files`, loading only the plugin the tests use (pytest-memray's memory budgets): a build
    task runs pytest 30-odd times, and every other installed plugin would be imported each time."""
    plugins = ["-p", "pytest_memray.plugin"] if importlib.util.find_spec("pytest_memray") else []
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins, *map(str, files)]


# Always with pytest_command (alone, the named plugin would be registered twice: by name and by autoload).
PYTEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def run_pytest(root: Path, files: list[Path]) -> tuple[list[str], int, str, float]:
    """(command, exit code, output, seconds) of pytest on `files`."""
    command = pytest_command(files)
    return (command, *run(root, command, TEST_TIMEOUT, extra_env=PYTEST_ENV))


def run_dev_file(root: Path, module) -> tuple[list[str], int, str, float]:
    """(command, exit code, output, seconds) of the dev file's one run, which also writes its memory report
    (reports/NN_name/). Raises ReportError or HandEdited when the report could not be written."""
    dev = module.dev_file.relative_to(root)
    code, output, seconds = run_profiled(root, dev.as_posix(), module.report_dir.relative_to(root).as_posix(),
                                         module.key, TEST_TIMEOUT)
    return [sys.executable, str(dev)], code, output, seconds


def failure(what: str, command: list[str], code: int, output: str, seconds: float, next_step: str):
    from doit.exceptions import TaskFailed

    shown = " ".join(Path(c).name if c == sys.executable else c for c in command)
    reason = f"timed out after {seconds:.0f} s" if code == -1 else f"exited with code {code}"
    return TaskFailed(f"{what}: `{shown}` {reason}.\n{tail(output)}\n\n{disk_full_note(output)}Next: {next_step}")


@reports_disk_full  # the last result is written to .tito/status/
def run_module_tests(root: str, key: str):
    """doit action for `test:<key>`: the dev file's inline tests (and its memory report), then the module's
    pytest files."""
    from doit.exceptions import TaskFailed

    root_path = Path(root)
    module = find_module(root_path, key)
    dev = module.dev_file.relative_to(root_path)
    bad = not_utf8(root_path, [dev, *(p.relative_to(root_path) for p in module.test_files)], f"test:{key}")
    if bad:
        record_test_result(root_path, key, False, "a file is not UTF-8")
        return bad
    try:
        command, code, output, seconds = run_dev_file(root_path, module)
    except (ReportError, HandEdited) as error:
        record_test_result(root_path, key, False, str(error))
        return TaskFailed(str(error))
    if code != 0:
        record_test_result(root_path, key, False, output)
        return failure(f"inline tests of {dev} failed", command, code, output, seconds,
                       f"run `python {dev}` to see the failing test, fix it, then `doit test:{key}`.")
    print(f"{dev}: inline tests passed in {seconds:.1f} s")
    tests = [p.relative_to(root_path) for p in module.test_files]
    if not tests:
        record_test_result(root_path, key, True, "inline tests passed")
        return None
    command, code, output, seconds = run_pytest(root_path, tests)
    record_test_result(root_path, key, code == 0, tail(output, 1))
    if code != 0:
        return failure(f"tests of {key} failed", command, code, output, seconds,
                       f"run `python -m pytest {module.folder.relative_to(root_path)} -x` to debug, "
                       f"then `doit test:{key}`.")
    print(tail(output, 1))
    return None


def run_pytest_file(root: str, test_file: str, task_name: str):
    """doit action for `integrate:<key>`: one pytest file."""
    root_path = Path(root)
    bad = not_utf8(root_path, [Path(test_file)], task_name)
    if bad:
        return bad
    command, code, output, seconds = run_pytest(root_path, [Path(test_file)])
    if code != 0:
        return failure(f"{test_file} failed", command, code, output, seconds,
                       f"run `python -m pytest {test_file} -x`; a failure here with passing module tests "
                       f"usually means a lower module broke its contract. Then `doit {task_name}`.")
    print(tail(output, 1))
    return None


@reports_disk_full  # the memory report is written to reports/examples/<name>/
def run_example(root: str, script: str, task_name: str, report_dir: str | None = None):
    """doit action for `example:<name>`: the script asserts its own target; its output streams live.
    With `report_dir`, the same run writes its memory report there (tito.steps.memory)."""
    from doit.exceptions import TaskFailed

    root_path = Path(root)
    bad = not_utf8(root_path, [Path(script)], task_name)
    if bad:
        return bad
    command = [sys.executable, script]
    print(f"--- {script}", flush=True)
    if report_dir is None:
        code, output, seconds = run(root_path, command, EXAMPLE_TIMEOUT, capture=False)
    else:
        try:
            code, output, seconds = run_profiled(root_path, script, report_dir, task_name, EXAMPLE_TIMEOUT,
                                                 capture=False)
        except (ReportError, HandEdited) as error:
            return TaskFailed(str(error))
    if code != 0:
        return failure(f"{script} missed its target or crashed", command, code, output, seconds,
                       f"read its output above, run `python {script}` to reproduce, then `doit {task_name}`.")
    print(f"--- {script}: passed in {seconds:.1f} s", flush=True)
    return None


# --- a student repository (tito.steps.progress) ---------------------------------------------------------


def run_student_module_tests(root: str, key: str):
    """doit action for `test:<key>` in a student repository.

    Waits (succeeds without running) while a module it reaches is not started. Otherwise it runs the dev
    file cell by cell, so one failing graded test does not hide the others: the task reports how many
    graded tests pass and the first failure with its dev-file line. The test files run once every cell
    passes. The result is recorded with the hash of the inputs it ran on, for `tito module status`.
    """
    from doit.exceptions import TaskFailed

    from tito.model.graph import Graph

    root_path = Path(root)
    graph = Graph.load(root_path)
    module = graph.module(key)
    task = f"test:{key}"
    waited = progress.waiting(root_path, task, progress.reached_by_test(graph, module))
    if waited:
        return waited
    inputs = progress.inputs_key(root_path, progress.test_inputs(graph, module))
    dev = module.dev_file.relative_to(root_path)
    record = progress.module_record(root_path, key) or {}
    recorded_graded = [c for c in record.get("cells", []) if c.get("role") == "graded"]

    def result(**fields):
        progress.record_result(root_path, "test", key, {"inputs": inputs, "graded": [], "cells_ok": False,
                                                        "tests": "not run", "failure": "", **fields})

    problems = progress.record_problems(root_path, module)
    bad = not_utf8(root_path, [dev, *(p.relative_to(root_path) for p in module.test_files)], task)
    if bad or problems:
        result(failure=(problems[0] if problems else "a file is not UTF-8"))
        return bad or TaskFailed("\n".join(problems) + "\nNothing was run: the course's cells are matched by "
                                 f"grade_id. Fix the file, then `doit {task}`.")
    events = root_path / progress.STATUS_DIR / f".cells-{key}-{os.getpid()}.jsonl"
    events.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "tito.steps.progress", "run-cells", dev.as_posix(), str(events)]
    code, output, seconds = run(root_path, command, TEST_TIMEOUT)
    cells = progress.read_events(events)
    events.unlink(missing_ok=True)
    if not cells:
        result(failure=f"the dev file did not run: {tail(output, 1)}")
        return failure(f"{dev} did not run", command, code, output, seconds,
                       f"run `python {dev}` to see why, then `doit {task}`.")

    ran = {c.get("grade_id"): c for c in cells if c.get("graded")}
    graded = []
    for cell in recorded_graded or [c for c in cells if c.get("graded")]:
        grade_id = cell.get("id", cell.get("grade_id"))
        outcome = ran.get(grade_id, {"status": "not run", "error": "the run stopped before this cell", "where": ""})
        graded.append({"grade_id": grade_id, "points": cell.get("points", 0), "status": outcome["status"],
                       "error": outcome.get("error", ""), "where": outcome.get("where", "")})
    passed = [g for g in graded if g["status"] == "passed"]
    points = sum(g["points"] for g in passed)
    total = sum(g["points"] for g in graded)
    score = f"{len(passed)} of {len(graded)} graded tests pass ({points:g} of {total:g} points)"
    failed = [c for c in cells if c["status"] != "passed"]
    if failed or code != 0:
        first = failed[0] if failed else {"line": 0, "error": tail(output, 5), "where": str(dev), "role": ""}
        result(graded=graded, failure=f"{_cell_label(first)} at {first['where']}: {progress.headline(first['error'])}")
        lines = [f"{task}: {score}.", f"First failure: {_cell_label(first)}, {first['where']}:"]
        lines += ["    " + line for line in first["error"].splitlines()]
        if first.get("raised_in"):
            lines.append(f"    (raised in {first['raised_in']})")
        for other in failed[1:6]:
            lines.append(f"Also failing: {_cell_label(other)}, {other['where']}: {progress.headline(other['error'])}")
        if len(failed) > 6:
            lines.append(f"... and {len(failed) - 6} more cell(s)")
        lines.append(f"Next: fix it in {dev}, then `tito module complete {key}` (or `doit {task}`); "
                     f"`python {dev}` runs the file top to bottom with every print.")
        return TaskFailed("\n".join(lines))
    print(f"{dev}: {score} in {seconds:.1f} s")
    tests = [p.relative_to(root_path) for p in module.test_files]
    if not tests:
        result(graded=graded, cells_ok=True, tests="passed")
        return None
    command, code, output, seconds = run_pytest(root_path, tests)
    result(graded=graded, cells_ok=True, tests="passed" if code == 0 else "failed",
           failure="" if code == 0 else _first_pytest_failure(output))
    if code != 0:
        return failure(f"{score}, but the tests of {key} failed", command, code, output, seconds,
                       f"run `python -m pytest {module.folder.relative_to(root_path)} -x` to debug, then "
                       f"`tito module complete {key}`.")
    print(tail(output, 1))
    return None


def _cell_label(cell: dict) -> str:
    grade_id, role = cell.get("grade_id"), cell.get("role")
    if cell.get("graded"):
        return f"graded test {grade_id!r} ({cell.get('points', 0):g} points)"
    if role == "solution":
        return f"solution cell {grade_id!r}"
    if grade_id:
        return f"cell {grade_id!r}"
    return f"your cell at line {cell.get('line', '?')}"


def _first_pytest_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line[:300]
    return tail(output, 1)


def run_student_file(root: str, path: str, task_name: str):
    """doit action for `integrate:<key>` and `example:<name>` in a student repository: wait while a module
    the file reaches is not started; otherwise run it as the course does and record the result."""
    from tito.model.graph import Graph

    root_path = Path(root)
    graph = Graph.load(root_path)
    file = root_path / path
    waited = progress.waiting(root_path, task_name, graph.modules_reached_by(file))
    if waited:
        return waited
    inputs = progress.inputs_key(root_path, progress.file_inputs(graph, file))
    family, name = task_name.split(":", 1)
    if family == "example":
        outcome = run_example(root, path, task_name)
        progress.record_result(root_path, "example", name, {"inputs": inputs, "passed": outcome is None})
        return outcome
    command, code, output, seconds = run_pytest(root_path, [Path(path)])
    first = "" if code == 0 else _first_pytest_failure(output)
    progress.record_result(root_path, "integrate", name, {"inputs": inputs, "passed": code == 0, "failure": first})
    if code != 0:
        return failure(f"{path} failed", command, code, output, seconds,
                       f"run `python -m pytest {path} -x`; a failure here with passing module tests usually means "
                       f"a module below broke its contract. Then `doit {task_name}`.")
    print(tail(output, 1))
    return None
