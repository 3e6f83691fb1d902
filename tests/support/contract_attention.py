"""The contract of module 07 (attention, LayerNorm)."""

import numpy as np

from tinytorch.core.attention import LayerNorm, MultiHeadAttention, create_causal_mask, scaled_dot_product_attention
from tinytorch.core.autograd import Variable
from tinytorch.core.tensor import Tensor


def attention_contract():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 4, 8)) for _ in range(3))
    mask = create_causal_mask(4)
    assert mask.dtype == bool and mask[0, 0] and not mask[0, 1]
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(8)
    scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out, got_weights = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=mask)
    assert np.allclose(got_weights.data, weights) and np.allclose(out.data, weights @ v)
    x = rng.standard_normal((2, 4, 8))
    norm = LayerNorm(8)
    want = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    assert np.allclose(norm(Tensor(x)).data, want, atol=1e-5)
    attention = MultiHeadAttention(8, 2, seed=0)
    y = attention(Variable(x.astype(np.float32)))
    assert y.shape == (2, 4, 8)
    y.sum().backward()
    assert all(p.grad is not None for p in attention.parameters())
