"""Conv2D forward + backward, side by side: TinyTorch (im2col), naive Python loops, PyTorch's CPU build.

Problem: a batch of 32 x 3 x 32 x 32 images, 16 filters of 3 x 3, padding 1 (stride 1), float32.
"Forward + backward" means the output and the gradients of the input, the weight and the bias, given an
output gradient.

- TinyTorch: `Conv2D` from tinytorch.core.spatial, median of repeated runs.
- Naive loops: the definition as nested Python loops is far too slow for the full problem, so it is
  measured on a smaller batch and image and **scaled by the FLOP ratio** (the loops do a constant amount
  of Python work per multiply-add, so their time is proportional to the FLOPs). The output says so.
- PyTorch: torch.nn.functional.conv2d where torch is installed (single-threaded and with its default
  thread count); otherwise the row says it is missing and the benchmark goes on.

`run()` returns the report as a list of printable rows; `python benchmarks/conv2d.py` prints them.
Targets: TinyTorch >= 100x faster than the naive loops, and within 5x of PyTorch.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: import this tree's tinytorch
    sys.path.insert(0, str(ROOT))

from tinytorch.core.autograd import Variable  # noqa: E402
from tinytorch.core.spatial import Conv2D  # noqa: E402

BATCH, IN_CHANNELS, SIZE, FILTERS, KERNEL, PADDING = 32, 3, 32, 16, 3, 1
NAIVE_BATCH, NAIVE_SIZE = 1, 12  # the naive loops run on (1, 3, 12, 12) with the same 16 filters
SPEEDUP_TARGET, TORCH_RATIO_TARGET = 100.0, 5.0


def conv_flops(batch, channels, size, filters, kernel, padding):
    """FLOPs of forward + backward: forward 2*N*O*Ho*Wo*C*kh*kw, backward twice that (dx and dweight)."""
    out = size + 2 * padding - kernel + 1
    forward = 2 * batch * filters * out * out * channels * kernel * kernel
    return 3 * forward


def _median_time(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _minor_faults():
    """Minor page faults of this process so far (0 where the resource module is missing)."""
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _interleaved(steps, rounds=15, warmup=2):
    """Median seconds and minor page faults per call of each step, timed in alternation.

    The machine is shared: alternating the contenders round by round exposes them to the same load,
    so their ratio is fairer than timing one after the other.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps}
    faults = dict.fromkeys(steps, 0)
    for _ in range(rounds):
        for name, step in steps.items():
            before = _minor_faults()
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
            faults[name] += _minor_faults() - before
    return {name: (float(np.median(t)), faults[name] / rounds) for name, t in times.items()}


# --- TinyTorch ---------------------------------------------------------------------------------------

def _tinytorch_step(layer, x, grad_out):
    def step():
        xv = Variable(x)  # requires_grad=True: the input gradient is computed too, as in the other two
        out = layer(xv)
        out.backward(grad_out)
        layer.zero_grad()
        return out, xv

    return step


# --- naive loops -------------------------------------------------------------------------------------

def naive_conv_forward_backward(x, w, b, grad_out, padding):
    """Forward and backward of a stride-1 convolution, one multiply-add per loop iteration."""
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape  # F filters (output channels)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    Ho, Wo = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    out = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    dxp, dw, db = np.zeros_like(xp), np.zeros_like(w), np.zeros_like(b)
    for n in range(N):
        for o in range(F):
            for y in range(Ho):
                for xx in range(Wo):
                    total = b[o]
                    g = grad_out[n, o, y, xx]
                    db[o] += g
                    for c in range(C):
                        for i in range(kh):
                            for j in range(kw):
                                total += w[o, c, i, j] * xp[n, c, y + i, xx + j]
                                dw[o, c, i, j] += g * xp[n, c, y + i, xx + j]
                                dxp[n, c, y + i, xx + j] += g * w[o, c, i, j]
                    out[n, o, y, xx] = total
    return out, dxp[:, :, padding:padding + H, padding:padding + W], dw, db


# --- PyTorch -----------------------------------------------------------------------------------------

def _torch_step(torch, x, w, b, grad_out):
    F = torch.nn.functional
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    gt = torch.tensor(grad_out)

    def step():
        xt.grad = wt.grad = bt.grad = None
        out = F.conv2d(xt, wt, bt, padding=PADDING)
        out.backward(gt)
        return out, xt

    return step


class _TorchThreads:
    """Run a step with a given torch thread count, restoring the previous count afterwards."""

    def __init__(self, torch, step, threads):
        self.torch, self.step, self.threads = torch, step, threads

    def __call__(self):
        before = self.torch.get_num_threads()
        self.torch.set_num_threads(self.threads)
        try:
            return self.step()
        finally:
            self.torch.set_num_threads(before)


def run() -> list[str]:
    """Measure, and return the report as printable rows."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, IN_CHANNELS, SIZE, SIZE)).astype(np.float32)
    grad_out = rng.standard_normal((BATCH, FILTERS, SIZE, SIZE)).astype(np.float32)
    layer = Conv2D(IN_CHANNELS, FILTERS, KERNEL, padding=PADDING, seed=0)
    w, b = layer.weight.data, layer.bias.data
    flops = conv_flops(BATCH, IN_CHANNELS, SIZE, FILTERS, KERNEL, PADDING)

    rows = [f"Conv2D forward+backward: x ({BATCH}, {IN_CHANNELS}, {SIZE}, {SIZE}) float32, {FILTERS} filters "
            f"{KERNEL}x{KERNEL}, padding {PADDING}: {flops / 1e6:.1f} MFLOP (forward + input and weight gradients)"]

    # Naive loops on a smaller problem, scaled by the FLOP ratio; checked against TinyTorch on that problem.
    xs, gs = x[:NAIVE_BATCH, :, :NAIVE_SIZE, :NAIVE_SIZE], grad_out[:NAIVE_BATCH, :, :NAIVE_SIZE, :NAIVE_SIZE]
    start = time.perf_counter()
    naive_out, naive_dx, naive_dw, _ = naive_conv_forward_backward(xs, w, b, gs, PADDING)
    naive_small = time.perf_counter() - start
    small_flops = conv_flops(NAIVE_BATCH, IN_CHANNELS, NAIVE_SIZE, FILTERS, KERNEL, PADDING)
    naive = naive_small * flops / small_flops
    check_x = Variable(xs)
    check_out = layer(check_x)
    check_out.backward(gs)
    naive_diff = max(np.abs(check_out.data - naive_out).max(), np.abs(check_x.grad.data - naive_dx).max(),
                     np.abs(layer.weight.grad.data - naive_dw).max())
    layer.zero_grad()

    # TinyTorch and PyTorch, timed in alternation.
    steps = {"tinytorch (im2col + matmul)": _tinytorch_step(layer, x, grad_out)}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch_step = _torch_step(torch, x, w, b, grad_out)
        for threads in sorted({1, torch.get_num_threads()}):
            steps[f"pytorch {torch.__version__} CPU, {threads} thread(s)"] = _TorchThreads(torch, torch_step, threads)
    measured = _interleaved(steps)

    for name, (seconds, faults) in measured.items():
        rows.append(f"  {name:40s} {seconds * 1e3:10.2f} ms   {flops / seconds / 1e9:6.2f} GFLOP/s   "
                    f"{faults:6.0f} page faults/step")
    ours = measured["tinytorch (im2col + matmul)"][0]
    rows.append(f"  {'naive loops (estimated, see below)':40s} {naive * 1e3:10.0f} ms   "
                f"{flops / naive / 1e9:6.4f} GFLOP/s")
    rows.append(f"    measured {naive_small * 1e3:.0f} ms on x ({NAIVE_BATCH}, {IN_CHANNELS}, {NAIVE_SIZE}, "
                f"{NAIVE_SIZE}) ({small_flops / 1e6:.2f} MFLOP), scaled by the FLOP ratio {flops / small_flops:.0f}x; "
                f"max |tinytorch - naive| there: {naive_diff:.1e}")
    speedup = naive / ours
    rows.append(f"  speedup of tinytorch over the naive loops: {speedup:,.0f}x "
                f"(target >= {SPEEDUP_TARGET:.0f}x: {'met' if speedup >= SPEEDUP_TARGET else 'MISSED'})")

    if torch is None:
        rows.append("  pytorch: not installed; skipped (pip install torch to compare)")
        return rows
    best_name = min((n for n in measured if n.startswith("pytorch")), key=lambda n: measured[n][0])
    ratio = ours / measured[best_name][0]
    ours_out, ours_x = steps["tinytorch (im2col + matmul)"]()
    t_out, t_x = torch_step()
    agree = max(np.abs(ours_out.data - t_out.detach().numpy()).max(), np.abs(ours_x.grad.data - t_x.grad.numpy()).max())
    rows.append(f"  tinytorch time / fastest pytorch time: {ratio:.2f}x (target <= {TORCH_RATIO_TARGET:.0f}x: "
                f"{'met' if ratio <= TORCH_RATIO_TARGET else 'MISSED'}); max |tinytorch - pytorch| "
                f"(output, input gradient): {agree:.1e}")
    rows.append("  (medians of 15 alternating rounds; page faults count freshly touched 4 KiB pages, which are "
                "expensive on virtual machines)")
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
