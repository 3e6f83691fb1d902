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
    torch.manual_seed(0)
    linear = torch.nn.Linear(400, 300)
    layer = Dense(400, 300, seed=0)
    bound = 1 / math.sqrt(400)
    for ours, theirs in [(layer.weights.data, linear.weight.detach().numpy()),
                         (layer.bias.data, linear.bias.detach().numpy())]:
        assert np.abs(ours).max() <= bound and np.abs(theirs).max() <= bound
        assert ours.std() == pytest.approx(theirs.std(), rel=0.05)
        # both fill the whole range: 300 uniform draws come within a few percent of each end
        assert ours.min() == pytest.approx(theirs.min(), abs=0.05 * bound)
        assert ours.max() == pytest.approx(theirs.max(), abs=0.05 * bound)


def test_dropout_matches_torch_semantics():
    """Same scale 1/(1-p) on survivors, same drop rate, identity in eval (masks differ: different RNGs)."""
    x = np.ones((300, 300), dtype=np.float32)
    ours = Dropout(0.3, seed=0)(Variable(x, requires_grad=False)).data
    drop_t = torch.nn.Dropout(0.3)
    torch.manual_seed(0)
    theirs = drop_t(torch.tensor(x)).numpy()
    assert set(np.unique(ours).round(5)) == set(np.unique(theirs).round(5))
    assert abs(np.mean(ours == 0) - np.mean(theirs == 0)) < 0.01
    drop_t.eval()
    np.testing.assert_array_equal(drop_t(torch.tensor(x)).numpy(), Dropout(0.3, seed=0).eval()(Variable(x)).data)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
