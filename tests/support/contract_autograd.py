"""The contract of module 02 (Variable, autograd) that every later module relies on."""

import numpy as np

from tinytorch.core.autograd import Variable, check_gradients, no_grad
from tinytorch.core.tensor import Tensor


def autograd_contract():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((3, 4))
    # (x ** 2).max() below has a kink where the two largest squares meet: one clear winner, its square at
    # least 0.25 above the rest, keeps the central difference (eps 1e-6) away from it.
    data[rng.integers(3), rng.integers(4)] = np.abs(data).max() + 0.5
    x = Variable(data)
    w = Variable(rng.standard_normal((4,)))  # broadcast over the rows
    y = ((x * w + x.exp() / (1 + x * x)) @ Variable(rng.standard_normal((4, 2)))).sum()
    assert isinstance(y, Variable) and y.requires_grad
    check_gradients(lambda a, b: (a * b).sum(axis=0).mean() + (a ** 2).max(), x, w)
    # Accumulation across backward calls, as in PyTorch.
    v = Variable(np.array([1.0, 2.0]))
    (v * 3).sum().backward()
    (v * 3).sum().backward()
    assert np.allclose(v.grad.data, [6.0, 6.0]) and isinstance(v.grad, Tensor)
    with no_grad():
        z = v * 2
    assert not z.requires_grad
    assert np.allclose((x.reshape(4, 3).T[0]).data, x.data.reshape(4, 3).T[0])
