"""Memory budget (pytest-memray) of one training step of the digits MLP at batch 64.

64 -> 128 -> 64 -> 10 has 17,226 parameters (67 KB); Adam keeps two more copies. A step's activations
at batch 64 are a few tens of KB. The budget leaves room for NumPy's working space and nothing like a
retained graph from a previous step (which would grow with every step).
"""

import numpy as np
import pytest

pytest.importorskip("pytest_memray")  # memray runs on Linux and macOS only

from tinytorch.core.activations import ReLU  # noqa: E402
from tinytorch.core.autograd import Variable  # noqa: E402
from tinytorch.core.layers import Dense  # noqa: E402
from tinytorch.core.networks import Sequential  # noqa: E402
from tinytorch.core.optimizers import Adam  # noqa: E402
from tinytorch.core.training import CrossEntropyLoss  # noqa: E402



@pytest.fixture(autouse=True)
def blas_buffers_already_allocated():
    """OpenBLAS allocates its work buffers (about 32 MB) on the first matrix product of a process.
    That is a one-time cost of the library, not of the code under test: pay it before measuring
    (pytest-memray measures the test call, not its fixtures)."""
    np.ones((64, 64), dtype=np.float32) @ np.ones((64, 64), dtype=np.float32)
    np.ones((64, 64)) @ np.ones((64, 64))

@pytest.mark.limit_memory("2 MB")
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
