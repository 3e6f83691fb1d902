"""How fast is grading, and what does the sandbox cost?

1. The cost of one sandboxed run: the grading harness started in its sandbox (bubblewrap, then the
   in-process guard) with the module's preloads and one empty cell, against a bare
   `python -c "import numpy"` on the same machine (medians of --repeats runs each). The difference is
   what isolation adds per run of a notebook.
2. Throughput: --count copies of the module's reference-complete notebook (the dev file as a
   notebook: every graded cell runs and passes) graded with `--jobs 2` and on a local Dask cluster of
   2 worker processes (cluster start included), in submissions per minute; --rounds runs of each, in
   ABBA order, since the machine may be shared.

    python benchmarks/grading.py                          # 04_layers, 200 notebooks, both modes
    python benchmarks/grading.py --count 50 --module 01   # smaller
    python benchmarks/grading.py --skip-throughput        # only the per-run cost

Dask needs the grading extra (`pip install -e ".[grading]"`); without it that row is skipped.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tito.model.layout import find_module  # noqa: E402
from tito.teaching import grade as grading  # noqa: E402
from tito.teaching import sandbox as sandboxes  # noqa: E402


def bare_numpy() -> None:
    subprocess.run([sys.executable, "-c", "import numpy"], check=True)


def one_sandboxed_run(reference: grading.Reference, mode: str) -> None:
    """The harness in its sandbox, with the module's preloads and one cell that does nothing."""
    used = sandboxes.resolve(mode)
    host = Path(tempfile.mkdtemp(prefix=grading.SANDBOX_PREFIX))
    try:
        (host / "owner").write_text("0")
        grading.build_sandbox(reference, host, [{"kind": "code", "source": "pass", "nbgrader": {}}])
        steps = [{"index": 0, "kind": "code", "cell": 0, "source": "pass", "line": 1, "filename": "<cell>"}]
        run = grading.run_once(reference, used, host, steps, set(), grading.Options(sandbox=mode))
        if run.death is not None or 0 not in run.reported:
            raise SystemExit(f"the {mode} run failed: {run.death}")
    finally:
        shutil.rmtree(host, ignore_errors=True)


def completed_notebooks(module, count: int, folder: Path) -> list[Path]:
    import jupytext
    import nbformat

    first = folder / "s0000.ipynb"
    nbformat.write(jupytext.read(module.dev_file), first)
    paths = [first]
    for index in range(1, count):
        path = folder / f"s{index:04d}.ipynb"
        shutil.copy(first, path)
        paths.append(path)
    return paths


def throughput(key: str, paths: list[Path], **how) -> tuple[float, list]:
    start = time.perf_counter()
    results = grading.grade(REPO, key, paths, timeout=300, log=lambda message: None, **how)
    seconds = time.perf_counter() - start
    wrong = [r for r in results if r.total != r.max_total]
    if wrong:
        raise SystemExit(f"{len(wrong)} reference notebooks did not score full points: {wrong[0].cells}")
    return seconds, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", default="04_layers")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each mode, in ABBA order (default 2)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()

    module = find_module(REPO, args.module)
    reference = grading.load_reference(REPO, module.key)
    numbers: dict = {"module": module.key, "python": sys.version.split()[0]}

    print(f"Per-run cost ({module.key}'s preloads, one empty cell; median of {args.repeats}, interleaved):")
    runs = {"bare": bare_numpy}
    for mode in ("bwrap", "guard"):
        try:
            sandboxes.resolve(mode)
        except sandboxes.SandboxUnavailable as error:
            print(f"  {mode:5}: not available here ({error})")
            continue
        runs[mode] = lambda mode=mode: one_sandboxed_run(reference, mode)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for action in runs.values():  # warm the page cache
        action()
    for _ in range(args.repeats):  # interleaved, so a busy moment of the machine hits every kind alike
        for name, action in runs.items():
            start = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - start)
    bare = statistics.median(times["bare"])
    numbers["bare_numpy_s"] = bare
    print(f"  bare `python -c \"import numpy\"`        {bare:.3f} s")
    for mode in ("bwrap", "guard"):
        if mode in times:
            seconds = statistics.median(times[mode])
            numbers[f"{mode}_run_s"] = seconds
            print(f"  one sandboxed run, {mode:5}             {seconds:.3f} s  ({seconds - bare:+.3f} s against bare)")

    if not args.skip_throughput:
        folder = Path(tempfile.mkdtemp(prefix="tito-grading-bench-"))
        try:
            paths = completed_notebooks(module, args.count, folder)
            print(f"\nThroughput: {args.count} reference-complete {module.key} notebooks, sandbox "
                  f"{sandboxes.resolve('auto').kind}:")
            try:
                import distributed  # noqa: F401
            except ImportError:
                print("  --cluster local:2: skipped, dask.distributed is not installed")
                orders = ["jobs"] * args.rounds
            else:
                orders = ["jobs", "dask", "dask", "jobs"] * (args.rounds // 2) + ["jobs", "dask"] * (args.rounds % 2)
            how = {"jobs": {"jobs": 2}, "dask": {"cluster": "local:2"}}
            seconds: dict[str, list[float]] = {"jobs": [], "dask": []}
            cells: dict[str, list] = {}
            for kind in orders:  # ABBA: a slow spell of the shared machine costs both alike
                spent, results = throughput(module.key, paths, **how[kind])
                seconds[kind].append(spent)
                cells.setdefault(kind, [r.cells for r in results])
                print(f"  {'--jobs 2' if kind == 'jobs' else '--cluster local:2':18} {spent:7.1f} s  "
                      f"{60 * args.count / spent:6.1f} submissions/min", flush=True)
            for kind in ("jobs", "dask"):
                if seconds[kind]:
                    numbers[f"{kind}_s"] = statistics.mean(seconds[kind])
                    numbers[f"{kind}_per_minute"] = 60 * args.count / numbers[f"{kind}_s"]
            if seconds["dask"]:
                same = cells["jobs"] == cells["dask"]
                print(f"  mean: --jobs 2 {numbers['jobs_per_minute']:.1f}/min, --cluster local:2 "
                      f"{numbers['dask_per_minute']:.1f}/min: Dask takes {numbers['dask_s'] / numbers['jobs_s']:.2f}x "
                      f"the time of --jobs 2; results {'identical' if same else 'DIFFERENT'}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
