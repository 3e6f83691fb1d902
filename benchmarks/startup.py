"""Where a build task's seconds go before and after its tests: process start-up, measured piece by piece.

Every `test:`, `integrate:` and `example:` task starts Python processes (a dev file under memray, pytest on
the test files). What they pay before the first test runs, and what tito does about it:

    python benchmarks/startup.py            # medians of 5 runs each (about a minute)
    python benchmarks/startup.py --runs 9

Rows: a bare interpreter; NumPy's import; pytest on a one-test file with every installed plugin loaded
(pytest's default) and with only pytest-memray (what the build does: PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
and `-p pytest_memray.plugin`); torch's import (paid once per parity test process); a script run plainly
under `memray run`, and through tito's wrapper, which starts memray's Tracker itself (the build's one
run); and a flame graph drawn by the
`memray flamegraph` command against the build's in-process call.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tito.steps.process import subprocess_env  # noqa: E402


def seconds_of(command: list[str], cwd: Path, runs: int, **extra_env: str) -> float:
    """Median wall time of `command`, started as the build starts it."""
    env = {**subprocess_env(REPO), **extra_env}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flamegraph_in_process(capture: Path, page: Path, runs: int) -> float:
    """Median time of the build's own flame-graph step (tito.steps.memory), after one call to import memray."""
    from tito.steps.memory import write_flamegraph

    write_flamegraph(REPO, capture, page, "startup")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        write_flamegraph(REPO, capture, page, "startup")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    python, runs = sys.executable, args.runs
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        (work / "script.py").write_text("import numpy as np\nprint(float((np.ones((64, 64)) @ np.ones((64, 64))).sum()))\n")
        rows.append(("python -c pass", seconds_of([python, "-c", "pass"], work, runs)))
        rows.append(("import numpy", seconds_of([python, "-c", "import numpy"], work, runs)))
        pytest_args = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_one.py"]
        rows.append(("pytest, one test, every plugin", seconds_of(pytest_args, work, runs)))
        if importlib.util.find_spec("pytest_memray"):
            rows.append(("pytest, one test, only pytest-memray (the build)",
                         seconds_of([*pytest_args[:-1], "-p", "pytest_memray.plugin", "test_one.py"], work, runs,
                                    PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")))
        if importlib.util.find_spec("torch"):
            rows.append(("import torch", seconds_of([python, "-c", "import torch"], work, runs)))
        rows.append(("python script.py (a matmul)", seconds_of([python, "script.py"], work, runs)))
        if importlib.util.find_spec("memray"):
            capture = work / "capture.bin"
            rows.append(("the same under `memray run`", seconds_of(
                [python, "-m", "memray", "run", "--quiet", "-f", "-o", str(capture), "script.py"], work, runs)))
            rows.append(("the same through tito's wrapper (the build)", seconds_of(
                [python, "-m", "tito.steps.profiled_script", "--capture", str(capture), "script.py"], work, runs)))
            rows.append(("memray flamegraph (a subprocess)",
                         seconds_of([python, "-m", "memray", "flamegraph", "--no-web", "-f", "-o",
                                     str(work / "page.html"), str(capture)], work, runs)))
            rows.append(("the same flame graph, in the build's process", flamegraph_in_process(capture, work / "p2.html", runs)))
    width = max(len(name) for name, _ in rows)
    print(f"{'what':{width}s}  seconds (median of {runs})")
    for name, value in rows:
        print(f"{name:{width}s}  {value:7.3f}")
    print(f"\nmachine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
