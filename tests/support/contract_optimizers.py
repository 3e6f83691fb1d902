"""The contract of module 09 (SGD, Adam, StepLR): one step each, against the update formulas."""

import numpy as np

from tinytorch.core.autograd import Variable
from tinytorch.core.optimizers import SGD, Adam, StepLR


def _param_with_grad(value, grad):
    p = Variable(np.array(value, dtype=np.float64))
    (p * np.array(grad)).sum().backward()
    return p


def optimizers_contract():
    p = _param_with_grad([1.0, -2.0], [0.5, 1.0])
    SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01).step()
    assert np.allclose(p.data, [1.0, -2.0] - 0.1 * (np.array([0.5, 1.0]) + 0.01 * np.array([1.0, -2.0])))
    q = _param_with_grad([1.0, -2.0], [0.5, 1.0])
    Adam([q], lr=0.01).step()
    # First Adam step: bias-corrected m/v make the update lr * g / (|g| + eps) = lr * sign(g).
    assert np.allclose(q.data, [1.0 - 0.01, -2.0 - 0.01], atol=1e-7)
    optimizer = SGD([q], lr=1.0)
    schedule = StepLR(optimizer, step_size=2, gamma=0.5)
    for _ in range(4):
        optimizer.step()
        schedule.step()
    assert np.isclose(optimizer.lr, 0.25)
    optimizer.zero_grad()
    assert q.grad is None
