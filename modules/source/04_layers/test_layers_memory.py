"""Memory budgets (pytest-memray): a Dense forward at batch 64 must not allocate far beyond its tensors.

The budget is about twice what the operation needs (weights 0.8 MB, drawn in float64 first; input
0.2 MB; output 0.07 MB; a backward adds the gradients), so an accidental copy of the input or an
(N, in, out) intermediate fails here with memray's message. Measured with `pytest --memray`; see reports/ for whole-module peaks.
"""

import importlib.util

import numpy as np
import pytest

from tinytorch.core.autograd import Variable
from tinytorch.core.layers import Dense
from tinytorch.core.tensor import Tensor

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("pytest_memray") is None,
                       reason="pytest-memray is not installed (memray runs on Linux and macOS only)"),
    pytest.mark.usefixtures("blas_buffers_allocated"),
]


@pytest.mark.limit_memory("5 MB")
def test_dense_forward_at_batch_64_stays_within_budget():
    layer = Dense(784, 256, seed=0)
    x = Tensor(np.ones((64, 784), dtype=np.float32))
    out = layer(x)
    assert out.shape == (64, 256)


@pytest.mark.limit_memory("6 MB")
def test_dense_forward_and_backward_at_batch_64_stays_within_budget():
    layer = Dense(784, 256, seed=0)
    x = Variable(np.ones((64, 784), dtype=np.float32), requires_grad=False)
    layer(x).sum().backward()
    assert layer.weights.grad.shape == (784, 256)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
