"""Autograding completed student notebooks of one module.

`grade` reads what grading needs from the repository once (`load_reference`: the dev file's graded
cells, and the exported files of the modules below this one) into a `Reference` that holds no path
into the repository, so it can travel to other machines (tito/teaching/distributed.py). Every
notebook is then graded by `grade_submission`, in a folder of its own (mode 0700):

    <tmp>/tito-grade-XXXX/
      pkg/tinytorch/...          the package as this student has it: the exports of the LOWER modules
                                 and, as tinytorch/core/<name>.py, the student's own `#| export` cells.
                                 No higher module and nothing of the reference solution of this one.
      harness/grade_harness.py   the child program (tito/teaching/grade_harness.py)
      work/                      the child's cwd, HOME and TMPDIR (under bwrap a size-limited tmpfs)
      log/stderr.txt             what native code writes to fds 1 and 2 (size-limited); parent-only

The child runs under bubblewrap or the in-process guard (tito/teaching/sandbox.py). Its job (the
steps, and a per-run secret that marks genuine result lines) arrives on stdin: nothing on disk in the
sandbox names a test. It runs the student's code cells in order, with every graded cell replaced by
the ORIGINAL cell of the same grade_id from the dev file (students could have edited their copy of a
locked cell). A graded cell that runs without an exception earns its points; otherwise it gets 0 and
the exception's last line as the reason.

When a cell hangs, exhausts memory or kills its process, only that cell is lost: the parent knows
which cell was running (the child announces each cell before running it) and runs the notebook again
without it, up to MAX_RUNS times. Graded cells already reported keep their results.
"""

from __future__ import annotations

import ast
import csv
import functools
import hashlib
import io
import json
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tito.model.devfile import DevFile, DevFileError, directives
from tito.model.layout import discover, find_module
from tito.steps.export import package_body, package_code
from tito.steps.generated import write_atomic
from tito.steps.nbgrader import validate
from tito.teaching import sandbox as sandboxes
from tito.teaching.late import LateInfo, LatePolicy, submission_time

HARNESS = Path(__file__).resolve().parent / "grade_harness.py"
MAX_RUNS = 4  # one first run plus up to three re-runs, each after a cell that stopped the process
STATUSES = ("passed", "failed", "error", "timeout", "memory", "missing")
MAGIC_RE = re.compile(r"^(\s*)([%!].*)$")
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024  # larger files are not parsed (a notebook with outputs is far smaller)
MAX_CELLS = 20_000
OUTPUT_CAP = 8_000  # characters of a graded cell's output kept for feedback
CHANNEL_CAP = 16 * 1024 * 1024  # bytes of the result channel read per run; the rest is discarded
FSIZE_MB = 32  # largest file a notebook may write
WORK_MB = 128  # size of the work folder under bubblewrap
SANDBOX_PREFIX = "tito-grade-"


class GradingError(Exception):
    """Grading cannot start (unknown module, missing export, invalid dev file); says what to do."""


@dataclass
class CellResult:
    grade_id: str
    points: float
    max_points: float
    status: str  # one of STATUSES
    reason: str = ""
    output: str = ""  # what the graded cell printed (capped), for feedback


@dataclass
class NotebookResult:
    notebook: Path
    cells: list[CellResult]
    notes: list[str] = field(default_factory=list)  # things the grader should know, not tied to a cell
    seconds: float = 0.0
    sandbox: str = ""  # "bwrap" or "guard": how this notebook was isolated
    late: LateInfo | None = None
    sandbox_reason: str = ""  # why the guard was used, when it was

    @property
    def total(self) -> float:
        return sum(c.points for c in self.cells)

    @property
    def max_total(self) -> float:
        return sum(c.max_points for c in self.cells)

    @property
    def penalty(self) -> float:
        return self.late.penalty if self.late else 0.0

    @property
    def final(self) -> float:
        return self.total - self.penalty


@dataclass
class TestCell:
    """A graded cell of the dev file: what every student notebook is graded against."""

    grade_id: str
    points: float
    source: str
    line: int


@dataclass
class Reference:
    """Everything grading needs from the repository, read once per `grade` call. It holds no path
    into the repository except `hidden` (what a sandbox must never show), so it can be sent to
    workers on other machines."""

    key: str
    export_name: str  # "layers" for tinytorch/core/layers.py
    dev_path: str  # the dev file relative to the root, used as the test cells' file name
    tests: list[TestCell]
    package: dict[str, bytes]  # "tinytorch/core/tensor.py" -> bytes: the lower modules, never this one
    preload: list[str]  # modules the dev file imports, loaded before the notebook runs (trusted)
    rebind: str  # the dev file's top-level import statements, run again before each graded cell
    keep_names: list[str]  # names the dev file defines at top level (even where they shadow builtins)
    hidden: list[str] = field(default_factory=list)  # the course root: never visible in a sandbox
    root: Path | None = None  # the repository (client side only)


@dataclass
class Options:
    """How each notebook is graded; the same for every notebook of a run."""

    timeout: float = 60
    memory_mb: int = 1024
    sandbox: str = "auto"
    output_cap: int = OUTPUT_CAP


# --- the entry point --------------------------------------------------------------------------------


def grade(root: Path, module_key: str, notebooks: list[Path], jobs: int = 1, timeout: float = 60,
          memory_mb: int = 1024, gradebook: Path | None = None, sandbox: str = "auto",
          feedback: Path | None = None, late: LatePolicy | None = None, scheduler: str | None = None,
          cluster: str | None = None, progress: Callable[[int, int, NotebookResult], None] | None = None,
          log: Callable[[str], None] | None = None) -> list[NotebookResult]:
    """Grade each notebook against the module's dev file; results in the order given.

    `timeout` is the wall-clock limit, in seconds, of one run of a notebook (a notebook that hangs is
    run again without the cell that hung, up to MAX_RUNS runs). `memory_mb` limits each run's address
    space. `sandbox` is "auto" (bubblewrap where it works, else the guard), "bwrap" or "guard".
    `jobs` notebooks are graded at once on this machine; with `scheduler` (a dask.distributed address)
    or `cluster` ("local:N") they go to Dask workers instead. `late` applies a deadline. With
    `gradebook`, the results are also written there as CSV; with `feedback`, one HTML page per notebook
    goes into that folder. `progress(done, total, result)` is called as each notebook finishes and
    `log(message)` for messages to the grader (default: standard error).
    Raises GradingError when grading cannot start at all.
    """
    log = log or _stderr
    options = Options(timeout=timeout, memory_mb=memory_mb, sandbox=sandbox)
    if sandbox not in sandboxes.MODES:
        raise GradingError(f"unknown sandbox {sandbox!r}: use one of {', '.join(sandboxes.MODES)}")
    reference = load_reference(Path(root), module_key)
    paths = [Path(nb) for nb in notebooks]
    before = repository_digest(reference.root)
    if scheduler or cluster:
        from tito.teaching.distributed import DaskError, grade_on_dask

        def not_graded(reason: str) -> NotebookResult:
            return NotebookResult(Path("?"), [CellResult(t.grade_id, 0, t.points, "error", reason)
                                              for t in reference.tests])

        try:
            results = grade_on_dask(reference, paths, options, grade_submission, read_submission, not_graded,
                                    scheduler=scheduler, cluster=cluster, progress=progress, log=log)
        except DaskError as error:
            raise GradingError(str(error)) from None
        for reason in dict.fromkeys(r.sandbox_reason for r in results if r.sandbox == "guard"):
            if reason not in _WARNED:
                _WARNED.add(reason)
                log(f"tito grade (on some workers): {sandboxes.describe_weaker(sandboxes.Sandbox('guard', reason))}")
    else:
        try:
            used = sandboxes.resolve(sandbox)
        except sandboxes.SandboxUnavailable as error:
            raise GradingError(f"--sandbox bwrap: {error}") from None
        if used.kind == "guard" and used.reason not in _WARNED:
            _WARNED.add(used.reason)  # once per process, however many times grade() is called
            log(f"tito grade: {sandboxes.describe_weaker(used)}")
        results = grade_locally(reference, paths, options, jobs, progress)
    changed = changed_files(before, repository_digest(reference.root))
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        warning = (f"WARNING: files in the repository changed while grading: {shown}. A notebook may have "
                   "escaped its sandbox (or another build ran at the same time): inspect them with `git status`.")
        for result in results:
            result.notes.append(warning)
    if late is not None:
        for result in results:
            submitted, source = submission_time(result.notebook)
            result.late = late.apply(result.total, submitted, source)
    if gradebook is not None:
        write_gradebook(results, gradebook)
    if feedback is not None:
        from tito.teaching.feedback import write_feedback

        write_feedback(results, Path(feedback), reference.key)
    return results


_WARNED: set[str] = set()  # reasons for the guard already reported by this process


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def grade_locally(reference: Reference, paths: list[Path], options: Options, jobs: int,
                  progress: Callable | None = None) -> list[NotebookResult]:
    """Grade on this machine, `jobs` notebooks at once (threads that wait on sandboxed children)."""
    results: list[NotebookResult | None] = [None] * len(paths)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(grade_path, reference, path, options): index for index, path in enumerate(paths)}
        for done, future in enumerate(as_completed(futures), 1):
            index = futures[future]
            results[index] = future.result()
            if progress is not None:
                progress(done, len(paths), results[index])
    return results  # type: ignore[return-value]


def grade_path(reference: Reference, path: Path, options: Options) -> NotebookResult:
    """Read one notebook from disk (capped) and grade it."""
    data, problem = read_submission(path)
    result = grade_submission(reference, path.name, data, options, problem)
    result.notebook = path
    return result


def read_submission(path: Path) -> tuple[bytes, str | None]:
    """The file's bytes, or (b"", reason) when it cannot be read or is too large to be a notebook."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as error:
        return b"", f"could not read the notebook: {error}"
    if len(data) > MAX_NOTEBOOK_BYTES:
        return b"", f"not graded: the file is larger than {MAX_NOTEBOOK_BYTES // (1024 * 1024)} MB"
    return data, None


def load_reference(root: Path, module_key: str) -> Reference:
    """The module's graded test cells and the package below it, or GradingError saying what is missing."""
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
        raise GradingError(f"{module.export_file.relative_to(root)} is missing: grading needs the exported package. "
                           f"Run `doit export` (or `doit export:{module.key}` and the modules it imports) first.")
    preload, rebind, keep = dev_imports(dev, module.export_name)
    return Reference(module.key, module.export_name, dev_path, tests, sandbox_package(root, module), preload,
                     rebind, keep, hidden=[str(Path(root).resolve())], root=Path(root))


def sandbox_package(root: Path, module) -> dict[str, bytes]:
    """The files of tinytorch/ a submission of `module` may see: everything hand-written, and the
    exports of the modules numbered below it. Never this module's reference, never a higher module."""
    package = Path(root) / "tinytorch"
    exports = {m.export_file.resolve(): m for m in discover(root)}
    files = {}
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts or any(part.startswith(".") for part in path.relative_to(package).parts):
            continue
        owner = exports.get(path.resolve())
        if owner is not None and owner.number >= module.number:
            continue
        files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def dev_imports(dev: DevFile, export_name: str) -> tuple[list[str], str, list[str]]:
    """(modules to preload, the top-level import statements of non-graded cells, top-level names).

    Modules are those the dev file imports anywhere (graded cells and function bodies included), so
    they are loaded while nothing of the student has run; the graded module itself is left out.
    """
    own = f"tinytorch.core.{export_name}"
    modules: list[str] = []
    statements: list[str] = []
    names: set[str] = set()
    for cell in dev.code_cells:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.append(node.module)
                modules += [f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"]
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
                imported = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                if cell.graded or any(m and (m == own or m.startswith(own + ".")) for m in imported):
                    continue
                if isinstance(node, ast.ImportFrom) and (node.level or node.module == "__future__"):
                    continue
                statements.append(ast.unparse(node))
    preload = [m for m in dict.fromkeys(modules) if not (m == own or m.startswith(own + "."))]
    return preload, "\n".join(dict.fromkeys(statements)), sorted(names)


# --- one notebook ----------------------------------------------------------------------------------


def grade_submission(reference: Reference, name: str, data: bytes, options: Options,
                     problem: str | None = None) -> NotebookResult:
    """Grade one notebook's bytes in its own sandbox; never raises for anything the notebook contains.
    This is what a Dask worker runs, so it uses nothing but its arguments and this machine's Python."""
    start = time.perf_counter()
    try:
        used = sandboxes.resolve(options.sandbox)
    except sandboxes.SandboxUnavailable as error:
        zero = [CellResult(t.grade_id, 0, t.points, "error", f"not graded: {error}") for t in reference.tests]
        return NotebookResult(Path(name), zero, seconds=time.perf_counter() - start, sandbox="none")
    try:
        if problem:
            raise ValueError(problem)
        cells = read_student_cells(data)
    except ValueError as error:
        zero = [CellResult(t.grade_id, 0, t.points, "error", str(error)) for t in reference.tests]
        return NotebookResult(Path(name), zero, seconds=time.perf_counter() - start, sandbox=used.kind,
                              sandbox_reason=used.reason if used.kind == "guard" else "")

    _sweep_stale_sandboxes()
    host = Path(tempfile.mkdtemp(prefix=SANDBOX_PREFIX))  # mode 0700: no other user can look in
    (host / "owner").write_text(str(os.getpid()))
    try:
        notes = build_sandbox(reference, host, cells)
        steps, missing = plan_steps(reference, name, cells)
        outcomes, run_notes = run_until_done(reference, used, host, steps, options)
    finally:
        shutil.rmtree(host, ignore_errors=True)

    results = []
    for test in reference.tests:
        if test.grade_id in missing:
            results.append(CellResult(test.grade_id, 0, test.points, "missing",
                                      f"the notebook has no cell with grade_id {test.grade_id!r} "
                                      "(deleted, or its metadata was edited)"))
            continue
        index = next(s["index"] for s in steps if s.get("grade_id") == test.grade_id)
        status, reason, output = outcomes.get(index, ("error", "not run: the notebook stopped before reaching it", ""))
        results.append(CellResult(test.grade_id, test.points if status == "passed" else 0, test.points,
                                  status, reason, output))
    return NotebookResult(Path(name), results, notes + run_notes, time.perf_counter() - start, used.kind,
                          sandbox_reason=used.reason if used.kind == "guard" else "")


@functools.cache
def _sweep_stale_sandboxes() -> None:
    """Once per process: remove sandbox folders left by a grader that was killed (a Dask worker that
    died mid-grade cannot clean up after itself). A folder is stale when the process that made it is gone."""
    for folder in Path(tempfile.gettempdir()).glob(SANDBOX_PREFIX + "*"):
        try:
            owner = int((folder / "owner").read_text())
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue


def read_student_cells(data: bytes) -> list[dict]:
    """The notebook's cells as plain dicts, or ValueError with a reason a student understands.

    Plain JSON, checked by hand: a hostile file costs a bounded parse (the size is capped before),
    never a schema validation of thousands of cells or a recursion through deep nesting.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not a Jupyter notebook (.ipynb JSON): it is not UTF-8 text (byte {error.start})") from None
    try:
        notebook = json.loads(text)
    except RecursionError:
        raise ValueError("not a Jupyter notebook (.ipynb JSON): its JSON is nested too deeply") from None
    except ValueError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"not a Jupyter notebook (.ipynb JSON): {first}") from None
    if not isinstance(notebook, dict):
        raise ValueError("not a Jupyter notebook: the file is JSON but not a notebook object")
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        raise ValueError("not a Jupyter notebook: it has no list of cells")
    if notebook.get("nbformat") not in (4, None):
        raise ValueError(f"not graded: nbformat {notebook.get('nbformat')!r} notebooks are not supported "
                         "(save it as nbformat 4 in Jupyter)")
    if len(cells) > MAX_CELLS:
        raise ValueError(f"not graded: the notebook has {len(cells):,} cells; at most {MAX_CELLS:,} are graded")
    found = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(part for part in source if isinstance(part, str))
        elif not isinstance(source, str):
            source = ""
        metadata = cell.get("metadata")
        meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
        found.append({"kind": cell.get("cell_type"), "source": source,
                      "nbgrader": meta if isinstance(meta, dict) else {}})
    return found


def build_sandbox(reference: Reference, host: Path, cells: list[dict]) -> list[str]:
    """Write the package (the lower modules and the student's export) and the harness; returns notes."""
    for relative, content in reference.package.items():
        target = host / "pkg" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    exported = [c["source"] for c in cells if c["kind"] == "code" and _is_exported(c["source"])]
    notes = []
    if not exported:
        notes.append(f"the notebook has no `#| export` cell: tinytorch/core/{reference.export_name}.py is empty "
                     "for this student, so everything that imports it fails")
    own = host / "pkg" / "tinytorch" / "core" / f"{reference.export_name}.py"
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text(student_export(exported), encoding="utf-8")
    (host / "harness").mkdir()
    (host / "harness" / HARNESS.name).write_bytes(_harness_bytes())
    (host / "work").mkdir()
    (host / "log").mkdir()
    return notes


_HARNESS_BYTES: bytes | None = None


def _harness_bytes() -> bytes:
    global _HARNESS_BYTES
    if _HARNESS_BYTES is None:
        _HARNESS_BYTES = HARNESS.read_bytes()
    return _HARNESS_BYTES


def _is_exported(source: str) -> bool:
    return "export" in directives(source)


def student_export(sources: list[str]) -> str:
    """The student's module file, made by the exporter's own transformation (without its header).

    Code that does not parse still becomes the file (its import then fails with the student's
    SyntaxError, cell by cell, which is the feedback they need).
    """
    try:
        return package_body(sources)
    except (SyntaxError, RecursionError, ValueError, MemoryError):
        return "\n\n\n".join(filter(None, map(package_code, sources))) + "\n"


def plan_steps(reference: Reference, name: str, cells: list[dict]) -> tuple[list[dict], set[str]]:
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
                          "line": test.line, "filename": reference.dev_path})  # relative: no repository path
        elif cell["nbgrader"].get("grade") is True:
            continue
        else:
            steps.append({"index": len(steps), "kind": "code", "cell": number,
                          "source": without_magics(cell["source"]), "line": 1,
                          "filename": f"<{name} cell {number}>"})
    return steps, set(tests) - graded_seen


def without_magics(source: str) -> str:
    """IPython `%magic` and `!shell` lines become `pass`, so the rest of the cell still runs."""
    return "\n".join(MAGIC_RE.sub(r"\1pass  # removed for grading: \2", line) for line in source.splitlines())


# --- running a notebook ---------------------------------------------------------------------------


def run_until_done(reference: Reference, used: sandboxes.Sandbox, host: Path, steps: list[dict],
                   options: Options) -> tuple[dict[int, tuple[str, str, str]], list[str]]:
    """Run the steps, re-running without any cell that stopped the process; outcomes of test steps."""
    tests = {s["index"] for s in steps if s["kind"] == "test"}
    outcomes: dict[int, tuple[str, str, str]] = {}
    skip: set[int] = set()
    notes: list[str] = []
    for _ in range(MAX_RUNS):
        pending = tests - set(outcomes)
        if not pending:
            break
        run = run_once(reference, used, host, steps, skip | set(outcomes), options)
        for index, outcome in run.reported.items():
            if index in tests:
                outcomes[index] = outcome
            elif outcome[0] != "passed":
                notes.append(f"{_cell_name(steps[index])} raised: {outcome[1]}")
        notes += run.notes
        if run.death is None:
            break
        death = (*run.death, "")
        if run.running is None:  # it died before or between cells: nothing to skip, so re-running cannot help
            for index in tests - set(outcomes):
                outcomes[index] = death
            break
        skip.add(run.running)
        if run.running in tests:
            outcomes[run.running] = death
        else:
            rerun = "; the notebook was run again without it" if tests - set(outcomes) else ""
            notes.append(f"{_cell_name(steps[run.running])} stopped the notebook ({run.death[1]}){rerun}")
    for index in tests - set(outcomes):
        outcomes[index] = ("error", f"not run: the notebook stopped before reaching it ({MAX_RUNS} runs at most)", "")
    return outcomes, list(dict.fromkeys(notes))  # a cell that fails in every re-run is noted once


def _cell_name(step: dict) -> str:
    """How a note names a student's cell: its position (1 = first cell) and its first line."""
    first = next((line.strip() for line in step["source"].splitlines() if line.strip()), "")
    first = first if len(first) <= 40 else first[:37] + "..."
    return f"cell {step['cell'] + 1} (`{first}`)"


@dataclass
class Run:
    reported: dict[int, tuple[str, str, str]]
    running: int | None  # the step running when the child died
    death: tuple[str, str] | None  # (status, reason), or None when the child finished normally
    notes: list[str]


def run_once(reference: Reference, used: sandboxes.Sandbox, host: Path, steps: list[dict], skip: set[int],
             options: Options) -> Run:
    """One child run of the notebook's steps (those not in `skip`)."""
    layout = sandboxes.python_layout(tuple(reference.hidden))
    launch = sandboxes.launch(used, layout, host, HARNESS.name, WORK_MB)
    shutil.rmtree(host / "work", ignore_errors=True)  # a fresh work folder for every run
    (host / "work").mkdir()
    nonce = secrets.token_hex(16)
    job = {"nonce": nonce, "steps": steps, "skip": sorted(skip), "memory_mb": int(options.memory_mb),
           "cpu_seconds": max(1, int(options.timeout) + 1), "fsize_mb": FSIZE_MB, "nproc": 64,
           "output_cap": int(options.output_cap),
           "path": [launch.pkg, *layout.stdlib, *layout.site], "preload": reference.preload,
           "rebind": reference.rebind, "keep_names": reference.keep_names, "policy": launch.policy}
    data = json.dumps(job).encode("utf-8")
    log_path = host / "log" / "stderr.txt"
    with open(log_path, "wb") as stderr:
        # start_new_session: the child leads its own process group, so a kill reaches everything it started.
        process = subprocess.Popen(launch.argv, cwd=launch.cwd, env=launch.env or {"PATH": os.defpath},
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                   start_new_session=True)
        output, timed_out, dropped = exchange(process, data, options.timeout)
    reported, running, finished, foreign = parse_events(output, {s["index"] for s in steps} - skip, nonce)
    notes = []
    if foreign:
        notes.append(f"the notebook wrote {foreign} line(s) into the grading channel; they were ignored")
    if dropped:
        notes.append(f"the notebook wrote {dropped:,} bytes into the grading channel beyond its "
                     f"{CHANNEL_CAP // (1024 * 1024)} MB limit; they were discarded")
    if finished and not timed_out:
        return Run(reported, None, None, notes)
    return Run(reported, running, death_reason(used, process.returncode, timed_out, options.timeout, host), notes)


def exchange(process: subprocess.Popen, data: bytes, timeout: float) -> tuple[bytes, bool, int]:
    """Send the job, read the result channel until it closes or `timeout` passes, then make sure the
    child and everything it started are gone. Returns (channel bytes kept, timed out, bytes dropped).

    At most CHANNEL_CAP bytes are kept, so a notebook that floods the channel costs the grader no
    memory; the rest is read and thrown away so the child never blocks on a full pipe.
    """
    feeder = threading.Thread(target=_feed, args=(process.stdin, data), daemon=True)
    feeder.start()
    chunks, kept, dropped = [], 0, 0
    deadline = time.monotonic() + timeout
    timed_out = False
    fd = process.stdout.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if not selector.select(min(left, 1.0)):
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            take = chunk[:max(0, CHANNEL_CAP - kept)]
            if take:
                chunks.append(take)
                kept += len(take)
            dropped += len(chunk) - len(take)
    if not timed_out:  # the channel closed: give the child what is left of its time to exit
        timed_out = not _wait_unreaped(process, max(0.0, deadline - time.monotonic()) + 0.5)
    _kill_group(process)  # before reaping, so the group id cannot have been reused
    process.wait()
    feeder.join(timeout=1)
    process.stdout.close()
    return b"".join(chunks), timed_out, dropped


def _feed(pipe, data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except (BrokenPipeError, OSError, ValueError):
        pass


def _wait_unreaped(process: subprocess.Popen, seconds: float) -> bool:
    """Wait for the child to exit without reaping it; True when it did within `seconds`."""
    deadline = time.monotonic() + seconds
    delay = 0.001
    while True:
        try:
            info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        except AttributeError:  # no waitid on this platform
            try:
                process.wait(timeout=seconds)
                return True
            except subprocess.TimeoutExpired:
                return False
        if info is not None:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def parse_events(output: bytes, expected: set[int], nonce: str):
    """(outcomes by step, step begun but not ended, whether the child finished, lines ignored).

    Only lines that start with this run's secret are parsed (as Python literals: the harness writes
    them with repr), and only events about steps this run was asked to run are believed; the
    notebook could write anything into the channel.
    """
    reported: dict[int, tuple[str, str, str]] = {}
    running = None
    finished = False
    foreign = 0
    prefix = f"({nonce!r}, "
    for line in output.decode("utf-8", errors="replace").splitlines():
        if not line.startswith(prefix):
            foreign += bool(line.strip())
            continue
        try:
            event = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            foreign += 1
            continue
        if not isinstance(event, tuple) or len(event) < 2:
            foreign += 1
            continue
        kind = event[1]
        if kind == "begin" and len(event) == 3 and event[2] in expected:
            running = event[2]
        elif kind == "end" and len(event) == 6 and event[2] in expected and event[2] == running:
            _, _, step, status, reason, printed = event
            if status in STATUSES:
                reported[step] = (status, str(reason)[:500], str(printed)[:20_000])
            running = None
        elif kind == "finished" and len(event) == 2 and running is None:
            finished = True
    return reported, running, finished, foreign


def death_reason(used: sandboxes.Sandbox, code: int | None, timed_out: bool, timeout: float,
                 host: Path) -> tuple[str, str]:
    """Why a child stopped without finishing, as (status, reason)."""
    if timed_out:
        return "timeout", f"time limit: still running after {timeout:g} s, so the process was stopped"
    if used.kind == "bwrap" and code is not None and code > 128:
        code = -(code - 128)  # bwrap reports a child killed by signal N as exit status 128 + N
    if code == -signal.SIGXCPU:
        return "timeout", f"CPU time limit of {int(timeout) + 1} s exceeded"
    if code == -signal.SIGKILL:
        return "memory", "the process was killed by the system (most likely out of memory)"
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return "error", f"the process died with {name}"
    tail = _tail(host / "log" / "stderr.txt")
    return "error", (f"the process exited with code {code} before reporting (os._exit or a crash in the "
                     f"notebook code?){': ' + tail if tail else ''}")


def _tail(path: Path, size: int = 4096) -> str:
    """The last non-empty line of a file, reading only its end (the file may be large)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            lines = handle.read().decode("utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


# --- the repository must not change ---------------------------------------------------------------


def repository_digest(root: Path | None) -> dict[str, str]:
    """SHA-256 of every file under tinytorch/ and modules/ (caches excluded), by relative path."""
    digest: dict[str, str] = {}
    if root is None:
        return digest
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
    return f"{round(value, 2):g}"


def format_table(results: list[NotebookResult]) -> str:
    """A plain-text report: one block per notebook, a row per graded cell, then its total and notes."""
    header = ("notebook", "grade_id", "points", "status", "reason")
    blocks = []
    for result in results:
        name = result.notebook.name
        block = [(name, cell.grade_id, f"{_points(cell.points)}/{_points(cell.max_points)}", cell.status, cell.reason)
                 for cell in result.cells]
        block.append((name, "TOTAL", f"{_points(result.total)}/{_points(result.max_total)}", "",
                      f"{result.seconds:.1f} s"))
        if result.late is not None and result.late.days_late:
            block.append((name, "FINAL", f"{_points(result.final)}/{_points(result.max_total)}", "late",
                          result.late.describe()))
        blocks.append(block)
    rows = [header] + [row for block in blocks for row in block]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]

    def line(row):
        return ("  ".join(value.ljust(width) for value, width in zip(row, widths)) + "  " + row[4]).rstrip()

    lines = [line(header)]
    for block in blocks:
        lines += [line(row) for row in block] + [""]
    notes = [f"{r.notebook.name}: {note}" for r in results for note in r.notes]
    if notes:
        lines += ["notes:"] + [f"  {note}" for note in notes]
    return "\n".join(lines).rstrip() + "\n"


def to_json(results: list[NotebookResult]) -> str:
    """The results as JSON: a list of notebooks, each with its cells, total, penalty, final and notes."""
    data = []
    for result in results:
        late = result.late.as_dict() if result.late else None
        data.append({"notebook": str(result.notebook), "total": result.total, "max_total": result.max_total,
                     "penalty": result.penalty, "final": result.final, "late": late,
                     "seconds": round(result.seconds, 3), "sandbox": result.sandbox, "notes": result.notes,
                     "cells": [asdict(cell) for cell in result.cells]})
    return json.dumps(data, indent=2) + "\n"


GRADEBOOK_COLUMNS = ("notebook", "grade_id", "points", "max_points", "status", "reason", "submitted", "days_late",
                     "penalty", "final")


def write_gradebook(results: list[NotebookResult], path: Path) -> None:
    """CSV with GRADEBOOK_COLUMNS: a row per graded cell, then a row with grade_id TOTAL per notebook
    (status "complete" when every cell passed, else "incomplete") whose `points` is the raw score and
    `penalty` and `final` the late penalty and the score that counts. Written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(GRADEBOOK_COLUMNS)
    for result in results:
        name = str(result.notebook)
        for cell in result.cells:
            writer.writerow([name, cell.grade_id, _points(cell.points), _points(cell.max_points), cell.status,
                             cell.reason, "", "", "", ""])
        complete = all(cell.status == "passed" for cell in result.cells)
        late = result.late
        writer.writerow([name, "TOTAL", _points(result.total), _points(result.max_total),
                         "complete" if complete else "incomplete", "; ".join(result.notes),
                         late.submitted_text if late else "", _points(late.days_late) if late else "",
                         _points(result.penalty), _points(result.final)])
    write_atomic(Path(path), buffer.getvalue().encode("utf-8"))
