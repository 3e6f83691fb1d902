"""The child side of autograding: runs ONE student notebook's cells inside its sandbox.

tito.teaching.grade copies this file into a fresh temporary directory and starts it as
`python -s -B grade_harness.py job.json`, with the sandbox's isolated copy of `tinytorch` as the only
PYTHONPATH entry. It imports nothing from tito (tito is not importable there) and only the standard
library, so it can run from its copy.

What it does, in order:

1. limits itself (address space, CPU seconds, file size, no core dumps);
2. keeps its original stdout as the *result channel* to the parent and sends the notebook's own
   prints to `output.log`, so a print can never be mistaken for a result line;
3. installs an audit hook that refuses writes outside the sandbox and the starting of processes;
4. runs the job's cells in order in one namespace, as the notebook would, reporting each cell as a
   JSON line: {"event": "begin", "step": i} before it and {"event": "end", "step": i, "status": ...,
   "reason": ...} after it, then {"event": "finished"};
5. leaves with os._exit, so atexit handlers registered by the notebook never run.

The student's code runs in this same process, so it could write forged lines into the channel. The
parent accepts lines only for this notebook's own steps; a notebook can therefore only lie about
itself (exactly as with nbgrader, which runs tests next to student code), never about another one.
"""

import builtins
import json
import os
import resource
import sys
import traceback

# Audit events that start another program or load native code: refused once the notebook runs.
# (ctypes could bypass every other guard; numpy is imported before the hook, so it loads normally.)
REFUSED_EVENTS = {
    "subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork", "os.forkpty",
    "pty.spawn", "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function",
    "ctypes.cdata", "ctypes.cdata/buffer", "os.symlink", "os.link",
}
# Audit events that change the file system; args[0] (and args[1] for rename) is the path.
PATH_EVENTS = {"os.remove", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "os.chown", "os.utime",
               "os.chflags", "os.lchflags", "os.setxattr", "os.removexattr", "shutil.rmtree", "os.rename"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def set_limits(memory_mb: int, cpu_seconds: int) -> None:
    """Limits that the kernel enforces, whatever the notebook does."""
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))  # allocations beyond: MemoryError
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 2))  # beyond: SIGXCPU, then SIGKILL
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024 * 1024, 64 * 1024 * 1024))  # no disk filling
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def install_guard(sandbox: str) -> None:
    """Refuse writes outside `sandbox` and the starting of processes, for the rest of this process.

    Python audit hooks cannot be removed once added. The kernel-level guarantee is the parent's
    after-the-fact check that the repository did not change.
    """
    sandbox = os.path.realpath(sandbox)
    allowed_devices = {"/dev/null"}

    def inside(path) -> bool:
        if isinstance(path, int):  # an already open file descriptor
            return True
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        real = os.path.realpath(os.fspath(path))
        return real in allowed_devices or real == sandbox or real.startswith(sandbox + os.sep)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(ch in mode for ch in "wax+")) or \
                (mode is None and isinstance(flags, int) and flags & WRITE_FLAGS)
            if writing and not inside(path):
                raise PermissionError(f"grading sandbox: writing to {path!r} is not allowed (only the notebook's "
                                      "own temporary directory is writable)")
            # A descriptor of an outside directory would let os.open(..., dir_fd=fd) write through it.
            if not writing and not inside(path) and os.path.isdir(path):
                raise PermissionError(f"grading sandbox: opening the directory {path!r} is not allowed")
        elif event in PATH_EVENTS:
            paths = args[:2] if event == "os.rename" else args[:1]
            for path in paths:
                if path is not None and not inside(path):
                    raise PermissionError(f"grading sandbox: {event} on {path!r} is not allowed")
        elif event in REFUSED_EVENTS:
            raise PermissionError(f"grading sandbox: {event} is not allowed while grading")

    sys.addaudithook(hook)


def describe(error: BaseException, filename: str) -> str:
    """The exception's last line, plus where in the test it happened when that is known."""
    last = traceback.format_exception_only(type(error), error)[-1].strip()
    where = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == filename]
    if where and not filename.startswith("<"):
        last += f" (at {os.path.basename(filename)}:{where[-1]})"
    return last if len(last) <= 500 else last[:497] + "..."


def run_step(step: dict, namespace: dict, memory_mb: int):
    """(status, reason) of one cell: passed, failed, error or memory."""
    filename = step["filename"]
    try:
        # Blank lines in front make line numbers in tracebacks those of the file the cell came from.
        code = compile("\n" * (step["line"] - 1) + step["source"], filename, "exec")
    except SyntaxError as error:
        return "failed", f"SyntaxError: {error.msg} (line {error.lineno})"
    try:
        exec(code, namespace)
    except MemoryError:
        return "memory", f"MemoryError: the cell needed more than the {memory_mb} MB memory limit"
    except SystemExit as error:
        return "error", f"the code called sys.exit({error.code!r}); a notebook must not exit"
    except BaseException as error:  # KeyboardInterrupt included: nothing may stop the grading of the rest
        return "failed", describe(error, filename)
    return "passed", ""


def main(job_path: str) -> None:
    with open(job_path, encoding="utf-8") as handle:
        job = json.load(handle)
    set_limits(job["memory_mb"], job["cpu_seconds"])

    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)

    def emit(**event) -> None:
        channel.write(json.dumps(event) + "\n")
        channel.flush()

    try:  # loaded before the guard: numpy's own import uses ctypes
        import ctypes  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        pass
    install_guard(job["sandbox"])

    namespace = {"__name__": "__main__", "__builtins__": builtins}
    skip = set(job["skip"])
    for step in job["steps"]:
        if step["index"] in skip:
            continue
        emit(event="begin", step=step["index"])
        status, reason = run_step(step, namespace, job["memory_mb"])
        emit(event="end", step=step["index"], status=status, reason=reason)
    emit(event="finished")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
