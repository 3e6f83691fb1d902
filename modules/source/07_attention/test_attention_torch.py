"""PyTorch parity of module 07: attention values and gradients, multi-head attention, LayerNorm."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from tinytorch.core.attention import (
    LayerNorm,
    MultiHeadAttention,
    create_causal_mask,
    scaled_dot_product_attention,
)
from tinytorch.core.autograd import Variable
from tinytorch.core.tensor import Tensor


def t64(array):
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def assert_close(ours, theirs, tol=1e-10):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=tol, atol=tol)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def sdpa_parity(q, k, v, mask=None):
    """Values and gradients of output (and of weights through a second loss) against PyTorch."""
    projection = np.random.default_rng(1).normal(size=q.shape[:-1] + v.shape[-1:])
    Q, K, V = Variable(q), Variable(k), Variable(v)
    out, _ = scaled_dot_product_attention(Q, K, V, mask=mask)
    (out * Tensor(projection)).sum().backward()

    tq, tk, tv = t64(q), t64(k), t64(v)
    t_mask = None if mask is None else torch.tensor(mask.data if isinstance(mask, Tensor) else mask)
    t_out = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=t_mask)   # bool mask: True = allowed
    (t_out * torch.tensor(projection)).sum().backward()

    assert_close(out.data, t_out)
    for ours, theirs in [(Q, tq), (K, tk), (V, tv)]:
        assert_close(ours.grad.data, theirs.grad)


def test_sdpa_matches_torch(rng):
    sdpa_parity(rng.normal(size=(2, 3, 5, 4)), rng.normal(size=(2, 3, 7, 4)), rng.normal(size=(2, 3, 7, 6)))


def test_sdpa_matches_torch_with_bool_mask(rng):
    mask = rng.random((2, 1, 5, 7)) > 0.5
    mask[..., 0] = True
    sdpa_parity(rng.normal(size=(2, 3, 5, 4)), rng.normal(size=(2, 3, 7, 4)), rng.normal(size=(2, 3, 7, 6)), mask)


def test_sdpa_matches_torch_causal(rng):
    q, k, v = rng.normal(size=(2, 6, 4)), rng.normal(size=(2, 6, 4)), rng.normal(size=(2, 6, 3))
    sdpa_parity(q, k, v, create_causal_mask(6))
    tq, tk, tv = (torch.tensor(a) for a in (q, k, v))
    np.testing.assert_allclose(scaled_dot_product_attention(q, k, v, mask=create_causal_mask(6))[0].data,
                               F.scaled_dot_product_attention(tq, tk, tv, is_causal=True).numpy(), rtol=1e-10)


def test_sdpa_fully_masked_row_matches_torch(rng):
    mask = np.ones((4, 5), dtype=bool)
    mask[2] = False
    sdpa_parity(rng.normal(size=(3, 4, 4)), rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 5, 2)), mask)


def test_sdpa_float32_matches_torch(rng):
    q, k, v = (rng.normal(size=(2, 8, 16)).astype(np.float32) for _ in range(3))
    out, _ = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v))
    t_out = F.scaled_dot_product_attention(*(torch.tensor(a) for a in (q, k, v)))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, t_out.numpy(), rtol=1e-5, atol=1e-6)


def torch_mha(x, memory, mha, mask):
    """A hand-written PyTorch multi-head attention using copies of our weights (float64)."""
    params = {name: (t64(layer.weights.data), t64(layer.bias.data))
              for name, layer in [("q", mha.w_q), ("k", mha.w_k), ("v", mha.w_v), ("o", mha.w_o)]}
    B, Lq, D = x.shape
    Lk, H = memory.shape[1], mha.num_heads

    def split(a, L):
        return a.reshape(B, L, H, D // H).transpose(1, 2)
    q = split(x @ params["q"][0] + params["q"][1], Lq)
    k = split(memory @ params["k"][0] + params["k"][1], Lk)
    v = split(memory @ params["v"][0] + params["v"][1], Lk)
    heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = heads.transpose(1, 2).reshape(B, Lq, D) @ params["o"][0] + params["o"][1]
    return out, params


def test_mha_matches_hand_written_torch(rng):
    mha = MultiHeadAttention(12, 3, seed=0)
    for p in mha.parameters():
        p.data = p.data.astype(np.float64)
    x, memory = rng.normal(size=(2, 4, 12)), rng.normal(size=(2, 6, 12))
    mask = rng.random((2, 1, 4, 6)) > 0.3
    mask[..., 0] = True
    projection = rng.normal(size=(2, 4, 12))

    xv, mv = Variable(x), Variable(memory)
    out = mha(xv, mv, mv, mask=mask)
    (out * Tensor(projection)).sum().backward()

    tx, tm = t64(x), t64(memory)
    t_out, params = torch_mha(tx, tm, mha, torch.tensor(mask))
    (t_out * torch.tensor(projection)).sum().backward()

    assert_close(out.data, t_out)
    assert_close(xv.grad.data, tx.grad)
    assert_close(mv.grad.data, tm.grad)
    for name, layer in [("q", mha.w_q), ("k", mha.w_k), ("v", mha.w_v), ("o", mha.w_o)]:
        assert_close(layer.weights.grad.data, params[name][0].grad)
        assert_close(layer.bias.grad.data, params[name][1].grad)


def test_mha_matches_torch_multihead_attention_module(rng):
    """torch.nn.MultiheadAttention with copied weights; note its bool mask means True = *blocked*."""
    mha = MultiHeadAttention(8, 2, seed=1)
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.tensor(np.concatenate(
            [mha.w_q.weights.data.T, mha.w_k.weights.data.T, mha.w_v.weights.data.T]).astype(np.float64)))
        ref.in_proj_bias.copy_(torch.tensor(np.concatenate(
            [mha.w_q.bias.data, mha.w_k.bias.data, mha.w_v.bias.data]).astype(np.float64)))
        ref.out_proj.weight.copy_(torch.tensor(mha.w_o.weights.data.T.astype(np.float64)))
        ref.out_proj.bias.copy_(torch.tensor(mha.w_o.bias.data.astype(np.float64)))
    x = rng.normal(size=(3, 5, 8)).astype(np.float32)
    causal = create_causal_mask(5)
    ours = mha(Tensor(x), mask=causal)
    theirs, weights = ref(*(torch.tensor(x.astype(np.float64)),) * 3, attn_mask=torch.tensor(~causal.data),
                          average_attn_weights=False)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mha.last_weights.data, weights.detach().numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("shape, normalized", [((4, 6, 10), 10), ((3, 4, 5), (4, 5))])
def test_layer_norm_matches_torch(rng, shape, normalized):
    ln = LayerNorm(normalized)
    ref = torch.nn.LayerNorm(normalized, dtype=torch.float64)
    assert ref.eps == ln.eps
    gamma, beta = rng.normal(size=ln.gamma.shape), rng.normal(size=ln.beta.shape)
    ln.gamma.data, ln.beta.data = gamma, beta
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(gamma))
        ref.bias.copy_(torch.tensor(beta))
    x = rng.normal(size=shape) * 4 + 2
    projection = rng.normal(size=shape)

    xv = Variable(x)
    (ln(xv) * Tensor(projection)).sum().backward()
    tx = t64(x)
    (ref(tx) * torch.tensor(projection)).sum().backward()

    assert_close(ln(Tensor(x)).data, ref(torch.tensor(x)), tol=1e-9)
    assert_close(xv.grad.data, tx.grad, tol=1e-9)
    assert_close(ln.gamma.grad.data, ref.weight.grad, tol=1e-9)
    assert_close(ln.beta.grad.data, ref.bias.grad, tol=1e-9)


def test_layer_norm_float32_matches_torch(rng):
    x = rng.normal(size=(8, 32)).astype(np.float32) * 100
    ours = LayerNorm(32)(Tensor(x))
    theirs = torch.nn.LayerNorm(32)(torch.tensor(x))
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-4, atol=1e-5)


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
