"""Autograding completed student notebooks of one module.

For every notebook, `grade` builds a sandbox in a fresh temporary directory:

    sandbox/
      pkg/tinytorch/...          a copy of the repository's exported package, with the module's own
                                 tinytorch/core/<name>.py replaced by the student's `#| export` cells
      harness/grade_harness.py   the child program (a copy of tito/grade_harness.py) and job.json
      work/                      the child's cwd, HOME and TMPDIR; output.log holds the notebook's prints

and runs the notebook there in its own process (tito/grade_harness.py): the student's code cells in
order, with every graded test cell replaced by the ORIGINAL cell of the same grade_id from the dev file
(students could have edited their copy of a locked cell). A test cell that runs without an exception
earns its points; otherwise it gets 0 and the exception's last line as the reason.

Untrusted code, so: memory (RLIMIT_AS), CPU (RLIMIT_CPU) and file-size limits; a wall-clock limit
that kills the process group; PYTHONPATH pointing only at the sandbox's package; a minimal
environment (no TITO_* or other variables of the grader); an audit hook refusing writes outside the
sandbox and the starting of processes; and, after grading, a check that the repository's tinytorch/
and modules/ did not change.

When a cell hangs, exhausts memory or kills its process, only that cell is lost: the parent knows
which cell was running (the child announces each cell before running it) and runs the notebook again
without it, up to MAX_RUNS times. Graded cells already reported keep their results.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tito.model.devfile import DevFile, DevFileError, directives
from tito.model.layout import find_module
from tito.steps.export import package_body, package_code
from tito.steps.generated import write_atomic
from tito.steps.nbgrader import validate

HARNESS = Path(__file__).resolve().parent / "grade_harness.py"
MAX_RUNS = 4  # one first run plus up to three re-runs, each after a cell that stopped the process
STATUSES = ("passed", "failed", "error", "timeout", "memory", "missing")
MAGIC_RE = re.compile(r"^(\s*)([%!].*)$")


class GradingError(Exception):
    """Grading cannot start (unknown module, missing export, invalid dev file); says what to do."""


@dataclass
class CellResult:
    grade_id: str
    points: float
    max_points: float
    status: str  # one of STATUSES
    reason: str = ""


@dataclass
class NotebookResult:
    notebook: Path
    cells: list[CellResult]
    notes: list[str] = field(default_factory=list)  # things the grader should know, not tied to a cell
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(c.points for c in self.cells)

    @property
    def max_total(self) -> float:
        return sum(c.max_points for c in self.cells)


@dataclass
class TestCell:
    """A graded cell of the dev file: what every student notebook is graded against."""

    grade_id: str
    points: float
    source: str
    line: int


@dataclass
class Reference:
    """Everything grading needs from the repository, read once per `grade` call."""

    root: Path
    key: str
    export_name: str  # "layers" for tinytorch/core/layers.py
    dev_path: str  # the dev file relative to the root, used as the test cells' file name
    tests: list[TestCell]
    package: Path  # the repository's tinytorch/ folder, copied into every sandbox


# --- the entry point --------------------------------------------------------------------------------


def grade(root: Path, module_key: str, notebooks: list[Path], jobs: int = 1, timeout: float = 60,
          memory_mb: int = 1024, gradebook: Path | None = None) -> list[NotebookResult]:
    """Grade each notebook against the module's dev file; results in the order given.

    `timeout` is the wall-clock limit, in seconds, of one run of a notebook (a notebook that hangs is
    run again without the cell that hung, up to MAX_RUNS runs). `memory_mb` limits each run's address
    space. With `gradebook`, the results are also written there as CSV (see `write_gradebook`).
    Raises GradingError when grading cannot start at all.
    """
    reference = load_reference(Path(root), module_key)
    before = repository_digest(reference.root)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # threads only wait on subprocesses
        futures = [pool.submit(grade_notebook, reference, Path(nb), timeout, memory_mb) for nb in notebooks]
        results = [future.result() for future in futures]
    changed = changed_files(before, repository_digest(reference.root))
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        warning = (f"WARNING: files in the repository changed while grading: {shown}. A notebook may have "
                   "escaped its sandbox (or another build ran at the same time): inspect them with `git status`.")
        for result in results:
            result.notes.append(warning)
    if gradebook is not None:
        write_gradebook(results, gradebook)
    return results


def load_reference(root: Path, module_key: str) -> Reference:
    """The module's graded test cells and package, or GradingError saying what is missing."""
    try:
        module = find_module(root, module_key)
        dev = DevFile.of(module)
    except (LookupError, DevFileError) as error:
        raise GradingError(str(error)) from None
    dev_path = dev.path.as_posix()
    problems = validate(dev)
    if problems:
        raise GradingError("\n".join(problems) + f"\nThe dev file is the reference for grading: fix it first "
                           f"(`doit check:{module.key}`).")
    tests = [TestCell(c.grade_id, c.nbgrader["points"], c.source, c.line) for c in dev.graded_cells]
    if not tests:
        raise GradingError(f"{dev_path} has no graded cell (\"grade\": true): there is nothing to grade")
    if not module.export_file.is_file():
        raise GradingError(f"{module.export_file.relative_to(root)} is missing: grading copies the exported package. "
                           f"Run `doit export` (or `doit export:{module.key}` and the modules it imports) first.")
    return Reference(root, module.key, module.export_name, dev_path, tests, root / "tinytorch")


# --- one notebook ----------------------------------------------------------------------------------


def grade_notebook(reference: Reference, notebook: Path, timeout: float, memory_mb: int) -> NotebookResult:
    """Grade one notebook in its own sandbox; never raises for anything the notebook contains."""
    start = time.perf_counter()
    try:
        cells = read_student_cells(notebook)
    except ValueError as error:
        zero = [CellResult(t.grade_id, 0, t.points, "error", str(error)) for t in reference.tests]
        return NotebookResult(notebook, zero, seconds=time.perf_counter() - start)

    sandbox = Path(tempfile.mkdtemp(prefix="tito-grade-"))
    try:
        notes = build_sandbox(reference, sandbox, cells)
        steps, missing = plan_steps(reference, notebook, cells)
        outcomes, run_notes = run_until_done(sandbox, steps, timeout, memory_mb)
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)

    results = []
    for test in reference.tests:
        if test.grade_id in missing:
            results.append(CellResult(test.grade_id, 0, test.points, "missing",
                                      f"the notebook has no cell with grade_id {test.grade_id!r} "
                                      "(deleted, or its metadata was edited)"))
            continue
        index = next(s["index"] for s in steps if s.get("grade_id") == test.grade_id)
        status, reason = outcomes.get(index, ("error", "not run: the notebook stopped before reaching it"))
        results.append(CellResult(test.grade_id, test.points if status == "passed" else 0, test.points,
                                  status, reason))
    return NotebookResult(notebook, results, notes + run_notes, time.perf_counter() - start)


def read_student_cells(notebook: Path) -> list[dict]:
    """The notebook's cells as plain dicts, or ValueError with a reason a student understands."""
    import nbformat

    try:
        text = Path(notebook).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"could not read the notebook: {error}") from None
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat raises several types for "this is not a notebook"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"not a Jupyter notebook (.ipynb JSON): {first}") from None
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise ValueError("not a Jupyter notebook: it has no list of cells")
    found = []
    for cell in cells:
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        meta = cell.get("metadata", {}).get("nbgrader")
        found.append({"kind": cell.get("cell_type"), "source": str(source),
                      "nbgrader": meta if isinstance(meta, dict) else {}})
    return found


def build_sandbox(reference: Reference, sandbox: Path, cells: list[dict]) -> list[str]:
    """Copy the package and install the student's export; returns notes about the export."""
    package = sandbox / "pkg" / "tinytorch"
    shutil.copytree(reference.package, package, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    exported = [c["source"] for c in cells if c["kind"] == "code" and _is_exported(c["source"])]
    notes = []
    if not exported:
        notes.append(f"the notebook has no `#| export` cell: tinytorch/core/{reference.export_name}.py is empty "
                     "for this student, so everything that imports it fails")
    (package / "core" / f"{reference.export_name}.py").write_text(student_export(exported), encoding="utf-8")
    (sandbox / "harness").mkdir()
    shutil.copy(HARNESS, sandbox / "harness" / HARNESS.name)
    (sandbox / "work").mkdir()
    return notes


def _is_exported(source: str) -> bool:
    return "export" in directives(source)


def student_export(sources: list[str]) -> str:
    """The student's module file, made by the exporter's own transformation (without its header).

    Code that does not parse still becomes the file (its import then fails with the student's
    SyntaxError, cell by cell, which is the feedback they need).
    """
    try:
        return package_body(sources)
    except SyntaxError:
        return "\n\n\n".join(filter(None, map(package_code, sources))) + "\n"


def plan_steps(reference: Reference, notebook: Path, cells: list[dict]) -> tuple[list[dict], set[str]]:
    """The cells to run, in notebook order, and the grade ids the notebook lacks.

    A cell whose grade_id names a graded cell of the dev file runs as that ORIGINAL cell. A cell the
    student's copy marks as graded but the dev file does not know is skipped: it is not a test we trust.
    """
    tests = {t.grade_id: t for t in reference.tests}
    steps: list[dict] = []
    graded_seen: set[str] = set()
    for number, cell in enumerate(cells):
        if cell["kind"] != "code":
            continue
        grade_id = cell["nbgrader"].get("grade_id")
        if isinstance(grade_id, str) and grade_id in tests:
            if grade_id in graded_seen:
                continue  # a pasted second copy of a test cell: the first one is graded
            graded_seen.add(grade_id)
            test = tests[grade_id]
            steps.append({"index": len(steps), "kind": "test", "grade_id": grade_id, "source": test.source,
                          "line": test.line, "filename": reference.dev_path})  # relative: no repository path in the sandbox
        elif cell["nbgrader"].get("grade") is True:
            continue
        else:
            steps.append({"index": len(steps), "kind": "code", "cell": number,
                          "source": without_magics(cell["source"]), "line": 1,
                          "filename": f"<{notebook.name} cell {number}>"})
    return steps, set(tests) - graded_seen


def without_magics(source: str) -> str:
    """IPython `%magic` and `!shell` lines become `pass`, so the rest of the cell still runs."""
    return "\n".join(MAGIC_RE.sub(r"\1pass  # removed for grading: \2", line) for line in source.splitlines())


# --- running a notebook ---------------------------------------------------------------------------


def run_until_done(sandbox: Path, steps: list[dict], timeout: float,
                   memory_mb: int) -> tuple[dict[int, tuple[str, str]], list[str]]:
    """Run the steps, re-running without any cell that stopped the process; outcomes of test steps."""
    tests = {s["index"] for s in steps if s["kind"] == "test"}
    outcomes: dict[int, tuple[str, str]] = {}
    skip: set[int] = set()
    notes: list[str] = []
    for _ in range(MAX_RUNS):
        pending = tests - set(outcomes)
        if not pending:
            break
        reported, running, death = run_once(sandbox, steps, skip | set(outcomes), timeout, memory_mb)
        for index, outcome in reported.items():
            if index in tests:
                outcomes[index] = outcome
            elif outcome[0] != "passed":
                notes.append(f"{_cell_name(steps[index])} raised: {outcome[1]}")
        if death is None:
            break
        if running is None:  # it died before or between cells: nothing to skip, so re-running cannot help
            for index in tests - set(outcomes):
                outcomes[index] = death
            break
        skip.add(running)
        if running in tests:
            outcomes[running] = death
        else:
            rerun = "; the notebook was run again without it" if tests - set(outcomes) else ""
            notes.append(f"{_cell_name(steps[running])} stopped the notebook ({death[1]}){rerun}")
    for index in tests - set(outcomes):
        outcomes[index] = ("error", f"not run: the notebook stopped before reaching it ({MAX_RUNS} runs at most)")
    return outcomes, list(dict.fromkeys(notes))  # a cell that fails in every re-run is noted once


def _cell_name(step: dict) -> str:
    """How a note names a student's cell: its position (1 = first cell) and its first line."""
    first = next((line.strip() for line in step["source"].splitlines() if line.strip()), "")
    first = first if len(first) <= 40 else first[:37] + "..."
    return f"cell {step['cell'] + 1} (`{first}`)"


def run_once(sandbox: Path, steps: list[dict], skip: set[int], timeout: float, memory_mb: int):
    """One child run: (outcomes reported, index of the step running when it died, (status, reason) of
    the death or None if the child finished normally)."""
    work = sandbox / "work"
    job = {"steps": steps, "skip": sorted(skip), "memory_mb": int(memory_mb),
           "cpu_seconds": max(1, int(timeout) + 1), "sandbox": str(sandbox), "log": str(work / "output.log")}
    job_path = sandbox / "harness" / "job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    command = [sys.executable, "-s", "-B", str(sandbox / "harness" / HARNESS.name), str(job_path)]
    with open(sandbox / "harness" / "stderr.txt", "wb") as stderr:
        # start_new_session: the child leads its own process group, so a kill reaches everything it started.
        process = subprocess.Popen(command, cwd=work, env=sandbox_env(sandbox), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=stderr, start_new_session=True)
        timed_out = False
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
            output, _ = process.communicate()
    reported, running, finished = parse_events(output, {s["index"] for s in steps} - skip)
    if finished and not timed_out:
        return reported, None, None
    return reported, running, death_reason(process.returncode, timed_out, timeout, sandbox)


def sandbox_env(sandbox: Path) -> dict:
    """A minimal environment: nothing of the grader's (no TITO_*, no paths into the repository)."""
    work = str(sandbox / "work")
    return {
        "PATH": os.defpath,
        "PYTHONPATH": str(sandbox / "pkg"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
        "HOME": work,
        "TMPDIR": work,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "OPENBLAS_NUM_THREADS": "1",  # each thread reserves address space, which counts against RLIMIT_AS
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def parse_events(output: bytes, expected: set[int]):
    """(outcomes by step, step begun but not ended, whether the child finished) from the channel.

    Only steps this run was asked to run are believed; lines that are not well-formed events (the
    notebook could write anything into the channel) are ignored.
    """
    reported: dict[int, tuple[str, str]] = {}
    running = None
    finished = False
    for line in output.decode("utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        step = event.get("step")
        if event.get("event") == "begin" and step in expected:
            running = step
        elif event.get("event") == "end" and step in expected and step == running:
            status = event.get("status")
            if status in STATUSES:
                reported[step] = (status, str(event.get("reason", ""))[:500])
            running = None
        elif event.get("event") == "finished" and running is None:
            finished = True
    return reported, running, finished


def death_reason(code: int, timed_out: bool, timeout: float, sandbox: Path) -> tuple[str, str]:
    """Why a child stopped without finishing, as (status, reason)."""
    if timed_out:
        return "timeout", f"time limit: still running after {timeout:g} s, so the process was stopped"
    if code == -signal.SIGXCPU:
        return "timeout", f"CPU time limit of {int(timeout) + 1} s exceeded"
    if code == -signal.SIGKILL:
        return "memory", "the process was killed by the system (most likely out of memory)"
    if code is not None and code < 0:
        return "error", f"the process died with {signal.Signals(-code).name}"
    tail = _tail(sandbox / "harness" / "stderr.txt") or _tail(sandbox / "work" / "output.log")
    return "error", (f"the process exited with code {code} before reporting (os._exit or a crash in the "
                     f"notebook code?){': ' + tail if tail else ''}")


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


# --- the repository must not change ---------------------------------------------------------------


def repository_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under tinytorch/ and modules/ (caches excluded), by relative path."""
    digest = {}
    for folder in ("tinytorch", "modules"):
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def changed_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))


# --- reporting --------------------------------------------------------------------------------------


def _points(value: float) -> str:
    return f"{value:g}"


def format_table(results: list[NotebookResult]) -> str:
    """A plain-text report: one block per notebook, a row per graded cell, then its total and notes."""
    rows = [("notebook", "grade_id", "points", "status", "reason")]
    for result in results:
        name = result.notebook.name
        for cell in result.cells:
            rows.append((name, cell.grade_id, f"{_points(cell.points)}/{_points(cell.max_points)}", cell.status,
                         cell.reason))
        rows.append((name, "TOTAL", f"{_points(result.total)}/{_points(result.max_total)}", "",
                     f"{result.seconds:.1f} s"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        lines.append("  ".join(value.ljust(width) for value, width in zip(row, widths)) + "  " + row[4])
        if row[1] == "TOTAL":
            lines.append("")
    notes = [f"{r.notebook.name}: {note}" for r in results for note in r.notes]
    if notes:
        lines += ["notes:"] + [f"  {note}" for note in notes]
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


def to_json(results: list[NotebookResult]) -> str:
    """The results as JSON: a list of notebooks, each with its cells, total, max_total and notes."""
    data = []
    for result in results:
        data.append({"notebook": str(result.notebook), "total": result.total, "max_total": result.max_total,
                     "seconds": round(result.seconds, 3), "notes": result.notes,
                     "cells": [asdict(cell) for cell in result.cells]})
    return json.dumps(data, indent=2) + "\n"


GRADEBOOK_COLUMNS = ("notebook", "grade_id", "points", "max_points", "status", "reason")


def write_gradebook(results: list[NotebookResult], path: Path) -> None:
    """CSV with GRADEBOOK_COLUMNS: a row per graded cell, then a row with grade_id TOTAL per notebook
    (status "complete" when every cell passed, else "incomplete"). Written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(GRADEBOOK_COLUMNS)
    for result in results:
        name = str(result.notebook)
        for cell in result.cells:
            writer.writerow([name, cell.grade_id, _points(cell.points), _points(cell.max_points), cell.status,
                             cell.reason])
        complete = all(cell.status == "passed" for cell in result.cells)
        writer.writerow([name, "TOTAL", _points(result.total), _points(result.max_total),
                         "complete" if complete else "incomplete", "; ".join(result.notes)])
    write_atomic(Path(path), buffer.getvalue().encode("utf-8"))
