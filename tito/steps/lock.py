"""One build at a time per checkout: an advisory lock held by the doit process for its whole life.

Two builds in one checkout would both find the same tasks out of date, run them twice and trip over
each other's temporary files. So every doit command that can change something (running tasks, `clean`,
`forget`, ...) takes `fcntl.flock` on `.tito/build.lock` while doit loads the dodo file, before it opens
its database, and keeps it until the process ends. A second build waits, says once which process it
waits for (PID and command line, written into the lock file by the holder), then runs and finds up to
date whatever the first one built. `tito` commands and the root conftest run doit in a subprocess, so
they wait the same way.

- Read-only commands (`doit list`, `help`, `info`, `dumpdb`, `tabcompletion`) never wait.
- `TITO_LOCK_TIMEOUT=<seconds>` bounds the wait (0: fail at once); then the build stops with a message
  and exit code 75 (EX_TEMPFAIL: try again later) without running anything. Unset: wait as long as it
  takes.
- The kernel drops a flock when the last descriptor of it closes, so a killed build never leaves a
  stale lock (on Windows, where there is no flock, `msvcrt.locking` of one byte behaves the same way).
  The descriptor is not inherited by the programs a build starts (tests, memray), so an orphaned test
  process cannot hold it either.
- The holder sets TITO_BUILD_LOCK for its children: doit's own `-n` workers (which may re-import the
  dodo file under the spawn start method) and anything a task runs are part of the build and do not
  wait for it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tito.steps.generated import process_running

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

LOCK_FILE = Path(".tito") / "build.lock"
TIMEOUT_ENV = "TITO_LOCK_TIMEOUT"
HELD_ENV = "TITO_BUILD_LOCK"  # "<pid>:<lock file>", set by the holder for the processes it starts
TIMEOUT_EXIT = 75  # EX_TEMPFAIL from sysexits.h: nothing ran, try again later
POLL_SECONDS = 0.1
WINDOWS_LOCKED_BYTE = 1 << 20  # past the holder's record, so that others can still read the record

# doit's sub-commands that read but never change the checkout or the database.
READ_ONLY_COMMANDS = {"list", "help", "info", "dumpdb", "tabcompletion"}
# doit's loader options, which may come before the command name: (short, long, takes a value).
LOADER_OPTIONS = (("-f", "--file", True), ("-d", "--dir", True), ("-k", "--seek-file", False))
DOIT_COMMANDS = READ_ONLY_COMMANDS | {"run", "clean", "forget", "ignore", "reset-dep", "strace", "auto"}

_held: int | None = None  # the descriptor whose flock is the lock, open for the life of the process


def doit_command_name(args: list[str]) -> str:
    """The doit sub-command that `doit ARGS` runs ("run" when none is named), as doit decides it."""
    rest = list(args)
    while rest:
        word = rest[0]
        option = next((o for o in LOADER_OPTIONS if word in o[:2] or word.startswith(o[1] + "=")), None)
        if option is None:
            break
        rest = rest[2:] if option[2] and "=" not in word else rest[1:]
    rest = [a for a in rest if a.startswith("-") or "=" not in a]  # `name=value` sets a doit variable
    return rest[0] if rest and rest[0] in DOIT_COMMANDS else "run"


def is_read_only(args: list[str]) -> bool:
    return doit_command_name(args) in READ_ONLY_COMMANDS


def lock_timeout() -> float | None:
    """Seconds to wait for another build (None: no limit), from TITO_LOCK_TIMEOUT."""
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        raise SystemExit(f"tito: {TIMEOUT_ENV}={value!r} is not a number of seconds "
                         "(unset it to wait as long as it takes, 0 to fail at once)") from None


def holder(path: Path) -> tuple[int | None, str]:
    """(PID, "command line, started at ...") of the build that holds the lock, as it recorded them."""
    for _ in range(20):  # the holder writes these just after it takes the lock
        try:
            pid, command, started = Path(path).read_text(encoding="utf-8", errors="replace").split("\n")[:3]
            return int(pid), f"`{command}`, started {started}"
        except (OSError, ValueError):
            time.sleep(0.05)
    return None, "another build"


def _inside_the_holder(path: Path) -> bool:
    """True in a process started by the build that holds this lock (doit's workers, a task's programs)."""
    pid, _, lock = os.environ.get(HELD_ENV, "").partition(":")
    if lock != str(path) or not pid.isdigit():
        return False
    recorded, _ = holder(path)
    return recorded == int(pid) and process_running(int(pid))


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)


def _try_lock(fd: int) -> bool:
    """Take the lock without waiting; False when another process holds it."""
    if fcntl is None:
        os.lseek(fd, WINDOWS_LOCKED_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _lock(fd: int, deadline: float | None) -> bool:
    """Wait for the lock until `deadline` (time.monotonic(); None: as long as it takes)."""
    if deadline is None and fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    while not _try_lock(fd):
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def acquire(root: Path, command_line: str, timeout: float | None = None) -> bool:
    """Hold the build lock of the checkout at `root` until this process ends, waiting for another build
    if need be. Returns False when the lock already belongs to this build (nothing to do).

    Exits (code 75) when `timeout` seconds pass first, or (code 130) on Ctrl-C while waiting.
    """
    path = Path(root) / LOCK_FILE
    if _held is not None or _inside_the_holder(path):
        return False
    fd = _open(path)
    if not _try_lock(fd):
        _wait(fd, path, timeout)
    _hold(fd, path, command_line)
    return True


def _hold(fd: int, path: Path, command_line: str) -> None:
    """Record who holds the lock (for the message of a build that waits), and keep it for this process."""
    global _held
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{os.getpid()}\n{command_line}\n{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
    _held = fd
    os.environ[HELD_ENV] = f"{os.getpid()}:{path}"
    # doit's forked `-n` workers close their copy (closing a copy does not release the lock): the lock
    # then lives exactly as long as this process, even when workers outlive a killed build.
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_forget_in_child)


def _forget_in_child() -> None:
    global _held
    if _held is not None:
        os.close(_held)
        _held = None


def _wait(fd: int, path: Path, timeout: float | None) -> None:
    pid, what = holder(path)
    who = f"PID {pid} ({what})" if pid else what
    rel = LOCK_FILE.as_posix()
    if timeout == 0:
        os.close(fd)
        _give_up(f"tito: another build is running in this checkout: {who}. {TIMEOUT_ENV}=0, so this one "
                 f"stops without running anything ({rel}).")
    limit = "" if timeout is None else f" (at most {timeout:g} s, {TIMEOUT_ENV})"
    print(f"tito: waiting for the build already running in this checkout: {who}{limit}...",
          file=sys.stderr, flush=True)
    try:
        locked = _lock(fd, None if timeout is None else time.monotonic() + timeout)
    except KeyboardInterrupt:
        os.close(fd)
        print("tito: stopped waiting (Ctrl-C); nothing ran.", file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    if not locked:
        os.close(fd)
        _give_up(f"tito: gave up after {timeout:g} s waiting for {who} to finish ({TIMEOUT_ENV}={timeout:g}); "
                 f"nothing ran. Run the build again when it is done, or unset {TIMEOUT_ENV} to wait as long as "
                 "it takes.")


def _give_up(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(TIMEOUT_EXIT)


def try_acquire(root: Path, command_line: str) -> bool:
    """Take the lock only if it is free (a read-only command repairing the database); True when held."""
    path = Path(root) / LOCK_FILE
    if _held is not None:
        return True
    if _inside_the_holder(path):
        return False  # the build that started this process owns the database
    fd = _open(path)
    if not _try_lock(fd):
        os.close(fd)
        return False
    _hold(fd, path, command_line)
    return True
