"""Memory budget (pytest-memray) of an attention block forward and backward.

Batch 8, sequence 64, d_model 64, 4 heads: the attention weights are (8, 4, 64, 64) float32 = 0.5 MB
and the activations (8, 64, 64) are 0.13 MB each. Memory grows with seq_len^2 per head; the budget
catches a quadratic intermediate that is larger than it needs to be (say, per-head copies of Q/K/V).
"""

import importlib.util

import numpy as np
import pytest

from tinytorch.core.attention import LayerNorm, MultiHeadAttention, create_causal_mask
from tinytorch.core.autograd import Variable

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("pytest_memray") is None,
                       reason="pytest-memray is not installed (memray runs on Linux and macOS only)"),
    pytest.mark.usefixtures("blas_buffers_allocated"),
]


@pytest.mark.limit_memory("8 MB")
def test_attention_block_forward_and_backward_stays_within_budget():
    attention = MultiHeadAttention(64, 4, seed=0)
    norm = LayerNorm(64)
    x = Variable(np.ones((8, 64, 64), dtype=np.float32))
    out = norm(x + attention(x, mask=create_causal_mask(64)))
    out.sum().backward()
    assert x.grad.shape == x.shape


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
