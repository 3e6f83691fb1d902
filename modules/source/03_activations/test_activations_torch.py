"""PyTorch parity of module 03: values and gradients against torch.nn.functional (skipped without torch)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh  # noqa: E402
from tinytorch.core.autograd import Variable  # noqa: E402

pytestmark = pytest.mark.torch

F = torch.nn.functional
CASES = [
    ("relu", ReLU, {}, lambda t: F.relu(t)),
    ("sigmoid", Sigmoid, {}, lambda t: torch.sigmoid(t)),
    ("tanh", Tanh, {}, lambda t: torch.tanh(t)),
    ("softmax_last", Softmax, {}, lambda t: F.softmax(t, dim=-1)),
    ("softmax_axis0", Softmax, {"axis": 0}, lambda t: F.softmax(t, dim=0)),
    ("softmax_axis1", Softmax, {"axis": 1}, lambda t: F.softmax(t, dim=1)),
    ("gelu_exact", GELU, {}, lambda t: F.gelu(t)),                       # torch default: approximate='none'
    ("gelu_tanh", GELU, {"approximate": "tanh"}, lambda t: F.gelu(t, approximate="tanh")),
]


def compare(cls, kwargs, torch_fn, data, rtol, atol):
    upstream = np.random.default_rng(1).normal(size=data.shape).astype(data.dtype)
    v = Variable(data.copy(), requires_grad=True)
    out = cls(**kwargs)(v)
    out.backward(upstream)

    t = torch.tensor(data, requires_grad=True)
    t_out = torch_fn(t)
    t_out.backward(torch.tensor(upstream))
    value_atol = grad_atol = atol
    if data.dtype == np.float32:
        # float32 rounds every intermediate to 6e-8 of its size. Where GELU is tiny (x << 0), 0.5 * x * (1 + tanh)
        # and its derivative are differences of terms as large as |x| (times the upstream gradient), rounded
        # differently by each framework: the two differ by up to 2.2 * eps32 * (1 + |x|) (* (1 + |upstream|) for
        # the gradient) over 51,200 draws of N(0, 3), up to 3e-6, above a flat 1e-6. A bound of 8 ulps of those
        # terms holds for every draw.
        value_atol = atol + 8 * np.finfo(np.float32).eps * (1 + np.abs(data.astype(np.float64)))
        grad_atol = value_atol * (1 + np.abs(upstream.astype(np.float64)))
    assert_close(out.data, t_out.detach().numpy(), rtol, value_atol, "values")
    assert_close(v.grad.data, t.grad.numpy(), rtol, grad_atol, "gradients")


def assert_close(actual, desired, rtol, atol, what):
    """|actual - desired| <= rtol * |desired| + atol elementwise (atol: a number or an array like actual)."""
    actual, desired = np.asarray(actual, dtype=np.float64), np.asarray(desired, dtype=np.float64)
    excess = np.abs(actual - desired) - (rtol * np.abs(desired) + atol)
    worst = np.unravel_index(np.argmax(excess), excess.shape) if excess.ndim else ()
    assert excess[worst] <= 0, (f"{what} differ at {worst}: {actual[worst]!r} against torch's {desired[worst]!r}, "
                                f"beyond the tolerance by {excess[worst]:.3g}")


@pytest.mark.parametrize("name,cls,kwargs,torch_fn", CASES, ids=[c[0] for c in CASES])
def test_float64_values_and_gradients_match_torch(name, cls, kwargs, torch_fn):
    data = np.random.default_rng(0).normal(0.0, 3.0, size=(4, 3, 5))
    compare(cls, kwargs, torch_fn, data, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,cls,kwargs,torch_fn", CASES, ids=[c[0] for c in CASES])
def test_float32_values_and_gradients_match_torch(name, cls, kwargs, torch_fn):
    data = np.random.default_rng(2).normal(0.0, 3.0, size=(8, 16)).astype(np.float32)
    compare(cls, kwargs, torch_fn, data, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,cls,kwargs,torch_fn", CASES, ids=[c[0] for c in CASES])
def test_extreme_inputs_match_torch(name, cls, kwargs, torch_fn):
    data = np.array([[-1000.0, -50.0, -1e-3, 0.0, 1e-3, 50.0, 1000.0]])
    compare(cls, kwargs, torch_fn, data, rtol=1e-10, atol=1e-300)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
