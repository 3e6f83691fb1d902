"""Memory budget (pytest-memray) of a Conv2D forward and backward.

Input (32, 3, 32, 32) float32 is 0.4 MB; its im2col buffer is kh*kw = 9 times that (3.5 MB), kept for
the backward pass; the output (32, 16, 32, 32) is 2.1 MB and its gradient as much again. The budget
allows those plus working space; a second im2col copy or a per-pixel Python object would break it.
"""

import importlib.util

import numpy as np
import pytest

from tinytorch.core.autograd import Variable
from tinytorch.core.spatial import Conv2D

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("pytest_memray") is None,
                       reason="pytest-memray is not installed (memray runs on Linux and macOS only)"),
    pytest.mark.usefixtures("blas_buffers_allocated"),
]


@pytest.mark.limit_memory("24 MB")
def test_conv2d_forward_and_backward_stays_within_budget():
    conv = Conv2D(3, 16, 3, padding=1, seed=0)
    x = Variable(np.ones((32, 3, 32, 32), dtype=np.float32))
    out = conv(x)
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert x.grad.shape == x.shape and conv.weight.grad.shape == (16, 3, 3, 3)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
