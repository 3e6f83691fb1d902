"""Where a submission runs: under bubblewrap, or, where that is impossible, under the in-process guard.

**bubblewrap** (`bwrap`: Linux namespaces, no daemon, no root needed) gives each submission a root
file system of its own that holds, read-only, only what it needs:

    /usr/lib, /lib*            shared libraries (and /etc/ld.so.cache)
    <the Python installation>  its standard library and the site-packages the grader imports from,
                               with any installed copy of tinytorch or tito, and any course checkout
                               found inside them, hidden under an empty read-only tmpfs
    /grading/pkg               the sandbox's package: the lower modules and the student's own module
    /grading/harness           grade_harness.py
    /grading/work              the only writable place: a size-limited tmpfs (also /tmp, HOME, TMPDIR)
    /proc, /dev                a fresh procfs of its own PID namespace; null, zero, urandom, ...

and nothing else: not the course repository, not other submissions, not the grader's home or
environment (`--clearenv`). It has no network (its own network namespace), its own PID, IPC, UTS and
cgroup namespaces, no capabilities, cannot create user namespaces, and dies with the grader
(`--die-with-parent`). The harness sets the resource limits inside.

**The guard** is the fallback where bwrap is missing (macOS) or cannot create namespaces (a container
without user namespaces): the same harness and audit hook, which then also refuses reading outside the
sandbox folder and the Python installation. It is weaker: the student's code shares the interpreter
with it, and native code that reaches the operating system without Python's audit events is not
stopped. `resolve("auto")` says why it fell back, and the grader prints that once per run.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

MODES = ("auto", "bwrap", "guard")
INSIDE = "/grading"  # the submission's folder as it sees it under bubblewrap
SYSTEM_LIBRARIES = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32", "/lib", "/lib64", "/lib32", "/libx32")
SANDBOX_UID = 65534  # "nobody" inside the user namespace
BASE_FLAGS = ("--unshare-all", "--unshare-user", "--cap-drop", "ALL", "--die-with-parent", "--new-session")


class SandboxUnavailable(Exception):
    """--sandbox bwrap was asked for where bubblewrap cannot run; says why."""


@dataclass(frozen=True)
class Sandbox:
    kind: str  # "bwrap" or "guard"
    reason: str = ""  # why the guard is used, when it is
    bwrap: str = ""
    flags: tuple[str, ...] = ()  # namespace flags this bwrap accepts
    sized_tmpfs: bool = True  # bwrap >= 0.7 understands --size


@dataclass(frozen=True)
class PythonLayout:
    """The grader's interpreter, as a sandbox needs to see it."""

    executable: str  # real path of the interpreter binary
    stdlib: tuple[str, ...]  # standard-library entries of sys.path
    site: tuple[str, ...]  # site-packages entries of sys.path
    binds: tuple[str, ...]  # what to mount read-only under bwrap
    hidden: tuple[str, ...]  # never readable: installed tinytorch/tito, course checkouts
    native: tuple[str, ...] = field(default=())  # where extension modules may be loaded from


# --- choosing the sandbox ---------------------------------------------------------------------------


@functools.cache
def resolve(mode: str = "auto") -> Sandbox:
    """The sandbox to use for `mode`; "auto" prefers bwrap. Raises SandboxUnavailable for "bwrap"
    where it cannot run, ValueError for an unknown mode."""
    if mode not in MODES:
        raise ValueError(f"unknown sandbox {mode!r}: use one of {', '.join(MODES)}")
    if mode == "guard":
        return Sandbox("guard", "--sandbox guard was asked for")
    found = probe_bwrap()
    if isinstance(found, Sandbox):
        return found
    if mode == "bwrap":
        raise SandboxUnavailable(found)
    return Sandbox("guard", found)


@functools.cache
def probe_bwrap() -> Sandbox | str:
    """A usable bwrap, or why there is none. Runs bwrap once with the flags grading uses."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux namespaces; this is {sys.platform}"
    binary = shutil.which("bwrap")
    if binary is None:
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as error:
        return f"bwrap could not be started: {error}"
    attempts = [BASE_FLAGS + ("--disable-userns",), BASE_FLAGS] if "--disable-userns" in help_text else [BASE_FLAGS]
    last = ""
    for flags in attempts:
        command = [binary, *flags, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--remount-ro", "/",
                   "true"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError) as error:
            return f"bwrap could not be started: {error}"
        if done.returncode == 0:
            return Sandbox("bwrap", "", binary, tuple(flags), "--size" in help_text)
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    return (f"bwrap cannot create the namespaces it needs here ({last}); in a container, allow user "
            "namespaces (or run the grader outside it)")


# --- the Python installation -----------------------------------------------------------------------


def _real(path: str) -> str:
    return os.path.realpath(path)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _package_dir(name: str) -> str | None:
    """Where the grader would import `name` from, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return _real(list(spec.submodule_search_locations)[0])
    return _real(os.path.dirname(spec.origin)) if spec.origin else None


def _looks_like_checkout(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "dodo.py")) or os.path.isdir(os.path.join(folder, "modules", "source"))


@functools.cache
def python_layout(extra_hidden: tuple[str, ...] = ()) -> PythonLayout:
    """The interpreter, its standard library and site-packages, and what must stay hidden.

    Only the sys.path entries of the Python installation count: the current folder, a checkout's
    folders that a test runner or an editable install put on sys.path, are left out.
    """
    executable = _real(sys.executable)
    prefixes = {_real(p) for p in (sys.base_prefix, sys.base_exec_prefix)}
    site_dirs, stdlib = [], []
    known_site = set()
    try:
        import site

        known_site = {_real(p) for p in site.getsitepackages()}
    except (AttributeError, ImportError):
        pass
    for entry in sys.path:
        if not entry:
            continue
        real = _real(entry)
        if real in known_site or os.path.basename(real) in ("site-packages", "dist-packages"):
            if os.path.isdir(real) and real not in site_dirs:
                site_dirs.append(real)
        elif any(_under(real, prefix) for prefix in prefixes) and real not in stdlib:
            stdlib.append(real)

    hidden = {_real(p) for p in extra_hidden if p}
    for name in ("tinytorch", "tito"):
        found = _package_dir(name)
        if found:
            hidden.add(found)
            parent = os.path.dirname(found)
            if _looks_like_checkout(parent):
                hidden.add(parent)

    base = _real(sys.base_prefix)
    binds: list[str] = []
    if base in ("/", "/usr"):  # a system Python: its folders, not all of /usr
        candidates = [*stdlib, executable, sysconfig.get_config_var("LIBDIR") or ""]
    else:
        candidates = [base, executable, *stdlib]
    for path in [*candidates, *site_dirs]:
        if path and os.path.exists(path) and not any(_under(path, b) for b in binds):
            binds = [b for b in binds if not _under(b, path)] + [path]
    native = tuple(dict.fromkeys([*binds, *SYSTEM_LIBRARIES]))
    return PythonLayout(executable, tuple(stdlib), tuple(site_dirs), tuple(binds), tuple(sorted(hidden)), native)


# --- the child process -----------------------------------------------------------------------------


def environment(home: str, tmp: str) -> dict[str, str]:
    """The whole environment of the child: nothing of the grader's."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONIOENCODING": "utf-8",
        "MPLBACKEND": "Agg",
        "OPENBLAS_NUM_THREADS": "1",  # each thread reserves address space, which counts against RLIMIT_AS
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


@dataclass
class Launch:
    """How to start the harness for one run, and the paths the job must use."""

    argv: list[str]
    cwd: str
    env: dict[str, str] | None
    pkg: str
    work: str
    policy: dict


def launch(sandbox: Sandbox, layout: PythonLayout, host: Path, harness_name: str, work_mb: int = 128) -> Launch:
    """The command for one run of the harness in the sandbox folder `host` (pkg/, harness/, work/)."""
    python = [layout.executable, "-s", "-S", "-B"]
    if sandbox.kind == "guard":
        work = str(host / "work")
        policy = {"mode": "guard", "work": work,
                  "read": [str(host / "pkg"), str(host / "harness"), work, *layout.binds, "/sys/devices/system/cpu"],
                  "deny": list(layout.hidden), "native_ok": list(layout.native)}
        return Launch([*python, str(host / "harness" / harness_name)], work, environment(work, work),
                      str(host / "pkg"), work, policy)

    pkg, work = f"{INSIDE}/pkg", f"{INSIDE}/work"
    argv = [sandbox.bwrap, *sandbox.flags, "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--hostname", "grading", "--clearenv"]
    for key, value in environment(work, f"{work}/tmp").items():
        argv += ["--setenv", key, value]
    # When Python itself lives under /tmp (a checkout and its venv in a temporary folder, as CI may have),
    # /tmp cannot become a link to the work folder: it is a private size-limited tmpfs, mounted before
    # the read-only views so that they land inside it.
    python_under_tmp = any(_under(path, "/tmp") for path in layout.binds)
    if python_under_tmp:
        argv += [*(["--size", str(work_mb * 1024 * 1024)] if sandbox.sized_tmpfs else []), "--tmpfs", "/tmp"]
    for path in SYSTEM_LIBRARIES:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    argv += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for path in layout.binds:
        argv += ["--ro-bind", path, path]
    for path in layout.hidden:  # hidden inside something mounted: cover it with an empty read-only tmpfs
        if any(_under(path, bound) for bound in layout.binds) and os.path.isdir(path):
            argv += ["--tmpfs", path, "--remount-ro", path]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--ro-bind", str(host / "pkg"), pkg, "--ro-bind", str(host / "harness"), f"{INSIDE}/harness"]
    if sandbox.sized_tmpfs:
        argv += ["--size", str(work_mb * 1024 * 1024), "--tmpfs", work]
    else:
        argv += ["--bind", str(host / "work"), work]
    argv += ["--dir", f"{work}/tmp"]
    if not python_under_tmp:
        argv += ["--symlink", f"{work}/tmp", "/tmp"]
    argv += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", work,
             *python, f"{INSIDE}/harness/{harness_name}"]
    policy = {"mode": "bwrap", "work": work, "write_extra": ["/tmp"], "read": [], "deny": [],
              "native_ok": list(layout.native)}
    return Launch(argv, str(host), None, pkg, work, policy)


def describe_weaker(sandbox: Sandbox) -> str:
    """The one message a run under the guard prints."""
    advice = ("Use --sandbox auto or bwrap where bubblewrap works for an operating-system sandbox."
              if sandbox.reason.startswith("--sandbox guard") else
              "Install bubblewrap on Linux (and allow user namespaces) for an operating-system sandbox.")
    return (f"isolation is weaker: {sandbox.reason}. Submissions run under the in-process guard (resource "
            "limits, an audit hook that refuses reads and writes outside the sandbox, the network and new "
            "processes), which code that reaches the operating system without Python's audit events can "
            f"get past. {advice}")
