"""How fast is the build graph on the real tree?

Copies the repository (tracked files only) into a temporary folder and measures, with doit's own
output counting the tasks that ran:

1. a full build from nothing (`doit`),
2. a no-op build right after it,
3. a rebuild after an edit to one module's exported code, for each module named (by default 04_layers,
   which most of the curriculum stands on, and 13_kernels, which nothing imports).

    python benchmarks/build.py                 # all three (a full build takes minutes)
    python benchmarks/build.py --noop-only     # just the no-op time, on this checkout, in place
    python benchmarks/build.py --modules 13_kernels --tasks export test integrate   # a smaller graph
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXECUTED = re.compile(r"^\.  (\S+)", re.MULTILINE)


def doit(root: Path, *args: str) -> tuple[float, int, str]:
    """(seconds, tasks executed, output) of one doit run."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "doit", *args], cwd=root, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"doit {' '.join(args)} failed in {root}:\n{done.stdout[-4000:]}")
    return seconds, len(EXECUTED.findall(done.stdout)), done.stdout


def copy_tracked_tree(destination: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           text=True, capture_output=True, check=True).stdout.split()
    for rel in files:
        source = REPO / rel
        if source.is_file():
            target = destination / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def edit_exported_code(root: Path, key: str) -> str:
    """Add a harmless line to the first exported cell of a module: its export's bytes change."""
    folder = root / "modules" / "source" / key
    dev = folder / f"{key.split('_', 1)[1]}_dev.py"
    text = dev.read_text()
    marker = "#| export\n"
    position = text.index(marker) + len(marker)
    dev.write_text(text[:position] + "_BENCHMARK_EDIT = 1  # added by benchmarks/build.py\n" + text[position:])
    return str(dev.relative_to(root))


def noop_times(root: Path, tasks: list[str], repeats: int = 5) -> list[float]:
    return [doit(root, *tasks)[0] for _ in range(repeats)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noop-only", action="store_true", help="measure a no-op build of this checkout")
    parser.add_argument("--modules", nargs="+", default=["04_layers", "13_kernels"],
                        help="modules whose exported code is edited, one rebuild each")
    parser.add_argument("--tasks", nargs="*", default=[], help="doit task names (default: everything)")
    args = parser.parse_args()

    if args.noop_only:
        doit(REPO, *args.tasks)  # make sure it is built
        times = noop_times(REPO, args.tasks)
        print(f"no-op doit on {REPO}: median {statistics.median(times):.3f} s over {len(times)} runs "
              f"(min {min(times):.3f}, max {max(times):.3f})")
        return 0

    with tempfile.TemporaryDirectory(prefix="tinytorch-build-bench-") as scratch:
        root = copy_tracked_tree(Path(scratch))
        print(f"copied the tracked tree to {root}")
        rows = []
        seconds, count, _ = doit(root, *args.tasks)
        rows.append(("full build from nothing", seconds, count))
        times = noop_times(root, args.tasks)
        rows.append((f"no-op build (median of {len(times)})", statistics.median(times), 0))
        reruns = {}
        for module in args.modules:
            edited = edit_exported_code(root, module)
            seconds, count, output = doit(root, *args.tasks)
            rows.append((f"rebuild after editing exported code of {module}", seconds, count))
            reruns[edited] = EXECUTED.findall(output)

    print(f"\n{'build':<55} {'seconds':>9} {'tasks run':>10}")
    for label, seconds, count in rows:
        print(f"{label:<55} {seconds:>9.2f} {count:>10}")
    for edited, tasks in reruns.items():
        print(f"\nedited {edited}; tasks run after the edit:\n  " + " ".join(tasks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
