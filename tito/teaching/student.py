"""Student repositories: made from the course, updated from it, reset, and graded.

`new_student_repository` writes a standalone git repository (one commit, no history of the course) with
everything a learner needs: dodo.py, tito, tests, examples, benchmarks, docs, the setup files, a
learner's README, and every dev file in its student version: solutions replaced by the stubs the
release notebooks have (tito.steps.notebooks.student_source), hidden tests removed. The course's own
maintainer files are left out (COURSE_ONLY: the tooling's tests, the script and seed sweeps, CI, the
changelog): they test the reference solutions, which a student repository does not have.

`tinytorch-course.json` (tito.steps.progress.RECORD), tracked at the root, marks the repository as a
student repository and records, for updates and resets, the course version and per module the hash of
the course's dev file and every cell of its student version (a solution cell with its stub text).

Before anything is committed, every file and every git object is checked for *secret lines*: a line
of a solution block of a course module, stripped, at least SECRET_MIN_LENGTH characters long, that
appears nowhere in the course outside those solution blocks (`secret_lines`, `leaks`).

`update_student_repository` merges a newer course into a student repository cell by cell, matched by
grade_id (see `merge_dev_file`); `reset_module` puts a module's stubs back; `grade_student_work` grades
a student repository's modules (or single dev files) against the course's own test cells
(tito.teaching.grade).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tito.model.devfile import DevFile, DevFileError
from tito.model.graph import Graph
from tito.model.layout import SOURCE_DIR, Module, example_scripts
from tito.model.scan import scan_core_imports, sha256_bytes
from tito.steps.generated import write_atomic
from tito.steps.nbgrader import SOLUTION_WORDS, validate
from tito.steps.notebooks import student_source
from tito.steps.progress import (
    BACKUPS_DIR,
    CONFLICT_NOTE,
    RECORD,
    RECORD_FORMAT,
    RawCell,
    RecordError,
    conflicts_in,
    fingerprint,
    join_cells,
    read_record,
    record_problems,
    split_cells,
)

# Course files a student repository does not get: they test or describe the reference solutions.
COURSE_ONLY = ("tests/tito/", "tests/test_scripts.py", "tests/seed_sweep.py", ".ci/", "CHANGELOG.md",
               "CONTRIBUTING.md", RECORD)
README_TEMPLATE = Path(__file__).resolve().with_name("student_readme.md")
SECRET_MIN_LENGTH = 8
WALK_SKIP = {".git", ".venv", "venv", "__pycache__", ".tito", "reports", "dist", "build", ".pytest_cache"}


class StudentError(Exception):
    """The command cannot go on; the message says why, with file and line where there is one."""


# --- what the course gives a learner ----------------------------------------------------------------------


@dataclass
class Snapshot:
    """Every file of a student repository, as the course provides it, and the course record."""

    files: dict[str, bytes]  # relative posix path -> bytes (dev files in their student version, the record too)
    record: dict
    modules: list[Module]  # the course's modules that the repository gets
    added: list[str] = field(default_factory=list)  # modules added to a --modules selection, and why


def course_files(course: Path) -> list[str]:
    """The course's files: what git tracks or would track (untracked files that are not ignored), or,
    outside git, every file but caches, environments and build output."""
    course = Path(course)
    try:
        listed = subprocess.run(["git", "-C", str(course), "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], capture_output=True, check=True).stdout
        names = [n for n in listed.decode("utf-8", errors="surrogateescape").split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = []
        for folder, dirs, files in os.walk(course):
            dirs[:] = [d for d in dirs if d not in WALK_SKIP and not d.endswith(".egg-info")]
            names += [Path(folder, f).relative_to(course).as_posix() for f in files]
        names = [n for n in names if not n.startswith(("tinytorch/core/", "modules/release/")) or
                 n == "tinytorch/core/__init__.py"]
    return sorted(n for n in dict.fromkeys(names) if (course / n).is_file())


def course_version(course: Path) -> dict:
    """{"commit": the course's HEAD or None outside git, "modified": uncommitted changes were included}."""
    def git(*args):
        return subprocess.run(["git", "-C", str(course), *args], capture_output=True, text=True)
    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return {"commit": None, "modified": True}
    return {"commit": head.stdout.strip(), "modified": bool(git("status", "--porcelain").stdout.strip())}


def _short(version: dict) -> str:
    commit = version.get("commit")
    return (commit[:12] if commit else "outside git") + (" with uncommitted changes" if version.get("modified") else "")


def select_modules(graph: Graph, course: Path, keys: list[str] | None) -> tuple[list[Module], list[str]]:
    """The modules a repository gets: all, or the named ones with everything their shipped files import
    (the modules below them, those their tests reach, and those the root conftest.py imports). Returns
    them in curriculum order, and a note per module added to the selection."""
    if not keys:
        return list(graph.modules), []
    try:
        chosen = {graph.module(key).key for key in keys}
    except LookupError as error:
        raise StudentError(str(error)) from None
    named = set(chosen)
    why: dict[str, str] = {}
    conftest = [graph.by_export[i.name] for i in scan_core_imports(Path(course) / "conftest.py")
                if i.name in graph.by_export]
    for module in conftest:
        if module.key not in chosen:
            chosen.add(module.key)
            why[module.key] = "the root conftest.py imports it"
    changed = True
    while changed:
        changed = False
        for key in sorted(chosen):
            module = graph.module(key)
            files = [*module.test_files, *([module.progressive_test] if module.progressive_test.is_file() else [])]
            needed = [*graph.upstream(module), *(m for f in files for m in graph.modules_reached_by(f))]
            for other in needed:
                if other.key not in chosen:
                    chosen.add(other.key)
                    why.setdefault(other.key, f"{key} stands on it")
                    changed = True
    notes = [f"{key} is included too: {why[key]}" for key in sorted(chosen - named)]
    return [m for m in graph.modules if m.key in chosen], notes


def course_snapshot(course: Path, keys: list[str] | None = None) -> Snapshot:
    """Everything a student repository made from `course` holds (nothing is written)."""
    course = Path(course).resolve()
    graph = Graph.load(course)
    if not graph.modules:
        raise StudentError(f"{course}: no modules under {SOURCE_DIR}/: not a TinyTorch course")
    modules, notes = select_modules(graph, course, keys)
    chosen = {m.key for m in modules}
    omitted = [m for m in graph.modules if m.key not in chosen]
    skip_prefixes = [f"{SOURCE_DIR.as_posix()}/{m.key}/" for m in omitted]
    skip_prefixes += [f"tests/module_{m.number:02d}/" for m in omitted]
    skip_files = {f"tests/support/contract_{m.export_name}.py" for m in omitted}
    for script in example_scripts(course):
        if any(m.key not in chosen for m in graph.modules_reached_by(script)):
            skip_prefixes.append(f"examples/{script.parent.name}/")
    dev_files = {m.dev_file.relative_to(course).as_posix(): m for m in modules}

    files: dict[str, bytes] = {}
    for rel in course_files(course):
        if rel.startswith(COURSE_ONLY) or rel == "README.md" or rel in skip_files \
                or rel.startswith(tuple(skip_prefixes)) or rel in dev_files:
            continue
        files[rel] = (course / rel).read_bytes()

    modules_record = {}
    problems: list[str] = []
    for rel, module in dev_files.items():
        try:
            dev = DevFile.of(module)
        except DevFileError as error:
            problems.append(str(error))
            continue
        found = validate(dev)
        if found:
            problems += found
            continue
        text, cells = student_version(dev.text)
        data = text.encode("utf-8")
        files[rel] = data
        modules_record[module.key] = {"dev_file": rel, "course_sha256": sha256_bytes(dev.text.encode("utf-8")),
                                      "student_sha256": sha256_bytes(data), "cells": cells}
    if problems:
        raise StudentError("\n".join(problems) + "\nThe course's dev files have problems (above): fix them "
                           "(`doit check`) before making student repositories from it.")
    version = course_version(course)
    files["README.md"] = student_readme(course, graph, modules, version).encode("utf-8")
    record = {
        "format": RECORD_FORMAT,
        "course": version,
        "subset": [m.key for m in modules] if keys else None,
        "modules": modules_record,
        "files": {rel: sha256_bytes(data) for rel, data in sorted(files.items()) if rel not in dev_files},
    }
    files[RECORD] = record_bytes(record)
    return Snapshot(dict(sorted(files.items())), record, modules, notes)


def record_bytes(record: dict) -> bytes:
    return (json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def student_version(text: str) -> tuple[str, list[dict]]:
    """A course dev file's student version (solutions replaced by stubs, hidden tests removed, everything
    else byte for byte), and the record of its cells."""
    cells = []
    out = []
    for index, cell in enumerate(split_cells(text)):
        if cell.kind == "code":
            marker, _, body = cell.text.partition("\n")
            cell = RawCell(marker + "\n" + student_source(body, cell.nbgrader, cell.grade_id or f"cell-{index}"),
                           cell.line, cell.kind, cell.nbgrader, cell.bad_metadata)
        out.append(cell)
        entry = {"id": cell.grade_id, "kind": cell.kind, "role": cell.role, "sha256": cell.fingerprint}
        if cell.grade_id:
            entry["marker"] = cell.marker
            entry["body_sha256"] = fingerprint("\n".join(cell.text.splitlines()[1:]))  # finds a lost marker
        if cell.role == "graded":
            entry["points"] = (cell.nbgrader or {}).get("points", 0)
        if cell.role == "solution":
            entry["stub"] = cell.text
        cells.append(entry)
    return join_cells(out), cells


def student_readme(course: Path, graph: Graph, modules: list[Module], version: dict) -> str:
    """The learner's README, from README_TEMPLATE; its Quick start is the course README's, word for word."""
    template = README_TEMPLATE.read_text(encoding="utf-8")
    readme = (Path(course) / "README.md").read_text(encoding="utf-8") if (Path(course) / "README.md").is_file() else ""
    match = re.search(r"## Quick start\n.*?```bash\n(.*?)```", readme, re.S)
    quick_start = match.group(1) if match else \
        'python3 -m venv .venv && .venv/bin/python -m pip install -e ".[dev,examples]" && .venv/bin/doit\n' \
        ".venv/bin/python -m pytest\n"
    rows = ["| module | what you build |", "|---|---|"]
    for module in modules:
        title = re.search(r"^# # (.+)$", module.dev_file.read_text(encoding="utf-8"), re.M)
        rows.append(f"| `{module.key}` | {title.group(1) if title else module.name} |")
    chosen = {m.key for m in modules}
    milestones = ["| milestone | unlocks when these modules are complete |", "|---|---|"]
    for script in example_scripts(course):
        reached = graph.modules_reached_by(script)
        if all(m.key in chosen for m in reached):
            milestones.append(f"| `{script.parent.name}` | {', '.join(m.key for m in reached)} |")
    values = {"course_version": _short(version), "quick_start": quick_start, "modules": "\n".join(rows),
              "milestones": "\n".join(milestones)}
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", value)
    return template


# --- secret lines ----------------------------------------------------------------------------------------


def solution_block_lines(text: str) -> tuple[list[str], list[str]]:
    """(lines inside solution blocks, every other line) of a dev file; markers belong to neither."""
    inside, outside = [], []
    within = False
    for line in text.splitlines():
        if SOLUTION_WORDS[0] in line:
            within = True
        elif SOLUTION_WORDS[1] in line:
            within = False
        else:
            (inside if within else outside).append(line)
    return inside, outside


def secret_lines(course: Path) -> set[str]:
    """Every line of a solution block of a course module, stripped, at least SECRET_MIN_LENGTH characters
    long, that appears nowhere in the course outside solution blocks (any file, any module)."""
    course = Path(course)
    graph = Graph.load(course)
    dev_files = {m.dev_file.relative_to(course).as_posix() for m in graph.modules}
    solution: set[str] = set()
    public: set[str] = set()
    for rel in course_files(course):
        text = (course / rel).read_bytes().decode("utf-8", errors="replace")
        if rel in dev_files:
            inside, outside = solution_block_lines(text)
            solution |= {line.strip() for line in inside}
            public |= {line.strip() for line in outside}
        else:
            public |= {line.strip() for line in text.splitlines()}
    return {line for line in solution - public if len(line) >= SECRET_MIN_LENGTH}


def leaks(student: Path, secrets: set[str]) -> list[str]:
    """`where: line` for every secret line found in a file of the student repository (its working tree,
    .git excluded) or in any of its git objects, whether reachable or not."""
    student = Path(student)
    found = []
    for folder, dirs, files in os.walk(student):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            path = Path(folder, name)
            for line in _lines(path.read_bytes()) & secrets:
                found.append(f"{path.relative_to(student).as_posix()}: {line}")
    if (student / ".git").exists():
        done = subprocess.run(["git", "-C", str(student), "cat-file", "--batch-all-objects", "--batch"],
                              capture_output=True, check=True).stdout
        position = 0
        while position < len(done):
            end = done.index(b"\n", position)
            sha, kind, size = done[position:end].decode().split()
            content = done[end + 1:end + 1 + int(size)]
            position = end + 1 + int(size) + 1
            if kind == "blob":
                found += [f"git object {sha}: {line}" for line in _lines(content) & secrets]
    return sorted(found)


def _lines(data: bytes) -> set[str]:
    return {line.strip() for line in data.decode("utf-8", errors="replace").splitlines()}


# --- tito student new --------------------------------------------------------------------------------------


def new_student_repository(course: Path, target: Path, keys: list[str] | None = None) -> Snapshot:
    """Write the student repository at `target` (which must not exist or be empty) and commit it once.

    Checks for secret lines before returning; when one is found, the folder is removed and StudentError
    names where it was.
    """
    target = Path(target).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StudentError(f"{target} already exists and is not empty: nothing was written. Choose a new folder.")
    snapshot = course_snapshot(course, keys)
    secrets = secret_lines(course)
    created = not target.exists()
    try:
        target.mkdir(parents=True, exist_ok=True)
        for rel, data in snapshot.files.items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            source = Path(course) / rel
            if source.is_file() and os.access(source, os.X_OK):
                path.chmod(path.stat().st_mode | 0o111)
        _git_commit(target, f"TinyTorch, your own (course version {_short(snapshot.record['course'])})")
        found = leaks(target, secrets)
        if found:
            raise StudentError("solution lines of the course found in the student repository (it was removed):\n"
                               + "\n".join(found[:20]))
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:
            _empty(target)
        raise
    return snapshot


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def _git_commit(folder: Path, message: str) -> None:
    """`git init` and one commit of everything, with an identity of its own when git has none configured."""
    def git(*args, check=True):
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=check)
    git("init", "-q")
    git("symbolic-ref", "HEAD", "refs/heads/main")
    git("add", "-A")
    identity = []
    if not git("config", "user.email", check=False).stdout.strip():
        identity = ["-c", "user.name=TinyTorch learner", "-c", "user.email=learner@tinytorch.invalid"]
    subprocess.run(["git", "-C", str(folder), *identity, "-c", "commit.gpgsign=false", "commit", "-q", "-m", message],
                   capture_output=True, text=True, check=True)


# --- checks shared by update, reset and grading ------------------------------------------------------------


def student_modules(student: Path) -> tuple[dict, Graph]:
    """The record and the graph of a student repository; StudentError when it is not one."""
    student = Path(student)
    try:
        record = read_record(student)
    except RecordError as error:
        raise StudentError(str(error)) from None
    return record, Graph.load(student)


def repository_problems(student: Path, keys: list[str] | None = None) -> list[str]:
    """Every problem that stops an update or a reset: a module of the record whose dev file is missing,
    a course cell whose metadata was lost or whose grade_id was edited."""
    record, graph = student_modules(student)
    known = {m.key: m for m in graph.modules}
    problems = []
    for key, entry in record["modules"].items():
        if keys is not None and key not in keys:
            continue
        if key not in known or not known[key].dev_file.is_file():
            problems.append(f"{entry['dev_file']}:1: missing: the course gave you module {key}, and its dev file is "
                            f"not there. Restore it from git (`git checkout HEAD -- {entry['dev_file']}`, or an "
                            "older commit), or copy it back from .tito/backups/")
            continue
        problems += record_problems(Path(student), known[key])
    return problems


def _backup(student: Path, stamp: str, rel: str) -> Path:
    """Copy a file of the student repository to .tito/backups/<stamp>/<rel>; returns the copy."""
    copy = Path(student) / BACKUPS_DIR / stamp / rel
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(student) / rel, copy)
    return copy


def _stamp(student: Path) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base, n = stamp, 1
    while (Path(student) / BACKUPS_DIR / stamp).exists():
        n += 1
        stamp = f"{base}-{n}"
    return stamp


# --- tito module reset -------------------------------------------------------------------------------------


def reset_module(student: Path, key: str) -> tuple[int, Path | None]:
    """Put the stubs back in every solution cell of a module (other cells stay as they are), after copying
    the learner's file to .tito/backups/<time>/. Returns (cells reset, the backup)."""
    student = Path(student)
    record, graph = student_modules(student)
    try:
        module = graph.module(key)
    except LookupError as error:
        raise StudentError(str(error)) from None
    entry = record["modules"].get(module.key)
    if entry is None:
        raise StudentError(f"{module.key} is not a module of the course record ({RECORD}): there are no stubs to "
                           "put back")
    problems = repository_problems(student, [module.key])
    if problems:
        raise StudentError("\n".join(problems) + "\nNothing was changed: fix the file first.")
    cells = split_cells(module.dev_file.read_text(encoding="utf-8"))
    stubs = {c["id"]: c["stub"] for c in entry["cells"] if c.get("role") == "solution"}
    changed = 0
    for index, cell in enumerate(cells):
        if cell.solution and cell.grade_id in stubs and cell.fingerprint != fingerprint(stubs[cell.grade_id]):
            cells[index] = RawCell(stubs[cell.grade_id], cell.line, cell.kind, cell.nbgrader)
            changed += 1
    if not changed:
        return 0, None
    rel = module.dev_file.relative_to(student).as_posix()
    backup = _backup(student, _stamp(student), rel)
    write_atomic(module.dev_file, join_cells(cells).encode("utf-8"))
    return changed, backup.relative_to(student)


# --- tito student update -----------------------------------------------------------------------------------


@dataclass
class Conflict:
    path: str
    line: int  # the learner's version
    course_line: int  # the course's version (a raw cell)
    what: str
    note_line: int = 0  # the note between them

    def __str__(self) -> str:
        return (f"{self.path}:{self.line}: conflict: {self.what}. Your version is kept at line {self.line}; the "
                f"course's new version follows at line {self.course_line} (a raw cell, it does not run). Merge "
                "them into your cell, then delete the note and the raw cell.")


@dataclass
class UpdateReport:
    written: list[str] = field(default_factory=list)  # files changed or added
    removed: list[str] = field(default_factory=list)
    backups: Path | None = None
    conflicts: list[Conflict] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)  # conflict notes of an earlier update, still there
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def update_student_repository(student: Path, course: Path) -> UpdateReport:
    """Bring the course's new version into a student repository without losing the learner's work.

    Tooling, tests, examples, docs: the course's new files replace the old ones. Dev files are merged
    cell by cell (`merge_dev_file`). Everything replaced or removed is first copied to
    .tito/backups/<time>/. Refuses (StudentError, nothing written) when a dev file lost a course cell's
    metadata or grade_id, or a module's dev file is missing.
    """
    student = Path(student).resolve()
    old, _ = student_modules(student)
    problems = repository_problems(student)
    if problems:
        raise StudentError("\n".join(problems) + f"\n{len(problems)} problem(s); nothing was changed. Fix them, then "
                           "run the update again.")
    subset = old.get("subset")
    if subset:  # the same selection, less the modules the course no longer has
        known = {m.key for m in Graph.load(Path(course)).modules}
        subset = [key for key in subset if key in known] or None
    new = course_snapshot(course, subset)
    report = UpdateReport()
    stamp = _stamp(student)
    plan: dict[str, bytes | None] = {}  # rel -> new bytes, or None to remove

    def current(rel: str) -> bytes | None:
        path = student / rel
        return path.read_bytes() if path.is_file() else None

    new_dev = {entry["dev_file"]: key for key, entry in new.record["modules"].items()}
    for rel, data in new.files.items():
        if rel in new_dev or rel == RECORD:
            continue
        mine, recorded, theirs = current(rel), old["files"].get(rel), sha256_bytes(data)
        if mine is not None and sha256_bytes(mine) == theirs:
            continue
        if recorded == theirs:
            continue  # the course did not change it: the learner's version (or deletion) stays
        if mine is not None and recorded is not None and sha256_bytes(mine) != recorded:
            report.notes.append(f"{rel}: you had edited it; the course's new version replaces it (yours is in the "
                                "backup)")
        plan[rel] = data
    for rel, recorded in old["files"].items():
        if rel in new.files:
            continue
        mine = current(rel)
        if mine is None:
            continue
        if sha256_bytes(mine) == recorded:
            plan[rel] = None
        else:
            report.notes.append(f"{rel}: the course no longer has this file; you had edited it, so it stays")

    for key, entry in new.record["modules"].items():
        rel = entry["dev_file"]
        mine = current(rel)
        previous = old["modules"].get(key)
        if previous is None:
            if mine is None:
                plan[rel] = new.files[rel]
                report.notes.append(f"{rel}: a new module from the course")
            else:
                report.notes.append(f"{rel}: the course adds module {key}, but you have a file there: it was left "
                                    "as it is")
            continue
        merged, conflicts, notes = merge_dev_file(mine.decode("utf-8"), previous["cells"],
                                                  new.files[rel].decode("utf-8"), rel)
        report.conflicts += conflicts
        report.notes += notes
        if merged.encode("utf-8") != mine:
            plan[rel] = merged.encode("utf-8")
    for key, entry in old["modules"].items():
        if key not in new.record["modules"]:
            report.notes.append(f"{entry['dev_file']}: the course no longer has module {key}; your file stays")
            new.record["modules"][key] = entry  # still yours: keep what it started from
    record = record_bytes(new.record)
    if current(RECORD) != record:
        plan[RECORD] = record

    for rel, data in sorted(plan.items()):
        if current(rel) is not None:
            _backup(student, stamp, rel)
            report.backups = BACKUPS_DIR / stamp
        if data is None:
            (student / rel).unlink()
            report.removed.append(rel)
        else:
            write_atomic(student / rel, data)
            report.written.append(rel)
    for entry in new.record["modules"].values():
        rel = entry["dev_file"]
        fresh = {c.note_line for c in report.conflicts if c.path == rel}
        report.unresolved += [f"{rel}:{line}: a conflict from an earlier update is still there: merge it, then "
                              "delete the note and the raw cell after it" for line in conflicts_in(student / rel, rel)
                              if line not in fresh]
    return report


def _key(cell_id: str | None, sha: str) -> str:
    return f"id:{cell_id}" if cell_id else f"h:{sha}"


def _pair(left: list[tuple[str | None, str, str]], right: list[tuple[str | None, str, str]]) -> dict[int, int]:
    """Pair two lists of cells given as (grade_id, kind, fingerprint): by grade_id, then the cells without
    one by their place (difflib over grade ids and fingerprints; in a changed stretch, cells of the same
    kind pair up in order). Returns left index -> right index."""
    pairs: dict[int, int] = {}
    right_ids = {}
    for j, (cell_id, _, _) in enumerate(right):
        if cell_id and cell_id not in right_ids:
            right_ids[cell_id] = j
    for i, (cell_id, _, _) in enumerate(left):
        if cell_id and cell_id in right_ids and right_ids[cell_id] not in pairs.values():
            pairs[i] = right_ids[cell_id]
    left_keys = [_key(c, s) for c, _, s in left]
    right_keys = [_key(c, s) for c, _, s in right]
    matcher = difflib.SequenceMatcher(None, left_keys, right_keys, autojunk=False)
    taken = set(pairs.values())
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for offset in range(i2 - i1):
                i, j = i1 + offset, j1 + offset
                if i not in pairs and j not in taken:
                    pairs[i] = j
                    taken.add(j)
        elif op == "replace":
            free = [j for j in range(j1, j2) if j not in taken and not right[j][0]]
            for i in range(i1, i2):
                if i in pairs or left[i][0]:
                    continue
                match = next((j for j in free if right[j][1] == left[i][1]), None)
                if match is not None:
                    free = free[free.index(match) + 1:]
                    pairs[i] = match
                    taken.add(match)
    return pairs


def merge_dev_file(mine: str, old_cells: list[dict], theirs: str, shown: str) -> tuple[str, list[Conflict], list[str]]:
    """Merge the course's new student version of a dev file (`theirs`) into the learner's (`mine`).

    `old_cells` is the record of the course's previous student version. Cells are matched by grade_id
    (prose, which has none, by its place). For each cell of the course's new version:

    - a cell the learner did not change becomes the course's new version;
    - a cell the learner changed (a solution, or any other cell) and the course did not stays the
      learner's;
    - a cell both changed is a conflict: the learner's version stays where it was and still runs; after
      it come a note and the course's new version as a raw cell (which does not run);
    - a cell new in the course is added at its place.

    Cells the learner added (scratch cells, with or without metadata) stay right after the cell they
    followed. Cells the course removed go, unless the learner changed them (then they stay, as theirs).
    """
    learner = split_cells(mine)
    course = split_cells(theirs)
    old = [(c.get("id"), c.get("kind"), c.get("sha256")) for c in old_cells]
    mine_to_old = _pair([(c.grade_id, c.kind, c.fingerprint) for c in learner], old)
    old_to_mine = {o: m for m, o in mine_to_old.items()}
    new_to_old = _pair([(c.grade_id, c.kind, c.fingerprint) for c in course], old)
    old_to_new = {o: n for n, o in new_to_old.items()}

    # The learner's cells that are not the course's: each stays after the course cell it followed.
    follows: dict[int | None, list[RawCell]] = {}
    anchor: int | None = None  # index into `learner` of the last cell that has a course counterpart kept
    notes: list[str] = []
    for index, cell in enumerate(learner):
        o = mine_to_old.get(index)
        if o is not None and o in old_to_new:
            anchor = index
            continue
        if o is not None:  # the course removed this cell
            if cell.fingerprint == old[o][2]:
                continue  # untouched: it goes with the course
            notes.append(f"{shown}: the course removed the cell {old[o][0] or 'at line ' + str(cell.line)!s}; you had "
                         "changed it, so your version stays")
        follows.setdefault(anchor, []).append(cell)

    out: list[tuple[RawCell, str]] = [(cell, "mine") for cell in follows.get(None, [])]
    pending: list[tuple[int, str]] = []  # (index in out of the learner's version, what) of conflicts
    for n_index, new in enumerate(course):
        o = new_to_old.get(n_index)
        m = old_to_mine.get(o) if o is not None else None
        if o is None:
            out.append((new, "course"))
            continue
        if m is None:
            if new.fingerprint != old[o][2]:
                out.append((new, "course"))
                notes.append(f"{shown}: the course changed a cell you had deleted ({new.grade_id or 'prose'}); "
                             "its new version is back")
            continue
        ours = learner[m]
        learner_changed = ours.fingerprint != old[o][2]
        course_changed = new.fingerprint != old[o][2]
        if ours.fingerprint == new.fingerprint or (learner_changed and not course_changed) or new.kind == "header":
            out.append((ours if (learner_changed or ours.fingerprint == new.fingerprint) else new, "mine"))
        elif not learner_changed:
            out.append((new, "course"))
        else:
            pending.append((len(out), _conflict_what(new)))
            out.append((ours, "mine"))
            out.append((_note_cell(new), "note"))
            out.append((_raw_cell(new), "theirs"))
        out += [(cell, "mine") for cell in follows.get(m, [])]

    text = join_cells([cell for cell, _ in out])
    lines, line = [], 1
    for cell, _ in out:
        lines.append(line)
        line += cell.text.count("\n") + (0 if cell.text.endswith("\n") else 1)
    conflicts = [Conflict(shown, lines[index], lines[index + 2], what, lines[index + 1]) for index, what in pending]
    return text, conflicts, notes


def _conflict_what(cell: RawCell) -> str:
    name = cell.grade_id or "a prose cell"
    if cell.role == "solution":
        return (f"the course changed the provided code of solution cell {name!r} (a signature, a docstring or the "
                "code around your solution) and you have written code in it")
    return f"you edited the cell {name!r} and the course changed it too"


def _note_cell(cell: RawCell) -> RawCell:
    text = (f"# %% [markdown]\n# **{CONFLICT_NOTE}** in {cell.grade_id or 'a prose cell'}: you changed the cell "
            "above and the course changed it too.\n# Your version (above) is kept and still runs; the course's new "
            "version is the raw cell below\n# and does not run. Merge what you need into the cell above, then delete "
            "this note and the raw cell.\n\n")
    return RawCell(text, 0, "markdown")


def _raw_cell(cell: RawCell) -> RawCell:
    """The course's version of a cell as a raw cell: every line commented, so nothing in it runs or is
    taken for a cell marker."""
    body = "".join(f"# {line}".rstrip() + "\n" for line in normalized_lines(cell.text))
    return RawCell("# %% [raw]\n" + body + "\n", 0, "raw")


def normalized_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


# --- grading a student repository ----------------------------------------------------------------------------


@dataclass
class ModuleGrade:
    source: str  # the student repository's dev file (or the file given)
    key: str
    result: object | None  # tito.teaching.grade.NotebookResult, None when the module could not be graded
    problems: list[str] = field(default_factory=list)


def grade_student_work(course: Path, paths: list[Path], modules: list[str] | None = None, jobs: int = 1,
                       timeout: float = 60, memory_mb: int = 1024) -> list[ModuleGrade]:
    """Grade student repositories (every module of their record, or the ones named) or single dev files,
    against the course's original test cells (tito.teaching.grade: a sandbox per module).

    A module missing from a student repository scores zero on every graded cell, with the reason.
    """
    from concurrent.futures import ThreadPoolExecutor

    import nbformat

    from tito.teaching.grade import CellResult, GradingError, NotebookResult, grade, load_reference

    course = Path(course).resolve()
    course_graph = Graph.load(course)
    wanted = {course_graph.module(k).key for k in modules} if modules else None
    jobs_list: list[tuple[str, str, Path | None, list[str]]] = []  # (shown, key, dev file, problems)
    for path in map(Path, paths):
        if path.is_dir():
            record, graph = student_modules(path)
            known = {m.key: m for m in graph.modules}
            for key in record["modules"]:
                if wanted is not None and key not in wanted:
                    continue
                module = known.get(key)
                shown = f"{path.resolve().name}:{key}"  # how the report names it: repository and module
                if module is None or not module.dev_file.is_file():
                    jobs_list.append((shown, key, None, [f"{path}/{record['modules'][key]['dev_file']}: missing"]))
                else:
                    jobs_list.append((shown, key, module.dev_file, record_problems(path, module)))
        elif path.suffix == ".py":
            match = re.match(r"(.+)_dev$", path.stem)
            candidates = [m for m in course_graph.modules if match and m.name == match.group(1)]
            if not candidates:
                raise StudentError(f"{path}: not a dev file of a course module (expected NAME_dev.py, e.g. "
                                   "layers_dev.py)")
            jobs_list.append((str(path), candidates[0].key, path, []))
        else:
            raise StudentError(f"{path}: give a student repository (a folder) or a dev file (NAME_dev.py); notebooks "
                               "are graded with `tito grade NOTEBOOK --module NN_name`")

    scratch = Path(tempfile.mkdtemp(prefix="tito-student-grade-"))

    def grade_one(item):
        shown, key, dev_file, problems = item
        if dev_file is None:
            try:
                tests = load_reference(course, key).tests
            except GradingError as error:
                return ModuleGrade(shown, key, None, [*problems, str(error)])
            cells = [CellResult(t.grade_id, 0, t.points, "missing", "the module's dev file is missing") for t in tests]
            return ModuleGrade(shown, key, NotebookResult(Path(shown), cells), problems)
        import jupytext

        notebook = scratch / f"{len(shown)}-{abs(hash(shown))}" / f"{key}.ipynb"
        notebook.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(jupytext.reads(Path(dev_file).read_text(encoding="utf-8"), fmt="py:percent"), notebook)
        try:
            result = grade(course, key, [notebook], jobs=1, timeout=timeout, memory_mb=memory_mb)[0]
        except GradingError as error:
            return ModuleGrade(shown, key, None, [*problems, str(error)])
        result.notebook = Path(shown)
        result.notes += problems
        return ModuleGrade(shown, key, result, problems)

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            return list(pool.map(grade_one, jobs_list))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
