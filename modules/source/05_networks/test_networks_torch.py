"""PyTorch parity of module 05: MLP forward/backward against an equivalent nn.Sequential (skipped without torch)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh  # noqa: E402
from tinytorch.core.autograd import Variable  # noqa: E402
from tinytorch.core.layers import Dense  # noqa: E402
from tinytorch.core.networks import create_mlp  # noqa: E402

pytestmark = pytest.mark.torch

TORCH_EQUIVALENT = {
    ReLU: lambda layer: torch.nn.ReLU(),
    Tanh: lambda layer: torch.nn.Tanh(),
    Sigmoid: lambda layer: torch.nn.Sigmoid(),
    Softmax: lambda layer: torch.nn.Softmax(dim=layer.axis),
    GELU: lambda layer: torch.nn.GELU(approximate=layer.approximate),
}


def to_torch(model, dtype):
    """An nn.Sequential with the same layers and the same numbers (weights transposed to (out, in))."""
    layers = []
    for layer in model:
        if isinstance(layer, Dense):
            linear = torch.nn.Linear(layer.in_features, layer.out_features, dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.tensor(layer.weights.data.T))
                linear.bias.copy_(torch.tensor(layer.bias.data))
            layers.append(linear)
        else:
            layers.append(TORCH_EQUIVALENT[type(layer)](layer))
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("activation,output_activation", [(ReLU, None), (Tanh, Softmax), (GELU, Sigmoid)])
@pytest.mark.parametrize("dtype,rtol", [(np.float32, 2e-5), (np.float64, 1e-11)])
def test_mlp_forward_backward_match_torch(activation, output_activation, dtype, rtol):
    model = create_mlp(6, [16, 8], 3, activation=activation, output_activation=output_activation, seed=0)
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    reference = to_torch(model, torch.float32 if dtype == np.float32 else torch.float64)

    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 6)).astype(dtype)
    upstream = rng.normal(size=(10, 3)).astype(dtype)
    xv = Variable(x, requires_grad=True)
    out = model(xv)
    out.backward(upstream)
    xt = torch.tensor(x, requires_grad=True)
    out_t = reference(xt)
    out_t.backward(torch.tensor(upstream))

    atol = rtol
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(xv.grad.data, xt.grad.numpy(), rtol=rtol, atol=atol)
    dense = [layer for layer in model if isinstance(layer, Dense)]
    linear = [layer for layer in reference if isinstance(layer, torch.nn.Linear)]
    for ours, theirs in zip(dense, linear):
        np.testing.assert_allclose(ours.weights.grad.data, theirs.weight.grad.numpy().T, rtol=rtol, atol=atol)
        np.testing.assert_allclose(ours.bias.grad.data, theirs.bias.grad.numpy(), rtol=rtol, atol=atol)


def test_plain_gradient_descent_trajectory_matches_torch():
    """Ten steps of w -= lr * grad on an MSE loss give the same weights as torch.optim.SGD."""
    model = create_mlp(2, [8], 1, activation=Tanh, seed=3)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    reference = to_torch(model, torch.float64)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, size=(32, 2))
    y = np.sin(3 * x[:, :1]) * x[:, 1:]
    inputs, targets = Variable(x, requires_grad=False), Variable(y, requires_grad=False)
    for _ in range(10):
        model.zero_grad()
        diff = model(inputs) - targets
        (diff * diff).mean().backward()
        for p in model.parameters():
            p.data = p.data - 0.1 * p.grad.data
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(reference(torch.tensor(x)), torch.tensor(y)).backward()
        optimizer.step()
    for ours, theirs in zip([l for l in model if isinstance(l, Dense)], [l for l in reference if isinstance(l, torch.nn.Linear)]):
        np.testing.assert_allclose(ours.weights.data, theirs.weight.detach().numpy().T, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.bias.data, theirs.bias.detach().numpy(), rtol=1e-10, atol=1e-12)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
