"""Run tests, dev files and examples in subprocesses, and turn failures into clear doit messages.

Each run sees the project root first on PYTHONPATH, so it imports this tree's `tinytorch` even when
another copy is installed, and TITO_BUILD=1, so the root conftest does not start a nested doit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tito.model.layout import find_module
from tito.steps.status import record_test_result

TEST_TIMEOUT = 900  # seconds; a hung test fails its task instead of hanging the build
EXAMPLE_TIMEOUT = 1800
TAIL_LINES = 60


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


def run(root: Path, command: list[str], timeout: int, capture: bool = True) -> tuple[int, str, float]:
    """(exit code, combined output, seconds); exit code -1 means the time limit was hit."""
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=root, env=subprocess_env(root), timeout=timeout,
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


def pytest_command(files: list[Path]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, files)]


def failure(what: str, command: list[str], code: int, output: str, seconds: float, next_step: str):
    from doit.exceptions import TaskFailed

    shown = " ".join(Path(c).name if c == sys.executable else c for c in command)
    reason = f"timed out after {seconds:.0f} s" if code == -1 else f"exited with code {code}"
    return TaskFailed(f"{what}: `{shown}` {reason}.\n{tail(output)}\n\nNext: {next_step}")


def run_module_tests(root: str, key: str):
    """doit action for `test:<key>`: the dev file's inline tests, then the module's pytest files."""
    root_path = Path(root)
    module = find_module(root_path, key)
    dev = module.dev_file.relative_to(root_path)
    command = [sys.executable, str(dev)]
    code, output, seconds = run(root_path, command, TEST_TIMEOUT)
    if code != 0:
        record_test_result(root_path, key, False, output)
        return failure(f"inline tests of {dev} failed", command, code, output, seconds,
                       f"run `python {dev}` to see the failing test, fix it, then `doit test:{key}`.")
    print(f"{dev}: inline tests passed in {seconds:.1f} s")
    tests = [p.relative_to(root_path) for p in module.test_files]
    if not tests:
        record_test_result(root_path, key, True, "inline tests passed")
        return None
    command = pytest_command(tests)
    code, output, seconds = run(root_path, command, TEST_TIMEOUT)
    record_test_result(root_path, key, code == 0, tail(output, 1))
    if code != 0:
        return failure(f"tests of {key} failed", command, code, output, seconds,
                       f"run `python -m pytest {module.folder.relative_to(root_path)} -x` to debug, "
                       f"then `doit test:{key}`.")
    print(tail(output, 1))
    return None


def run_pytest_file(root: str, test_file: str, task_name: str):
    """doit action for `integrate:<key>`: one pytest file."""
    root_path = Path(root)
    command = pytest_command([Path(test_file)])
    code, output, seconds = run(root_path, command, TEST_TIMEOUT)
    if code != 0:
        return failure(f"{test_file} failed", command, code, output, seconds,
                       f"run `python -m pytest {test_file} -x`; a failure here with passing module tests "
                       f"usually means a lower module broke its contract. Then `doit {task_name}`.")
    print(tail(output, 1))
    return None


def run_example(root: str, script: str, task_name: str):
    """doit action for `example:<name>`: the script asserts its own target; its output streams live."""
    root_path = Path(root)
    command = [sys.executable, script]
    print(f"--- {script}", flush=True)
    code, output, seconds = run(root_path, command, EXAMPLE_TIMEOUT, capture=False)
    if code != 0:
        return failure(f"{script} missed its target or crashed", command, code, output, seconds,
                       f"read its output above, run `python {script}` to reproduce, then `doit {task_name}`.")
    print(f"--- {script}: passed in {seconds:.1f} s", flush=True)
    return None
