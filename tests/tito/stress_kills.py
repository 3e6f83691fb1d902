"""Kill builds at random moments; after each kill, one build must end exactly where a clean build ends.

    python tests/tito/stress_kills.py                      # 20 kills, seed 1 (about 10 minutes on 2 cores)
    python tests/tito/stress_kills.py --kills 5 --seed 7   # replay or vary
    TITO_STRESS_KILLS=20 python -m pytest tests/tito/test_kills.py -q -p no:cacheprovider   # the same, in pytest

The default test suite runs 3 kills (tests/tito/test_kills.py). A fixture tree is built once (a clean
build of variant "a"), and a second tree gives the clean build of variant "b": the two variants differ in
a comment inside the exported code of every module, so switching rewrites every export and notebook and
reruns every test (each with its memory profile) and the report. Then, for each kill:

  1. switch the sources to the other variant and start `doit` in its own process group;
  2. after a random delay (a fraction of a full build's time), send SIGKILL to doit alone (its children
     are orphaned and finish on their own, as after `kill -9`), SIGKILL to the whole group (a crash), or
     SIGINT to the whole group (Ctrl-C in a terminal);
  3. run `doit`: it must succeed and leave exports and release notebooks byte-identical to the clean
     build of that variant, the memory reports equal apart from their measurements (each report folder
     intact, the same rows and flame-graph links in reports/index.html), and no temporary file;
  4. run `doit` again: nothing may run.

The plan (delay and signal of every kill) comes from the seed alone, so a failure can be replayed; the
message of a failure names the seed and the kill. Timing still varies with the machine's load, so a
replay hits the same phase of the build, not necessarily the same instruction.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from treebuilder import MODULES, Tree  # noqa: E402

DEFAULT_SEED = 1
HOW = ("SIGKILL doit", "SIGKILL group", "SIGINT group")


@dataclass(frozen=True)
class Kill:
    number: int
    variant: str
    fraction: float  # of a full build's duration
    how: str

    def describe(self, seed: int) -> str:
        return (f"kill {self.number} (seed {seed}): variant {self.variant}, {self.how} after "
                f"{self.fraction:.2f} of a build; replay with `python tests/tito/stress_kills.py --seed {seed} "
                f"--kills {self.number}`")


def plan(seed: int, kills: int) -> list[Kill]:
    rng = random.Random(seed)
    return [Kill(n, "ab"[n % 2], rng.uniform(0.02, 0.98), rng.choice(HOW)) for n in range(1, kills + 1)]


def set_variant(tree: Tree, variant: str) -> None:
    for key in MODULES:
        name = key.split("_", 1)[1]
        path = tree.root / tree.dev(key)
        text = path.read_text()
        for old in (f"# build variant a\ndef {name}_value():", f"# build variant b\ndef {name}_value():",
                    f"def {name}_value():"):
            if old in text:
                text = text.replace(old, f"# build variant {variant}\ndef {name}_value():", 1)
                break
        path.write_text(text)


@dataclass
class Expected:
    outputs: dict[str, bytes]
    reports: dict[str, tuple]


def expected(tree: Tree) -> Expected:
    return Expected(tree.outputs(), tree.report_view())


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_build(tree: Tree, kill: Kill, duration: float) -> str:
    """Start a build and kill it as planned; returns its output (for the failure message)."""
    process = tree.popen_doit(new_session=True)
    deadline = time.monotonic() + kill.fraction * duration
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    if process.poll() is None:
        if kill.how == "SIGKILL doit":
            process.send_signal(signal.SIGKILL)
        else:
            os.killpg(process.pid, signal.SIGKILL if kill.how == "SIGKILL group" else signal.SIGINT)
    output, _ = process.communicate(timeout=300)
    # Orphans of `kill -9 doit` (a test run, memray) finish on their own; wait for them, so that the next
    # build does not share the two cores with them (their results are never used).
    limit = time.monotonic() + 300
    while _group_alive(process.pid) and time.monotonic() < limit:
        time.sleep(0.1)
    return output


def check_after(tree: Tree, want: Expected, context: str) -> None:
    result = tree.doit()
    assert result.code == 0, f"{context}\nthe build after the kill failed:\n{result.output}"
    outputs = tree.outputs()
    differ = sorted(p for p in set(outputs) | set(want.outputs) if outputs.get(p) != want.outputs.get(p))
    assert not differ, f"{context}\nnot what a clean build writes: {differ}\n{result.output}"
    reports = tree.report_view()
    assert reports == want.reports, f"{context}\nreports differ:\n{reports}\n!=\n{want.reports}"
    assert tree.leftovers() == [], f"{context}\ntemporary files left: {tree.leftovers()}"
    again = tree.doit()
    assert again.code == 0 and again.executed == set(), (f"{context}\nthe build after the kill:\n{result.output}\n"
                                                         f"not a no-op afterwards:\n{again.output}")


def run(workdir: Path, seed: int, kills: int, log=print) -> None:
    tree = Tree.create(workdir / "stressed")
    set_variant(tree, "a")
    start = time.monotonic()
    first = tree.doit()
    duration = time.monotonic() - start
    assert first.code == 0, first.output
    want = {"a": expected(tree)}  # the stressed tree's own first build is a clean build of variant a
    other = Tree.create(workdir / "clean-b")
    set_variant(other, "b")
    assert other.doit().code == 0
    want["b"] = expected(other)
    log(f"seed {seed}: {kills} kills; a clean build takes {duration:.1f} s")

    for kill in plan(seed, kills):
        set_variant(tree, kill.variant)
        output = kill_build(tree, kill, duration)
        context = f"{kill.describe(seed)}\noutput of the killed build:\n{output[-3000:]}"
        check_after(tree, want[kill.variant], context)
        log(f"  kill {kill.number}: {kill.how} at {kill.fraction:.2f} -> rebuilt as clean, then a no-op")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=int(os.environ.get("TITO_STRESS_KILLS", "20")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("TITO_STRESS_SEED", str(DEFAULT_SEED))))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tito-stress-") as folder:
        run(Path(folder), args.seed, args.kills)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
