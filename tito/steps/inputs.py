"""Close doit's window for inputs edited while their task runs.

doit records a task's file_dep state after its actions finish: a test file edited while its tests run
would be recorded as tested (doit issue #119). So each task that runs something first snapshots its
inputs (`snapshot_inputs`, the first action; the snapshot is saved with the task's values), and its
`uptodate` check (`inputs_unchanged`) compares today's files with that snapshot. A file whose mtime
and size still match is not read again, so a no-op build stays cheap.
"""

from __future__ import annotations

import os

from tito.model.scan import sha256_file


def _state(path: str) -> list | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return [stat.st_mtime_ns, stat.st_size, sha256_file(path)]


def snapshot_inputs(dependencies):
    """doit action (first of a task): record every input as it is *before* the task's real work."""
    return {"inputs": {path: _state(path) for path in sorted(dependencies)}}


def inputs_unchanged(task, values) -> bool:
    """doit `uptodate`: every input is still what the last successful run read."""
    recorded = values.get("inputs")
    if not recorded or set(recorded) != set(task.file_dep):
        return False
    for path, before in recorded.items():
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return False
        if before is None:
            return False
        if [stat.st_mtime_ns, stat.st_size] == before[:2]:
            continue  # untouched since the snapshot: no need to read it
        if sha256_file(path) != before[2]:
            return False
    return True
