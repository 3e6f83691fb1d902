"""Every test file and dev file also runs as a plain script from its own folder, exit code 0 when it passes.

    cd modules/source/04_layers && python test_layers_core.py       # every modules/source/*/test_*.py
    cd modules/source/04_layers && python layers_dev.py             # every dev file
    cd tests/module_04 && python test_progressive_integration.py    # every progressive test
    python tests/run_all_modules.py

pytest never runs a file that way: it imports test files itself and puts tests/support/ on sys.path
through tests/conftest.py, so a file can pass under pytest and still fail as a script (a progressive
test importing `contract_tensor` without its own sys.path line did). Here each one runs as
`python <file name>` in a subprocess, with its own folder as the working directory, and must exit 0;
on failure the test shows the tail of the output.

The files are found by globbing when pytest collects, so a new module's files are covered without an
edit here. The subprocesses get TITO_BUILD=1 (the outer pytest already brought the exports up to date
through the root conftest; a nested doit would contend for its database), one BLAS thread, and the
project root first on PYTHONPATH.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 600  # seconds per script
TAIL_LINES = 60

# run_all_modules.py runs every module's test files again (all of them are run as scripts above), so it
# is checked on two modules: enough to prove discovery, selection, the pytest subprocess, the JUnit
# counts, the table and the exit code, without running every module test a second time (~1 min).
RUN_ALL_ARGS = ["--no-export", "01", "13"]


def _scripts() -> list[tuple[Path, list[str]]]:
    """(file, arguments) of every script, in curriculum order within each kind."""
    source = ROOT / "modules" / "source"
    files = [*sorted(source.glob("*/test_*.py")),
             *sorted(source.glob("*/*_dev.py")),
             *sorted((ROOT / "tests").glob("module_*/test_progressive_integration.py"))]
    scripts = [(f, []) for f in files]
    run_all = ROOT / "tests" / "run_all_modules.py"
    if run_all.is_file():
        scripts.append((run_all, RUN_ALL_ARGS))
    return scripts


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST"))}  # this pytest's, not the script's
    env["TITO_BUILD"] = "1"
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


def _tail(output: str) -> str:
    lines = output.rstrip().splitlines()
    return "\n".join(lines[-TAIL_LINES:])


def _torch_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


# A parity file (test_*_torch.py) skips itself under pytest where PyTorch is missing; run as a script, its
# module-level `pytest.importorskip` has no pytest to report the skip to, so that case is skipped here.
NEEDS_TORCH = pytest.mark.skipif(not _torch_installed(), reason="PyTorch is not installed (pip install torch==2.13.0)")
SCRIPTS = _scripts()
CASES = [pytest.param(f, args, id=f.relative_to(ROOT).as_posix(),
                      marks=[NEEDS_TORCH] if f.name.endswith("_torch.py") else [])
         for f, args in SCRIPTS]


@pytest.mark.parametrize("path, args", CASES)
def test_script(path, args):
    command = [sys.executable, path.name, *args]
    shown = f"cd {path.parent.relative_to(ROOT).as_posix()} && python {' '.join([path.name, *args])}"
    try:
        done = subprocess.run(command, cwd=path.parent, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as err:
        output = err.output.decode(errors="replace") if isinstance(err.output, bytes) else (err.output or "")
        pytest.fail(f"`{shown}` did not finish in {TIMEOUT} s; its last output:\n{_tail(output)}",
                    pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"`{shown}` exited with {done.returncode}; the last {TAIL_LINES} lines of its output:\n"
                    f"{_tail(done.stdout)}", pytrace=False)


def test_every_kind_of_script_is_found():
    """The globs above must keep matching: an empty or partial list would pass without checking anything."""
    names = [f.relative_to(ROOT).as_posix() for f, _ in SCRIPTS]
    assert any(n.startswith("modules/source/") and n.endswith("_dev.py") for n in names), names
    assert any(n.startswith("modules/source/") and "/test_" in n for n in names), names
    assert any(n.endswith("test_progressive_integration.py") for n in names), names
    assert "tests/run_all_modules.py" in names, names


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
