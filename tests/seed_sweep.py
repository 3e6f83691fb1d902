"""Run the tests (or the examples) under many seeds, to show that none of them passes by luck.

Not collected by pytest (the name does not start with test_), and not part of the default `doit` build: a
full sweep takes about an hour of CPU. Three modes:

    python tests/seed_sweep.py                      # every module and progressive test, seeds 0..199
    python tests/seed_sweep.py --seeds 50 --jobs 2 modules/source/06_spatial
    python tests/seed_sweep.py --seeds 1000:1200 -k max       # seeds 1000..1199; extra args go to pytest
    python tests/seed_sweep.py --examples 50        # each examples/*/train.py under TINYTORCH_SEED 0..49
    python tests/seed_sweep.py --audit              # which tests draw random numbers, and from what

Tests: one pytest process per seed, with TINYTORCH_TEST_SEED set to it. The root conftest derives every
random source of every test from that knob and the test id (see "Randomness in tests" in CONTRIBUTING.md),
so each seed is a fresh draw of all the suite's random data, weights, shuffles and masks. Prints each test
that failed with the seeds it failed under, and exits 1 if any did.

Examples: each example reads TINYTORCH_SEED (its data split or data, initial weights, shuffling) and asserts
its own target; prints, per example, the fraction of seeds that met it and the seeds that did not.

Audit: runs the tests once, in this process, and counts the tests that draw from each random source (NumPy
Generators, NumPy's legacy global state, Python's `random`, PyTorch's default generator): the tests that the
sweep exercises.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = ["modules/source", *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("tests/module_*"))]
OUTCOME = re.compile(r"^(FAILED|ERROR) (\S+)", re.MULTILINE)
COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped)")


def environment(**extra: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["TITO_BUILD"] = "1"                  # exports are up to date (run `doit export` first): no nested doit
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def parse_seeds(text: str) -> range:
    """"200" -> 0..199; "1000:1200" -> 1000..1199."""
    if ":" in text:
        start, stop = text.split(":")
        return range(int(start), int(stop))
    return range(int(text))


# ---- tests -------------------------------------------------------------------------------------

def run_tests_once(seed: int, pytest_args: list[str], strict: bool = True) -> dict:
    # RuntimeWarnings (overflow, invalid value) become errors: a draw that sends a computation to inf or NaN
    # can pass an assert_allclose vacuously (NaN == NaN there), so it counts as a failure of that seed.
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", "--tb=line",
               *(["-W", "error::RuntimeWarning"] if strict else []), *pytest_args]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environment(TINYTORCH_TEST_SEED=str(seed)),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    counts = defaultdict(int)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    for number, kind in COUNTS.findall(summary):
        counts[kind.rstrip("s") if kind.startswith("error") else kind] += int(number)
    failed = sorted(set(node for _, node in OUTCOME.findall(done.stdout)))
    if done.returncode not in (0, 1) or (done.returncode == 1 and not failed):
        failed.append(f"<pytest exited with code {done.returncode}: {summary or 'no summary'}>")
    return {"seed": seed, "failed": failed, "passed": counts["passed"],
            "ran": counts["passed"] + counts["failed"] + counts["error"],
            "seconds": time.perf_counter() - start, "output": done.stdout if failed else ""}


def sweep_tests(seeds: range, jobs: int, pytest_args: list[str], log: Path | None, strict: bool = True) -> int:
    print(f"pytest {' '.join(pytest_args)}\nunder TINYTORCH_TEST_SEED {seeds.start}..{seeds.stop - 1} "
          f"({len(seeds)} seeds, {jobs} at a time)", flush=True)
    failures: dict[str, list[int]] = defaultdict(list)
    runs = 0
    start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        for result in pool.map(lambda s: run_tests_once(s, pytest_args, strict), seeds):
            runs += result["ran"]
            for node in result["failed"]:
                failures[node].append(result["seed"])
            print(f"seed {result['seed']:5d}: {result['ran']} tests, {len(result['failed'])} failed "
                  f"({result['seconds']:.0f} s){'  ' + ', '.join(result['failed']) if result['failed'] else ''}",
                  flush=True)
            if log is not None:
                with log.open("a") as out:
                    out.write(json.dumps(result) + "\n")
    print(f"\n{runs} test runs under {len(seeds)} seeds in {time.perf_counter() - start:.0f} s")
    if not failures:
        print("no test failed under any seed")
        return 0
    print(f"{len(failures)} tests failed under some seed:")
    for node, failed_seeds in sorted(failures.items(), key=lambda item: -len(item[1])):
        print(f"  {len(failed_seeds):4d}/{len(seeds)}  {node}  seeds {failed_seeds[:20]}"
              f"{' ...' if len(failed_seeds) > 20 else ''}")
    print("reproduce one with: TINYTORCH_TEST_SEED=<seed> python -m pytest <test id>")
    return 1


# ---- examples ----------------------------------------------------------------------------------

def run_example_once(script: Path, seed: int, timeout: int) -> dict:
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=environment(TINYTORCH_SEED=str(seed)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        code, output = done.returncode, done.stdout
    except subprocess.TimeoutExpired:
        code, output = -1, "timed out"
    last = [line for line in output.strip().splitlines() if line.strip()]
    return {"example": script.parent.name, "seed": seed, "ok": code == 0, "code": code,
            "seconds": time.perf_counter() - start, "last": last[-1] if last else "", "tail": last[-12:]}


def sweep_examples(seeds: range, jobs: int, names: list[str], log: Path | None, timeout: int) -> int:
    scripts = sorted(ROOT.glob("examples/*/train.py"))
    if names:
        scripts = [s for s in scripts if s.parent.name in names]
    print(f"{len(scripts)} examples under TINYTORCH_SEED {seeds.start}..{seeds.stop - 1} ({jobs} at a time)",
          flush=True)
    results = defaultdict(list)
    with ThreadPoolExecutor(jobs) as pool:
        jobs_list = [(script, seed) for script in scripts for seed in seeds]
        for result in pool.map(lambda job: run_example_once(job[0], job[1], timeout), jobs_list):
            results[result["example"]].append(result)
            print(f"{result['example']:18s} seed {result['seed']:4d}: {'ok    ' if result['ok'] else 'MISSED'} "
                  f"{result['seconds']:6.1f} s  {result['last'][:100]}", flush=True)
            if log is not None:
                with log.open("a") as out:
                    out.write(json.dumps(result) + "\n")
    print(f"\n{'example':18s} {'met target':>11s} {'mean s':>7s}  seeds that missed")
    missed_any = False
    for name, rows in results.items():
        missed = [r["seed"] for r in rows if not r["ok"]]
        missed_any |= bool(missed)
        mean_seconds = sum(r["seconds"] for r in rows) / len(rows)
        print(f"{name:18s} {len(rows) - len(missed):4d}/{len(rows):<4d} {mean_seconds:8.1f}  {missed or '-'}")
    return 1 if missed_any else 0


# ---- audit -------------------------------------------------------------------------------------

def audit(pytest_args: list[str]) -> int:
    """Run the tests in this process and record which ones draw random numbers, from which source."""
    os.environ.update({k: v for k, v in environment().items() if k != "PYTHONPATH"})
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    import random

    import numpy as np
    import pytest

    draws: dict[str, set[str]] = defaultdict(set)
    current: list[str | None] = [None]
    numpy_default_rng = np.random.default_rng

    def recording_default_rng(*args, **kwargs):
        if current[0] is not None:
            draws[current[0]].add("numpy Generator")
        return numpy_default_rng(*args, **kwargs)

    # Installed before pytest loads the root conftest, which wraps whatever np.random.default_rng is then.
    np.random.default_rng = recording_default_rng
    kinks = watch_kinks(current)

    def global_states():
        states = {"numpy global": np.random.get_state()[1].tobytes() + bytes([np.random.get_state()[2] % 256]),
                  "python random": repr(random.getstate()).encode()}
        torch = sys.modules.get("torch")
        if torch is not None and hasattr(torch, "random"):
            states["torch"] = torch.random.get_rng_state().numpy().tobytes()
        return states

    class Recorder:
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_setup(self, item):
            current[0] = item.nodeid
            yield

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_call(self, item):
            before = global_states()
            yield
            after = global_states()
            for source, state in before.items():
                if after.get(source) != state:
                    draws[item.nodeid].add(source)

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_teardown(self, item):
            yield
            current[0] = None

        collected = 0

        def pytest_collection_finish(self, session):
            Recorder.collected = len(session.items)

    code = pytest.main(["-q", "-p", "no:cacheprovider", *pytest_args], plugins=[Recorder()])
    np.random.default_rng = numpy_default_rng
    by_source = defaultdict(int)
    by_file = defaultdict(int)
    for node, sources in draws.items():
        by_file[node.split("::")[0]] += 1
        for source in sources:
            by_source[source] += 1
    print(f"\n{len(draws)} of {Recorder.collected} tests draw random numbers (pytest exit code {int(code)})")
    for source, count in sorted(by_source.items()):
        print(f"  {count:5d} from {source}")
    print("per file:")
    for name, count in sorted(by_file.items()):
        print(f"  {count:5d}  {name}")
    print(f"\n{len(kinks)} tests check gradients by finite differences through a kink (ReLU at 0, a max or "
          f"max-pool window whose two largest entries meet; exact ties, built on purpose, are left out); the "
          f"smallest distance to a kink during the check (near 1e-6 the central difference straddles it):")
    for node, (margin, ops) in sorted(kinks.items(), key=lambda item: item[1][0]):
        print(f"  {margin:10.3g}  {'+'.join(sorted(ops)):22s} {node}")
    return int(code)


def watch_kinks(current: list) -> dict:
    """Record, for each test, how close the inputs of ReLU, Variable.max and max_pool2d come to a kink while
    check_gradients runs: there the function is not differentiable, and a finite difference whose step
    straddles the kink disagrees with backward(). Data drawn from a continuous distribution lands within
    eps of a kink with a probability proportional to eps: rare, but not negligible unless the test keeps its
    data away from kinks by construction."""
    import numpy as np

    import tinytorch.core.autograd as autograd
    import tinytorch.core.spatial as spatial
    from tinytorch.core.activations import ReLU

    kinks: dict[str, list] = {}
    checking = [0]

    def note(op, margin):
        if checking[0] and current[0] is not None:
            entry = kinks.setdefault(current[0], [np.inf, set()])
            entry[0] = min(entry[0], float(margin))
            entry[1].add(op)

    def top_two_gap(stacked, axis):
        """Smallest gap between the largest and the second largest entry along `axis` (inf if only one)."""
        if stacked.shape[axis] < 2 or stacked.size == 0:
            return np.inf
        part = -np.partition(-stacked, 1, axis=axis)
        gaps = np.take(part, 0, axis=axis) - np.take(part, 1, axis=axis)
        gaps = gaps[gaps > 0]   # exact ties are built on purpose (integers, ReLU's zeros), not drawn by chance
        return float(gaps.min()) if gaps.size else np.inf

    original_check, original_relu, original_max = autograd.check_gradients, ReLU.forward, autograd.Variable.max
    original_pool = spatial.max_pool2d

    def check_gradients(*args, **kwargs):
        checking[0] += 1
        try:
            return original_check(*args, **kwargs)
        finally:
            checking[0] -= 1

    def relu_forward(self, x):
        data = np.asarray(getattr(x, "data", 0.0), dtype=np.float64)
        if checking[0] and data.size:
            note("relu", np.min(np.abs(data)))
        return original_relu(self, x)

    def variable_max(self, axis=None, keepdims=False):
        if not checking[0]:
            return original_max(self, axis=axis, keepdims=keepdims)
        axes = tuple(range(self.ndim)) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
        axes = tuple(a % self.ndim for a in axes) if self.ndim else ()
        if axes:
            moved = np.moveaxis(self.data, axes, tuple(range(-len(axes), 0)))
            note("max", top_two_gap(moved.reshape(*moved.shape[:moved.ndim - len(axes)], -1), -1))
        return original_max(self, axis=axis, keepdims=keepdims)

    def max_pool2d(x, kernel_size, stride=None):
        if not checking[0]:
            return original_pool(x, kernel_size, stride)
        _, (kh, kw), (sh, sw), (h_out, w_out) = spatial._pool_setup(x, kernel_size, stride, "max_pool2d")
        data = x.data
        windows = np.stack([data[:, :, i:i + sh * (h_out - 1) + 1:sh, j:j + sw * (w_out - 1) + 1:sw]
                            for i in range(kh) for j in range(kw)])
        note("max_pool2d", top_two_gap(windows, 0))
        return original_pool(x, kernel_size, stride)

    autograd.check_gradients, ReLU.forward, autograd.Variable.max = check_gradients, relu_forward, variable_max
    spatial.max_pool2d = max_pool2d
    import importlib
    import pkgutil

    import tinytorch.core as core
    for info in pkgutil.iter_modules(core.__path__):   # modules that imported them by name
        module = importlib.import_module(f"tinytorch.core.{info.name}")
        if getattr(module, "check_gradients", None) is original_check:
            module.check_gradients = check_gradients
        if getattr(module, "max_pool2d", None) is original_pool:
            module.max_pool2d = max_pool2d
    return kinks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="200", help="N (seeds 0..N-1) or START:STOP; default 200")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    parser.add_argument("--examples", metavar="N", help="sweep examples/*/train.py under N (or START:STOP) seeds")
    parser.add_argument("--only", nargs="*", default=[], help="with --examples: the example names to run")
    parser.add_argument("--timeout", type=int, default=600, help="with --examples: seconds per run")
    parser.add_argument("--audit", action="store_true", help="count the tests that draw random numbers")
    parser.add_argument("--log", type=Path, help="append one JSON line per run to this file")
    parser.add_argument("--allow-warnings", action="store_true",
                        help="do not turn RuntimeWarnings (overflow, NaN) into failures")
    args, pytest_args = parser.parse_known_args(argv)
    if args.examples:
        return sweep_examples(parse_seeds(args.examples), args.jobs, args.only, args.log, args.timeout)
    pytest_args = pytest_args or DEFAULT_PATHS
    if args.audit:
        return audit(pytest_args)
    return sweep_tests(parse_seeds(args.seeds), args.jobs, pytest_args, args.log, not args.allow_warnings)


if __name__ == "__main__":
    sys.exit(main())
