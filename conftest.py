"""Make `pytest` at the root test the current code.

Before collecting, bring every export up to date through doit (`doit export`), so tests never run
against stale or missing generated files. Tasks that run pytest themselves set TITO_BUILD=1: they were
started by doit, which already did this, and a nested doit would contend for its database.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

# Small matrices are several times slower with BLAS threads fighting over two cores, and results then
# depend on the thread count. The doit tasks set the same default (tito.runner).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def pytest_configure(config):
    if os.environ.get("TITO_BUILD") or hasattr(config, "workerinput"):  # inside doit, or an xdist worker
        return
    command = [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), "export", "orphans"]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        pytest.exit(f"`doit export` failed, so the package cannot be tested:\n{done.stdout}\n"
                    "Fix the error above (it names the file and line), then run pytest again.", returncode=1)
