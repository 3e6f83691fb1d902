"""doit's dependency database (`.doit.sqlite3`): a damaged one is moved aside, a failed save is reported.

doit keeps what it knows about every task (the inputs it saw, the values actions returned) in a SQLite
file. SQLite's journal makes a killed build safe, but the file can still be damaged: cut short by a
copy, a full disk or a crash of the machine. doit then stops every command with its own traceback.
Before doit opens the file (while it loads the dodo file), `repair` reads it: `PRAGMA quick_check` and
every task's record. When that fails, the file is moved aside (kept as `.doit.sqlite3.damaged-<time>`),
one line says so, and doit starts a new one: every task runs once more. That is safe because no output
is trusted on the database's word alone (generated files record and re-check their own hashes, see
tito.steps.generated), so the result is what a clean build produces.

`guard_state_saving` covers writing: when doit cannot write the file (a full disk), the build says so
in one line and fails, instead of ending in a traceback. SQLite rolls the unfinished write back, so the
tasks of that run simply run again next time.
"""

from __future__ import annotations

import errno
import json
import shutil
import sys
import time
from pathlib import Path

SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_FULL = 11, 26, 13
SIDE_FILES = ("-journal", "-wal", "-shm")  # SQLite's companions of a database file, named after it


def damage(path: Path) -> str | None:
    """Why the database at `path` cannot be read, or None when it can (or does not exist yet)."""
    import sqlite3

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return None  # SQLite treats an empty file as an empty database
    except FileNotFoundError:
        return None
    try:
        connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=10)
        try:
            rows = connection.execute("PRAGMA quick_check").fetchall()
            if rows != [("ok",)]:
                return "; ".join(str(row[0]) for row in rows[:3])
            tables = {row[0] for row in connection.execute("select name from sqlite_master where type='table'")}
            if "doit" in tables:
                for (data,) in connection.execute("select task_data from doit"):
                    json.loads(data)  # doit decodes each task's record as JSON
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        code = (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF
        # Busy, locked, read-only or full is not damage: leave the file alone and let doit report it.
        return str(error) if code in (SQLITE_CORRUPT, SQLITE_NOTADB) else None
    except (ValueError, TypeError) as error:
        return f"a task's record is not valid JSON: {error}"
    return None


def move_aside(path: Path) -> Path:
    """Rename the database (and its journal, if any) to `<name>.damaged-<time>`; returns the new path."""
    path = Path(path)
    backup = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    if backup.exists():
        backup = backup.with_name(f"{backup.name}-{time.time_ns() % 10**6}")
    path.replace(backup)
    for suffix in SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(backup.with_name(backup.name + suffix))  # SQLite finds a journal by this name
    return backup


def repair(root: Path, dep_file: str) -> Path | None:
    """Move a damaged database aside, saying so in one line; returns where it went (None: nothing to do)."""
    path = Path(root) / dep_file
    reason = damage(path)
    if reason is None:
        return None
    backup = move_aside(path)
    print(f"tito: {dep_file} (doit's record of what is up to date) could not be read ({reason}); moved it to "
          f"{backup.name} and building from scratch. Outputs are checked by content, so the result is correct.",
          file=sys.stderr, flush=True)
    return backup


def is_disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    code = (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF
    return code == SQLITE_FULL or "disk is full" in str(error)


def _no_space(path: str) -> bool:
    """SQLite reports some failed writes only as "disk I/O error": is the file system full?"""
    try:
        return shutil.disk_usage(Path(path).resolve().parent).free < 64 * 1024
    except OSError:
        return False


_failed_saves: list[str] = []  # what doit could not write to its database during this run


def guard_state_saving(dep_file: str) -> None:
    """Make a failure to write doit's database (a full disk) one line and a failed build, not a traceback.

    doit 0.37 writes the database in two places: when a task fails (`SqliteDB.remove`, so that the task
    runs again) and at the end (`SqliteDB.dump`, from `Runner.finish`). An error in either escapes as a
    traceback, and one in `dump` also skips doit's summary of failed tasks. The wrappers report the
    first error in one line and go on; SQLite rolls the unfinished write back, so the database keeps the
    previous state and the tasks of this run simply run again next time (their outputs are written
    atomically, so the old state still describes the old outputs). `Runner.finish` then turns a
    successful result into a failure.
    """
    from doit import dependency, runner

    if getattr(dependency.SqliteDB.dump, "tito_guarded", False):
        return
    for name in ("dump", "remove", "remove_all"):
        setattr(dependency.SqliteDB, name, _guarded(getattr(dependency.SqliteDB, name), dep_file))
    original_finish = runner.Runner.finish

    def finish(self):
        original_finish(self)
        if _failed_saves:
            self.final_result = max(self.final_result, runner.FAILURE)
        return self.final_result

    runner.Runner.finish = finish


def _guarded(method, dep_file: str):
    def write(self, *args):
        import sqlite3

        try:
            return method(self, *args)
        except (sqlite3.Error, OSError) as error:
            if not _failed_saves:
                why = ("out of space: free some space" if is_disk_full(error) or _no_space(dep_file) else
                       "check that the disk has space and the file is writable")
                print(f"tito: could not save the build state to {dep_file} ({error}); {why}. Nothing is lost: "
                      "the tasks of this run will run again next time.", file=sys.stderr, flush=True)
            _failed_saves.append(str(error))
            return None

    write.tito_guarded = True
    return write
