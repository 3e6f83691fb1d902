"""Run one command in a subprocess the way every build step does, and shorten what it printed.

Each run sees the project root first on PYTHONPATH, so it imports this tree's `tinytorch` even when
another copy is installed, and TITO_BUILD=1, so the root conftest does not start a nested doit.
Used by the runner (tests, dev files, examples), memory profiles, lint and the learner's commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

TAIL_LINES = 60
DISK_FULL_SIGNS = ("No space left on device", "File too large", "Disk quota exceeded", "database or disk is full")


def doit_command(root: Path, *args: str) -> list[str]:
    """The command line that runs `doit ARGS` on the checkout at `root` (tito, conftest, scripts)."""
    return [sys.executable, "-m", "doit", "-f", str(Path(root) / "dodo.py"), *args]


def subprocess_env(root: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    env["TITO_BUILD"] = "1"
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # two doit workers on two cores: no oversubscription
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


def run(root: Path, command: list[str], timeout: int, capture: bool = True,
        extra_env: dict | None = None) -> tuple[int, str, float]:
    """(exit code, combined output, seconds); exit code -1 means the time limit was hit.
    With capture=False the output goes straight to the terminal (and '' is returned)."""
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=root, env={**subprocess_env(root), **(extra_env or {})}, timeout=timeout,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.STDOUT if capture else None, text=True)
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout or ""
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        return -1, output, time.perf_counter() - start
    return done.returncode, done.stdout or "", time.perf_counter() - start


def tail(output: str, lines: int = TAIL_LINES) -> str:
    kept = output.rstrip().splitlines()
    cut = len(kept) - lines
    return ("...\n" if cut > 0 else "") + "\n".join(kept[-lines:])


def disk_full_note(output: str) -> str:
    """A line to add to a failure whose output shows that the disk filled up ('' otherwise)."""
    if any(sign in output for sign in DISK_FULL_SIGNS):
        return "Out of space (see above): free some space, then run the build again.\n"
    return ""
