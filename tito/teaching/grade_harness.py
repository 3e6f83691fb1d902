"""The child side of autograding: runs ONE student notebook's cells inside its sandbox.

tito.teaching.grade copies this file into the submission's sandbox and starts it as
`python -s -S -B grade_harness.py`, under bubblewrap (tito/teaching/sandbox.py) or, where bubblewrap
is missing, as a plain child process. It imports nothing from tito (tito is not importable there)
and only the standard library, so it runs from its copy.

The job arrives as one JSON document on stdin, which is then closed: nothing a notebook can read
from disk tells it what the tests are or how to talk to the parent. In order, the harness:

1. limits itself (address space, CPU seconds, file size, processes, no core dumps) and, on Linux,
   asks to be killed with its parent;
2. keeps its original stdout as the *result channel*; the notebook's prints go to a capped buffer
   per cell (only graded cells' output is reported, for feedback), and anything written to file
   descriptors 1 and 2 by native code goes to a size-limited file the parent owns;
3. sets sys.path to the sandbox's package and the Python installation's libraries, then imports,
   while nothing of the student has run, numpy and the modules the dev file imports (the lower
   modules of tinytorch, the standard library): these are trusted and are snapshotted;
4. installs an audit hook (it cannot be removed) that refuses: reading outside the sandbox and the
   Python installation (guard mode; under bubblewrap the kernel does that), writing outside the work
   folder, network sockets, starting processes, signalling other processes, native code (ctypes,
   extension modules outside the Python installation), sub-interpreters, changing resource limits,
   adding audit hooks, and the introspection that would let a notebook reach the harness's own
   state (frames, the garbage collector's object lists, /proc/self/mem);
5. runs the cells in order in one namespace, as the notebook would. Before each graded cell it
   restores what earlier cells may have tampered with: builtins, the snapshotted modules (numpy,
   numpy.testing, tinytorch's lower modules, the standard library), sys.modules, the names the dev
   file imports, trace and profile hooks; it waits for the notebook's threads to end. After the cell,
   a graded cell that passed while the code under test replaced a function of those modules or a
   builtin is failed;
6. reports each cell as a line on the channel, a Python literal that starts with a per-run secret
   the parent chose: (secret, "begin", i) before it, (secret, "end", i, status, reason, output)
   after it, then (secret, "finished"); the parent ignores every other line;
7. leaves with os._exit, so atexit handlers registered by the notebook never run.

Student code still shares this process with the tests (as in nbgrader): code that runs *during* a
test can change what the test sees while it runs, and a flaw in CPython's own audit coverage would
let it reach the harness. The operating-system boundary (bubblewrap) does not depend on any of this.
"""

import builtins
import gc
import io
import json
import os
import resource
import sys

# Audit events refused outright once the notebook runs.
REFUSED_EVENTS = {
    # other programs and processes
    "subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork", "os.forkpty",
    "pty.spawn", "os.startfile",
    # native code: ctypes could bypass every other check
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.cdata",
    "ctypes.cdata/buffer", "ctypes.addressof", "ctypes.string_at", "ctypes.wstring_at", "ctypes.PyObj_FromPtr",
    "ctypes.set_errno", "ctypes.get_errno", "sqlite3.enable_load_extension", "sqlite3.load_extension",
    # links could point outside the sandbox
    "os.symlink", "os.link",
    # the network
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
    "socket.gethostbyaddr", "socket.getnameinfo", "socket.sendto", "socket.sendmsg", "socket.sethostname",
    "socket.gethostbyname_ex",
    # limits, hooks and introspection of the harness
    "resource.setrlimit", "resource.prlimit", "sys.addaudithook", "sys._current_frames",
    "sys._current_exceptions", "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.settrace",
    "sys.setprofile", "cpython.PyInterpreterState_New", "cpython.run_interactivehook",
    "os.chroot", "os.setns", "os.unshare", "sys.monitoring.register_callback",
}
# Attributes whose reading hands out a frame (and from there every caller's locals).
FRAME_ATTRIBUTES = {"tb_frame", "gi_frame", "cr_frame", "ag_frame"}
# Modules that give native powers the audit events do not cover.
REFUSED_IMPORTS = {"_posixsubprocess", "_xxsubinterpreters", "_xxinterpchannels", "_interpreters",
                   "_interpqueues", "_interpchannels", "_testcapi", "_testinternalcapi", "_testbuffer",
                   "_testmultiphase", "_testsinglephase", "_testclinic", "_testimportmultiple", "_gdbm",
                   "_dbm", "_ctypes_test", "_xxtestfuzz"}
# Audit events that change the file system; args[0] (and args[1] for rename) is the path.
WRITE_EVENTS = {"os.remove", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "os.chown", "os.utime",
                "os.chflags", "os.lchflags", "os.setxattr", "os.removexattr", "shutil.rmtree", "os.rename",
                "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree", "shutil.move",
                "shutil.make_archive", "shutil.unpack_archive", "tempfile.mkstemp", "tempfile.mkdtemp"}
READ_EVENTS = {"os.listdir", "os.scandir", "os.chdir", "os.getxattr", "os.listxattr", "glob.glob",
               "glob.glob/2", "os.fwalk", "os.walk", "fcntl.ioctl"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# Files under /proc a notebook may read: its own status, never its memory or file descriptors.
PROC_SELF_FILES = {"status", "stat", "statm", "limits", "cgroup", "cpuset", "cmdline", "comm", "io", "sched"}
PROC_FILES = {"cpuinfo", "meminfo", "loadavg", "uptime", "version", "stat"}
# Stdlib modules imported before the guard, so their import-time introspection (types reads a frame)
# works and so they are part of the trusted snapshot.
TRUSTED_PRELOAD = ("types", "traceback", "inspect", "typing", "collections", "collections.abc", "enum",
                   "functools", "dataclasses", "warnings", "linecache", "tempfile", "io", "math", "random",
                   "time", "re", "json", "copy", "pickle", "numbers", "itertools", "contextlib", "string",
                   "textwrap", "pathlib", "glob", "statistics", "tracemalloc", "abc", "operator", "weakref",
                   "heapq", "bisect", "datetime", "logging", "pprint", "reprlib", "codecs", "struct",
                   "threading", "ctypes", "numpy", "numpy.testing")


class GuardError(PermissionError):
    """What the audit hook raises: a PermissionError, so `except OSError` code sees it as one."""


class FrameRefused(ValueError):
    """Refusing sys._getframe as ValueError ("stack not deep enough") is what typing, enum,
    collections.namedtuple and logging already handle."""


def refuse_tracing(*args, **kwargs):
    """Stands in for sys.settrace/setprofile: a trace function would receive the harness's frames."""
    raise GuardError("grading sandbox: trace and profile functions are not allowed while grading")


class Capture(io.TextIOBase):
    """sys.stdout/sys.stderr during one cell: keeps the first `cap` characters, counts the rest."""

    def __init__(self, cap):
        super().__init__()
        self.cap = cap
        self.parts = []
        self.kept = 0
        self.dropped = 0

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self.cap - self.kept
        if room > 0:
            piece = text[:room]
            self.parts.append(piece)
            self.kept += len(piece)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    @property
    def encoding(self):
        return "utf-8"

    @property
    def buffer(self):
        return _BytesCapture(self)

    def isatty(self):
        return False

    def text(self):
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n... [{self.dropped:,} more characters of output not kept]"
        return out


class _BytesCapture(io.RawIOBase):
    def __init__(self, capture):
        super().__init__()
        self._capture = capture

    def writable(self):
        return True

    def write(self, data):
        self._capture.write(bytes(data).decode("utf-8", errors="replace"))
        return len(data)


def set_limits(job):
    """Limits that the kernel enforces, whatever the notebook does."""
    memory = job["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))  # allocations beyond: MemoryError
    cpu = job["cpu_seconds"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))  # beyond: SIGXCPU, then SIGKILL
    fsize = job["fsize_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))  # no disk filling through one file
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if job.get("nproc"):  # counted per user namespace under bubblewrap (not enforced for root)
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (job["nproc"], job["nproc"]))
        except (ValueError, OSError):
            pass


def die_with_parent():
    """Linux: SIGKILL this process when the grader that started it dies (bubblewrap does this too)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


def make_resolver(lstat, readlink, getcwd):
    """realpath and abspath that use only the functions given (captured before the notebook runs)
    and str methods: nothing the notebook can patch (os.path's helpers are module attributes)."""

    def split(path):
        return [part for part in path.split("/") if part and part != "."]

    def absolute(path):
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        resolved = []
        for part in split(path):
            if part == "..":
                if resolved:
                    resolved.pop()
            else:
                resolved.append(part)
        return "/" + "/".join(resolved)

    def real(path):
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        parts = split(path)
        resolved = []
        links = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/" + "/".join(resolved + [part])
            try:
                is_link = (lstat(candidate).st_mode & 0o170000) == 0o120000
            except OSError:
                is_link = False
            if not is_link:
                resolved.append(part)
                continue
            links += 1
            if links > 40:
                return "/\0unresolvable"
            try:
                target = readlink(candidate)
            except OSError:
                resolved.append(part)
                continue
            if target.startswith("/"):
                resolved = []
            parts = split(target) + parts
        return "/" + "/".join(resolved)

    return absolute, real


def make_hook(policy, own_pid):
    """The audit hook: refuses everything in REFUSED_EVENTS and checks paths against the policy.

    policy: {"mode": "bwrap" | "guard", "work": dir, "read": [dirs], "deny": [dirs], "native_ok": [dirs]}.
    Reading is checked in guard mode (longest matching prefix of read and deny wins); under
    bubblewrap the mounts decide, and only /proc is checked here.

    Everything the hook uses is bound here, before the notebook runs: builtins, os functions, the
    event sets (as frozensets) and the exception classes. A notebook that replaces builtins.isinstance
    or os.path.realpath, or edits this module's globals, does not change what the hook decides.
    """
    _isinstance, _len, _any, _int, _str, _bytes, _type, _id = isinstance, len, any, int, str, bytes, type, id
    _fspath = os.fspath
    import pathlib

    path_types = frozenset({str, bytes, pathlib.PurePosixPath, pathlib.PosixPath, pathlib.PurePath, pathlib.Path})
    # Classes of the modules loaded before the notebook (numpy, pathlib, tinytorch's lower modules, ...)
    # may not be patched: kept alive here, known by identity.
    trusted_classes = tuple({id(value): value for module in list(sys.modules.values())
                             for value in list(getattr(module, "__dict__", {}).values())
                             if isinstance(value, type)}.values())
    trusted_ids = frozenset(id(value) for value in trusted_classes)
    absolute, real = make_resolver(os.lstat, os.readlink, os.getcwd)
    _GuardError, _FrameRefused = GuardError, FrameRefused
    refused_events, frame_attributes = frozenset(REFUSED_EVENTS), frozenset(FRAME_ATTRIBUTES)
    refused_imports, write_events = frozenset(REFUSED_IMPORTS), frozenset(WRITE_EVENTS)
    read_events, write_flags = frozenset(READ_EVENTS), WRITE_FLAGS
    proc_self_files, proc_files = frozenset(PROC_SELF_FILES), frozenset(PROC_FILES)
    two_path_events = frozenset({"os.rename", "shutil.copyfile", "shutil.copytree", "shutil.move"})
    devices = frozenset({"/dev/null", "/dev/urandom", "/dev/random", "/dev/zero"})
    guard = policy["mode"] == "guard"
    writable = tuple([real(policy["work"]), "/dev/null"] + [real(p) for p in policy.get("write_extra", [])])
    rules = tuple(sorted([(real(p), True) for p in policy["read"]] + [(real(p), False) for p in policy["deny"]],
                         key=lambda rule: len(rule[0]), reverse=True))
    native_ok = tuple(real(p) for p in policy.get("native_ok", []))
    pid = str(own_pid)
    counter = [0]
    max_written = _int(policy.get("max_files", 256))

    def under(path, root):
        return path == root or path.startswith(root.rstrip("/") + "/")

    def as_text(path):
        if _type(path) not in path_types:  # a PathLike of the notebook's own could answer differently twice
            refuse(f"a path given as {_type(path).__name__}; use str, bytes or pathlib.Path")
        if _isinstance(path, _bytes):
            return path.decode("utf-8", "surrogateescape")
        path = _fspath(path)
        return path.decode("utf-8", "surrogateescape") if _isinstance(path, _bytes) else path

    def climbs(text):
        return not text.startswith("/") and ".." in text.replace("\\", "/").split("/")

    def proc_ok(path):
        parts = path.split("/")  # ["", "proc", ...]
        if _len(parts) < 3 or parts[2] == "":
            return not guard  # listing /proc: under bubblewrap it shows only the sandbox's processes
        head = parts[2]
        if head in ("self", "thread-self", pid):
            return _len(parts) == 4 and parts[3] in proc_self_files
        if head.isdigit():
            return False
        return _len(parts) == 3 and head in proc_files

    def readable(raw):
        if _isinstance(raw, _int):
            return True
        text = as_text(raw)
        if climbs(text):
            return False  # may be relative to a dir_fd the hook cannot see: refuse rather than guess
        resolved = real(text)
        for candidate in (absolute(text), resolved):
            if candidate == "/proc" or candidate.startswith("/proc/"):
                return proc_ok(candidate)
        if not guard or resolved in devices:
            return True
        for root, allowed in rules:
            if under(resolved, root):
                return allowed
        return False

    def writable_path(raw):
        if _isinstance(raw, _int):
            return True
        text = as_text(raw)
        if climbs(text):
            return False
        resolved = real(text)
        return _any(under(resolved, root) for root in writable)

    def refuse(what):
        raise _GuardError("grading sandbox: " + what + " is not allowed while grading")

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if path is None:
                return
            writing = (_isinstance(mode, _str) and _any(ch in mode for ch in "wax+")) or \
                (mode is None and _isinstance(flags, _int) and flags & write_flags)
            if writing:
                if not writable_path(path):
                    refuse(f"writing to {path!r} (only the work folder is writable)")
                counter[0] += 1
                if counter[0] > max_written:
                    refuse(f"opening more than {max_written} files for writing")
            elif not readable(path):
                refuse(f"reading {path!r} (outside the sandbox and the Python installation)")
        elif event in write_events:
            paths = args[:2] if event in two_path_events else args[:1]
            for path in paths:
                if path is not None and not _isinstance(path, _int) and not writable_path(path):
                    refuse(f"{event} on {path!r}")
        elif event in read_events:
            path = args[0] if args else None
            if event == "glob.glob/2" and _len(args) > 2 and args[2] is not None:
                return  # relative to a root_dir (an fd), which os.scandir checks itself
            if path is not None and path != "" and path != b"" and not readable(path):
                refuse(f"{event} on {path!r}")
        elif event == "object.__getattr__":
            if _len(args) > 1 and args[1] in frame_attributes:
                refuse(f"reading {args[1]} (frames of the grading harness)")
        elif event == "object.__setattr__":
            if _len(args) > 1 and args[1] == "__code__":
                refuse("replacing a function's __code__")
            if _len(args) > 1 and _id(args[0]) in trusted_ids:
                refuse(f"changing the class {args[0].__module__}.{args[0].__qualname__}")
        elif event == "sys._getframe":
            raise _FrameRefused("grading sandbox: call stack frames are not available while grading")
        elif event == "import":
            name = args[0]
            if name in refused_imports:
                refuse(f"importing {name}")
            filename = args[1] if _len(args) > 1 else None
            if _isinstance(filename, _str) and filename and not filename.endswith(".py"):
                resolved = real(filename)
                if not _any(under(resolved, root) for root in native_ok):
                    refuse(f"loading native code from {filename!r}")
        elif event == "os.kill":
            if args and args[0] not in (own_pid, 0):
                refuse("signalling another process")
        elif event == "os.killpg":
            refuse("signalling a process group")
        elif event == "sqlite3.connect":
            database = args[0] if args else None
            if database not in (None, ":memory:", b":memory:", "") and \
                    not (readable(database) and writable_path(database)):
                refuse(f"opening the database {database!r}")
        elif event in refused_events:
            refuse(event)

    return hook


_MISSING = object()


def make_state_keeper():
    """(restore, tampered) closures over a snapshot of builtins, sys.modules, every loaded module's
    namespace and sys's import state, taken now, while only trusted code has run.

    restore() puts it all back, builtins first and with dict methods only, so it works however the
    notebook changed builtins; tampered() names the builtins and public functions, classes or modules
    of the snapshot that were replaced (a passed test during which that happened is failed).
    """
    _list, _dict, _getattr, _isinstance, _callable, _len = list, dict, getattr, isinstance, callable, len
    _sys, missing, module_type = sys, _MISSING, type(sys)
    live_builtins = builtins.__dict__
    saved_builtins = live_builtins.copy()
    live_modules = sys.modules
    saved_modules = dict(sys.modules)
    namespaces = []
    for name, module in saved_modules.items():
        namespace = getattr(module, "__dict__", None)
        if isinstance(namespace, dict) and name not in ("sys", "builtins"):
            namespaces.append((name, namespace, namespace.copy()))
    sys_namespace = sys.__dict__
    sys_lists = [(getattr(sys, name), list(getattr(sys, name))) for name in ("path", "meta_path", "path_hooks")]
    sys_values = {name: getattr(sys, name) for name in ("modules", "path", "meta_path", "path_hooks", "excepthook",
                                                         "displayhook", "settrace", "setprofile", "path_importer_cache",
                                                         "breakpointhook", "audit", "addaudithook")
                  if hasattr(sys, name)}

    def restore():
        for name in [name for name in live_builtins if name not in saved_builtins]:
            del live_builtins[name]
        for name, value in saved_builtins.items():
            if live_builtins.get(name, missing) is not value:
                live_builtins[name] = value
        for name, value in sys_values.items():
            if sys_namespace.get(name, missing) is not value:
                sys_namespace[name] = value
        for values, saved in sys_lists:
            values[:] = saved
        for name, module in saved_modules.items():
            if live_modules.get(name, missing) is not module:
                live_modules[name] = module
        for name, namespace, saved in namespaces:
            for key, value in saved.items():
                if namespace.get(key, missing) is not value:
                    namespace[key] = value
            if name == "__main__":
                for key in [key for key in namespace if key not in saved]:
                    del namespace[key]

    def tampered():
        changed = [f"builtins.{name}" for name, value in saved_builtins.items()
                   if live_builtins.get(name, missing) is not value and not name.startswith("_")]
        for name, namespace, saved in namespaces:
            for key, value in saved.items():
                if key.startswith("_") or not (_callable(value) or _isinstance(value, module_type)):
                    continue
                if namespace.get(key, missing) is not value:
                    changed.append(f"{name}.{key}")
        for name, value in sys_values.items():
            if sys_namespace.get(name, missing) is not value:
                changed.append(f"sys.{name}")
        return changed

    return restore, tampered


def wait_for_threads(seconds):
    """True when no thread the notebook started (through `threading`) is still alive, after waiting
    up to `seconds` for them. Threads started with the bare `_thread` module are not seen."""
    import threading
    import time

    deadline = time.monotonic() + seconds
    while True:
        others = [t for t in threading.enumerate() if t is not threading.current_thread()]
        if not others:
            return True
        if time.monotonic() > deadline:
            return False
        for thread in others:
            thread.join(timeout=0.05)


def describe(error, filename, excepthook):
    """The exception's last line, plus where in the test it happened when that is known.

    The location comes from the interpreter's C traceback printer (it reads frames itself; Python
    code here may not), parsed for the last line in `filename`.
    """
    import traceback

    try:
        last = traceback.format_exception_only(type(error), error)[-1].strip()
    except BaseException:  # a hostile __str__
        last = type(error).__name__
    if not filename.startswith("<"):
        printed = Capture(200_000)
        saved = sys.stderr
        sys.stderr = printed
        try:
            excepthook(type(error), error, error.__traceback__)
        except BaseException:
            pass
        finally:
            sys.stderr = saved
        marker = f'  File "{filename}", line '
        where = [line[len(marker):].split(",")[0] for line in printed.text().splitlines() if line.startswith(marker)]
        if where and where[-1].isdigit():
            last += f" (at {os.path.basename(filename)}:{where[-1]})"
    return last if len(last) <= 500 else last[:497] + "..."


def run_step(step, namespace, memory_mb, excepthook):
    """(status, reason) of one cell: passed, failed, error or memory."""
    filename = step["filename"]
    try:
        # Blank lines in front make line numbers in tracebacks those of the file the cell came from.
        code = compile("\n" * (step["line"] - 1) + step["source"], filename, "exec")
    except SyntaxError as error:
        return "failed", f"SyntaxError: {error.msg} (line {error.lineno})"
    except (RecursionError, MemoryError, ValueError, OverflowError) as error:
        return "failed", f"{type(error).__name__} while compiling the cell: {str(error)[:200]}"
    try:
        exec(code, namespace)
    except MemoryError:
        return "memory", f"MemoryError: the cell needed more than the {memory_mb} MB memory limit"
    except SystemExit as error:
        return "error", f"the code called sys.exit({error.code!r}); a notebook must not exit"
    except BaseException as error:  # KeyboardInterrupt included: nothing may stop the grading of the rest
        return "failed", describe(error, filename, excepthook)
    return "passed", ""


def forget(names):
    """Make modules loaded by trusted code unreachable again: out of sys.modules and out of every
    module namespace, so the only way back is an import, which the audit hook refuses."""
    for name in names:
        module = sys.modules.pop(name, None)
        if module is None:
            continue
        for other in list(sys.modules.values()):
            namespace = getattr(other, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for key, value in list(namespace.items()):
                if value is module or getattr(value, "__module__", None) == name:
                    del namespace[key]


def preload(names):
    for name in names:
        try:
            __import__(name)
        except BaseException:  # a missing optional module, or a lower module that does not import
            pass


def main():
    raw = sys.stdin.buffer.read()
    job = json.loads(raw)
    del raw
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    set_limits(job)
    die_with_parent()

    channel = os.dup(1)
    os.dup2(2, 1)  # native code's writes to fd 1 and 2 go to the parent's size-limited file
    nonce, write, _repr = job["nonce"], os.write, repr

    def emit(*event):
        # A Python literal (repr of str and int, which no notebook can change), read by the parent
        # with ast.literal_eval, and only when it starts with this run's secret.
        data = (_repr((nonce, *event)) + "\n").encode("utf-8", "surrogateescape")
        while data:
            data = data[write(channel, data):]

    sys.path[:] = job["path"]
    sys.dont_write_bytecode = True
    sys.argv = ["notebook"]
    import site  # with -S, importing site runs nothing; it gives exit() and quit()

    site.setquit()
    sys.stdout = sys.stderr = Capture(job["output_cap"])
    preload(TRUSTED_PRELOAD)
    preload(job["preload"])
    import threading

    sys.settrace = sys.setprofile = refuse_tracing
    threading.settrace = threading.setprofile = refuse_tracing
    forget(REFUSED_IMPORTS)
    gc.collect()

    # Everything the loop below uses is bound now, before the notebook runs: it may rebind this
    # module's globals, builtins or any module attribute afterwards.
    excepthook, collect, new_capture, run, wait = sys.__excepthook__, gc.collect, Capture, run_step, wait_for_threads
    _builtins, _exec, _len, _sys = builtins, exec, len, sys
    keep = set(job["keep_names"])  # names the dev file itself defines, even where they shadow a builtin
    shadowable = tuple(name for name in builtins.__dict__ if not name.startswith("__") and name not in keep)
    rebind = compile(job["rebind"], "<the dev file's imports>", "exec") if job["rebind"] else None
    output_cap, memory_mb, leave = job["output_cap"], job["memory_mb"], os._exit
    steps, skip = job["steps"], set(job["skip"])
    sys.addaudithook(make_hook(job["policy"], os.getpid()))
    restore, tampered = make_state_keeper()

    namespace = {"__name__": "__main__", "__builtins__": builtins}
    for step in steps:
        index = step["index"]
        if index in skip:
            continue
        test = step["kind"] == "test"
        problem = None
        if test:
            restore()
            if not wait(2.0):
                problem = ("error", "threads the notebook started were still running when this test began; "
                                    "graded cells run only after they finish")
            collect()  # finalizers of earlier cells run now, before the snapshot is put back
            restore()
            namespace["__builtins__"] = _builtins
            for name in shadowable:
                namespace.pop(name, None)
            if rebind is not None:
                try:
                    _exec(rebind, namespace)
                except BaseException:
                    pass
        capture = new_capture(output_cap)
        _sys.stdout = _sys.stderr = capture
        emit("begin", index)
        if problem is None:
            status, reason = run(step, namespace, memory_mb, excepthook)
        else:
            status, reason = problem
        output = ""
        if test:
            changed = tampered()
            restore()
            if changed and status == "passed":
                shown = ", ".join(changed[:5]) + (f" and {_len(changed) - 5} more" if _len(changed) > 5 else "")
                status, reason = "failed", (f"the code under test replaced {shown} while the test ran, so the "
                                            "test's result cannot be trusted")
            output = capture.text()
        _sys.stdout = _sys.stderr = new_capture(0)
        emit("end", index, status, reason, output)
    emit("finished")
    leave(0)


if __name__ == "__main__":
    try:
        main()
    except BaseException as failure:  # the harness itself failed: tell the parent through fd 2
        printed = Capture(20_000)
        sys.stderr = printed
        try:
            sys.__excepthook__(type(failure), failure, failure.__traceback__)  # C: reads frames itself
        except BaseException:
            printed.write(repr(failure))
        os.write(2, ("grading harness failed: " + printed.text()).encode("utf-8", "replace"))
        os._exit(70)
