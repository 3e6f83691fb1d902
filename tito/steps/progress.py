"""The learner's progress in a student repository (docs/design.md, "The learner's track and grading").

A student repository is marked by a tracked file at its root, `tinytorch-course.json` (RECORD), written
by `tito student new` (tito.teaching.student). It records the course version each module came from
and, per module, every cell of the course's *student* version: its fingerprint, and for a solution
cell the stub text itself. Everything below is derived from that record, the files and the build's
last results; nothing is kept by hand:

- a module is *not started* while every solution cell still equals its stub (`not_started`);
- `test:NN` (tito.steps.runner) runs the dev file cell by cell in a child process (`run_cells`, the
  `__main__` of this file) and records, per graded cell, whether it passed; then it runs the module's
  test files. `integrate:NN` records its progressive test, `example:<name>` its run. Every record
  carries a hash of the inputs it ran on (`inputs_key`), so a record counts only for the files as
  they are now: edit the dev file, or re-export a module below, and the module is tested again;
- a module is *complete* when the records for its current inputs say that every cell of the dev file
  ran, every graded cell passed, its test files passed and its progressive test passed; a module
  that is started and not complete is *in progress*;
- a task that reaches a module that is not started does not run: it says which module it waits for
  (`waiting_message`) and succeeds, and runs again once that module is started (`waiting_is_over`).

Only the standard library and the model are imported at load time: the graph asks `is_student_repo`
while it loads, and the child that runs a dev file's cells needs nothing else.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tito.model.graph import Graph
from tito.model.layout import Module, example_scripts
from tito.model.scan import sha256_bytes, sha256_file
from tito.steps.generated import write_atomic

RECORD = "tinytorch-course.json"  # tracked, at the root of every student repository
RECORD_FORMAT = 1
STATUS_DIR = Path(".tito") / "status"  # git-ignored: the build's last results, never an input
BACKUPS_DIR = Path(".tito") / "backups"

NOT_STARTED, IN_PROGRESS, COMPLETE, MISSING = "not started", "in progress", "complete", "missing"

MARKER = "# %%"
# The stub that tito.steps.nbgrader.clear_solutions writes: `raise NotImplementedError("Implement X (...)")`
STUB_RE = re.compile(r'^(?P<indent>\s*)raise NotImplementedError\((?P<literal>".*")\)\s*$')
# The first line of the note `tito student update` writes above the course's side of a conflict.
CONFLICT_NOTE = "CONFLICT (tito student update)"


class RecordError(Exception):
    """The course record is missing or unreadable; the message says how to restore it."""


# --- the record ---------------------------------------------------------------------------------------


def is_student_repo(root: Path) -> bool:
    """A student repository: the course record sits at its root."""
    return (Path(root) / RECORD).is_file()


_RECORDS: dict[tuple, dict] = {}


def read_record(root: Path) -> dict:
    """The course record (tinytorch-course.json), read once per content; RecordError when unreadable."""
    path = Path(root) / RECORD
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise RecordError(f"{RECORD} is missing: this is not a student repository (`tito student new DIR` "
                          "makes one)") from None
    cache_key = (str(path), stat.st_mtime_ns, stat.st_size)
    if cache_key not in _RECORDS:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            line = getattr(error, "lineno", 1)
            raise RecordError(f"{RECORD}:{line}: not valid JSON ({error}). The course record is written by tito, "
                              f"never by hand: restore it with `git checkout -- {RECORD}`") from None
        if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT or "modules" not in record:
            raise RecordError(f"{RECORD}:1: not a course record of format {RECORD_FORMAT}: restore it with "
                              f"`git checkout -- {RECORD}`")
        _RECORDS.clear()
        _RECORDS[cache_key] = record
    return _RECORDS[cache_key]


def module_record(root: Path, key: str) -> dict | None:
    """The record of one module, or None for a module the course did not provide."""
    try:
        return read_record(root)["modules"].get(key)
    except RecordError:
        return None


# --- a dev file as raw cells ------------------------------------------------------------------------------


@dataclass
class RawCell:
    """One cell of a dev file exactly as written: its marker line and every line up to the next marker.

    Joining the `text` of every cell gives the file back byte for byte, so an update or a reset can
    replace one cell and leave every other byte alone. The header (jupytext's YAML block before the
    first marker) is a cell of kind "header".
    """

    text: str
    line: int  # 1-based line of the marker (of the first line, for the header)
    kind: str  # "header", "code", "markdown" or "raw"
    nbgrader: dict | None = None
    bad_metadata: bool = False  # the marker line has `nbgrader=` that is not a JSON object

    @property
    def grade_id(self) -> str | None:
        value = self.nbgrader.get("grade_id") if self.nbgrader else None
        return value if isinstance(value, str) and value else None

    @property
    def solution(self) -> bool:
        return bool(self.nbgrader) and self.nbgrader.get("solution") is True

    @property
    def graded(self) -> bool:
        return bool(self.nbgrader) and self.nbgrader.get("grade") is True

    @property
    def role(self) -> str:
        """header, solution, graded, provided (course code), prose, or scratch (a code cell without metadata)."""
        if self.kind == "header":
            return "header"
        if self.solution:
            return "solution"
        if self.graded:
            return "graded"
        if self.kind == "code":
            return "provided" if self.nbgrader is not None else "scratch"
        return "prose"

    @property
    def marker(self) -> str:
        return self.text.splitlines()[0] if self.kind != "header" and self.text else ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.text)

    def body(self) -> list[tuple[int, str]]:
        """(line number, text) of every line after the marker."""
        lines = self.text.splitlines()
        start = 0 if self.kind == "header" else 1
        return [(self.line + offset, text) for offset, text in enumerate(lines[start:], start=start)]


def parse_marker(line: str) -> tuple[str, dict | None, bool]:
    """(kind, nbgrader metadata or None, whether `nbgrader=` was there but unreadable) of a marker line."""
    rest = line[len(MARKER):].strip()
    kind = "code"
    match = re.match(r"\[(\w+)\]", rest)
    if match:
        kind = {"markdown": "markdown", "md": "markdown", "raw": "raw"}.get(match.group(1), "code")
    at = rest.find("nbgrader=")
    if at < 0:
        return kind, None, False
    try:
        value, _ = json.JSONDecoder().raw_decode(rest[at + len("nbgrader="):])
    except ValueError:
        return kind, None, True
    return (kind, value, False) if isinstance(value, dict) else (kind, None, True)


def split_cells(text: str) -> list[RawCell]:
    """The cells of a jupytext percent-format file, each with its exact text (see RawCell)."""
    lines = text.splitlines(keepends=True)
    markers = [i for i, line in enumerate(lines) if line.startswith(MARKER)]
    cells = []
    first = markers[0] if markers else len(lines)
    if first > 0:
        cells.append(RawCell("".join(lines[:first]), 1, "header"))
    for n, start in enumerate(markers):
        end = markers[n + 1] if n + 1 < len(markers) else len(lines)
        kind, meta, bad = parse_marker(lines[start].rstrip("\r\n"))
        cells.append(RawCell("".join(lines[start:end]), start + 1, kind, meta, bad))
    return cells


def join_cells(cells: list[RawCell]) -> str:
    """The file made of these cells; a cell that does not end with a newline gets one."""
    return "".join(c.text if c.text.endswith("\n") or c is cells[-1] else c.text + "\n" for c in cells)


def normalized(text: str) -> str:
    """A cell's text without trailing spaces or blank lines around it: what an editor may change unasked."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


def fingerprint(text: str) -> str:
    return sha256_bytes(normalized(text).encode("utf-8"))


def read_cells(path: Path) -> list[RawCell]:
    return split_cells(Path(path).read_bytes().decode("utf-8", errors="replace"))


# --- stubs: not started, and what to implement next --------------------------------------------------


@dataclass(frozen=True)
class Stub:
    """A `raise NotImplementedError("Implement X ...")` still in a solution cell."""

    path: str  # the dev file, relative to the root
    line: int
    what: str  # "Dense.forward", or the whole message when it names no function

    def __str__(self) -> str:
        return f"implement {self.what} at {self.path}:{self.line}"


def stubs_in(cells: list[RawCell], shown: str) -> list[Stub]:
    """Every stub still in a solution cell, in file order."""
    found = []
    for cell in cells:
        if not cell.solution:
            continue
        for number, text in cell.body():
            match = STUB_RE.match(text)
            if not match:
                continue
            try:
                message = json.loads(match.group("literal"))
            except ValueError:
                message = match.group("literal")
            named = re.match(r"Implement (\S+) \(", message)
            found.append(Stub(shown, number, named.group(1) if named else message))
    return found


def solution_fingerprints(record: dict) -> dict[str, str]:
    """grade_id -> fingerprint of the stub, for every solution cell of a module's record."""
    return {c["id"]: c["sha256"] for c in record.get("cells", []) if c.get("role") == "solution" and c.get("id")}


def not_started(root: Path, key: str, dev_file: Path) -> bool:
    """Every solution cell still equals its stub (a file the record does not know is started)."""
    record = module_record(root, key)
    if record is None or not Path(dev_file).is_file():
        return False
    if sha256_file(dev_file) == record.get("student_sha256"):
        return True  # untouched since tito wrote it
    stubs = solution_fingerprints(record)
    cells = {c.grade_id: c for c in read_cells(dev_file) if c.solution and c.grade_id}
    return all(gid in cells and cells[gid].fingerprint == sha for gid, sha in stubs.items())


def first_stub(root: Path, module: Module) -> Stub | None:
    if not module.dev_file.is_file():
        return None
    shown = module.dev_file.relative_to(root).as_posix()
    found = stubs_in(read_cells(module.dev_file), shown)
    return found[0] if found else None


# --- waiting for modules that are not started ---------------------------------------------------------


def first_not_started(root: Path, modules: list[Module]) -> Module | None:
    """The lowest-numbered of these modules that is not started, or None."""
    for module in sorted(modules, key=lambda m: m.number):
        if not_started(root, module.key, module.dev_file):
            return module
    return None


def waiting_message(root: Path, task_name: str, module: Module) -> str:
    stub = first_stub(root, module)
    what = f": {stub}" if stub else ""
    return f"{task_name} waits for {module.key} (not started{what})"


def waiting(root: Path, task_name: str, modules: list[Module]) -> dict | None:
    """When a module among `modules` is not started: print why `task_name` waits, and return the values
    the task saves (see waiting_is_over); None when every module is started."""
    module = first_not_started(root, modules)
    if module is None:
        return None
    print(waiting_message(root, task_name, module), file=sys.stderr)  # doit shows stderr at verbosity 1
    return {"waiting_for": module.key, "waiting_for_file": str(module.dev_file)}


def waiting_is_over(task, values, root: str) -> bool:
    """doit `uptodate` of tasks that may wait: False once the module a task waited for is started, so it
    runs even when the edit that started the module left the task's own inputs as they were."""
    key = values.get("waiting_for")
    if not key:
        return True
    return not_started(Path(root), key, Path(values.get("waiting_for_file", "")))


def reached_by_test(graph: Graph, module: Module) -> list[Module]:
    """The modules `test:NN` runs: the module, those its dev file stands on, those its test files reach."""
    reached = [module, *graph.modules_run_by(module)]
    for test_file in module.test_files:
        reached += graph.modules_reached_by(test_file)
    return list({m.key: m for m in reached}.values())


def reached_by_file(graph: Graph, path: Path) -> list[Module]:
    return graph.modules_reached_by(path)


# --- what a task ran on -------------------------------------------------------------------------------------


def test_inputs(graph: Graph, module: Module) -> list[Path]:
    """The files test:NN reads (its file_dep without the tooling): dev file, test files, helpers, exports."""
    exports = [m.export_file for m in [module, *graph.modules_run_by(module)]]
    helpers: list[Path] = []
    for test_file in module.test_files:
        exports += graph.exported_files_reached_by(test_file)
        helpers += graph.support_files_of(test_file)
    return list(dict.fromkeys([module.dev_file, *module.test_files, *helpers, *exports]))


def file_inputs(graph: Graph, path: Path) -> list[Path]:
    """The files a progressive test or an example reads: itself, its helpers, the exports it reaches."""
    return list(dict.fromkeys([Path(path), *graph.support_files_of(path), *graph.exported_files_reached_by(path)]))


def integrate_inputs(graph: Graph, module: Module) -> list[Path]:
    return file_inputs(graph, module.progressive_test)


def inputs_key(root: Path, paths: list[Path]) -> str:
    """One hash of these files' contents: a result recorded with it holds for exactly these contents."""
    root = Path(root)
    lines = sorted(f"{Path(p).relative_to(root).as_posix()}\0{sha256_file(p) or 'missing'}" for p in paths)
    return sha256_bytes("\n".join(lines).encode("utf-8"))


# --- the build's last results ---------------------------------------------------------------------------


def _status_file(root: Path, kind: str, name: str) -> Path:
    return Path(root) / STATUS_DIR / f"student-{kind}-{name}.json"


def record_result(root: Path, kind: str, name: str, result: dict) -> None:
    """Save the result of test:/integrate:/example: for `tito module status` (never a build input)."""
    result = {**result, "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_atomic(_status_file(root, kind, name), json.dumps(result, indent=1).encode("utf-8"))


def read_result(root: Path, kind: str, name: str) -> dict | None:
    path = _status_file(root, kind, name)
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


# --- running a dev file cell by cell --------------------------------------------------------------------


def run_cells(dev_file: str, events_file: str) -> int:
    """Run every code cell of a dev file in order, in one namespace, as `python dev_file` would, but go on
    after a cell fails. Writes a JSON line per cell to `events_file` ("begin", then "end" with the
    status, the error and the dev-file line where it was raised). The child of `test:NN` in a student
    repository: `python -m tito.steps.progress run-cells DEV EVENTS`."""
    path = Path(dev_file)
    shown = path.as_posix()
    namespace = {"__name__": "__main__", "__file__": str(path.resolve()), "__builtins__": __builtins__}
    sys.path.insert(0, str(path.resolve().parent))  # as when the file runs as a script
    sys.argv = [str(path)]
    cells = [c for c in split_cells(path.read_text(encoding="utf-8")) if c.kind == "code"]
    with open(events_file, "w", encoding="utf-8") as channel:
        def emit(**event):
            channel.write(json.dumps(event) + "\n")
            channel.flush()

        for cell in cells:
            about = {"line": cell.line, "grade_id": cell.grade_id, "graded": cell.graded, "role": cell.role,
                     "points": (cell.nbgrader or {}).get("points", 0) if cell.graded else 0}
            emit(event="begin", **about)
            lines = cell.text.splitlines()[1:]
            # Blank lines in front make tracebacks name the dev file's own line numbers.
            source = "\n" * cell.line + "\n".join(lines) + "\n"
            try:
                exec(compile(source, shown, "exec"), namespace)
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # noqa: BLE001 - a learner's cell may raise anything, SystemExit too
                emit(event="end", status="failed", **about, **describe_error(error, shown))
            else:
                emit(event="end", status="passed", **about)
            sys.stdout.flush()
    return 0


def describe_error(error: BaseException, shown: str) -> dict:
    """The error's message (at most 15 lines), the innermost dev-file line it passed through, and the
    traceback's frames in the dev file."""
    message = "".join(traceback.format_exception_only(type(error), error)).strip()
    lines = message.splitlines()
    if len(lines) > 15:
        message = "\n".join(lines[:15] + ["..."])
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename == shown]
    last = frames[-1] if frames else None
    where = f"{shown}:{ours[-1].lineno}" if ours else (f"{_local(last.filename)}:{last.lineno}" if last else shown)
    # Raised in the learner's package (tinytorch/core/...), not in the dev file: worth naming. A library's
    # own file (numpy's assertions) is not.
    outside = ""
    if last is not None and last.filename != shown and _local(last.filename).startswith(("tinytorch/", "modules/")):
        outside = f"{_local(last.filename)}:{last.lineno}"
    return {"error": message, "where": where, "raised_in": outside}


def _local(filename: str) -> str:
    """A file under the current folder (the project root) as a relative path; any other as it is."""
    try:
        return Path(filename).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return filename


def headline(error: str) -> str:
    """The first line of an error message that says something: numpy's `AssertionError:` is followed by
    its message on the next lines."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]


def read_events(events_file: Path) -> list[dict]:
    """The finished cells of a run_cells child; a cell that began and never ended comes last, as 'stopped'."""
    try:
        lines = Path(events_file).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    cells, running = [], None
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "begin":
            running = event
        elif event.get("event") == "end":
            cells.append(event)
            running = None
    if running is not None:
        cells.append({**running, "event": "end", "status": "stopped",
                      "error": "the run stopped in this cell (time limit, or the process was killed)",
                      "where": f"line {running['line']}"})
    return cells


# --- module states ---------------------------------------------------------------------------------------


@dataclass
class ModuleProgress:
    """What `tito module status` shows for one module."""

    key: str
    dev_file: str  # relative to the root
    state: str  # NOT_STARTED, IN_PROGRESS, COMPLETE or MISSING
    graded_total: int = 0
    points_total: float = 0
    graded_passed: int | None = None  # None: no result for the files as they are now
    points: float | None = None
    tests: str = "not run"  # the module's test files: passed, failed, not run
    integrate: str = "not run"  # its progressive test: passed, failed, not run, none
    failure: str = ""  # the first failure of test:NN, "graded test 'id' (N points) at file:line: message"
    integrate_failure: str = ""  # the first failing test of integrate:NN
    next_stub: Stub | None = None
    stale: bool = False  # there are results, but for other files (an edit or an export since)
    problems: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """'in progress: 2 of 3 graded tests (15 of 25 points)' and the like."""
        if self.state == COMPLETE:
            return (f"complete: {self.graded_total} of {self.graded_total} graded tests "
                    f"({_num(self.points_total)} points), module tests and progressive test pass")
        if self.state == NOT_STARTED:
            return f"not started{f': {self.next_stub}' if self.next_stub else ''}"
        if self.state == MISSING:
            return f"missing: {self.dev_file} is not there"
        if self.graded_passed is None:
            return "in progress: not tested since your last change"
        return (f"in progress: {self.graded_passed} of {self.graded_total} graded tests "
                f"({_num(self.points)} of {_num(self.points_total)} points)")


def _num(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def module_progress(root: Path, graph: Graph, module: Module) -> ModuleProgress:
    root = Path(root)
    record = module_record(root, module.key) or {}
    graded = [c for c in record.get("cells", []) if c.get("role") == "graded"]
    shown = module.dev_file.relative_to(root).as_posix()
    progress = ModuleProgress(module.key, shown, IN_PROGRESS, len(graded),
                              sum(c.get("points", 0) for c in graded))
    if not module.dev_file.is_file():
        progress.state = MISSING
        return progress
    progress.problems = record_problems(root, module)
    progress.next_stub = first_stub(root, module)
    if not_started(root, module.key, module.dev_file):
        progress.state = NOT_STARTED
        progress.points = 0
        return progress
    tested = read_result(root, "test", module.key)
    if tested and tested.get("inputs") == inputs_key(root, test_inputs(graph, module)):
        cells = tested.get("graded", [])
        progress.graded_passed = sum(1 for c in cells if c.get("status") == "passed")
        progress.points = sum(c.get("points", 0) for c in cells if c.get("status") == "passed")
        progress.tests = tested.get("tests", "not run")
        progress.failure = tested.get("failure", "")
        cells_ok = tested.get("cells_ok", False)
    else:
        progress.stale = tested is not None
        cells_ok = False
    if not module.progressive_test.is_file():
        progress.integrate = "none"
    else:
        integrated = read_result(root, "integrate", module.key)
        if integrated and integrated.get("inputs") == inputs_key(root, integrate_inputs(graph, module)):
            progress.integrate = "passed" if integrated.get("passed") else "failed"
            progress.integrate_failure = "" if integrated.get("passed") else integrated.get("failure", "")
    if (cells_ok and progress.graded_passed == progress.graded_total and progress.tests == "passed"
            and progress.integrate in ("passed", "none") and not progress.problems):
        progress.state = COMPLETE
    return progress


def all_progress(root: Path, graph: Graph | None = None) -> dict[str, ModuleProgress]:
    """Every module's progress, in curriculum order, including modules of the record that are missing."""
    root = Path(root)
    graph = graph or Graph.load(root)
    found = {m.key: module_progress(root, graph, m) for m in graph.modules}
    try:
        recorded = read_record(root)["modules"]
    except RecordError:
        recorded = {}
    for key, record in recorded.items():
        if key not in found:
            graded = [c for c in record.get("cells", []) if c.get("role") == "graded"]
            found[key] = ModuleProgress(key, record.get("dev_file", key), MISSING, len(graded),
                                        sum(c.get("points", 0) for c in graded), points=0)
    return dict(sorted(found.items()))


@dataclass
class Milestone:
    """An example: unlocked when every module it reaches is complete."""

    name: str
    script: str
    modules: list[str]
    missing: list[tuple[str, str]]  # (module key, its state) of the modules not complete yet
    result: str  # "passed" or "failed" on the current package, or "" when it has not run on it

    @property
    def unlocked(self) -> bool:
        return not self.missing


def milestones(root: Path, graph: Graph | None = None, progress: dict | None = None) -> list[Milestone]:
    root = Path(root)
    graph = graph or Graph.load(root)
    progress = progress if progress is not None else all_progress(root, graph)
    found = []
    for script in example_scripts(root):
        reached = graph.modules_reached_by(script)
        missing = [(m.key, progress[m.key].state) for m in reached if progress[m.key].state != COMPLETE]
        last = read_result(root, "example", script.parent.name)
        result = ""
        if last and last.get("inputs") == inputs_key(root, file_inputs(graph, script)):
            result = "passed" if last.get("passed") else "failed"
        found.append(Milestone(script.parent.name, script.relative_to(root).as_posix(), [m.key for m in reached],
                               missing, result))
    return found


# --- checking a learner's dev file against the course record ----------------------------------------------


def record_problems(root: Path, module: Module) -> list[str]:
    """`file:line: message` for every cell of the course that the learner's dev file no longer has by its
    grade_id: deleted, its metadata lost, or its grade_id edited. Grading and updates match cells by
    grade_id, so these are errors; cells the learner added (with or without metadata) are fine."""
    record = module_record(root, module.key)
    if record is None or not module.dev_file.is_file():
        return []
    shown = module.dev_file.relative_to(root).as_posix()
    cells = read_cells(module.dev_file)
    problems = [f"{shown}:{c.line}: the cell's `nbgrader=` metadata is not a JSON object: restore the marker line "
                "as the course wrote it" for c in cells if c.bad_metadata]
    by_id: dict[str, list[RawCell]] = {}
    for cell in cells:
        if cell.grade_id:
            by_id.setdefault(cell.grade_id, []).append(cell)
    expected = [c for c in record.get("cells", []) if c.get("id")]
    known = {c["id"] for c in expected}
    claimed: set[int] = set()
    for index, wanted in enumerate(expected):
        found = by_id.get(wanted["id"], [])
        if len(found) > 1 and wanted.get("role") in ("solution", "graded"):
            lines = ", ".join(str(c.line) for c in found)
            problems.append(f"{shown}:{found[1].line}: grade_id {wanted['id']!r} is used by the cells at lines "
                            f"{lines}: keep one (the course's); give your copy another grade_id or no metadata")
        if found:
            continue
        # Where the cell should be: after the course cell before it, before the course cell after it.
        after = max([by_id[c["id"]][0].line for c in expected[:index] if c["id"] in by_id] or [0])
        before = min([by_id[c["id"]][0].line for c in expected[index + 1:] if c["id"] in by_id] or [10**9])
        between = [c for c in cells if after < c.line < before and c.kind == "code" and id(c) not in claimed]
        renamed = [c for c in between if c.grade_id and c.grade_id not in known]
        lost = [c for c in between if c.nbgrader is None and _looks_like(c, wanted)]
        marker = wanted.get("marker", "")
        restore = f"; restore its marker line:\n    {marker}" if marker else ""
        if lost:
            claimed.add(id(lost[0]))
            problems.append(f"{shown}:{lost[0].line}: this cell lost its nbgrader metadata: it is the course's "
                            f"cell {wanted['id']!r}{restore}")
        elif renamed:
            claimed.add(id(renamed[0]))
            problems.append(f"{shown}:{renamed[0].line}: grade_id {renamed[0].grade_id!r} is not the course's: this "
                            f"is the course's cell {wanted['id']!r} (grading and updates match cells by grade_id)"
                            f"{restore}")
        else:
            problems.append(f"{shown}:{max(after, 1)}: the course's cell {wanted['id']!r} is missing after this line "
                            f"(deleted, or its marker line changed){restore}")
    return problems


def _looks_like(cell: RawCell, wanted: dict) -> bool:
    """A cell without metadata is the course's lost cell when its body is the course's, or, for a solution
    cell the learner has written code in, when it keeps at least half of the stub's lines."""
    body = "\n".join(cell.text.splitlines()[1:])
    if wanted.get("body_sha256") == fingerprint(body):
        return True
    stub = wanted.get("stub")
    if stub is None:
        return False
    ours = {line.strip() for _, line in cell.body() if line.strip()}
    theirs = {line.strip() for line in stub.splitlines()[1:] if line.strip()}
    return bool(theirs) and len(ours & theirs) >= len(theirs) / 2


def conflicts_in(path: Path, shown: str) -> list[int]:
    """Lines of the conflict notes `tito student update` left in a dev file (deleted once resolved)."""
    if not Path(path).is_file():
        return []
    return [c.line for c in read_cells(path) if c.kind in ("markdown", "raw") and CONFLICT_NOTE in c.text]


# --- notebooks paired with dev files ------------------------------------------------------------------------


def paired_notebooks(root: Path) -> list[tuple[Path, Path]]:
    """(notebook, dev file) for every `modules/source/*/*_dev.ipynb` whose dev file declares the pairing
    (jupytext's `formats:` in its header, written by `tito module notebook`)."""
    from tito.model.layout import SOURCE_DIR

    found = []
    for notebook in sorted((Path(root) / SOURCE_DIR).glob("*/*_dev.ipynb")):
        dev = notebook.with_suffix(".py")
        if dev.is_file() and re.search(r"^#\s+formats:.*ipynb", _header(dev), re.M):
            found.append((notebook, dev))
    return found


def _header(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = []
        for line in handle:
            if line.startswith(MARKER) or len(lines) > 40:
                break
            lines.append(line)
    return "".join(lines)


def sync_paired_notebooks(root: Path) -> list[str]:
    """Bring the edits of paired notebooks into their dev files, which are what the build reads: every
    notebook saved after its dev file goes through `jupytext --sync`. Returns the dev files updated."""
    root = Path(root)
    updated = []
    for notebook, dev in paired_notebooks(root):
        if notebook.stat().st_mtime_ns <= dev.stat().st_mtime_ns:
            continue
        before = sha256_file(dev)
        done = subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet", str(notebook)], cwd=root,
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{notebook.relative_to(root)}: jupytext could not sync it with its dev file:\n"
                  f"{(done.stdout + done.stderr).strip()[-2000:]}", file=sys.stderr)
            continue
        if notebook.stat().st_mtime_ns > dev.stat().st_mtime_ns:
            os.utime(dev)  # the same content: only the time, so the next build does not sync again
        if sha256_file(dev) != before:
            updated.append(dev.relative_to(root).as_posix())
            print(f"{dev.relative_to(root)}: your edits in {notebook.name} are now in the dev file", file=sys.stderr)
    return updated


# --- doit actions of a student repository ---------------------------------------------------------------


def check_student_module(root: str, key: str):
    """doit action for `check:<key>` in a student repository.

    The course's checks (the export's, NBGrader's, the Systems Analysis) with two differences: code cells
    the learner adds need no nbgrader metadata, and every cell of the course must still be there with
    its grade_id (record_problems).
    """
    from doit.exceptions import TaskFailed

    from tito.model.devfile import DevFile, DevFileError
    from tito.steps.check import systems_analysis_errors
    from tito.steps.export import ExportError, build_export
    from tito.steps.nbgrader import validate

    root_path = Path(root)
    graph = Graph.load(root_path)
    module = graph.module(key)
    try:
        dev = DevFile.of(module)
    except DevFileError as error:
        return TaskFailed(f"{error}\nFix it, then run `doit check:{key}`.")
    errors: list[str] = []
    try:
        build_export(dev, graph)
    except ExportError as error:
        errors += error.messages
    errors += validate(dev, require_metadata=False)
    errors += systems_analysis_errors(dev)
    errors += record_problems(root_path, module)
    errors = list(dict.fromkeys(errors))
    if errors:
        return TaskFailed("\n".join(errors) + f"\n{len(errors)} problem(s). Fix them, then run `doit check:{key}`.")
    for line in conflicts_in(module.dev_file, dev.path.as_posix()):
        print(f"{dev.path}:{line}: note: an unresolved conflict from `tito student update`", file=sys.stderr)
    print(f"{key}: ok")
    return None


def skipped(family: str, why: str):
    """doit action of a family a student repository does not run: says why, once."""
    print(f"{family}: skipped in a student repository: {why}", file=sys.stderr)
    return None


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "run-cells":
        sys.exit(run_cells(sys.argv[2], sys.argv[3]))
    sys.exit("usage: python -m tito.steps.progress run-cells DEV_FILE EVENTS_FILE")
