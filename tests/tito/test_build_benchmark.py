"""benchmarks/build.py: the floor it measures a build against comes from the tasks doit says it ran.

No build runs here: the floor is derived from hand-written doit output on the fixture tree (not built),
and one floor process runs to show it gets the tasks' environment.
"""

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("build_benchmark", REPO / "benchmarks" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


bench = load_benchmark()

# A serial rebuild after an edit to 02_mid, as doit prints it (the example's own lines stream in between).
REBUILD_OUTPUT = """\
.  check:02_mid
.  check:public-names
-- check:layout
.  export:02_mid
.  test:02_mid
-- test:01_base
.  test:03_top
.  integrate:02_mid
.  integrate:03_top
.  example:uses_mid
--- examples/uses_mid/train.py
target reached
--- examples/uses_mid/train.py: passed in 0.1 s
.  report
.  release:02_mid
-- orphans
"""


def commands(runs):
    return [(run.group, run.task, " ".join(Path(part).name if part == sys.executable else part for part in run.command))
            for run in runs]


def test_the_floor_runs_each_file_of_the_executed_test_integrate_and_example_tasks(tree):
    executed = bench.executed_tasks(REBUILD_OUTPUT)
    assert executed[:2] == ["check:02_mid", "check:public-names"] and "test:01_base" not in executed
    python = Path(sys.executable).name
    plugins = " -p pytest_memray.plugin" if importlib.util.find_spec("pytest_memray") else ""
    pytest = f"{python} -m pytest -q -p no:cacheprovider{plugins}"   # as the build runs pytest
    assert commands(bench.floor_runs(tree.root, executed)) == [
        ("dev files", "test:02_mid", f"{python} modules/source/02_mid/mid_dev.py"),
        ("test files", "test:02_mid", f"{pytest} modules/source/02_mid/test_mid_core.py"),
        ("dev files", "test:03_top", f"{python} modules/source/03_top/top_dev.py"),
        ("test files", "test:03_top", f"{pytest} modules/source/03_top/test_top_core.py"),
        ("progressive tests", "integrate:02_mid", f"{pytest} tests/module_02/test_progressive_integration.py"),
        ("progressive tests", "integrate:03_top", f"{pytest} tests/module_03/test_progressive_integration.py"),
        ("examples", "example:uses_mid", f"{python} examples/uses_mid/train.py"),
    ]  # check, export, release and report tasks add nothing


def test_each_test_file_of_a_module_is_its_own_process(tree):
    tree.write("modules/source/02_mid/test_mid_more.py", "def test_more():\n    pass\n")
    runs = bench.floor_runs(tree.root, ["test:02_mid"])
    assert [run.command[-1] for run in runs] == ["modules/source/02_mid/mid_dev.py",
                                                 "modules/source/02_mid/test_mid_core.py",
                                                 "modules/source/02_mid/test_mid_more.py"]


def test_interleaved_parallel_output_still_counts_every_task():
    output = ".  integrate:04_side\n--- examples/uses_mid/train.py.  example:uses_mid\n\n.  report\ntarget reached\n"
    assert bench.executed_tasks(output) == ["integrate:04_side", "report"]
    assert bench.executed_tasks(output, interleaved=True) == ["integrate:04_side", "example:uses_mid", "report"]


def test_task_seconds_run_from_a_task_line_to_the_next_status_line():
    stamped = [(0.0, ".  check:01_base\n"), (0.5, ".  test:01_base\n"), (0.7, "1 passed\n"),
               (2.5, "-- export:01_base\n"), (2.6, ".  test:02_mid\n")]
    seconds = bench.task_seconds(stamped, end=4.0)
    assert seconds == {"check:01_base": 0.5, "test:01_base": 2.0, "test:02_mid": 1.4}
    assert bench.family_seconds(seconds) == {"check": (1, 0.5), "test": (2, 3.4)}


def test_targets():
    assert bench.verdict("full", 1.1) == ("<= 1.1", "pass")
    assert bench.verdict("rebuild", 1.15)[1] == "MISS"
    assert bench.verdict("parallel", 0.61)[1] == "MISS"
    assert bench.verdict("noop", 0.3) == ("< 0.3 s", "MISS")


def test_floor_processes_run_in_the_tree_with_the_tasks_environment(tree):
    tree.write("examples/env_probe/train.py",
               "import os, pathlib\npathlib.Path('probe.txt').write_text(os.environ['TITO_BUILD'] + ' '"
               " + os.environ['PYTHONPATH'].split(os.pathsep)[0])\n")
    floor = bench.measure_floor(tree.root, ["example:env_probe"])
    assert [run.code for run in floor.runs] == [0] and floor.seconds > 0
    assert (tree.root / "probe.txt").read_text() == f"1 {tree.root}"
    assert floor.groups() == {"examples": (1, floor.seconds)}
