"""Framework benchmarks: how much TinyTorch's abstractions cost beside hand-written NumPy and PyTorch.

    python benchmarks/framework.py            # every section
    python benchmarks/framework.py --quick    # fewer repeats

Section "mlp training step": one full training step (forward, cross-entropy, backward, Adam step) of the
digits MLP of examples/digits_mlp (64 -> 128 -> 64 -> 10, ReLU, float32) at batch 64, three ways:

- TinyTorch: create_mlp + CrossEntropyLoss + Adam, the graph recorded by autograd;
- NumPy by hand: the same arithmetic with the backward pass and the Adam update written out;
- PyTorch's CPU build, when it is installed (otherwise the section says so and goes on).

The three run interleaved in one process (round-robin, so drifting machine load hits them alike), each
timed many times; we report medians and the ratios to the hand-written NumPy step. Before timing, the
hand-written gradients are checked against TinyTorch's, so both compute the same thing.

Section "conv2d": if benchmarks/conv2d.py exists, its `run()` is called and the rows it returns printed.

BLAS runs single-threaded (OPENBLAS/OMP/MKL_NUM_THREADS=1 unless already set, torch.set_num_threads(1)):
at these sizes threads add noise, not speed, and the comparison stays fair.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")       # before NumPy is imported

import numpy as np  # noqa: E402

from tinytorch.core.autograd import Variable  # noqa: E402
from tinytorch.core.networks import create_mlp  # noqa: E402
from tinytorch.core.optimizers import Adam  # noqa: E402
from tinytorch.core.training import CrossEntropyLoss  # noqa: E402

HERE = Path(__file__).resolve().parent
SIZES = [64, 128, 64, 10]
BATCH = 64
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8


# --- the three implementations of one training step -----------------------------------------------

def make_data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, SIZES[0])).astype(np.float32), rng.integers(0, SIZES[-1], BATCH)


def tinytorch_step_fn(x, y):
    """A TinyTorch training step; returns (step function, model)."""
    model = create_mlp(SIZES[0], SIZES[1:-1], SIZES[-1], seed=0)
    optimizer, loss_fn = Adam(model.parameters(), lr=LR), CrossEntropyLoss()
    inputs = Variable(x, requires_grad=False)

    def step():
        loss = loss_fn(model(inputs), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step, model


class NumpyMLP:
    """The same MLP with forward, backward and Adam written by hand: the lower bound for NumPy code."""

    def __init__(self, weights):
        self.params = [np.array(w, copy=True) for w in weights]          # W1, b1, W2, b2, W3, b3
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def gradients(self, x, y):
        W1, b1, W2, b2, W3, b3 = self.params
        z1 = x @ W1 + b1
        h1 = np.maximum(z1, 0)
        z2 = h1 @ W2 + b2
        h2 = np.maximum(z2, 0)
        logits = h2 @ W3 + b3
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = np.mean(np.log(sum_exp[:, 0]) - shifted[rows, y])
        g = exp / sum_exp                               # dL/dlogits = (softmax - onehot) / N
        g[rows, y] -= 1.0
        g /= len(y)
        gW3, gb3 = h2.T @ g, g.sum(axis=0)
        g = (g @ W3.T) * (z2 > 0)
        gW2, gb2 = h1.T @ g, g.sum(axis=0)
        g = (g @ W2.T) * (z1 > 0)
        gW1, gb1 = x.T @ g, g.sum(axis=0)
        return loss, [gW1, gb1, gW2, gb2, gW3, gb3]

    def step(self, x, y):
        loss, grads = self.gradients(x, y)
        self.t += 1
        beta1, beta2 = BETAS
        c1, c2 = 1 - beta1 ** self.t, np.sqrt(1 - beta2 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            p -= (LR / c1) * m / (np.sqrt(v) / c2 + EPS)
        return loss


def torch_step_fn(x, y, weights):
    """A PyTorch training step with the same initial weights, or None when PyTorch is missing."""
    try:
        import torch
    except ImportError:
        return None, None
    torch.set_num_threads(1)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        linear = torch.nn.Linear(n_in, n_out)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weights[2 * i].T.copy()))
            linear.bias.copy_(torch.from_numpy(weights[2 * i + 1]))
        layers += [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        loss = loss_fn(model(xt), yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step, torch.__version__


def check_same_computation(model, x, y):
    """The hand-written gradients equal TinyTorch's for the same weights and batch (float32 round-off)."""
    reference = NumpyMLP([p.data for p in model.parameters()])
    loss, grads = reference.gradients(x, y)
    ours = CrossEntropyLoss()(model(Variable(x, requires_grad=False)), y)
    for p in model.parameters():
        p.zero_grad()
    ours.backward()
    worst = max(float(np.max(np.abs(p.grad.data - g))) for p, g in zip(model.parameters(), grads))
    for p in model.parameters():
        p.zero_grad()
    if abs(float(ours.data) - loss) > 1e-5 or worst > 1e-5:
        raise AssertionError(f"the NumPy reference disagrees with TinyTorch: loss {loss} vs {float(ours.data)}, "
                             f"largest gradient difference {worst}")
    return worst


# --- timing ---------------------------------------------------------------------------------------

def interleaved_medians(functions, rounds, warmup=20):
    """Median seconds per call of each function, timed round-robin (one call each per round)."""
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in functions}
    names = list(functions)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:    # rotate the order each round
            start = time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}, {
        name: (float(np.percentile(t, 25)), float(np.percentile(t, 75))) for name, t in times.items()}


def mlp_training_step(rounds=400):
    """Section: one training step of the digits MLP; returns printable rows."""
    x, y = make_data()
    tiny_step, model = tinytorch_step_fn(x, y)
    weights = [p.data.copy() for p in model.parameters()]
    worst = check_same_computation(model, x, y)
    reference = NumpyMLP(weights)
    functions = {"tinytorch": tiny_step, "numpy by hand": lambda: reference.step(x, y)}
    torch_step, torch_version = torch_step_fn(x, y, weights)
    if torch_step is not None:
        functions[f"pytorch {torch_version}"] = torch_step
    medians, quartiles = interleaved_medians(functions, rounds)

    count = sum(w.size for w in weights)
    rows = [f"MLP {'-'.join(map(str, SIZES))} ({count} parameters, float32), batch {BATCH}, Adam + cross-entropy; "
            f"median of {rounds} interleaved steps",
            f"hand-written NumPy gradients match TinyTorch's (largest difference {worst:.1e})",
            f"{'implementation':22s} {'median (us)':>12s} {'IQR (us)':>17s} {'vs NumPy':>9s}"]
    base = medians["numpy by hand"]
    for name, seconds in medians.items():
        low, high = quartiles[name]
        rows.append(f"{name:22s} {seconds * 1e6:12.1f} {low * 1e6:8.1f}-{high * 1e6:<8.1f} {seconds / base:8.2f}x")
    if torch_step is None:
        rows.append("pytorch: not installed, skipped (pip install torch to compare)")
    ratio = medians["tinytorch"] / base
    verdict = "within" if ratio <= 3.0 else "NOT within"
    rows.append(f"TinyTorch / NumPy = {ratio:.2f}x: {verdict} the 3x target")
    return rows


def conv2d_section():
    """Section: benchmarks/conv2d.py's run(), when that file exists."""
    path = HERE / "conv2d.py"
    if not path.is_file():
        return ["benchmarks/conv2d.py not found: section skipped"]
    spec = importlib.util.spec_from_file_location("tinytorch_benchmark_conv2d", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [row if isinstance(row, str) else "  ".join(str(cell) for cell in row) for row in module.run()]


SECTIONS = [("mlp training step", mlp_training_step), ("conv2d forward + backward", conv2d_section)]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    for title, section in SECTIONS:
        print(f"\n== {title} ==", flush=True)
        rows = section(rounds=60) if quick and section is mlp_training_step else section()
        for row in rows:
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
