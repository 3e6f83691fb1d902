"""Attacks on the grading sandbox, as a student who wants marks without work would write them.

Every test runs under bubblewrap (skipped, with the reason, where it cannot run) and under the guard.
A submission whose solutions are stubs must score 0 whatever else it does; a submission whose
solutions are right must keep its full score whatever else it tries; either way the attempt leaves a
reason in the notes and disturbs neither the grader nor any other submission.

The fixture project (tests/tito/test_grade.py) has 02_calc: add (2 points), Scaler (3), add on arrays
(1). Attack code is appended to the student's stub cells, so it runs after the stub definitions and
before the graded cells.
"""

import os
import re
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_grade import FULL, make_project, make_student, release_of, stub_sources  # noqa: E402
from treebuilder import REPO  # noqa: E402

from tito.model.devfile import DevFile  # noqa: E402
from tito.steps.notebooks import release_notebook  # noqa: E402
from tito.teaching import sandbox as sandboxes  # noqa: E402
from tito.teaching.grade import format_table, grade, read_student_cells, repository_digest  # noqa: E402


def bwrap_problem() -> str | None:
    found = sandboxes.probe_bwrap()
    return None if isinstance(found, sandboxes.Sandbox) else found


MODES = [pytest.param("bwrap", marks=pytest.mark.skipif(bwrap_problem() is not None,
                                                       reason=f"bubblewrap cannot run here: {bwrap_problem()}")),
         "guard"]
QUIET = {"log": lambda message: None}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("sandbox") / "project")


@pytest.fixture(scope="module")
def release(project):
    return release_of(project)


@pytest.fixture(scope="module")
def stubs(release):
    return stub_sources(release)


def run(project, notebooks, mode, **kwargs):
    kwargs.setdefault("timeout", 60)
    kwargs.setdefault("jobs", 2)
    return grade(project, "02_calc", notebooks, sandbox=mode, **QUIET, **kwargs)


def notes_text(result) -> str:
    return "\n".join(result.notes)


# --- reading what a submission must never see --------------------------------------------------------

# Shared by every reader: try each candidate file; the first that holds the reference is executed into
# the notebook's namespace (so `add` and `Scaler` would work and the tests would pass). Without one,
# the cell raises with what it tried, which lands in the notes.
READER = r'''
import os, sys, glob, importlib, importlib.util
_errors, _tried = [], 0
WANT = ("tinytorch/core/calc.py", "modules/source/02_calc/calc_dev.py")
def _ancestors(path):
    path = os.path.abspath(str(path))
    while True:
        yield path
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent
def _steal(candidate):
    global _tried
    _tried += 1
    try:
        with open(candidate, encoding="utf-8") as handle:
            code = handle.read()
    except Exception as error:
        if len(_errors) < 4:
            _errors.append(f"{type(error).__name__}: {error}")
        return False
    if "def add" not in code or "Implement add" in code:  # not the reference, or the student's own stub
        return False
    try:
        exec(compile(code, candidate, "exec"), globals())
        return add(2, 3) == 5
    except Exception as error:
        _errors.append(f"{type(error).__name__}: {error}")
        return False
def _try_roots(roots):
    for root in roots:
        for want in WANT:
            if _steal(os.path.join(root, want)):
                return True
    return False
def _listdir(path):
    try:
        return os.listdir(path)
    except Exception as error:
        _errors.append(f"{type(error).__name__}: {error}")
        return []
def _found_nothing(route):
    raise RuntimeError(f"{route}: found nothing in {_tried} attempts: " + " | ".join(_errors))
'''

ROUTES = {
    "literal paths": r'''
if not _try_roots([PROJECT]):
    _found_nothing("literal paths")
''',
    "paths from the interpreter": r'''
roots = [r for p in (sys.executable, sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path, os.getcwd())
         for r in _ancestors(p)]
if not _try_roots(dict.fromkeys(roots)):
    _found_nothing("interpreter")
''',
    "paths from imported modules": r'''
import numpy
roots = [r for m in list(sys.modules.values()) for r in _ancestors(getattr(m, "__file__", None) or "/")]
ok = _try_roots(dict.fromkeys(roots))
if not ok:  # forget the sandbox's package and let site-packages (editable installs, .pth files) find the real one
    import site
    for name in [n for n in sys.modules if n == "tinytorch" or n.startswith("tinytorch.")]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if "pkg" not in p]
    for entry in list(sys.path):
        if "site-packages" in entry:
            try:
                site.addsitedir(entry)
            except Exception as error:
                _errors.append(repr(error))
    for finder in list(sys.meta_path):
        module = sys.modules.get(getattr(finder, "__module__", ""), None)
        mapping = getattr(finder, "MAPPING", None) or getattr(module, "MAPPING", None)
        for target in (mapping or {}).values():
            ok = ok or _try_roots(_ancestors(target))
    try:
        spec = importlib.util.find_spec("tinytorch.core.calc")
        ok = ok or bool(spec and spec.origin and _steal(spec.origin))
    except Exception as error:
        _errors.append(repr(error))
if not ok:
    _found_nothing("imported modules")
''',
    "/proc": r'''
roots = []
for pid in ["self", "1", str(os.getppid())] + _listdir("/proc"):
    if not (pid.isdigit() or pid == "self"):
        continue
    for link in ("cwd", "root", "exe"):
        try:
            roots += list(_ancestors(os.readlink(f"/proc/{pid}/{link}")))
        except OSError as error:
            _errors.append(repr(error))
    roots += [f"/proc/{pid}/cwd", f"/proc/{pid}/root" + PROJECT, f"/proc/{pid}/cwd/.."]
    for name in ("environ", "cmdline", "mountinfo", "maps"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as handle:
                words = handle.read().replace(b"\0", b" ").decode(errors="replace").replace("=", " ").split()
            roots += [r for w in words if w.startswith("/") for r in _ancestors(w)]
        except OSError as error:
            if len(_errors) < 8:
                _errors.append(repr(error))
if not _try_roots(dict.fromkeys(roots)):
    _found_nothing("/proc")
''',
    "the environment": r'''
roots = [r for value in os.environ.values() for part in value.split(os.pathsep) if part.startswith("/")
         for r in _ancestors(part)]
roots += [r for key in ("PWD", "OLDPWD", "VIRTUAL_ENV", "HOME", "TITO_SECRET_ROOT")
          for r in _ancestors(os.environ.get(key, "/"))]
if not _try_roots(dict.fromkeys(roots)):
    _found_nothing("environment")
''',
    "globbing the file system": r'''
ok = False
for depth in range(0, 8):
    for want in ("tinytorch/core/calc.py", "modules/source/*/calc_dev.py"):
        try:
            for found in glob.glob("/" + "*/" * depth + want):
                ok = ok or _steal(found)
        except Exception as error:
            _errors.append(repr(error))
try:
    for found in glob.glob("/tmp/**/calc_dev.py", recursive=True)[:50]:
        ok = ok or _steal(found)
except Exception as error:
    _errors.append(repr(error))
if not ok:
    _found_nothing("glob")
''',
}


@pytest.mark.parametrize("mode", MODES)
def test_readers_of_the_reference_get_zero(project, release, stubs, tmp_path, monkeypatch, mode):
    monkeypatch.setenv("TITO_SECRET_ROOT", str(project))  # as if the grader's environment named the course
    monkeypatch.chdir(project)  # and the grader ran from inside it
    notebooks = []
    for name, code in ROUTES.items():
        code = code.replace("PROJECT", "PROJECT_ROOT")
        attack = READER + f"\nPROJECT_ROOT = {str(project)!r}\n" + code
        notebooks.append(make_student(release, tmp_path, re.sub(r"\W+", "_", name), add=stubs["calc-add"],
                                      scaler=stubs["calc-scaler"] + "\n\n" + attack))
    results = run(project, notebooks, mode)
    for name, result in zip(ROUTES, results):
        assert result.total == 0, f"{name}:\n{format_table([result])}"
        assert "found nothing" in notes_text(result), f"{name}: {result.notes}"
        assert result.sandbox == mode


@pytest.mark.parametrize("mode", MODES)
def test_the_sandbox_holds_no_reference_and_no_higher_module(mode, tmp_path):
    # Grading the real 04_layers: the package a submission sees is 01-03 and the student's own layers.py.
    probe = textwrap.dedent('''
        import os, tinytorch
        root = os.path.dirname(tinytorch.__file__)
        found = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root)
                       for f in fs if f.endswith(".py"))
        assert found == ["__init__.py", "core/__init__.py", "core/activations.py", "core/autograd.py",
                         "core/layers.py", "core/tensor.py"], found
        source = open(os.path.join(root, "core", "layers.py")).read()
        assert "raise NotImplementedError" in source and "def _walk" not in source, source[:300]
        raise RuntimeError("sandbox package checked")
    ''')
    released = nbformat.reads(release_notebook(DevFile.read(REPO / "modules/source/04_layers/layers_dev.py")).decode(),
                              as_version=4)
    released.cells.append(nbformat.v4.new_code_cell(probe))
    path = tmp_path / "layers.ipynb"
    nbformat.write(released, path)
    [result] = grade(REPO, "04_layers", [path], sandbox=mode, timeout=120, **QUIET)
    assert result.total == 0
    assert "RuntimeError: sandbox package checked" in notes_text(result), result.notes


STUB_ATTACK_04 = r'''
import os, sys, glob, site, importlib.util
def _ancestors(path):
    path = os.path.abspath(str(path))
    while True:
        yield path
        if os.path.dirname(path) == path:
            return
        path = os.path.dirname(path)
_errors = []
def _steal(path):
    try:
        code = open(path, encoding="utf-8").read()
    except Exception as error:
        _errors.append(type(error).__name__)
        return False
    if "class Dense" not in code or "Implement Dense" in code:  # not the reference, or the student's own stub
        return False
    exec(compile(code, path, "exec"), globals())
    return True
import numpy
roots = [r for p in (sys.executable, numpy.__file__, os.getcwd(), *os.environ.values(), *sys.path)
         for r in _ancestors(p)]
roots += [f"/proc/{p}/cwd" for p in ("self", "1", str(os.getppid()))] + [f"/proc/1/root{REPO}"]
stolen = any(_steal(os.path.join(r, w)) for r in dict.fromkeys(roots)
             for w in ("tinytorch/core/layers.py", "modules/source/04_layers/layers_dev.py"))
if not stolen:
    for name in [n for n in sys.modules if n.startswith("tinytorch")]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if "pkg" not in p]
    for entry in [p for p in sys.path if "site-packages" in p]:
        site.addsitedir(entry)
    try:
        spec = importlib.util.find_spec("tinytorch.core.layers")
        stolen = bool(spec and spec.origin) and _steal(spec.origin)
    except Exception as error:
        _errors.append(type(error).__name__)
if not stolen:
    raise RuntimeError("found nothing: " + ", ".join(sorted(set(_errors))))
'''


@pytest.mark.parametrize("mode", MODES)
def test_a_stub_04_layers_notebook_scores_zero_whatever_it_reads(mode, tmp_path):
    # The report: a 04_layers notebook whose solutions are stubs scored 25/25 by reading the
    # reference. The same notebook, with the attack before every graded cell, now scores 0.
    released = nbformat.reads(release_notebook(DevFile.read(REPO / "modules/source/04_layers/layers_dev.py")).decode(),
                              as_version=4)
    attack = STUB_ATTACK_04.replace("{REPO}", str(REPO))
    cells = []
    for cell in released.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cells.append(nbformat.v4.new_code_cell(attack))
        cells.append(cell)
    released.cells = cells
    path = tmp_path / "stub_reader.ipynb"
    nbformat.write(released, path)
    [result] = grade(REPO, "04_layers", [path], sandbox=mode, timeout=120, **QUIET)
    assert result.max_total == 25
    assert result.total == 0, format_table([result])
    assert "found nothing" in notes_text(result)


@pytest.mark.parametrize("mode", MODES)
def test_another_submission_cannot_be_read(project, release, stubs, tmp_path, mode):
    # The victim's correct solution sits in its sandbox while the thief searches for it.
    victim = make_student(release, tmp_path, "victim",
                          calc_analysis="import time\ntime.sleep(4)\nprint('victim done')\n")
    thief_code = READER + textwrap.dedent('''
        import time
        deadline = time.time() + 6
        hits = False
        while not hits and time.time() < deadline:
            places = []
            for pattern in ("/tmp/tito-grade-*/pkg", "/tmp/*/pkg", "/grading/../*/pkg", "/proc/*/cwd/../pkg",
                            "/proc/*/root/tmp/tito-grade-*/pkg", "/proc/*/root/grading/pkg"):
                try:
                    places += glob.glob(pattern)
                except Exception as error:
                    _errors.append(repr(error))
            for pid in _listdir("/proc"):
                places += [f"/proc/{pid}/cwd/../pkg", f"/proc/{pid}/root/grading/pkg"]
            hits = any(_steal(os.path.join(p, "tinytorch/core/calc.py")) for p in dict.fromkeys(places))
            time.sleep(0.2)
        if not hits:
            _found_nothing("other submissions")
    ''')
    thief = make_student(release, tmp_path, "thief", add=stubs["calc-add"],
                         scaler=stubs["calc-scaler"] + "\n\n" + thief_code)
    victim_result, thief_result = run(project, [victim, thief], mode)
    assert victim_result.total == FULL and victim_result.notes == [], format_table([victim_result])
    assert thief_result.total == 0, format_table([thief_result])
    assert "found nothing" in notes_text(thief_result)


@pytest.mark.parametrize("mode", MODES)
def test_the_grader_environment_is_invisible(project, student_factory, monkeypatch, mode):
    monkeypatch.setenv("TITO_SECRET", "do-not-leak")
    probe = textwrap.dedent(f'''
        import os, sys
        assert not [k for k in os.environ if k.startswith("TITO")], sorted(os.environ)
        assert "do-not-leak" not in repr(dict(os.environ))
        assert {str(project)!r} not in repr(dict(os.environ)) + repr(sys.path) + os.getcwd()
        leaked = []
        for pid in ("1", "self", str(os.getppid())):
            for name in ("environ", "cmdline"):
                try:
                    data = open(f"/proc/{{pid}}/{{name}}", "rb").read()
                except OSError:
                    continue
                if b"do-not-leak" in data or b"TITO_SECRET" in data:
                    leaked.append((pid, name))
        assert not leaked, leaked
    ''')
    [result] = run(project, [student_factory(calc_analysis=probe)], mode)
    assert result.total == FULL and result.notes == [], format_table([result])


@pytest.fixture
def student_factory(release, tmp_path):
    def make(name="student", **kwargs):
        return make_student(release, tmp_path, name, **kwargs)

    return make


# --- the network, processes, writes ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_no_network(project, student_factory, mode):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted = []

    def serve():
        deadline = time.time() + 30
        while time.time() < deadline and not stop.is_set():
            try:
                connection, _ = server.accept()
                accepted.append(connection.recv(100))
                connection.close()
            except OSError:
                pass

    stop = threading.Event()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    attack = textwrap.dedent(f'''
        import socket, urllib.request
        reached = []
        attempts = [
            lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"stolen"),
            lambda: urllib.request.urlopen("http://127.0.0.1:{port}/", timeout=2).read(),
            lambda: socket.getaddrinfo("localhost", {port}),
            lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", {port})),
            lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect("/run/dbus/system_bus_socket"),
        ]
        for attempt in attempts:
            try:
                attempt()
                reached.append(attempt)
            except Exception:
                pass
        raise RuntimeError(f"network attempts that worked: {{len(reached)}}")
    ''')
    try:
        [result] = run(project, [student_factory(calc_analysis=attack)], mode)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert accepted == []
    assert result.total == FULL, format_table([result])
    # under bwrap getaddrinfo of "localhost" may resolve from the sandbox's own files; nothing connects
    assert re.search(r"network attempts that worked: [01]\b", notes_text(result)), result.notes


def harness_processes() -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"grade_harness.py" in command or b"fork-bomb-marker" in command:
            found.append(int(pid))
    return found


FORKER = r'''
import os, sys
worked = []
def attempt(name, action):
    try:
        action()
        worked.append(name)
    except Exception:
        pass
def bomb():
    for _ in range(200):
        if os.fork() == 0:
            import time
            time.sleep(60)
            os._exit(0)
attempt("os.fork", bomb)
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)", "fork-bomb-marker"]
attempt("subprocess", lambda: __import__("subprocess").Popen(SLEEPER))
attempt("os.system", lambda: os.system("sleep 60 &"))
attempt("os.posix_spawn", lambda: os.posix_spawn(sys.executable, SLEEPER, {}))
attempt("_posixsubprocess", lambda: __import__("_posixsubprocess"))
attempt("multiprocessing", lambda: __import__("multiprocessing").Process(target=print).start())
attempt("pty.fork", lambda: __import__("pty").fork())
attempt("os.execv", lambda: os.execv(sys.executable, [sys.executable, "-c", "fork-bomb-marker"]))
attempt("ctypes fork", lambda: __import__("ctypes").CDLL(None).fork())
# Signal 0 only checks that a signal could be sent: if the sandbox ever let these through, a real
# attacker's SIGKILL would reach the grader (or, as root, every process on the machine), but this test
# must never do that damage itself.
attempt("signal the grader", lambda: os.kill(os.getppid(), 0))
attempt("signal everything", lambda: os.kill(-1, 0))
attempt("signal init", lambda: os.kill(1, 0))
raise RuntimeError(f"process attempts that worked: {worked}")
'''


@pytest.mark.parametrize("mode", MODES)
def test_no_processes_and_nothing_left_behind(project, student_factory, mode):
    before = set(harness_processes())
    [result] = run(project, [student_factory(calc_analysis=FORKER)], mode)
    assert result.total == FULL, format_table([result])
    assert "process attempts that worked: []" in notes_text(result), result.notes
    time.sleep(0.2)
    assert set(harness_processes()) - before == set()


@pytest.mark.parametrize("mode", MODES)
def test_a_hung_notebook_leaves_no_process(project, student_factory, mode):
    before = set(harness_processes())
    hang = "import time\nwhile True:\n    time.sleep(0.1)\n"
    start = time.perf_counter()
    [result] = run(project, [student_factory(calc_analysis=hang)], mode, timeout=3)
    assert time.perf_counter() - start < 15
    assert result.total == FULL and "time limit" in notes_text(result), format_table([result])
    assert set(harness_processes()) - before == set()


@pytest.mark.parametrize("mode", MODES)
def test_the_sandbox_dies_with_the_grader(project, student_factory, tmp_path, mode):
    hang = "import time\nwhile True:\n    time.sleep(0.1)\n"
    notebook = student_factory(calc_analysis=hang)
    script = tmp_path / "grader.py"
    script.write_text(textwrap.dedent(f'''
        import sys
        from pathlib import Path
        from tito.teaching.grade import grade
        grade(Path({str(project)!r}), "02_calc", [Path({str(notebook)!r})], timeout=120, sandbox={mode!r},
              log=lambda m: None)
    '''))
    before = set(harness_processes())
    grader = subprocess.Popen([sys.executable, str(script)], cwd=REPO)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not set(harness_processes()) - before:
            time.sleep(0.1)
        assert set(harness_processes()) - before, "the grader never started the notebook"
        time.sleep(1)
        grader.kill()
        grader.wait()
        deadline = time.time() + 10
        while time.time() < deadline and set(harness_processes()) - before:
            time.sleep(0.1)
        assert set(harness_processes()) - before == set()
    finally:
        grader.kill()
        for pid in set(harness_processes()) - before:
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("mode", MODES)
def test_writes_outside_the_work_folder_do_not_land(project, student_factory, tmp_path, mode):
    target = project / "tinytorch" / "core" / "base.py"
    outside = tmp_path / "outside-marker.txt"
    home_marker = Path.home() / "tito-sandbox-marker.txt"
    attack = textwrap.dedent(f'''
        import os, pathlib, tinytorch
        landed = []
        package = os.path.dirname(tinytorch.__file__)
        attempts = {{
            "repository file": lambda: open({str(target)!r}, "w").write("hacked"),
            "repository new file": lambda: pathlib.Path({str(project)!r}, "evil.py").write_text("x"),
            "remove": lambda: os.remove({str(target)!r}),
            "rename": lambda: os.rename({str(target)!r}, "stolen.py"),
            "dir_fd": lambda: os.open("evil.py", os.O_WRONLY | os.O_CREAT,
                                      dir_fd=os.open({str(project)!r}, os.O_RDONLY)),
            "relative escape": lambda: open("../" * 12 + {str(outside).lstrip("/")!r}, "w").write("x"),
            "other folder": lambda: open({str(outside)!r}, "w").write("x"),
            "grader home": lambda: open({str(home_marker)!r}, "w").write("x"),
            "own package": lambda: open(os.path.join(package, "core", "base.py"), "w").write("x = 0"),
            "harness": lambda: open("/grading/harness/grade_harness.py" if os.path.isdir("/grading") else
                                    os.path.join(os.path.dirname(os.path.dirname(package)), "harness", "x"),
                                    "w").write("x"),
            "root": lambda: open("/evil", "w").write("x"),
            "dev shm": lambda: open("/dev/shm/evil", "w").write("x"),
            "symlink": lambda: os.symlink({str(target)!r}, "link.py"),
            "chmod": lambda: os.chmod({str(target)!r}, 0o777),
        }}
        for name, attempt in attempts.items():
            try:
                attempt()
                landed.append(name)
            except Exception:
                pass
        open("scratch.txt", "w").write("fine: inside the work folder")
        assert open("scratch.txt").read().startswith("fine")
        raise RuntimeError(f"writes that landed: {{landed}}")
    ''')
    before = repository_digest(project)
    mode_before = target.stat().st_mode
    [result] = run(project, [student_factory(calc_analysis=attack)], mode)
    assert repository_digest(project) == before and target.stat().st_mode == mode_before
    assert not (project / "evil.py").exists() and not outside.exists() and not home_marker.exists()
    assert result.total == FULL, format_table([result])
    assert "writes that landed: []" in notes_text(result), result.notes


# --- floods -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_gigabyte_of_output_costs_the_grader_nothing(project, student_factory, mode):
    flood = textwrap.dedent('''
        import os, sys
        chunk = "x" * (1 << 20)
        for _ in range(1024):            # 1 GiB through print
            print(chunk)
        data = b"y" * (1 << 20)
        for fd in (1, 2):                # native-level writes: capped by the file-size limit
            for _ in range(64):
                try:
                    os.write(fd, data)
                except OSError:
                    break
        for fd in range(3, 30):          # the result channel, wherever it is: 64 MiB of garbage each
            for _ in range(64):
                try:
                    os.write(fd, data + b"\\n")
                except OSError:
                    break
    ''')
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    [result] = run(project, [student_factory(calc_analysis=flood)], mode, timeout=120)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.total == FULL, format_table([result])
    assert grown_mb < 100, f"the grader grew by {grown_mb:.0f} MB"
    assert time.perf_counter() - start < 90


# --- faking a pass ----------------------------------------------------------------------------------------

FAKERS = {
    "builtins replaced": '''
import builtins
builtins.exec = lambda *args, **kwargs: None
builtins.compile = lambda *args, **kwargs: None
builtins.isinstance = lambda *args: True
builtins.NotImplementedError = type("NotImplementedError", (Exception,), {})
''',
    "harness functions replaced": '''
import sys
harness = sys.modules["__main__"]
for name in dir(harness):
    if callable(getattr(harness, name)) and name in ("run_step", "describe", "restore", "tampered"):
        setattr(harness, name, lambda *args, **kwargs: ("passed", "") if name == "run_step" else [])
harness.run_step = lambda *args, **kwargs: ("passed", "")
''',
    "namespace builtins shadowed": '''
__builtins__ = {"__import__": __import__, "exec": lambda *a: None}
exec = lambda *args, **kwargs: None
def test_unit_add():
    pass
''',
    "trace function": '''
import sys, threading
def tracer(frame, event, arg):
    if event == "exception":
        frame.f_lineno = frame.f_lineno + 1
    return tracer
for install in (sys.settrace, threading.settrace, sys.setprofile):
    try:
        install(tracer)
    except Exception:
        pass
''',
    "forged result lines": '''
import os, json
lines = "".join(json.dumps(e) + "\\n" for e in (
    *({"event": "begin", "step": s} for s in range(20)),
    *({"event": "end", "step": s, "status": "passed", "reason": ""} for s in range(20)),
    {"event": "finished"},
)).encode()
for step in range(20):
    lines += (json.dumps({"event": "begin", "step": step}) + "\\n" +
              json.dumps({"event": "end", "step": step, "status": "passed", "reason": ""}) + "\\n").encode()
lines += b'{"event": "finished"}\\n'
for fd in range(3, 64):
    try:
        os.write(fd, lines)
    except OSError:
        pass
os._exit(0)
''',
    "harness introspection": '''
import sys, gc, os, re
secrets_found = []
def look(route, action):
    try:
        secrets_found.append((route, action()))
    except Exception:
        pass
look("frames", lambda: sys._getframe(1).f_back.f_locals)
def boom():
    raise ValueError
try:
    boom()
except ValueError as error:
    look("traceback", lambda: error.__traceback__.tb_frame.f_back.f_back.f_locals)
def generator():
    yield
look("generator", lambda: generator().gi_frame)
look("gc", lambda: [o for o in gc.get_objects() if isinstance(o, dict) and "nonce" in o])
look("mem", lambda: open("/proc/self/mem", "rb").read(10))
look("stdin", lambda: os.read(0, 100000) or (_ for _ in ()).throw(OSError("empty")))
look("fd", lambda: open("/proc/self/fd/3", "rb").read(10))
def job_files():
    found = [open(os.path.join(d, f)).read() for d in ("/grading/harness", "../harness") if os.path.isdir(d)
             for f in os.listdir(d) if not f.endswith(".py")]
    if not found:
        raise OSError("none")
    return found
look("job file", job_files)
seen = []
sys.addaudithook(lambda event, args: seen.append(event))  # refused hooks are silently not added
open("probe.txt", "w").close()
look("audit hook", lambda: seen or (_ for _ in ()).throw(OSError("not added")))
if secrets_found:
    raise RuntimeError(f"introspection that worked: {[r for r, _ in secrets_found]}")
raise RuntimeError("introspection that worked: []")
''',
    "tampering during the test": '''
import builtins, numpy
_real_add = None
def add(a, b):
    numpy.testing.assert_equal = lambda *args, **kwargs: None
    builtins.len = lambda obj: 0
    return a + b
''',
}


@pytest.mark.parametrize("mode", MODES)
def test_faking_a_pass_scores_only_real_work(project, release, stubs, tmp_path, mode):
    notebooks = []
    for name, code in FAKERS.items():
        add = stubs["calc-add"]
        if name == "tampering during the test":
            add = "#| export\n" + code  # a real add that also tampers: the graded cells it runs in fail
        notebooks.append(make_student(release, tmp_path, re.sub(r"\W+", "_", name), add=add,
                                      scaler=stubs["calc-scaler"] + "\n\n" + (code if "tampering" not in name else "")))
    results = run(project, notebooks, mode)
    for name, result in zip(FAKERS, results):
        assert result.total == 0, f"{name}:\n{format_table([result])}"
    by_name = dict(zip(FAKERS, results))
    assert "line(s) into the grading channel; they were ignored" in notes_text(by_name["forged result lines"])
    assert "introspection that worked: []" in notes_text(by_name["harness introspection"])
    tampering = {c.grade_id: c for c in by_name["tampering during the test"].cells}
    assert "replaced builtins.len" in tampering["test-add"].reason


# --- files that are not notebooks ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_files_that_are_not_notebooks(project, release, tmp_path, mode):
    good = nbformat.reads(make_student(release, tmp_path, "good").read_text(), as_version=4)
    files = {}
    files["binary"] = bytes(range(256)) * 400
    files["truncated"] = nbformat.writes(good).encode()[:1500]
    files["deep"] = b"[" * 200_000 + b"]" * 200_000
    files["deep_object"] = b'{"cells": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}"
    files["wrong_types"] = b'{"cells": [1, "two", {"cell_type": "code", "source": 3, "metadata": []}], "nbformat": 4}'
    files["huge"] = b'{"cells": [], "padding": "' + b"x" * (21 * 1024 * 1024) + b'"}'
    many = nbformat.reads(nbformat.writes(good), as_version=4)
    many.cells = many.cells[:-1] + [nbformat.v4.new_code_cell(f"x{i} = {i}") for i in range(10_000)] + many.cells[-1:]
    files["ten_thousand_cells"] = nbformat.writes(many).encode()
    nested = nbformat.reads(nbformat.writes(good), as_version=4)
    nested.cells.insert(0, nbformat.v4.new_code_cell("x = " + "(" * 5000 + "1" + ")" * 5000))
    nested.cells.insert(0, nbformat.v4.new_code_cell("x = " + "[" * 100 + "1" + "]" * 100))
    files["deeply_nested_code"] = nbformat.writes(nested).encode()
    paths = []
    for name, data in files.items():
        path = tmp_path / f"{name}.ipynb"
        path.write_bytes(data)
        paths.append(path)
    start = time.perf_counter()
    results = dict(zip(files, run(project, paths, mode, timeout=120)))
    assert time.perf_counter() - start < 100
    for name in ("binary", "truncated", "deep", "deep_object", "huge"):
        result = results[name]
        assert result.total == 0 and len(result.cells) == 3, name
        assert all(c.status == "error" and c.reason for c in result.cells), (name, result.cells)
    assert "not UTF-8" in results["binary"].cells[0].reason
    assert "not a Jupyter notebook" in results["truncated"].cells[0].reason
    assert "nested too deeply" in results["deep"].cells[0].reason
    assert "larger than 20 MB" in results["huge"].cells[0].reason
    assert results["wrong_types"].total == 0 and {c.status for c in results["wrong_types"].cells} == {"missing"}
    assert results["ten_thousand_cells"].total == FULL, format_table([results["ten_thousand_cells"]])
    assert results["deeply_nested_code"].total == FULL, format_table([results["deeply_nested_code"]])
    assert "too many nested parentheses" in notes_text(results["deeply_nested_code"]) or \
        "Recursion" in notes_text(results["deeply_nested_code"])


def test_read_student_cells_is_bounded():
    with pytest.raises(ValueError, match="nested too deeply"):
        read_student_cells(b"[" * 100_000)
    with pytest.raises(ValueError, match="at most"):
        read_student_cells(('{"cells": [' + ",".join(['{"cell_type": "code", "source": ""}'] * 20_001) + "]}").encode())


# --- the sandbox itself ------------------------------------------------------------------------------------


def test_auto_falls_back_to_the_guard_and_says_why_once(project, student_factory, monkeypatch):
    monkeypatch.setattr(sandboxes, "probe_bwrap", lambda: "bubblewrap (bwrap) is not installed (test)")
    sandboxes.resolve.cache_clear()
    messages = []
    try:
        results = grade(project, "02_calc", [student_factory("a"), student_factory("b")], jobs=2, timeout=60,
                        log=messages.append)
    finally:
        sandboxes.resolve.cache_clear()
    assert [r.sandbox for r in results] == ["guard", "guard"] and [r.total for r in results] == [FULL, FULL]
    assert len(messages) == 1 and "isolation is weaker" in messages[0] and "not installed (test)" in messages[0]


@pytest.mark.skipif(bwrap_problem() is not None, reason=f"bubblewrap cannot run here: {bwrap_problem()}")
def test_bwrap_command_shows_only_what_it_needs(project, tmp_path):
    layout = sandboxes.python_layout((str(project),))
    launch = sandboxes.launch(sandboxes.resolve("bwrap"), layout, tmp_path, "grade_harness.py")
    argv = launch.argv
    assert "--unshare-all" in argv and "--die-with-parent" in argv and "--clearenv" in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    mounted = [argv[i + 2] for i, flag in enumerate(argv) if flag in ("--ro-bind", "--bind")]
    inside_repository = [m for m in mounted if m == str(REPO) or m.startswith(str(REPO) + "/")]
    assert all(m.endswith("site-packages") or "/site-packages/" in m or m.endswith("/python3.11")
               for m in inside_repository), mounted
    assert not any(str(project) in m for m in mounted)
    assert not any(m.startswith(str(Path.home())) and not m.startswith(sys.base_prefix) for m in mounted)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
