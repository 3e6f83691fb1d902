"""The contract of module 04 (Module, Dense, Dropout)."""

import numpy as np

from tinytorch.core.autograd import Variable
from tinytorch.core.layers import Dense, Dropout, Linear, Module
from tinytorch.core.tensor import Tensor


def layers_contract():
    layer = Dense(3, 2, seed=0)
    assert Linear is Dense and isinstance(layer, Module)
    assert layer.weights.shape == (3, 2) and layer.bias.shape == (2,)
    assert layer.parameters() == [layer.weights, layer.bias]
    x = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    assert np.allclose(layer(Tensor(x)).data, x @ layer.weights.data + layer.bias.data, atol=1e-6)
    out = layer(Variable(x, requires_grad=False))
    out.sum().backward()
    assert np.allclose(layer.weights.grad.data, x.T @ np.ones((2, 2)))
    assert np.allclose(layer.bias.grad.data, [2.0, 2.0])
    layer.zero_grad()
    assert all(p.grad is None for p in layer.parameters())
    drop = Dropout(0.5, seed=0)
    drop.eval()
    assert np.array_equal(drop(Tensor(x)).data, x)
