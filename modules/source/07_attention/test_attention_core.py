"""Unit tests of module 07 (attention) against the exported package tinytorch.core.attention."""

import numpy as np
import pytest

from tinytorch.core.attention import (
    LayerNorm,
    MultiHeadAttention,
    SelfAttention,
    create_causal_mask,
    scaled_dot_product_attention,
)
from tinytorch.core.autograd import Variable, check_gradients, no_grad
from tinytorch.core.tensor import Tensor


def reference_attention(q, k, v, mask=None):
    """Batched NumPy attention written independently of the module (einsum, explicit masking)."""
    scores = np.einsum("...qd,...kd->...qk", q, k) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    top = np.max(scores, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    exps = np.exp(scores - top)
    total = exps.sum(axis=-1, keepdims=True)
    weights = np.divide(exps, total, out=np.zeros_like(exps), where=total > 0)
    return np.einsum("...qk,...kv->...qv", weights, v), weights


def to_float64(module):
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    return module


def linear(layer, x):
    return x @ layer.weights.data + layer.bias.data


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---- scaled_dot_product_attention ---------------------------------------------------------------

def test_sdpa_values_batched(rng):
    q, k, v = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(2, 3, 6, 5)), rng.normal(size=(2, 3, 6, 2))
    out, w = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v))
    ref_out, ref_w = reference_attention(q, k, v)
    assert type(out) is Tensor and type(w) is Tensor
    assert out.shape == (2, 3, 4, 2) and w.shape == (2, 3, 4, 6)
    np.testing.assert_allclose(out.data, ref_out, rtol=1e-10)
    np.testing.assert_allclose(w.data, ref_w, rtol=1e-10)
    np.testing.assert_allclose(w.data.sum(axis=-1), 1.0)


def test_sdpa_broadcasts_leading_dims(rng):
    q, k, v = rng.normal(size=(4, 3, 5)), rng.normal(size=(7, 5)), rng.normal(size=(1, 7, 2))
    out, w = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v))
    ref_out, _ = reference_attention(q, k[None], v)
    assert out.shape == (4, 3, 2) and w.shape == (4, 3, 7)
    np.testing.assert_allclose(out.data, ref_out, rtol=1e-10)


def test_sdpa_keeps_float32_and_is_stable(rng):
    x = (rng.normal(size=(2, 5, 8)) * 1e4).astype(np.float32)
    out, w = scaled_dot_product_attention(Tensor(x), Tensor(x), Tensor(x))
    assert out.dtype == np.float32 and w.dtype == np.float32
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(w.data))
    np.testing.assert_allclose(w.data.sum(-1), 1.0, rtol=1e-5)


def test_sdpa_scales_by_sqrt_d(rng):
    q, k = rng.normal(size=(3, 16)), rng.normal(size=(4, 16))
    _, w = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(np.eye(4)))
    s = q @ k.T / 4.0
    expected = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(w.data, expected / expected.sum(-1, keepdims=True), rtol=1e-10)


def test_sdpa_accepts_numpy_arrays(rng):
    q = rng.normal(size=(3, 4))
    out, _ = scaled_dot_product_attention(q, q, q)
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(out.data, reference_attention(q, q, q)[0])


def test_sdpa_mask_values(rng):
    q, k, v = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 3))
    mask = rng.random((2, 4, 5)) > 0.5
    mask[..., 0] = True
    out, w = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=Tensor(mask))
    ref_out, ref_w = reference_attention(q, k, v, mask)
    assert np.all(w.data[~mask] == 0.0)
    np.testing.assert_allclose(out.data, ref_out, rtol=1e-10)
    np.testing.assert_allclose(w.data, ref_w, rtol=1e-10)


def test_sdpa_mask_broadcasts_over_batch(rng):
    q = rng.normal(size=(3, 2, 4, 4))
    mask = np.array([True, True, False, True])                 # (Lk,): hide key 2 from everyone
    _, w = scaled_dot_product_attention(Tensor(q), Tensor(q), Tensor(q), mask=mask)
    assert np.all(w.data[..., 2] == 0) and np.allclose(w.data.sum(-1), 1)


def test_fully_masked_row_gives_zeros_not_nan(rng):
    q, k, v = (Variable(rng.normal(size=(2, 3, 4))) for _ in range(3))
    mask = np.ones((3, 3), dtype=bool)
    mask[1] = False
    out, w = scaled_dot_product_attention(q, k, v, mask=mask)
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(w.data))
    assert np.all(w.data[:, 1] == 0) and np.all(out.data[:, 1] == 0)
    np.testing.assert_allclose(w.data[:, [0, 2]].sum(-1), 1.0)
    out.sum().backward()
    for t in (q, k, v):
        assert np.all(np.isfinite(t.grad.data))
    assert np.all(q.grad.data[:, 1] == 0), "a query that sees nothing gets no gradient"


def test_sdpa_gradients_qkv(rng):
    q, k, v = Variable(rng.normal(size=(2, 3, 4))), Variable(rng.normal(size=(2, 5, 4))), Variable(rng.normal(size=(2, 5, 3)))
    check_gradients(lambda a, b, c: scaled_dot_product_attention(a, b, c)[0], q, k, v)


def test_sdpa_gradients_with_mask(rng):
    q, k, v = Variable(rng.normal(size=(2, 4, 3))), Variable(rng.normal(size=(2, 4, 3))), Variable(rng.normal(size=(2, 4, 2)))
    mask = rng.random((2, 4, 4)) > 0.4
    mask[1, 2] = False                                          # one fully masked row as well
    mask[0, :, 0] = True
    check_gradients(lambda a, b, c: scaled_dot_product_attention(a, b, c, mask=mask)[0], q, k, v)
    check_gradients(lambda a, b, c: scaled_dot_product_attention(a, b, c, mask=create_causal_mask(4))[0], q, k, v)


def test_sdpa_gradients_of_weights_and_broadcast_inputs(rng):
    q, k = Variable(rng.normal(size=(3, 2, 4))), Variable(rng.normal(size=(5, 4)))
    v = Variable(rng.normal(size=(5, 2)))
    check_gradients(lambda a, b: scaled_dot_product_attention(a, b, v)[1], q, k)
    check_gradients(lambda a, b, c: scaled_dot_product_attention(a, b, c)[0], q, k, v)


def test_sdpa_polymorphism(rng):
    q = rng.normal(size=(3, 4))
    v = Variable(rng.normal(size=(3, 4)))
    out, w = scaled_dot_product_attention(Tensor(q), Tensor(q), v)
    assert isinstance(out, Variable) and type(w) is Tensor
    out.sum().backward()
    assert v.grad is not None and v.grad.shape == (3, 4)
    with no_grad():
        out, _ = scaled_dot_product_attention(Variable(q), Variable(q), Variable(q))
    assert not out.requires_grad


@pytest.mark.parametrize("shapes", [
    ((3, 4), (5, 3), (5, 2)),        # d differs
    ((3, 4), (5, 4), (6, 2)),        # Lk differs
    ((4,), (5, 4), (5, 2)),          # Q is 1-D
    ((2, 3, 4), (3, 5, 4), (3, 5, 2)),  # batch dims do not broadcast
])
def test_sdpa_shape_errors_name_shapes(shapes):
    with pytest.raises(ValueError) as info:
        scaled_dot_product_attention(*(np.ones(s) for s in shapes))
    assert any(str(s) in str(info.value) for s in shapes)


def test_sdpa_mask_errors():
    q = Tensor(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"\(3, 5\)"):
        scaled_dot_product_attention(q, q, q, mask=np.ones((3, 5), dtype=bool))
    with pytest.raises(TypeError, match="boolean"):
        scaled_dot_product_attention(q, q, q, mask=np.zeros((3, 3)))
    with pytest.raises(TypeError):
        scaled_dot_product_attention([[1.0]], q, q)
    with pytest.raises(TypeError):
        scaled_dot_product_attention(Tensor(np.ones((3, 4), dtype=np.int64)), q, q)


# ---- causal mask ------------------------------------------------------------------------------

def test_causal_mask_pattern():
    mask = create_causal_mask(5)
    assert isinstance(mask, Tensor) and mask.dtype == np.bool_ and mask.shape == (5, 5)
    i, j = np.indices((5, 5))
    assert np.array_equal(mask.data, j <= i)
    assert create_causal_mask(1).data.tolist() == [[True]]


@pytest.mark.parametrize("bad, kind", [(0, ValueError), (-3, ValueError), (2.0, TypeError), (True, TypeError), ("4", TypeError)])
def test_causal_mask_errors(bad, kind):
    with pytest.raises(kind):
        create_causal_mask(bad)


def test_causal_output_ignores_future_positions(rng):
    attn = MultiHeadAttention(8, 2, seed=0)
    x = rng.normal(size=(2, 7, 8)).astype(np.float32)
    mask = create_causal_mask(7)
    base = attn(Tensor(x), mask=mask).data
    for t in range(6):
        changed = x.copy()
        changed[:, t + 1:] = rng.normal(size=changed[:, t + 1:].shape)
        out = attn(Tensor(changed), mask=mask).data
        np.testing.assert_allclose(out[:, :t + 1], base[:, :t + 1], atol=1e-6)
        assert not np.allclose(out[:, t + 1:], base[:, t + 1:])


def test_causal_gradient_does_not_reach_future(rng):
    x = Variable(rng.normal(size=(1, 5, 4)))
    out, _ = scaled_dot_product_attention(x, x, x, mask=create_causal_mask(5))
    out[:, 2].sum().backward()                   # position 2 may depend on 0, 1, 2 only
    assert np.all(x.grad.data[:, 3:] == 0) and np.all(x.grad.data[:, :3] != 0)


# ---- SelfAttention ----------------------------------------------------------------------------

def test_self_attention_values_and_parameters(rng):
    attn = SelfAttention(6, seed=1)
    params = attn.parameters()
    assert len(params) == 8 and sum(p.data.size for p in params) == 4 * (36 + 6)
    x = rng.normal(size=(2, 5, 6)).astype(np.float32)
    y = attn(Tensor(x))
    assert type(y) is Tensor and y.shape == (2, 5, 6) and y.dtype == np.float32
    q, k, v = linear(attn.query, x), linear(attn.key, x), linear(attn.value, x)
    ref, w = reference_attention(q, k, v)
    np.testing.assert_allclose(y.data, linear(attn.out, ref), atol=1e-5)
    np.testing.assert_allclose(attn.last_weights.data, w, atol=1e-6)
    assert np.array_equal(SelfAttention(6, seed=1).query.weights.data, attn.query.weights.data)


def test_self_attention_gradients(rng):
    attn = to_float64(SelfAttention(4, seed=2))
    x = Variable(rng.normal(size=(2, 3, 4)))
    check_gradients(lambda a, *p: attn(a), x, *attn.parameters())
    check_gradients(lambda a, *p: attn(a, mask=create_causal_mask(3)), x, *attn.parameters())


def test_self_attention_errors():
    with pytest.raises(ValueError):
        SelfAttention(0)
    with pytest.raises(ValueError, match=r"\(2, 3, 5\)"):
        SelfAttention(4)(Tensor(np.ones((2, 3, 5))))


# ---- MultiHeadAttention -----------------------------------------------------------------------

def test_mha_matches_per_head_reference(rng):
    mha = MultiHeadAttention(12, 4, seed=3)
    assert mha.head_dim == 3 and len(mha.parameters()) == 8
    x = rng.normal(size=(2, 5, 12)).astype(np.float32)
    y = mha(Tensor(x))
    assert type(y) is Tensor and y.shape == (2, 5, 12)
    q, k, v = linear(mha.w_q, x), linear(mha.w_k, x), linear(mha.w_v, x)
    heads, weights = [], []
    for h in range(4):
        cols = slice(3 * h, 3 * h + 3)
        o, w = reference_attention(q[..., cols], k[..., cols], v[..., cols])
        heads.append(o)
        weights.append(w)
    np.testing.assert_allclose(y.data, linear(mha.w_o, np.concatenate(heads, -1)), atol=1e-5)
    np.testing.assert_allclose(mha.last_weights.data, np.stack(weights, axis=1), atol=1e-6)


def test_mha_split_merge_round_trip(rng):
    mha = MultiHeadAttention(8, 2)
    x = rng.normal(size=(3, 4, 8))
    split = mha.split_heads(Tensor(x))
    assert split.shape == (3, 2, 4, 4)
    np.testing.assert_array_equal(split.data[:, 1], x[..., 4:])
    np.testing.assert_array_equal(mha.merge_heads(split).data, x)
    assert mha.split_heads(Tensor(x[0])).shape == (2, 4, 4), "no batch dimension works too"


def test_mha_one_head_equals_self_attention(rng):
    mha, single = MultiHeadAttention(6, 1, seed=4), SelfAttention(6, seed=4)
    for a, b in zip(mha.parameters(), single.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    x = Tensor(rng.normal(size=(2, 3, 6)).astype(np.float32))
    np.testing.assert_allclose(mha(x).data, single(x).data, atol=1e-6)


def test_mha_cross_attention_and_masks(rng):
    mha = MultiHeadAttention(8, 2, seed=5)
    x, memory = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 6, 8))
    assert mha(Tensor(x), Tensor(memory), Tensor(memory)).shape == (2, 3, 8)
    assert mha.last_weights.shape == (2, 2, 3, 6)
    padding = np.ones((2, 3, 6), dtype=bool)
    padding[0, :, 4:] = False                   # batch item 0 has 4 real keys
    mha(Tensor(x), Tensor(memory), mask=padding)
    assert np.all(mha.last_weights.data[0, :, :, 4:] == 0) and np.all(mha.last_weights.data[1] > 0)
    mha(Tensor(x), Tensor(memory), mask=padding[:, None])   # the same as a 4-D mask
    assert np.all(mha.last_weights.data[0, :, :, 4:] == 0)


def test_mha_gradients_all_parameters(rng):
    mha = to_float64(MultiHeadAttention(6, 3, seed=6))
    x = Variable(rng.normal(size=(2, 4, 6)))
    memory = Variable(rng.normal(size=(2, 5, 6)))
    check_gradients(lambda a, *p: mha(a, mask=create_causal_mask(4)), x, *mha.parameters())
    check_gradients(lambda a, m: mha(a, m), x, memory)
    mha(x).sum().backward()
    assert all(p.grad is not None and np.any(p.grad.data != 0) for p in mha.parameters())


def test_mha_float32_parameters_receive_float32_grads(rng):
    mha = MultiHeadAttention(8, 2, seed=7)
    mha(Variable(rng.normal(size=(2, 3, 8)).astype(np.float32))).sum().backward()
    assert all(p.grad.dtype == np.float32 and p.grad.shape == p.shape for p in mha.parameters())


@pytest.mark.parametrize("d_model, heads", [(10, 3), (8, 0), (8, 16)])
def test_mha_bad_head_count(d_model, heads):
    with pytest.raises(ValueError) as info:
        MultiHeadAttention(d_model, heads)
    assert str(heads) in str(info.value)


def test_mha_input_errors():
    mha = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"\(2, 3, 6\)"):
        mha(Tensor(np.ones((2, 3, 6))))
    with pytest.raises(ValueError, match="same length"):
        mha(Tensor(np.ones((2, 3, 8))), Tensor(np.ones((2, 4, 8))), Tensor(np.ones((2, 5, 8))))


# ---- LayerNorm --------------------------------------------------------------------------------

def test_layer_norm_values(rng):
    ln = LayerNorm(5)
    assert ln.eps == 1e-5 and ln.weight is ln.gamma and ln.bias is ln.beta
    assert ln.parameters() == [ln.gamma, ln.beta]
    assert np.array_equal(ln.gamma.data, np.ones(5)) and np.array_equal(ln.beta.data, np.zeros(5))
    x = (rng.normal(size=(3, 4, 5)) * 3 + 1).astype(np.float32)
    y = ln(Tensor(x))
    assert type(y) is Tensor and y.dtype == np.float32
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)  # biased variance
    np.testing.assert_allclose(y.data, expected, atol=1e-5)
    ln.gamma.data = rng.normal(size=5).astype(np.float32)
    ln.beta.data = rng.normal(size=5).astype(np.float32)
    np.testing.assert_allclose(ln(Tensor(x)).data, expected * ln.gamma.data + ln.beta.data, atol=1e-5)


def test_layer_norm_multiple_axes(rng):
    ln = LayerNorm((4, 5), eps=1e-3)
    x = rng.normal(size=(3, 4, 5))
    flat = x.reshape(3, -1)
    expected = ((flat - flat.mean(-1, keepdims=True)) / np.sqrt(flat.var(-1, keepdims=True) + 1e-3)).reshape(x.shape)
    np.testing.assert_allclose(ln(Tensor(x)).data, expected, rtol=1e-10)
    assert ln.gamma.shape == (4, 5)


def test_layer_norm_gradients(rng):
    for shape, normalized in [((2, 3, 5), 5), ((2, 3, 4), (3, 4)), ((6,), 6)]:
        ln = to_float64(LayerNorm(normalized))
        ln.gamma.data = rng.normal(size=ln.gamma.shape)
        ln.beta.data = rng.normal(size=ln.beta.shape)
        check_gradients(lambda a, g, b: ln(a), Variable(rng.normal(size=shape)), ln.gamma, ln.beta)


def test_layer_norm_constant_row_is_finite():
    ln = LayerNorm(4)
    x = Variable(np.full((2, 4), 3.0))
    y = ln(x)
    assert np.all(y.data == 0)
    y.sum().backward()
    assert np.all(np.isfinite(x.grad.data))


@pytest.mark.parametrize("bad", [0, (3, -1), (), 2.5])
def test_layer_norm_bad_shape(bad):
    with pytest.raises((ValueError, TypeError)):
        LayerNorm(bad)


def test_layer_norm_input_error():
    with pytest.raises(ValueError, match=r"\(2, 5\)"):
        LayerNorm(4)(Tensor(np.ones((2, 5))))
    with pytest.raises(ValueError):
        LayerNorm((2, 4))(Tensor(np.ones(4)))


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
