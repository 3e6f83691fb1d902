"""PyTorch parity of module 06_spatial: values and gradients against torch.nn.functional, in float64.

Skipped (never failed) where PyTorch is not installed.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from tinytorch.core.autograd import Variable  # noqa: E402
from tinytorch.core.spatial import Conv2D, avg_pool2d, conv2d, flatten, max_pool2d  # noqa: E402
from tinytorch.core.tensor import Tensor  # noqa: E402

pytestmark = pytest.mark.torch

CONV_CONFIGS = [  # (x shape, weight shape, stride, padding, bias)
    ((2, 1, 6, 6), (3, 1, 3, 3), 1, 0, True),
    ((2, 3, 8, 8), (4, 3, 3, 3), 1, 1, True),
    ((2, 3, 9, 9), (5, 3, 3, 3), 2, 1, True),
    ((1, 2, 7, 8), (3, 2, 3, 2), (2, 1), (1, 0), True),
    ((3, 4, 6, 5), (2, 4, 1, 1), 1, 0, False),
    ((1, 2, 10, 10), (2, 2, 5, 5), 3, 2, True),
]


def _grad_out(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, bias", CONV_CONFIGS)
def test_conv2d_matches_torch(x_shape, w_shape, stride, padding, bias):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])

    xv, wv, bv = Variable(x), Variable(w), Variable(b)
    out = conv2d(xv, wv, bv if bias else None, stride=stride, padding=padding)

    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out_t = F.conv2d(xt, wt, bt if bias else None, stride=stride, padding=padding)
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)

    g = _grad_out(out.shape, 1)
    out.backward(g)
    out_t.backward(torch.tensor(g))
    np.testing.assert_allclose(xv.grad.data, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(wv.grad.data, wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    if bias:
        np.testing.assert_allclose(bv.grad.data, bt.grad.numpy(), rtol=1e-10, atol=1e-12)
    else:
        assert bv.grad is None


def test_conv2d_layer_matches_torch_layer_float32():
    """Same parameters in both frameworks: float32 forward and gradients agree to float32 precision."""
    ours = Conv2D(3, 8, 3, stride=1, padding=1, seed=0)
    theirs = torch.nn.Conv2d(3, 8, 3, stride=1, padding=1)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        theirs.bias.copy_(torch.tensor(ours.bias.data))
    x = np.random.default_rng(2).standard_normal((4, 3, 10, 10)).astype(np.float32)
    out = ours(Variable(x, requires_grad=False))
    out_t = theirs(torch.tensor(x))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = _grad_out(out.shape, 3).astype(np.float32)
    out.backward(g)
    out_t.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.bias.grad.data, theirs.bias.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_conv2d_init_range_matches_torch():
    """PyTorch's default init draws weight and bias from uniform(+-1/sqrt(fan_in)): same bound here."""
    ours = Conv2D(6, 32, (3, 5), seed=0)
    theirs = torch.nn.Conv2d(6, 32, (3, 5))
    for a, b in [(ours.weight.data, theirs.weight.detach().numpy()), (ours.bias.data, theirs.bias.detach().numpy())]:
        bound = 1 / np.sqrt(6 * 3 * 5)
        assert np.abs(a).max() <= bound and np.abs(b).max() <= bound
        # Both fill the range: n magnitudes |u|, u ~ uniform(-bound, bound), all stay below t * bound with
        # probability t**n. Weights (n = 32*6*3*5 = 2880): 0.99**2880 = 3e-13. Biases (n = 32): 0.5**32 = 2e-10
        # (the former 0.9 * bound failed 0.9**32 = 3.4% of runs). Each framework, so < 1e-9 per run in all.
        t = 0.99 if a.size > 1000 else 0.5
        assert np.abs(a).max() > t * bound and np.abs(b).max() > t * bound


POOL_CONFIGS = [  # (x shape, kernel, stride)
    ((2, 3, 8, 8), 2, None),
    ((2, 2, 7, 7), 3, 1),
    ((1, 3, 9, 8), (3, 2), (2, 1)),
    ((2, 1, 7, 9), 3, 2),
    ((1, 2, 6, 6), 2, 3),
]


@pytest.mark.parametrize("ties", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize("shape, kernel, stride", POOL_CONFIGS)
def test_max_pool2d_matches_torch(shape, kernel, stride, ties):
    rng = np.random.default_rng(4)
    # Small integers make ties in almost every window; PyTorch sends each window's gradient to its first max.
    x = rng.integers(0, 3, size=shape).astype(np.float64) if ties else rng.standard_normal(shape)
    xv = Variable(x)
    out = max_pool2d(xv, kernel, stride)
    xt = torch.tensor(x, requires_grad=True)
    out_t = F.max_pool2d(xt, kernel, stride)
    np.testing.assert_array_equal(out.data, out_t.detach().numpy())
    g = _grad_out(out.shape, 5)
    out.backward(g)
    out_t.backward(torch.tensor(g))
    np.testing.assert_allclose(xv.grad.data, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, kernel, stride", POOL_CONFIGS)
def test_avg_pool2d_matches_torch(shape, kernel, stride):
    x = np.random.default_rng(6).standard_normal(shape)
    xv = Variable(x)
    out = avg_pool2d(xv, kernel, stride)
    xt = torch.tensor(x, requires_grad=True)
    out_t = F.avg_pool2d(xt, kernel, stride)
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = _grad_out(out.shape, 7)
    out.backward(g)
    out_t.backward(torch.tensor(g))
    np.testing.assert_allclose(xv.grad.data, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_flatten_matches_torch():
    x = np.random.default_rng(8).standard_normal((3, 2, 4, 5))
    np.testing.assert_array_equal(flatten(Tensor(x)).data, torch.flatten(torch.tensor(x), 1).numpy())


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
