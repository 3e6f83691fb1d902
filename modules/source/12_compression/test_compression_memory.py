"""Memory budgets (pytest-memray) of quantization.

quantize_int8 of a (1024, 1024) float32 matrix (4 MB, allocated in the test) needs one float64 temporary
(8 MB) and the int8 result (1 MB): about 13 MB. A second float64 copy (an abs() of the whole array in
float64, or a rounding that is not in place) would pass 20 MB. A QuantizedDense forward at batch 64
allocates a float32 copy of its int8 weights (0.8 MB for 784 x 256) and the output; a float copy kept in
the graph, or a float64 computation, would exceed the budget.
"""

import importlib.util

import numpy as np
import pytest

from tinytorch.core.autograd import Variable
from tinytorch.core.compression import QuantizedDense, quantize_int8
from tinytorch.core.layers import Dense
from tinytorch.core.tensor import Tensor

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("pytest_memray") is None,
                       reason="pytest-memray is not installed (memray runs on Linux and macOS only)"),
    pytest.mark.usefixtures("blas_buffers_allocated"),
]


@pytest.mark.limit_memory("16 MB")
def test_quantize_a_million_weights_stays_within_budget():
    w = np.ones((1024, 1024), dtype=np.float32)
    q, scale = quantize_int8(w, axis=1)
    assert q.dtype == np.int8 and scale.shape == (1, 1024)


@pytest.fixture
def quantized_layer():
    return QuantizedDense(Dense(784, 256, seed=0))


@pytest.mark.limit_memory("2 MB")
def test_quantized_forward_at_batch_64_stays_within_budget(quantized_layer):
    x = Tensor(np.ones((64, 784), dtype=np.float32))
    assert quantized_layer(x).shape == (64, 256)


@pytest.mark.limit_memory("3 MB")
def test_quantized_forward_and_backward_at_batch_64_stays_within_budget(quantized_layer):
    x = Variable(np.ones((64, 784), dtype=np.float32), requires_grad=True)
    quantized_layer(x).sum().backward()
    assert x.grad.shape == (64, 784)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
