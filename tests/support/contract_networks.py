"""The contract of module 05 (Sequential, MLP, create_mlp)."""

import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dense
from tinytorch.core.networks import MLP, Sequential, create_mlp
from tinytorch.core.tensor import Tensor


def networks_contract():
    first, second = Dense(4, 3, seed=0), Dense(3, 2, seed=1)
    net = Sequential([first, ReLU(), second])
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    hidden = np.maximum(x @ first.weights.data + first.bias.data, 0)
    assert np.allclose(net(Tensor(x)).data, hidden @ second.weights.data + second.bias.data, atol=1e-5)
    assert len(net.parameters()) == 4
    mlp = create_mlp(4, [8, 6], 2, seed=0)
    assert isinstance(mlp, MLP) and mlp(Tensor(x)).shape == (5, 2)
    assert sum(p.size for p in mlp.parameters()) == 4 * 8 + 8 + 8 * 6 + 6 + 6 * 2 + 2
