"""Memory budget (pytest-memray) of one training step of the digits MLP at batch 64.

64 -> 128 -> 64 -> 10 has 17,226 parameters (67 KB); Adam keeps two more copies. A step's activations
at batch 64 are a few tens of KB. The budget leaves room for NumPy's working space and nothing like a
retained graph from a previous step (which would grow with every step).
"""

import importlib.util

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Variable
from tinytorch.core.layers import Dense
from tinytorch.core.networks import Sequential
from tinytorch.core.optimizers import Adam
from tinytorch.core.training import CrossEntropyLoss

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("pytest_memray") is None,
                       reason="pytest-memray is not installed (memray runs on Linux and macOS only)"),
    pytest.mark.usefixtures("blas_buffers_allocated"),
]


@pytest.mark.limit_memory("4 MB")
def test_ten_training_steps_stay_within_budget():
    rng = np.random.default_rng(0)
    model = Sequential([Dense(64, 128, seed=1), ReLU(), Dense(128, 64, seed=2), ReLU(), Dense(64, 10, seed=3)])
    optimizer = Adam(model.parameters(), lr=1e-3)
    loss_fn = CrossEntropyLoss()
    x = Variable(rng.standard_normal((64, 64)).astype(np.float32), requires_grad=False)
    y = rng.integers(0, 10, size=64)
    for _ in range(10):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    assert np.isfinite(loss.item())


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
