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
# depend on the thread count. The doit tasks set the same default (tito.steps.runner).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def pytest_configure(config):
    if os.environ.get("TITO_BUILD") or hasattr(config, "workerinput"):  # inside doit, or an xdist worker
        return
    from tito.steps.process import doit_command

    done = subprocess.run(doit_command(ROOT, "export", "orphans"), cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        pytest.exit(f"`doit export` failed, so the package cannot be tested:\n{done.stdout}\n"
                    "Fix the error above (it names the file and line), then run pytest again.", returncode=1)


# ---- randomness: one knob, and every random source of a test derived from it -------------------------
#
# TINYTORCH_TEST_SEED (default 0) picks the random draws of the whole suite; tests/seed_sweep.py runs the
# suite under many values of it to show that no test passes by luck. For each test:
#   * Python's `random`, NumPy's legacy global generator (`np.random.seed`) and, when a test module has
#     imported it, PyTorch's default generator (`torch.manual_seed`) are seeded from the knob and the test's
#     id, so every test has its own reproducible stream, independent of which tests ran before it;
#   * `np.random.default_rng()` without a seed (a layer built without `seed=`, say) draws from that stream
#     instead of the operating system's entropy;
#   * with a knob other than 0, a literal integer seed (`np.random.default_rng(3)`, `Dense(4, 3, seed=3)`)
#     is mixed with the knob, so the sweep varies the data and weights of seeded tests too. Equal seeds stay
#     equal and different seeds stay different, so tests of reproducibility keep their meaning. With the
#     knob at 0 (every ordinary run) literal seeds are used as written.
# The `rng` fixture is a NumPy Generator from the same per-test seed.

import random  # noqa: E402
import zlib  # noqa: E402

import numpy as np  # noqa: E402

TEST_SEED = int(os.environ.get("TINYTORCH_TEST_SEED", "0"))
_numpy_default_rng = np.random.default_rng


def derived_seed(nodeid: str, knob: int = TEST_SEED) -> int:
    """The 32-bit seed of one test: a hash of the knob and the test id (stable across runs and machines)."""
    return zlib.crc32(f"{knob}:{nodeid}".encode())


def _default_rng_for_test(unseeded):
    """np.random.default_rng as tests see it: None draws from the test's stream, literals meet the knob."""
    def default_rng(seed=None):
        if seed is None:
            seed = unseeded.spawn(1)[0]
        elif TEST_SEED and isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
            seed = [int(seed), TEST_SEED]
        return _numpy_default_rng(seed)
    return default_rng


@pytest.fixture(autouse=True)
def _seed_every_random_source(request, monkeypatch):
    seed = derived_seed(request.node.nodeid)
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        torch.manual_seed(seed)
    monkeypatch.setattr(np.random, "default_rng", _default_rng_for_test(np.random.SeedSequence([seed, 1])))


@pytest.fixture
def rng(request):
    """A NumPy Generator for this test's data, from TINYTORCH_TEST_SEED and the test id."""
    return _numpy_default_rng(derived_seed(request.node.nodeid))


# ---- finite differences and kinks --------------------------------------------------------------------
#
# ReLU (at 0), a max and a max-pool window (where its two largest entries meet) have kinks. A central
# difference (check_gradients: eps = 1e-6) that straddles one disagrees with backward(), and data drawn from a
# continuous distribution lands that close to a kink with a probability proportional to eps: about 1e-6 per
# value, 1e-4 per test for a network with a few hundred ReLU inputs. Far too often for a build. Tests that check
# gradients through kinks on random data call `away_from_kinks(fn, *inputs)` first: it nudges the inputs until
# every ReLU input, max gap and max-pool gap of fn(*inputs) is at least 1e-4 from its kink, so a step of 1e-6
# can only straddle one where a value moves 100 times faster than the input (no test's layers come close).

KINK_MARGIN = 1e-4


def kink_distance(fn, *inputs, module=None) -> float:
    """The smallest distance to a kink among the ReLU inputs, max gaps and max-pool gaps of fn(*inputs).

    Exact zeros and exact ties are left out: they are built on purpose (padding, integers), not drawn, and
    the inputs do not move them. `module`: a test module that imported max_pool2d by name.
    """
    from tinytorch.core import activations, autograd, spatial

    distances = [np.inf]

    def note(values):
        values = np.asarray(values, dtype=np.float64)
        values = values[values > 0]
        if values.size:
            distances.append(float(values.min()))

    def gaps(stacked):
        """Largest minus second largest along axis 0."""
        if stacked.shape[0] < 2:
            return np.empty(0)
        top = -np.partition(-stacked, 1, axis=0)
        return top[0] - top[1]

    relu, vmax, pool = activations.ReLU.forward, autograd.Variable.max, spatial.max_pool2d

    def relu_forward(self, x):
        note(np.abs(getattr(x, "data", 0.0)))
        return relu(self, x)

    def variable_max(self, axis=None, keepdims=False):
        if self.ndim:
            axes = tuple(range(self.ndim)) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
            moved = np.moveaxis(self.data, tuple(a % self.ndim for a in axes), tuple(range(len(axes))))
            note(gaps(moved.reshape(-1, *moved.shape[len(axes):])))
        return vmax(self, axis=axis, keepdims=keepdims)

    def max_pool2d(x, kernel_size, stride=None):
        t, (kh, kw), (sh, sw), (h_out, w_out) = spatial._pool_setup(x, kernel_size, stride, "max_pool2d")
        note(gaps(np.stack([t.data[:, :, i:i + sh * (h_out - 1) + 1:sh, j:j + sw * (w_out - 1) + 1:sw]
                            for i in range(kh) for j in range(kw)])))
        return pool(x, kernel_size, stride)

    holders = [m for m in (spatial, module) if m is not None and getattr(m, "max_pool2d", None) is pool]
    activations.ReLU.forward, autograd.Variable.max = relu_forward, variable_max
    for holder in holders:
        holder.max_pool2d = max_pool2d
    try:
        with autograd.no_grad():
            fn(*inputs)
    finally:
        activations.ReLU.forward, autograd.Variable.max = relu, vmax
        for holder in holders:
            holder.max_pool2d = pool
    return min(distances)


@pytest.fixture
def away_from_kinks(request, rng):
    """away_from_kinks(fn, *inputs): nudge the float inputs (in place, by N(0, 0.01) steps drawn from the
    test's stream) until kink_distance(fn, *inputs) >= KINK_MARGIN; returns that distance."""
    def nudge(fn, *inputs, margin=KINK_MARGIN):
        for _ in range(100):   # one nudge fails with probability ~ (values near kinks) * 2e-4: a few percent
            distance = kink_distance(fn, *inputs, module=request.module)
            if distance >= margin:
                return distance
            for x in inputs:
                x.data = x.data + rng.normal(0.0, 0.01, x.shape).astype(x.data.dtype)
        raise AssertionError(f"away_from_kinks: inputs still within {margin} of a kink after 100 nudges")
    return nudge


# ---- student repositories: the tests of modules not started are skipped ------------------------------------
#
# In a student repository (tinytorch-course.json at the root, see tito.steps.progress) a test file that reaches
# a module the learner has not started yet is not imported: it is reported as skipped, naming that module and the
# first thing to implement, so a fresh student repository's `pytest` passes and a learner never sees a wall of
# failures for modules they have not reached. Tests of modules in progress run. In the course this does nothing.


class _WaitsForModule(pytest.File):
    """A test file not imported, collected instead as one test that is skipped with the reason (so pytest
    counts it: a run where every file waits still passes, rather than collecting nothing)."""

    def __init__(self, *, reason, **kwargs):
        super().__init__(**kwargs)
        self.reason = reason

    def collect(self):
        yield _Waiting.from_parent(self, name="waits_for_a_module", reason=self.reason)


class _Waiting(pytest.Item):
    def __init__(self, *, reason, **kwargs):
        super().__init__(**kwargs)
        self.reason = reason

    def runtest(self):
        raise pytest.skip.Exception(self.reason, _use_item_location=True)

    def reportinfo(self):
        return self.path, 0, self.name


def pytest_pycollect_makemodule(module_path, parent):
    from tito.steps import progress

    if not progress.is_student_repo(ROOT):
        return None
    graph = _student_graph()
    module = progress.first_not_started(ROOT, graph.modules_reached_by(Path(module_path)))
    if module is None:
        return None
    reason = progress.waiting_message(ROOT, "this file", module)
    _WAITING.setdefault(module.key, []).append(reason)
    return _WaitsForModule.from_parent(parent, path=Path(module_path), reason=reason)


_WAITING: dict[str, list[str]] = {}  # module key -> the reasons of the files waiting for it


def pytest_terminal_summary(terminalreporter):
    if _WAITING:
        count = sum(map(len, _WAITING.values()))
        first = sorted(_WAITING)[0]
        terminalreporter.write_line(f"{count} test file(s) skipped: they wait for modules you have not started "
                                    f"({', '.join(sorted(_WAITING))}). First: "
                                    f"{_WAITING[first][0].replace('this file waits for ', '')}. "
                                    "`tito module status` shows where you are.")


def _student_graph():
    from tito.model.graph import Graph

    if not hasattr(_student_graph, "graph"):
        _student_graph.graph = Graph.load(ROOT)
    return _student_graph.graph
