"""Clone this repository N times and run the README's Quick start in each clone: the whole build, then pytest.

A test that fails by chance fails some of these runs; a clean streak of N is the evidence that the build
and the suite are deterministic on a fresh machine. Not collected by pytest and not part of `doit`: each
run takes a quarter of an hour on two cores.

    python tests/fresh_clone_runs.py                      # 5 runs, one after another
    python tests/fresh_clone_runs.py --runs 3 --torch     # with PyTorch in each venv (the parity tests run)
    python tests/fresh_clone_runs.py --venv .venv         # reuse one venv (its tinytorch is editable: the
                                                          # clone's own code still runs, PYTHONPATH first)

Each run: `git clone` of HEAD into a fresh temporary folder; unless --venv, the Quick start's first
command (`python3 -m venv .venv && .venv/bin/python -m pip install -e ".[dev,examples]"`, plus
`pip install torch==2.13.0` with --torch); `doit` (the full build); `python -m pytest` (the README's test
command). Prints each step's time and result, stops at the first failure with the tail of its output,
and exits 1 if any run failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"


def step(name: str, command: list[str], cwd: Path, env: dict, log: Path) -> bool:
    start = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    print(f"    {name:10s} {'ok    ' if done.returncode == 0 else 'FAILED'} {seconds:7.1f} s", flush=True)
    return done.returncode == 0


def one_run(number: int, venv: Path | None, torch: bool, keep: bool, logs: Path) -> bool:
    folder = Path(tempfile.mkdtemp(prefix=f"tinytorch-fresh-{number}-"))
    clone = folder / "tinytorch"
    log = logs / f"run-{number}.log"
    env = {k: v for k, v in os.environ.items() if k not in ("TITO_BUILD", "PYTHONPATH", "VIRTUAL_ENV")}
    print(f"run {number}: {clone} (log: {log})", flush=True)
    ok = step("clone", ["git", "clone", "--quiet", str(ROOT), str(clone)], folder, env, log)
    if ok and venv is None:
        ok = step("install", ["sh", "-c", 'python3 -m venv .venv && .venv/bin/python -m pip install --quiet '
                              '--disable-pip-version-check -e ".[dev,examples]"'], clone, env, log)
        if ok and torch:
            ok = step("torch", [".venv/bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                TORCH], clone, env, log)
        python = clone / ".venv" / "bin" / "python"
    else:
        python = venv / "bin" / "python"
    if ok:
        ok = step("doit", [str(python), "-m", "doit"], clone, env, log)
    if ok:
        ok = step("pytest", [str(python), "-m", "pytest"], clone, env, log)
    if not ok:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        print("\n".join("      " + line for line in tail), flush=True)
    if ok and not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--venv", type=Path, help="use this virtualenv instead of making one per clone")
    parser.add_argument("--torch", action="store_true", help=f"pip install {TORCH} into each new venv")
    parser.add_argument("--keep", action="store_true", help="keep the clones of passing runs too")
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()) / "tinytorch-fresh-runs")
    args = parser.parse_args(argv)
    args.logs.mkdir(parents=True, exist_ok=True)
    venv = args.venv.resolve() if args.venv else None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True, capture_output=True).stdout
    print(f"{args.runs} fresh clones of {commit.strip()}, one after another", flush=True)
    start = time.perf_counter()
    passed = 0
    for number in range(1, args.runs + 1):
        if not one_run(number, venv, args.torch, args.keep, args.logs):
            print(f"\nrun {number} failed after {passed} passing run(s); its clone is kept for a look")
            return 1
        passed += 1
    print(f"\n{passed} of {args.runs} runs passed in a row ({(time.perf_counter() - start) / 60:.0f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
