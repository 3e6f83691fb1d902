"""PyTorch parity of module 04: Dense against nn.Linear with copied weights (skipped without torch)."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinytorch.core.autograd import Variable  # noqa: E402
from tinytorch.core.layers import Dense, Dropout  # noqa: E402

pytestmark = pytest.mark.torch


def torch_linear_from(layer, dtype):
    """An nn.Linear holding the same numbers: torch stores weight as (out, in), we store (in, out)."""
    linear = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None, dtype=dtype)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(layer.weights.data.T))
        if layer.bias is not None:
            linear.bias.copy_(torch.tensor(layer.bias.data))
    return linear


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("shape", [(8, 5), (2, 3, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_matches_linear_values_and_gradients(dtype, rtol, shape, bias):
    layer = Dense(5, 4, bias=bias, seed=0)
    for p in layer.parameters():
        p.data = p.data.astype(dtype)
    linear = torch_linear_from(layer, torch.float32 if dtype == np.float32 else torch.float64)
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape).astype(dtype)
    upstream = rng.normal(size=shape[:-1] + (4,)).astype(dtype)

    xv = Variable(x, requires_grad=True)
    out = layer(xv)
    out.backward(upstream)
    xt = torch.tensor(x, requires_grad=True)
    out_t = linear(xt)
    out_t.backward(torch.tensor(upstream))

    atol = rtol
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(xv.grad.data, xt.grad.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(layer.weights.grad.data, linear.weight.grad.numpy().T, rtol=rtol, atol=atol)
    if bias:
        np.testing.assert_allclose(layer.bias.grad.data, linear.bias.grad.numpy(), rtol=rtol, atol=atol)


def test_initialisation_distribution_matches_linear():
    """Same bound (1/sqrt(in)) and the same uniform spread as torch's Kaiming-uniform(a=sqrt(5)) default."""
    linear = torch.nn.Linear(400, 300)           # torch's generator: seeded per test by the conftest
    layer = Dense(400, 300, seed=0)
    bound = 1 / math.sqrt(400)
    for ours, theirs in [(layer.weights.data, linear.weight.detach().numpy()),
                         (layer.bias.data, linear.bias.detach().numpy())]:
        n = ours.size                              # 120,000 weights, 300 biases
        assert np.abs(ours).max() <= bound and np.abs(theirs).max() <= bound
        # Same spread. The std of n uniform draws has a relative sd of sqrt((kurtosis - 1) / 4n), kurtosis 1.8;
        # the two differ by less than 6.5 sd of their difference but with probability 8e-11 (normal tail).
        # (The former rel=0.05 was 1.4 sd for the 300 biases: it failed 1 run in 6.)
        assert ours.std() == pytest.approx(theirs.std(), rel=6.5 * math.sqrt(2 * 0.8 / (4 * n)))
        # Both fill the whole range: no draw in the top `edge` of either end has probability (1 - edge/2)**n;
        # edge makes that 2.5e-10, so any of the four ends fails with probability < 1e-9 (for the 300 biases
        # edge is 14% of the bound, for the weights 0.04%).
        edge = 2 * (1 - 2.5e-10 ** (1 / n))
        for values in (ours, theirs):
            assert values.max() >= (1 - edge) * bound and values.min() <= -(1 - edge) * bound


def test_dropout_matches_torch_semantics():
    """Same scale 1/(1-p) on survivors, same drop rate, identity in eval (masks differ: different RNGs)."""
    x = np.ones((400, 400), dtype=np.float32)
    ours = Dropout(0.3, seed=0)(Variable(x, requires_grad=False)).data
    drop_t = torch.nn.Dropout(0.3)
    theirs = drop_t(torch.tensor(x)).numpy()
    assert set(np.unique(ours).round(5)) == set(np.unique(theirs).round(5))
    # Both drop 30%: the rate of n = 160,000 draws strays 0.01 from 0.3 with probability below
    # exp(-n KL(0.31 || 0.3)) = exp(-n * 2.4e-4) = 4e-17 per side (Chernoff).
    for mask in (ours, theirs):
        assert abs(np.mean(mask == 0) - 0.3) < 0.01
    drop_t.eval()
    np.testing.assert_array_equal(drop_t(torch.tensor(x)).numpy(), Dropout(0.3, seed=0).eval()(Variable(x)).data)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
