"""How fast is the build graph on the real tree, against the least any build must do?

The floor of a build is one plain run of every script and test file that build ran: the dev file and
each test file of every `test:NN_x` task, the progressive test of every `integrate:NN_x` task, and
`examples/<name>/train.py` of every `example:<name>` task, each as its own process, one after another,
with the tasks' environment (tito.steps.process.subprocess_env; pytest with the runner's PYTEST_ENV and
command line, so the floor gets the same plugin savings), in the tree the build just built. The
build must run each of these at least once, so no build of the same work can be faster by much; the
start-up of each process is counted in the floor because each build task pays it too. The files come
from the tasks doit says it executed (its `.  task` lines), so a rebuild has its own, smaller floor.
Other task families (check, export, release, ...) add nothing to the floor: their cost is overhead.

One run, each build in a fresh copy of the tracked tree (no .venv, no doit database, no exports):

1. a serial full build (`doit`): wall time and tasks run,
2. a no-op `doit` right after it (median of a few),
3. the floor of that full build,
4. an edit to a module's exported code (04_layers by default) and a serial rebuild, then its floor,
5. in a second fresh copy, a full build with `doit -n 2`, against the serial one.

It prints one table (measure | value | floor | ratio | target | ok), the floors' breakdown, and the
seconds per task family (from the moments doit printed each task's line, serial builds only).
The targets are printed beside the values, not asserted.

    python benchmarks/build.py                          # everything (a quarter of an hour)
    python benchmarks/build.py --json /tmp/build.json   # ... and the numbers as JSON
    python benchmarks/build.py --only rebuild --modules 13_kernels   # one rebuild (after a full build)
    python benchmarks/build.py --only noop              # the no-op (after a full build in a copy)
    python benchmarks/build.py --noop-only              # the no-op on this checkout, in place
    python benchmarks/build.py --tree /tmp/small        # a copy of another tree (its own dodo.py and tito/)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tito.model.graph import Graph  # noqa: E402
from tito.model.layout import example_scripts  # noqa: E402
from tito.steps.process import subprocess_env  # noqa: E402
from tito.steps.runner import PYTEST_ENV, pytest_command  # noqa: E402

EXECUTED = re.compile(r"^\.  (\S+)$", re.MULTILINE)  # doit's console line for a task it executes
# Under `doit -n 2` another process's unfinished line may come first: "--- examples/x/train.py.  report".
INTERLEAVED = re.compile(r"\.  ([a-z][\w-]*(?::\S+)?)$", re.MULTILINE)
STATUS = re.compile(r"^(?:\.  |-- |!! )(\S+)$")  # executed, up to date, ignored: where one task ends
NOOP_REPEATS = 5
FLOOR_TIMEOUT = 1800  # seconds for one floor process; the build's own limits are of this order
SKIPPED_IN_COPY = (".venv/", ".git/")
FLOOR_GROUPS = ("dev files", "test files", "progressive tests", "examples")
TARGETS = {  # measure -> (limit, inclusive); printed beside the measured ratio (or seconds)
    "full": (1.1, True),
    "rebuild": (1.1, True),
    "parallel": (0.6, True),
    "noop": (0.3, False),
}


# --- running doit -----------------------------------------------------------------------------------------


@dataclass
class Build:
    seconds: float
    executed: list[str]
    task_seconds: dict[str, float]  # serial builds: from a task's line to the next task's line
    output: str = field(repr=False)

    @property
    def tasks(self) -> int:
        return len(self.executed)


def doit(root: Path, *args: str, parallel: bool = False) -> Build:
    """One doit run, timed end to end; its output is read as it comes, to time each task."""
    # -u: doit writes each of its lines at once, when it prints it (the processes it starts are not affected).
    command = [sys.executable, "-u", "-m", "doit", *args]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=root, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stamped = []
    for line in process.stdout:
        stamped.append((time.perf_counter() - start, line))
    process.wait()
    seconds = time.perf_counter() - start
    output = "".join(line for _, line in stamped)
    if process.returncode != 0:
        raise SystemExit(f"doit {' '.join(args)} failed in {root}:\n{output[-4000:]}")
    if parallel:
        return Build(seconds, executed_tasks(output, interleaved=True), {}, output)
    return Build(seconds, executed_tasks(output), task_seconds(stamped, seconds), output)


def executed_tasks(output: str, interleaved: bool = False) -> list[str]:
    """The tasks a doit run executed, in order, from its console output (`interleaved`: of `doit -n 2`)."""
    return (INTERLEAVED if interleaved else EXECUTED).findall(output)


def task_seconds(stamped: list[tuple[float, str]], end: float) -> dict[str, float]:
    """Seconds of each executed task of a serial run: from its `.  ` line to the next task's line (or the end)."""
    marks = [(at, line.rstrip("\n")) for at, line in stamped if STATUS.match(line.rstrip("\n"))]
    seconds = {}
    for (at, line), (after, _) in zip(marks, [*marks[1:], (end, "")]):
        if line.startswith(".  "):
            seconds[line[3:]] = after - at
    return seconds


def family_seconds(seconds: dict[str, float]) -> dict[str, tuple[int, float]]:
    """(tasks, seconds) per family: the part of a task's name before its first colon."""
    families: dict[str, list[float]] = defaultdict(list)
    for name, spent in seconds.items():
        families[name.split(":", 1)[0]].append(spent)
    return {family: (len(times), sum(times)) for family, times in sorted(families.items())}


# --- the tree -----------------------------------------------------------------------------------------------


def tree_files(source: Path) -> list[str]:
    """The files of the tree to measure: git's tracked and unignored files, or every file outside git."""
    if (source / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                                cwd=source, capture_output=True, check=True).stdout.decode()
        files = [rel for rel in listed.split("\0") if rel]
    else:
        files = [str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()]
    return [rel for rel in files if not rel.startswith(SKIPPED_IN_COPY)]


def copy_tree(source: Path, destination: Path) -> Path:
    for rel in tree_files(source):
        path = source / rel
        if path.is_file():
            target = destination / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return destination


def edit_exported_code(root: Path, key: str) -> str:
    """Add a harmless line to the first exported cell of a module: its export's bytes change."""
    dev = Graph.load(root).module(key).dev_file
    text = dev.read_text()
    marker = "#| export\n"
    position = text.index(marker) + len(marker)
    dev.write_text(text[:position] + "_BENCHMARK_EDIT = 1  # added by benchmarks/build.py\n" + text[position:])
    return str(dev.relative_to(root))


# --- the floor ----------------------------------------------------------------------------------------------


@dataclass
class FloorRun:
    group: str  # one of FLOOR_GROUPS
    task: str  # the build task that runs this file
    command: list[str]
    seconds: float = 0.0
    code: int | None = None
    output: str = field(default="", repr=False)


def floor_runs(root: Path, executed: list[str]) -> list[FloorRun]:
    """The processes of the floor of a build that executed `executed` (task names) in the tree at `root`."""
    graph = Graph.load(root)
    examples = {script.parent.name: script for script in example_scripts(root)}
    python = sys.executable

    def rel(path: Path) -> Path:
        return path.relative_to(root)

    runs = []
    for task in executed:
        family, _, name = task.partition(":")
        if family == "test":
            module = graph.module(name)
            runs.append(FloorRun("dev files", task, [python, str(rel(module.dev_file))]))
            runs += [FloorRun("test files", task, pytest_command([rel(test)])) for test in module.test_files]
        elif family == "integrate" and name:
            runs.append(FloorRun("progressive tests", task, pytest_command([rel(graph.module(name).progressive_test)])))
        elif family == "example":
            runs.append(FloorRun("examples", task, [python, str(rel(examples[name]))]))
    return runs


@dataclass
class Floor:
    runs: list[FloorRun]

    @property
    def seconds(self) -> float:
        return sum(run.seconds for run in self.runs)

    @property
    def failed(self) -> list[FloorRun]:
        return [run for run in self.runs if run.code != 0]

    def groups(self) -> dict[str, tuple[int, float]]:
        """(processes, seconds) per group."""
        return {group: (len(runs), sum(run.seconds for run in runs))
                for group in FLOOR_GROUPS if (runs := [run for run in self.runs if run.group == group])}

    def as_json(self) -> dict:
        return {"seconds": self.seconds, "processes": len(self.runs), "failed": len(self.failed),
                "groups": {g: {"processes": n, "seconds": s} for g, (n, s) in self.groups().items()},
                "runs": [{k: v for k, v in asdict(run).items() if k != "output"} for run in self.runs]}


def measure_floor(root: Path, executed: list[str]) -> Floor:
    """Run the floor's processes one at a time, each timed from start to exit, as the tasks run them."""
    env = subprocess_env(root)
    runs = floor_runs(root, executed)
    for run in runs:
        start = time.perf_counter()
        try:
            run_env = {**env, **(PYTEST_ENV if run.command[1:3] == ["-m", "pytest"] else {})}
            done = subprocess.run(run.command, cwd=root, env=run_env, timeout=FLOOR_TIMEOUT, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            run.code, run.output = done.returncode, done.stdout
        except subprocess.TimeoutExpired:
            run.code = -1
        run.seconds = time.perf_counter() - start
    return Floor(runs)


# --- one benchmark run --------------------------------------------------------------------------------------


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def build_json(build: Build) -> dict:
    return {"seconds": build.seconds, "tasks": build.tasks, "executed": build.executed,
            "task_seconds": build.task_seconds}


def measure(source: Path, only: set[str], modules: list[str], tasks: list[str]) -> dict:
    """Every selected measurement; a serial full build always runs first (the others need it)."""
    results: dict = {"tree": str(source), "python": sys.version.split()[0], "cpus": os.cpu_count(),
                     "machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "only": sorted(only), "doit_args": tasks}
    with tempfile.TemporaryDirectory(prefix="tinytorch-build-bench-") as scratch:
        root = copy_tree(source, Path(scratch) / "serial")
        say(f"serial full build in {root} ...")
        full = doit(root, *tasks)
        say(f"  {full.seconds:.1f} s, {full.tasks} tasks")
        results["full"] = build_json(full)
        floors = {}
        if "noop" in only:
            times = [doit(root, *tasks).seconds for _ in range(NOOP_REPEATS)]
            say(f"no-op: {', '.join(f'{t:.2f}' for t in times)} s")
            results["noop"] = {"times": times, "median": statistics.median(times)}
        if "full" in only:
            say(f"floor of the full build ({len(floor_runs(root, full.executed))} processes) ...")
            floors["full"] = measure_floor(root, full.executed)
            say(f"  {floors['full'].seconds:.1f} s")
            results["full"]["floor"] = floors["full"].as_json()
        if "rebuild" in only:
            results["rebuilds"] = []
            for key in modules:
                edited = edit_exported_code(root, key)
                say(f"rebuild after editing {edited} ...")
                rebuild = doit(root, *tasks)
                say(f"  {rebuild.seconds:.1f} s, {rebuild.tasks} tasks; its floor ...")
                floors[key] = measure_floor(root, rebuild.executed)
                say(f"  {floors[key].seconds:.1f} s")
                results["rebuilds"].append({"module": key, "edited": edited, **build_json(rebuild),
                                            "floor": floors[key].as_json()})
        if "parallel" in only:
            shutil.rmtree(root)  # the disk holds one copy at a time
            root = copy_tree(source, Path(scratch) / "parallel")
            say(f"doit -n 2 full build in {root} ...")
            parallel = doit(root, "-n", "2", *tasks, parallel=True)
            say(f"  {parallel.seconds:.1f} s, {parallel.tasks} tasks")
            results["parallel"] = {"seconds": parallel.seconds, "tasks": parallel.tasks,
                                   "executed": parallel.executed, "serial_seconds": full.seconds,
                                   "ratio": parallel.seconds / full.seconds}
    for name, floor in floors.items():
        for run in floor.failed:
            say(f"WARNING: a floor process of {name} failed ({run.code}): {' '.join(run.command)}\n{run.output[-2000:]}")
    results["rows"] = table_rows(results, only)
    return results


# --- the report ---------------------------------------------------------------------------------------------


def verdict(measure: str, value: float) -> tuple[str, str]:
    """(target, pass/miss) of one measured ratio (or, for the no-op, seconds)."""
    limit, inclusive = TARGETS[measure]
    unit = " s" if measure == "noop" else ""
    ok = value <= limit if inclusive else value < limit
    return f"{'<=' if inclusive else '<'} {limit:g}{unit}", "pass" if ok else "MISS"


def table_rows(results: dict, only: set[str]) -> list[dict]:
    rows = []

    def row(measure: str, label: str, value: str, floor: str, ratio: float) -> None:
        target, ok = verdict(measure, ratio)
        shown = f"{ratio:.3f} s" if measure == "noop" else f"{ratio:.2f}"
        rows.append({"measure": label, "value": value, "floor": floor, "ratio": "" if measure == "noop" else shown,
                     "target": target, "ok": ok, "number": ratio})

    def against_floor(measure: str, label: str, build: dict) -> None:
        floor = build["floor"]
        row(measure, label, f"{build['seconds']:.1f} s, {build['tasks']} tasks",
            f"{floor['seconds']:.1f} s, {floor['processes']} processes"
            + (f" ({floor['failed']} FAILED)" if floor["failed"] else ""),
            build["seconds"] / floor["seconds"] if floor["seconds"] else float("inf"))

    if "full" in only:
        against_floor("full", "full build (serial doit)", results["full"])
    for rebuild in results.get("rebuilds", []):
        against_floor("rebuild", f"rebuild after exported edit of {rebuild['module']}", rebuild)
    if "parallel" in results:
        parallel = results["parallel"]
        row("parallel", "full build, doit -n 2", f"{parallel['seconds']:.1f} s, {parallel['tasks']} tasks",
            f"serial: {parallel['serial_seconds']:.1f} s", parallel["ratio"])
    if "noop" in results:
        noop = results["noop"]
        row("noop", f"no-op doit (median of {len(noop['times'])})", f"{noop['median']:.3f} s", "", noop["median"])
    return rows


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """A rich table on a terminal (when rich is installed), aligned plain text otherwise."""
    if sys.stdout.isatty():
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            pass
        else:
            table = Table(*headers, title=title, title_justify="left")
            for cells in rows:
                table.add_row(*cells)
            Console().print(table)
            return
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    print(f"\n{title}")
    for cells in [headers, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip())


def report(results: dict) -> None:
    rows = results["rows"]
    if rows:
        print_table(f"build against its floor ({results['cpus']} CPUs, Python {results['python']})",
                    ["measure", "value", "floor", "ratio", "target", "ok"],
                    [[r["measure"], r["value"], r["floor"], r["ratio"], r["target"], r["ok"]] for r in rows])
    floors = [("full build", results["full"]), *((f"rebuild {r['module']}", r) for r in results.get("rebuilds", []))]
    floors = [(name, build["floor"]) for name, build in floors if "floor" in build]
    if floors:
        print_table("floor breakdown: seconds (processes), serial, start-up included",
                    ["group", *(name for name, _ in floors)],
                    [[group, *(f"{floor['groups'][group]['seconds']:.1f} ({floor['groups'][group]['processes']})"
                               if group in floor["groups"] else "-" for _, floor in floors)]
                     for group in FLOOR_GROUPS])
    builds = [("full build", results["full"])] if "full" in results["only"] else []
    builds += [(f"rebuild {r['module']}", r) for r in results.get("rebuilds", [])]
    spent = [(name, family_seconds(build["task_seconds"])) for name, build in builds]
    families = sorted({family for _, per in spent for family in per})
    if families:
        rows = [[family, *(f"{per[family][1]:.1f} ({per[family][0]})" if family in per else "-" for _, per in spent)]
                for family in families]
        rows.append(["all tasks / wall", *(f"{sum(s for _, s in per.values()):.1f} / {build['seconds']:.1f}"
                                           for (_, per), (_, build) in zip(spent, builds))])
        print_table("task seconds (tasks) per family, serial builds, from the times doit printed each task",
                    ["family", *(name for name, _ in spent)], rows)
    for rebuild in results.get("rebuilds", []):
        print(f"\nedited {rebuild['edited']}; tasks run after the edit:\n  " + " ".join(rebuild["executed"]))


def noop_in_place(root: Path, tasks: list[str]) -> int:
    """The old --noop-only: build this checkout if needed, then time no-op runs of it, in place."""
    doit(root, *tasks)
    times = [doit(root, *tasks).seconds for _ in range(NOOP_REPEATS)]
    median = statistics.median(times)
    target, ok = verdict("noop", median)
    print(f"no-op doit on {root}: median {median:.3f} s over {len(times)} runs "
          f"(min {min(times):.3f}, max {max(times):.3f}); target {target}: {ok}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(TARGETS),
                        help="measure only this (repeatable; default: all); a serial full build always runs first")
    parser.add_argument("--modules", nargs="+", default=["04_layers"],
                        help="modules whose exported code is edited, one rebuild (and floor) each")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--tree", type=Path, default=REPO, help="the tree to copy (default: this checkout)")
    parser.add_argument("--tasks", nargs="*", default=[], help="doit task names (default: everything)")
    parser.add_argument("--noop-only", action="store_true",
                        help="time a no-op build of the tree in place (no copy; builds it first if needed)")
    args = parser.parse_args()
    source = args.tree.resolve()
    if args.noop_only:
        return noop_in_place(source, args.tasks)
    results = measure(source, set(args.only or TARGETS), args.modules, args.tasks)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nnumbers written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
