"""The one mechanism for "a file the build writes": exports, release notebooks and memory reports.

Every generated file records the hash of its own content when it is written (where depends on its
kind: a header line in an export, notebook metadata in a release, stats.json for a report folder).
From that one fact follow the guarantees:

- a hand edit is noticed (the content no longer matches the recorded hash) and never overwritten
  silently: the build stops with a diff and says how to keep or discard it; discarding
  (TITO_DISCARD_EDITS=1, or a tito `--discard-edits` flag) first moves the file to .tito/discarded/;
- a write is atomic (temporary file, fsync, rename): an interrupted build leaves the old file or the
  new one, never half of one; unchanged bytes are not rewritten, so doit's early cutoff holds;
- an orphan (a file that records a hash, so we wrote it, but whose module or example is gone) is
  found and removed, and so are the temporary files of a killed build;
- a full disk fails the task with a message that names the file (DiskFull); the temporary file is
  removed and the old file is left as it was.
"""

from __future__ import annotations

import difflib
import errno
import functools
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DISCARD_ENV = "TITO_DISCARD_EDITS"
DISCARDED_DIR = Path(".tito") / "discarded"
DIFF_LINES = 40
DIFF_MAX_BYTES = 2 * 2**20  # larger files (flame graphs, captures) are not diffed, only named


@dataclass(frozen=True)
class Kind:
    """One kind of generated file, and how it records the hash of its own content."""

    what: str  # "export", "release notebook", "memory report file"
    task: str  # the doit task family that writes it: "export"
    discard_command: str  # with {key}: "tito module export {key} --discard-edits"
    # (recorded hash, hash of the content now) of a file of this kind; recorded is None when the
    # file records none (then it is not ours). Raises FileNotFoundError for a missing file.
    hashes: Callable[[Path], tuple[str | None, str]]


class HandEdited(Exception):
    """A generated file was edited by hand; the message shows the edit and what to do."""


OUT_OF_SPACE = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                errno.EFBIG: "the file-size limit of this process was reached (ulimit -f)"}
DISK_FULL_ERRNOS = set(OUT_OF_SPACE)


class DiskFull(Exception):
    """A generated file could not be written for lack of space; the old file is untouched."""

    def __init__(self, path: Path, error: OSError):
        shown = os.path.relpath(path)  # doit runs in the project root
        super().__init__(f"out of space: {OUT_OF_SPACE[error.errno]}, so {shown} could not be written "
                         f"({error.strerror}). The previous {shown} was left as it was and no half-written file "
                         "remains. Free some space, then run the build again: it picks up where this one stopped.")
        self.path, self.error = path, error


def reports_disk_full(action):
    """Decorate a doit action so that DiskFull becomes a failed task with its message, not a traceback."""
    @functools.wraps(action)
    def run(*args, **kwargs):
        try:
            return action(*args, **kwargs)
        except DiskFull as error:
            from doit.exceptions import TaskFailed

            return TaskFailed(str(error))
    return run


def state(path: Path, kind: Kind) -> str:
    """'missing', 'current' (content matches its recorded hash) or 'hand-edited'."""
    try:
        recorded, actual = kind.hashes(Path(path))
    except FileNotFoundError:
        return "missing"
    return "current" if recorded is not None and recorded == actual else "hand-edited"


def is_ours(path: Path, kind: Kind) -> bool:
    """The file records a hash of this kind, so the build wrote it (a hand-written file never does)."""
    try:
        return kind.hashes(Path(path))[0] is not None
    except FileNotFoundError:
        return False


def write_generated(root: Path, path: Path, data: bytes, kind: Kind, key: str, source: Path) -> bool:
    """Write `data` to the generated file `path` unless a hand edit is in the way.

    Raises HandEdited (unless discarding was asked for). Returns whether the bytes changed.
    """
    guard(root, path, data, kind, key, source)
    return write_if_changed(path, data)


def install_generated(root: Path, path: Path, finished: Path, kind: Kind, key: str, source: Path) -> None:
    """Move a finished temporary file (written by another program) into place, with the same guard."""
    guard(root, path, None, kind, key, source)
    os.replace(finished, path)


def guard(root: Path, path: Path, new: bytes | None, kind: Kind, key: str, source: Path) -> None:
    """Stop (HandEdited) before overwriting a hand edit of `path`, or move the edit aside if asked to."""
    if state(path, kind) != "hand-edited":
        return
    if not os.environ.get(DISCARD_ENV):
        raise HandEdited(hand_edit_message(root, path, new, kind, key, source))
    backup = move_aside(root, path)
    print(f"Discarded the hand edit of {Path(path).relative_to(root)}; a copy is in {backup}")


def hand_edit_message(root: Path, path: Path, new: bytes | None, kind: Kind, key: str, source: Path) -> str:
    rel = Path(path).relative_to(root)
    source_rel = Path(source).relative_to(root) if Path(source).is_absolute() else Path(source)
    return (
        f"{rel} was edited by hand: its content no longer matches the hash recorded when it was generated "
        f"({kind.what}). The build never overwrites a hand edit silently.\n"
        f"{_diff(path, new)}"
        f"To keep the edit: copy it into {source_rel} (this file is generated from it), then discard this copy.\n"
        f"To discard the edit: `{kind.discard_command.format(key=key)}` "
        f"(or `{DISCARD_ENV}=1 doit {kind.task}:{key}`); a copy is kept in {DISCARDED_DIR}/."
    )


def _diff(path: Path, new: bytes | None) -> str:
    """Your edit against what the build would write, when both are text of a readable size."""
    try:
        on_disk = Path(path).read_bytes()
    except OSError:
        return ""
    if new is None or len(on_disk) > DIFF_MAX_BYTES or len(new) > DIFF_MAX_BYTES:
        return ""
    try:
        old_lines, disk_lines = new.decode("utf-8").splitlines(), on_disk.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return ""
    diff = list(difflib.unified_diff(old_lines, disk_lines, "generated", "on disk", lineterm="", n=1))
    shown = "\n".join(diff[:DIFF_LINES]) + ("\n..." if len(diff) > DIFF_LINES else "")
    return f"Your edit, against what the build would write:\n{shown}\n" if diff else ""


# --- writing ----------------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename.

    An interrupted build (Ctrl-C, a killed process) leaves either the old file or the new one, never a
    half-written file. The temporary name starts with a dot so no glob of generated files ever sees it.
    """
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as error:
        if error.errno in DISK_FULL_ERRNOS:
            raise DiskFull(path, error) from None
        raise
    finally:
        if temp.exists():
            temp.unlink()


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write only when the bytes differ, so an unchanged output keeps its mtime (early cutoff)."""
    path = Path(path)
    if path.is_file() and path.read_bytes() == data:
        return False
    write_atomic(path, data)
    return True


def move_aside(root: Path, path: Path) -> Path:
    """Move a hand-edited generated file into .tito/discarded/ (timestamped); returns its new place."""
    root, path = Path(root), Path(path)
    backup = root / DISCARDED_DIR / f"{path.stem}.{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}"
    backup.parent.mkdir(parents=True, exist_ok=True)
    path.replace(backup)
    return backup.relative_to(root)


# --- orphans ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """Where the generated files of one kind live, and which of them the current tree expects."""

    kind: Kind
    pattern: str  # glob under the root: "tinytorch/core/[!._]*.py"
    expected: Callable[[Path], set[Path]]  # root -> the paths the current modules and examples produce
    unit: Callable[[Path], Path] = lambda path: path  # what to delete: the file, or its report folder


def orphans(root: Path, families: list[Family]) -> list[Path]:
    """Generated files (or report folders) whose module or example no longer exists."""
    root = Path(root)
    found = []
    for family in families:
        expected = family.expected(root)
        for path in sorted(root.glob(family.pattern)):
            if path not in expected and is_ours(path, family.kind):
                found.append(family.unit(path))
    return list(dict.fromkeys(found))


# Temporary files and folders carry the PID of the process that writes them: `.<name>.tmp-<pid>` (above)
# and reports/.partial/<name>-<pid>[.old] (tito.steps.memory). A killed build leaves them behind.
TEMP_FILE_RE = re.compile(r"^\..+\.tmp-(\d+)$")
PARTIAL_RE = re.compile(r"^.+-(\d+)(?:\.old)?$")
# Where generated files are written: (folder, depth of subfolders that hold them too).
TEMPORARY_PLACES = (("tinytorch/core", 0), ("modules/release", 1), ("reports", 2), (".tito", 1))
PARTIAL_DIR = "reports/.partial"


def stale_temporaries(root: Path) -> list[Path]:
    """Temporary files of builds that are no longer running (their PID is gone). Runs on every build
    (the `orphans` task's up-to-date check), so it lists a few folders rather than globbing the tree."""
    found = []

    def visit(folder: Path, depth: int, pattern: re.Pattern) -> None:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            match = pattern.match(entry.name)
            if match and not process_running(int(match.group(1))):
                found.append(Path(entry.path))
            elif depth and entry.is_dir() and not entry.name.startswith("."):
                visit(Path(entry.path), depth - 1, pattern)

    for folder, depth in TEMPORARY_PLACES:
        visit(Path(root) / folder, depth, TEMP_FILE_RE)
    visit(Path(root) / PARTIAL_DIR, 0, PARTIAL_RE)
    return sorted(found)


def process_running(pid: int) -> bool:
    """Whether a process with this PID exists (a reused PID counts: then a leftover is only kept longer)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_temporaries(root: Path, paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        print(f"removed {path.relative_to(root)}: left by a build that was interrupted")


def remove_orphans(root: Path, paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
            if not any(path.parent.iterdir()):
                path.parent.rmdir()  # e.g. modules/release/NN_name/ held only that notebook
        print(f"removed {path.relative_to(root)}: its module or example no longer exists")
