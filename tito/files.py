"""Writing generated files safely."""

from __future__ import annotations

import os
import time
from pathlib import Path

# Hand edits of generated files are never overwritten silently; discarding one (an explicit request)
# moves the file here first, so nothing is lost.
DISCARD_ENV = "TITO_DISCARD_EDITS"
DISCARDED_DIR = Path(".tito") / "discarded"


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename.

    An interrupted build (Ctrl-C, a killed process) leaves either the old file or the new one, never a
    half-written file. The temporary name starts with a dot so no glob of generated files ever sees it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
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
