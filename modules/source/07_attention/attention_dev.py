# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 07: Attention
#
# A dense layer mixes the features of **one** position; a convolution mixes a **fixed window** of
# neighbours. Attention lets every position of a sequence look at **every other position** and decide,
# from the data itself, which ones matter. It is the operation at the heart of the transformer, the
# architecture you will train in the capstone (module 16).
#
# The idea in one sentence: each position asks a question (a **query**), every position advertises what it
# holds (a **key**) and what it would hand over (a **value**); a query takes a weighted average of the
# values, with weights given by how well it matches each key.
#
# What you will build, in order:
#
# 1. `attention_weights`: the softmax of scaled query-key scores, with masking, as one differentiable
#    operation with a hand-derived backward pass.
# 2. `scaled_dot_product_attention(Q, K, V, mask=None)`: weights times values, returning `(output, weights)`.
# 3. `create_causal_mask(seq_len)`: the mask that stops a position from looking into the future.
# 4. `SelfAttention(d_model)`: learned query/key/value/output projections around attention.
# 5. `MultiHeadAttention(d_model, num_heads)`: several attentions side by side, split and merged with
#    reshapes and transposes (no loop over heads).
# 6. `LayerNorm(normalized_shape)`: per-position normalisation that keeps deep attention stacks trainable.
#
# It stands on `Tensor` (01), `Variable` and `record_op` (02) and `Module`/`Dense` (04). The
# **Systems Analysis** at the end measures the price of attention: memory and time that grow with the
# *square* of the sequence length.

# %% nbgrader={"grade": false, "grade_id": "attention-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.attention
#| export
import math

import numpy as np

from tinytorch.core.tensor import Tensor, best_time
from tinytorch.core.autograd import Variable, record_op
from tinytorch.core.layers import Module, Dense

# %% nbgrader={"grade": false, "grade_id": "attention-test-imports", "locked": false, "schema_version": 3, "solution": false}
# Only the tests in this file use these; they are not part of the package.
import tracemalloc

from tinytorch.core.autograd import check_gradients

# %% [markdown]
# ## 1. Scores, scaling and a safe softmax
#
# Shapes, for one sequence (leading batch or head dimensions just ride along):
#
# ```
# Q: (Lq, d)    one query per output position
# K: (Lk, d)    one key per input position
# V: (Lk, dv)   one value per input position
#
# scores  = Q @ K^T / sqrt(d)        (Lq, Lk)   how well query i matches key j
# weights = softmax(scores, axis=-1) (Lq, Lk)   each row sums to 1
# output  = weights @ V              (Lq, dv)   row i: a weighted average of the values
# ```
#
# **Why divide by sqrt(d)?** If the entries of q and k are independent with variance 1, the dot product
# q·k is a sum of d such products, so its variance is d. Large scores push the softmax into saturation
# (one weight near 1, the rest near 0) where its gradient vanishes. Dividing by sqrt(d) brings the variance
# back to 1 whatever the head size.
#
# **Stable softmax.** `exp(1000)` overflows. Softmax is unchanged when a constant is subtracted from a row,
# so we subtract the row maximum first: the largest exponent is then `exp(0) = 1`.
#
# **Masks.** A boolean `mask`, broadcastable to the scores' shape `(..., Lq, Lk)`, is **True where attention
# is allowed** (PyTorch's convention for boolean masks). Disallowed scores become `-inf` before the
# softmax, so their weight is exactly `exp(-inf) = 0`.
#
# **A fully masked row** (a query allowed to see nothing, e.g. a padding position) would compute
# `-inf - (-inf) = NaN`. TinyTorch defines its result instead: **all its weights are 0**, so its output is
# the zero vector and no gradient flows through it. PyTorch's `scaled_dot_product_attention` does the same.
#
# **Backward, derived once.** Let `P = softmax(S)` row by row and `G = dL/dP`. For one row,
# `dP_j/dS_k = P_j (δ_jk - P_k)`, so
#
# ```
# dL/dS = P * (G - sum_k(G * P, axis=-1))      elementwise, O(Lq·Lk)
# dL/dQ = dL/dS @ K / sqrt(d)                  (Lq, d)
# dL/dK = (dL/dS)^T @ Q / sqrt(d)              (Lk, d)
# ```
#
# Masked entries have `P = 0`, so their gradient is 0 without any special case. We implement scores,
# mask and softmax as **one** `record_op` with this backward, instead of five recorded operations: the
# graph stores one (Lq, Lk) array instead of several, and the formula is the one every framework uses.
#
# Cost: the two matrix products take `Lq·Lk·d` and `Lq·Lk·dv` multiply-adds; the weights take `Lq·Lk`
# numbers. Doubling the sequence length multiplies both by 4.

# %% nbgrader={"grade": false, "grade_id": "attention-helpers", "locked": false, "schema_version": 3, "solution": false}
#| export
def _as_tensor(x, name):
    """Accept a Tensor (Variables included) or a NumPy array; anything else is a TypeError."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor(x)
    raise TypeError(f"{name} must be a Tensor or a NumPy array, got {type(x).__name__}")


def _check_qkv(Q, K, V):
    """Raise ValueError unless Q (..., Lq, d), K (..., Lk, d), V (..., Lk, dv) fit together."""
    for name, t in (("Q", Q), ("K", K), ("V", V)):
        if t.ndim < 2:
            raise ValueError(f"{name} needs at least 2 dimensions (..., length, features), got shape {t.shape}")
        if t.dtype.kind != "f":
            raise TypeError(f"{name} must hold floating-point numbers, got dtype {t.dtype}")
    if Q.shape[-1] != K.shape[-1]:
        raise ValueError(f"Q and K need the same feature size d (last dimension): "
                         f"Q has shape {Q.shape}, K has shape {K.shape}")
    if K.shape[-2] != V.shape[-2]:
        raise ValueError(f"K and V need the same number of positions Lk (second-to-last dimension): "
                         f"K has shape {K.shape}, V has shape {V.shape}")
    try:
        np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    except ValueError:
        raise ValueError(f"the leading (batch/head) dimensions of Q {Q.shape}, K {K.shape} and V {V.shape} "
                         f"do not broadcast together") from None


def _mask_array(mask, scores_shape):
    """The boolean mask as an ndarray that broadcasts to `scores_shape` (..., Lq, Lk)."""
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"mask must be boolean (True where attention is allowed), got dtype {m.dtype}; "
                        f"build one with a comparison or create_causal_mask()")
    try:
        fits = np.broadcast_shapes(m.shape, scores_shape) == tuple(scores_shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"mask of shape {m.shape} does not broadcast to the attention scores' shape "
                         f"{tuple(scores_shape)} (..., Lq, Lk)")
    return m

# %% [markdown]
# ### Making attention fast: what the profiler found
#
# Profiling the training step of module 16's character transformer (batch 32 × 64 characters, 4 heads
# of 16 features) showed attention as the largest cost after the matrix products of the Dense layers:
# about 8 ms of a 32 ms step for its two layers. The (32, 4, 64, 64) weights are 2 MiB of float32 per
# layer, and the first version created ten arrays of that size per layer:
#
# - **Every step made a new array.** `(Q @ K^T) * scale`, `np.where(mask, ...)`, `scores - row_max`,
#   `np.exp(...)`, `exps / totals` in the forward pass, five more in the backward pass; each written
#   once, read once or twice, then thrown away. Fresh memory is not free: the allocator has to find it,
#   the caches start cold, and the first touch of each new page costs the operating system a page fault.
# - **Sums over the short last axis.** NumPy reduces a (..., 64) array along its last axis one row at a
#   time: 8,192 rows of 64 numbers, with a fixed cost per row. `totals = exps.sum(axis=-1)` took
#   0.17 ms, while `exps @ ones` (a matrix-vector product: the same sums, one BLAS call) takes 0.03 ms.
# - **Two recorded operations, weights then `weights @ V`.** The backward pass of the matmul built the
#   (Lq, Lk) gradient of the weights and handed it to the softmax backward, which computed
#   `sum(G * P, axis=-1)` over it: another 2 MiB product and another row-by-row reduction.
#
# What changed (the same formulas, the same results to float32 round-off):
#
# 1. The scores array is created once by the matrix product, and scaling, masking (`np.copyto(...,
#    where=~mask)`), shifting, `np.exp(..., out=...)` and normalising all work **in place** on it. The
#    backward pass creates one (Lq, Lk) array, `dL/dweights`, and turns it into `dL/dscores` in place.
# 2. Row sums are a product with a column of ones.
# 3. `scaled_dot_product_attention` records **one** node from the output to Q, K and V. Its backward
#    uses an identity that FlashAttention also relies on: with `out = P @ V` and `G = dL/dout`,
#    `sum_k(dL/dP * P) = sum_k((G @ V^T) * P) = sum_j(G * out)`, a sum over dv = 16 numbers per row
#    instead of Lk = 64, on arrays four times smaller. The 1/sqrt(d) scale is applied to the small
#    (Lq, d) results instead of the (Lq, Lk) array. The weights are still recorded as their own node
#    (Q, K -> weights), so a loss that uses them gets its gradient too.
#
# Measured inside the training step (CPU time per step, both layers, forward + backward): about 8 ms
# before, 6 ms after. What remains is mostly the three batched matrix products of each direction and
# the row maximum (`max(axis=-1)`, 0.6 ms per layer: NumPy's row-by-row reduction again, and a
# maximum has no BLAS shortcut).

# %% nbgrader={"grade": false, "grade_id": "attention-weights", "locked": false, "schema_version": 3, "solution": true}
#| export
def attention_weights(Q, K, mask=None):
    """softmax(Q @ K^T / sqrt(d)) over the last axis, with masked scores set to -inf first.

    Q: (..., Lq, d), K: (..., Lk, d), mask: bool, broadcastable to (..., Lq, Lk), True = allowed.
    Returns the weights (..., Lq, Lk): each row sums to 1, except fully masked rows, which are all 0.
    Differentiable with respect to Q and K (one recorded operation).
    """
    ### BEGIN SOLUTION
    scale = 1.0 / math.sqrt(Q.shape[-1])  # a Python float keeps float32 inputs float32
    weights = Q.data @ np.swapaxes(K.data, -1, -2)   # the scores (..., Lq, Lk): a new array, ours to overwrite
    weights *= scale                                 # every step below works in place on this one array
    if mask is not None:
        np.copyto(weights, -np.inf, where=~_mask_array(mask, weights.shape))

    row_max = weights.max(axis=-1, keepdims=True)
    # A fully masked row has max -inf; subtracting 0 instead keeps exp(-inf) = 0 and avoids -inf - -inf = NaN.
    row_max[~np.isfinite(row_max)] = 0.0
    weights -= row_max
    np.exp(weights, out=weights)
    totals = weights @ np.ones((weights.shape[-1], 1), dtype=weights.dtype)   # row sums, as one BLAS call
    totals[totals == 0] = 1.0                        # fully masked rows: 0 / 1 = 0
    weights /= totals

    def backward(grad):
        # softmax backward, then the two matrix products (the engine sums broadcast batch dims back)
        d_scores = weights * (grad - (grad * weights).sum(axis=-1, keepdims=True)) * scale
        d_Q = d_scores @ K.data
        d_K = np.swapaxes(d_scores, -1, -2) @ Q.data
        return d_Q, d_K

    return record_op(weights, (Q, K), backward, name="attention_weights")
    ### END SOLUTION

# %% nbgrader={"grade": false, "grade_id": "sdpa", "locked": false, "schema_version": 3, "solution": true}
#| export
def scaled_dot_product_attention(Q, K, V, mask=None):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V.

    Q: (..., Lq, d), K: (..., Lk, d), V: (..., Lk, dv); leading dimensions broadcast (batch, heads).
    mask: optional bool array/Tensor broadcastable to (..., Lq, Lk), True where attention is allowed.
    A query whose row is fully masked gets all-zero weights and a zero output.

    Returns (output, weights): output (..., Lq, dv), weights (..., Lq, Lk).
    Plain Tensors in give plain Tensors out; Variables in give Variables connected to Q, K and V.
    """
    Q, K, V = _as_tensor(Q, "Q"), _as_tensor(K, "K"), _as_tensor(V, "V")
    _check_qkv(Q, K, V)
    ### BEGIN SOLUTION
    weights = attention_weights(Q, K, mask)  # recorded (Q, K -> weights) for whoever uses the weights
    w, q, k, v = weights.data, Q.data, K.data, V.data
    out = w @ v
    scale = 1.0 / math.sqrt(q.shape[-1])
    need_q, need_k, need_v = (isinstance(t, Variable) and t.requires_grad for t in (Q, K, V))

    def backward(grad):
        # The output's gradient straight to Q, K and V: one node for the whole attention.
        d_w = grad @ np.swapaxes(v, -1, -2)                  # dL/dweights (..., Lq, Lk)
        d_v = np.swapaxes(w, -1, -2) @ grad if need_v else None
        # Softmax backward, d_w -> dL/dscores = w * (d_w - rowsum(d_w * w)), in place. The row sums equal
        # rowsum(grad * out) (since out = w @ v): a reduction over dv columns instead of Lk.
        d_w -= np.einsum("...ij,...ij->...i", grad, out)[..., None]
        d_w *= w
        d_q = (d_w @ k) * scale if need_q else None          # the 1/sqrt(d) scale on the small result
        d_k = (np.swapaxes(d_w, -1, -2) @ q) * scale if need_k else None
        return d_q, d_k, d_v

    output = record_op(out, (Q, K, V), backward, name="attention")
    return output, weights
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-sdpa", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def _reference_attention(q, k, v, mask=None):
    """Straightforward NumPy attention for one (Lq, d) x (Lk, d) x (Lk, dv) problem."""
    s = q @ k.T / np.sqrt(q.shape[-1])
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    w = np.exp(s - s.max(axis=-1, keepdims=True))
    w = w / w.sum(axis=-1, keepdims=True)
    return w @ v, w


def test_unit_scaled_dot_product_attention():
    """Values against NumPy, batching, masks, fully masked rows, stability, gradients, errors."""
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(2, 3, 5, 4)), rng.normal(size=(2, 3, 6, 4)), rng.normal(size=(2, 3, 6, 7))
    out, w = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v))
    assert type(out) is Tensor and type(w) is Tensor, "plain Tensors in must give plain Tensors out"
    assert out.shape == (2, 3, 5, 7) and w.shape == (2, 3, 5, 6)
    for b in range(2):          # the reference handles one problem at a time; the test may loop
        for h in range(3):
            ref_out, ref_w = _reference_attention(q[b, h], k[b, h], v[b, h])
            assert np.allclose(out.data[b, h], ref_out) and np.allclose(w.data[b, h], ref_w)
    assert np.allclose(w.data.sum(axis=-1), 1.0)

    # float32 stays float32; huge scores do not overflow
    big = Tensor((rng.normal(size=(4, 8)) * 1e4).astype(np.float32))
    out32, w32 = scaled_dot_product_attention(big, big, big)
    assert out32.dtype == np.float32 and np.all(np.isfinite(w32.data))

    # a mask: disallowed weights are exactly 0, the rest renormalise
    mask = rng.random((5, 6)) > 0.4
    mask[:, 0] = True
    out_m, w_m = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=mask)
    assert np.all(w_m.data[..., ~mask] == 0.0)
    ref_out, ref_w = _reference_attention(q[1, 2], k[1, 2], v[1, 2], mask)
    assert np.allclose(out_m.data[1, 2], ref_out) and np.allclose(w_m.data[1, 2], ref_w)

    # a fully masked row: zero weights and zero output, no NaN
    mask_row = np.ones((5, 6), dtype=bool)
    mask_row[2] = False
    out_z, w_z = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=Tensor(mask_row))
    assert np.all(np.isfinite(out_z.data)) and np.all(w_z.data[..., 2, :] == 0) and np.all(out_z.data[..., 2, :] == 0)

    # gradients w.r.t. Q, K, V (float64, central differences), with and without a mask, with broadcasting
    Qv, Kv, Vv = (Variable(rng.normal(size=s)) for s in [(2, 3, 4), (2, 5, 4), (5, 3)])
    check_gradients(lambda a, b, c: scaled_dot_product_attention(a, b, c)[0], Qv, Kv, Vv)
    check_gradients(lambda a, b: scaled_dot_product_attention(a, b, Vv)[1], Qv, Kv)
    causal_like = np.tril(np.ones((3, 5), dtype=bool))
    check_gradients(lambda a, b, c: scaled_dot_product_attention(a, b, c, mask=causal_like)[0], Qv, Kv, Vv)
    check_gradients(lambda a, b, c: scaled_dot_product_attention(a, b, c, mask=Tensor(mask_row[:3, :5]))[0],
                    Qv, Kv, Vv)

    # errors name the shapes
    for bad_args, kind in [((np.ones((3, 4)), np.ones((5, 3)), np.ones((5, 2))), ValueError),
                           ((np.ones((3, 4)), np.ones((5, 4)), np.ones((6, 2))), ValueError),
                           ((np.ones(4), np.ones((5, 4)), np.ones((5, 2))), ValueError),
                           (([[1.0]], np.ones((1, 1)), np.ones((1, 1))), TypeError)]:
        try:
            scaled_dot_product_attention(*bad_args)
        except kind as err:
            assert kind is TypeError or "shape" in str(err), str(err)
        else:
            raise AssertionError(f"{kind.__name__} expected for shapes {[np.shape(a) for a in bad_args]}")
    for bad_mask, kind in [(np.ones((4, 6), dtype=bool), ValueError), (np.ones((5, 6)), TypeError)]:
        try:
            scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=bad_mask)
        except kind as err:
            assert "mask" in str(err), str(err)
        else:
            raise AssertionError(f"mask {bad_mask.shape} {bad_mask.dtype} should raise {kind.__name__}")
    print("✅ scaled_dot_product_attention: values, masks, stability and gradients are right")

test_unit_scaled_dot_product_attention()

# %% [markdown]
# ## 2. Causal masks
#
# A language model predicts token t+1 from tokens 0..t. During training all positions are computed at
# once, so position t must be **prevented** from looking at positions after it; otherwise it would simply
# read the answer. The causal mask is lower-triangular:
#
# ```
# create_causal_mask(4)        query i may attend to keys j <= i
# [[ T  F  F  F ]
#  [ T  T  F  F ]
#  [ T  T  T  F ]
#  [ T  T  T  T ]]
# ```
#
# Every row has at least its diagonal entry, so a causal mask never produces a fully masked row. Its shape
# (L, L) broadcasts over any batch and head dimensions.

# %% nbgrader={"grade": false, "grade_id": "causal-mask", "locked": false, "schema_version": 3, "solution": true}
#| export
def create_causal_mask(seq_len):
    """A (seq_len, seq_len) bool Tensor, True on and below the diagonal (query i may see keys j <= i)."""
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)):
        raise TypeError(f"seq_len must be an int, got {type(seq_len).__name__} {seq_len!r}")
    if seq_len < 1:
        raise ValueError(f"seq_len must be at least 1, got {seq_len}")
    ### BEGIN SOLUTION
    return Tensor(np.tril(np.ones((seq_len, seq_len), dtype=bool)))
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-causal-mask", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_causal_mask():
    """Shape and pattern; with the mask, output i does not change when inputs after i change."""
    mask = create_causal_mask(4)
    assert mask.shape == (4, 4) and mask.dtype == np.bool_
    assert np.array_equal(mask.data, np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=bool))

    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 8))
    out, w = scaled_dot_product_attention(Tensor(x), Tensor(x), Tensor(x), mask=create_causal_mask(6))
    assert np.allclose(np.triu(w.data[0], k=1), 0.0), "weights above the diagonal must be 0"
    changed = x.copy()
    changed[:, 4:] = rng.normal(size=(2, 2, 8))      # change the future of position 3
    out2, _ = scaled_dot_product_attention(Tensor(changed), Tensor(changed), Tensor(changed),
                                           mask=create_causal_mask(6))
    assert np.allclose(out.data[:, :4], out2.data[:, :4]), "positions 0..3 must not see positions 4, 5"
    assert not np.allclose(out.data[:, 4:], out2.data[:, 4:])
    for bad, kind in [(0, ValueError), (2.5, TypeError), (True, TypeError)]:
        try:
            create_causal_mask(bad)
        except kind:
            pass
        else:
            raise AssertionError(f"create_causal_mask({bad!r}) should raise {kind.__name__}")
    print("✅ create_causal_mask: lower-triangular, and the future stays invisible")

test_unit_causal_mask()

# %% [markdown]
# ## 3. Self-attention: learned queries, keys and values
#
# In **self**-attention, Q, K and V all come from the same sequence x of shape (batch, seq, d_model),
# through three learned linear maps, and a fourth map mixes the result:
#
# ```
# Q = x Wq + bq,  K = x Wk + bk,  V = x Wv + bv       each (batch, seq, d_model)
# out = attention(Q, K, V) Wo + bo                     (batch, seq, d_model)
# ```
#
# Parameters: 4 · (d_model² + d_model). Time: the projections cost 4·seq·d_model² multiply-adds per
# sequence, attention itself 2·seq²·d_model. Short sequences are dominated by the projections, long ones
# by attention.
#
# The module keeps the last attention weights in `last_weights` (a plain Tensor, detached from the graph)
# so you can look at what it attends to.

# %% nbgrader={"grade": false, "grade_id": "self-attention", "locked": false, "schema_version": 3, "solution": true}
#| export
def _check_d_model(d_model):
    if isinstance(d_model, bool) or not isinstance(d_model, (int, np.integer)) or d_model < 1:
        raise ValueError(f"d_model must be a positive int, got {d_model!r}")


def _check_features(x, d_model, who, what="x"):
    if x.ndim < 2 or x.shape[-1] != d_model:
        raise ValueError(f"{who} expected {what} of shape (..., seq, {d_model}), got shape {x.shape}")


class SelfAttention(Module):
    """Single-head self-attention with query/key/value/output projections.

    Shapes: x (..., seq, d_model) -> (..., seq, d_model); mask broadcastable to (..., seq, seq).
    Parameters: query, key, value, out (Dense(d_model, d_model) each); seed makes them reproducible.
    """

    def __init__(self, d_model, seed=None):
        super().__init__()
        _check_d_model(d_model)
        self.d_model = int(d_model)
        rng = np.random.default_rng(seed)  # one stream for the four projections
        ### BEGIN SOLUTION
        self.query = Dense(self.d_model, self.d_model, seed=rng)
        self.key = Dense(self.d_model, self.d_model, seed=rng)
        self.value = Dense(self.d_model, self.d_model, seed=rng)
        self.out = Dense(self.d_model, self.d_model, seed=rng)
        ### END SOLUTION
        self.last_weights = None

    def forward(self, x, mask=None):
        x = _as_tensor(x, "x")
        _check_features(x, self.d_model, "SelfAttention")
        ### BEGIN SOLUTION
        output, weights = scaled_dot_product_attention(self.query(x), self.key(x), self.value(x), mask)
        self.last_weights = Tensor(weights.data)
        return self.out(output)
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-self-attention", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def _to_float64(module):
    for p in module.parameters():
        p.data = p.data.astype(np.float64)


def test_unit_self_attention():
    """Shapes, parameters, values against a NumPy computation, gradients to every parameter."""
    attn = SelfAttention(8, seed=0)
    assert len(attn.parameters()) == 8, "4 projections x (weights, bias)"
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5, 8)).astype(np.float32)
    y = attn(Tensor(x))
    assert y.shape == (3, 5, 8) and attn.last_weights.shape == (3, 5, 5)

    def lin(layer, a):
        return a @ layer.weights.data + layer.bias.data
    q, k, v = lin(attn.query, x), lin(attn.key, x), lin(attn.value, x)
    ref, _ = _reference_attention(q[1], k[1], v[1])
    assert np.allclose(y.data[1], lin(attn.out, ref), atol=1e-5)

    _to_float64(attn)
    xv = Variable(rng.normal(size=(2, 4, 8)))
    mask = create_causal_mask(4)
    out = attn(xv, mask=mask)
    out.sum().backward()
    assert all(p.grad is not None and np.any(p.grad.data != 0) for p in attn.parameters())
    check_gradients(lambda a, *params: attn(a, mask=mask), xv, *attn.parameters())
    try:
        attn(Tensor(np.ones((2, 4, 7))))
    except ValueError as err:
        assert "(2, 4, 7)" in str(err)
    else:
        raise AssertionError("a wrong feature size should raise ValueError")
    print("✅ SelfAttention: shapes, values and gradients to every parameter")

test_unit_self_attention()

# %% [markdown]
# ## 4. Multi-head attention
#
# One attention gives each query **one** weighted average. With several **heads**, each query can attend to
# different things at once (one head follows the previous token, another the matching bracket...). The
# d_model features are split into `num_heads` groups of `head_dim = d_model / num_heads`; each group runs its
# own attention; the results are concatenated and mixed by the output projection.
#
# Splitting needs no copy and no loop, only a reshape and a transpose:
#
# ```
# x Wq              (B, L, d_model)
# reshape           (B, L, H, head_dim)     the last axis cut into H pieces
# transpose(0,2,1,3)(B, H, L, head_dim)     heads become a batch dimension
# attention         (B, H, L, head_dim)     one batched matmul over all B·H problems
# transpose back    (B, L, H, head_dim)
# reshape           (B, L, d_model)         heads concatenated
# ```
#
# Because the heads are just another batch dimension, `scaled_dot_product_attention` handles them
# unchanged. Parameters are the same as single-head attention (4 · (d_model² + d_model)), and so is the
# matmul work; what grows with H is the **weights tensor**, (B, H, L, L).
#
# Masks: a (Lq, Lk) mask applies to every batch item and head; a 3-D mask (B, Lq, Lk), e.g. for padding,
# gets a head axis inserted so that it broadcasts to (B, H, Lq, Lk); a 4-D mask is used as is.

# %% nbgrader={"grade": false, "grade_id": "multi-head-attention", "locked": false, "schema_version": 3, "solution": true}
#| export
class MultiHeadAttention(Module):
    """Multi-head attention (Vaswani et al. 2017) with heads split/merged by reshape + transpose.

    forward(query, key=None, value=None, mask=None): query (..., Lq, d_model), key and value
    (..., Lk, d_model), defaulting to query (self-attention). Output (..., Lq, d_model).
    Parameters: w_q, w_k, w_v, w_o (Dense(d_model, d_model) each); seed makes them reproducible.
    `last_weights` holds the last attention weights (..., num_heads, Lq, Lk), detached.
    """

    def __init__(self, d_model, num_heads, seed=None):
        super().__init__()
        _check_d_model(d_model)
        if isinstance(num_heads, bool) or not isinstance(num_heads, (int, np.integer)) or num_heads < 1:
            raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")
        if d_model % num_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads}): "
                             f"each head gets d_model / num_heads features")
        self.d_model, self.num_heads = int(d_model), int(num_heads)
        self.head_dim = self.d_model // self.num_heads
        rng = np.random.default_rng(seed)  # one stream for the four projections
        ### BEGIN SOLUTION
        self.w_q = Dense(self.d_model, self.d_model, seed=rng)
        self.w_k = Dense(self.d_model, self.d_model, seed=rng)
        self.w_v = Dense(self.d_model, self.d_model, seed=rng)
        self.w_o = Dense(self.d_model, self.d_model, seed=rng)
        ### END SOLUTION
        self.last_weights = None

    @staticmethod
    def _swap_seq_and_heads(x):
        """(..., A, B, head_dim) -> (..., B, A, head_dim); the permutation is its own inverse."""
        n = x.ndim
        return x.transpose(*range(n - 3), n - 2, n - 3, n - 1)

    def split_heads(self, x):
        """(..., L, d_model) -> (..., num_heads, L, head_dim)."""
        ### BEGIN SOLUTION
        x = x.reshape(*x.shape[:-1], self.num_heads, self.head_dim)
        return self._swap_seq_and_heads(x)
        ### END SOLUTION

    def merge_heads(self, x):
        """(..., num_heads, L, head_dim) -> (..., L, d_model)."""
        ### BEGIN SOLUTION
        x = self._swap_seq_and_heads(x)
        return x.reshape(*x.shape[:-2], self.d_model)
        ### END SOLUTION

    def forward(self, query, key=None, value=None, mask=None):
        query = _as_tensor(query, "query")
        key = query if key is None else _as_tensor(key, "key")
        value = key if value is None else _as_tensor(value, "value")
        for name, t in (("query", query), ("key", key), ("value", value)):
            _check_features(t, self.d_model, "MultiHeadAttention", name)
        if key.shape[-2] != value.shape[-2]:
            raise ValueError(f"MultiHeadAttention: key and value need the same length, "
                             f"got key {key.shape} and value {value.shape}")
        if mask is not None:
            m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
            mask = m[..., None, :, :] if m.ndim == 3 else m  # (B, Lq, Lk) -> (B, 1, Lq, Lk): same for every head
        ### BEGIN SOLUTION
        Q = self.split_heads(self.w_q(query))
        K = self.split_heads(self.w_k(key))
        V = self.split_heads(self.w_v(value))
        heads, weights = scaled_dot_product_attention(Q, K, V, mask)
        self.last_weights = Tensor(weights.data)
        return self.w_o(self.merge_heads(heads))
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-multi-head-attention", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_multi_head_attention():
    """Heads against separate single-head computations, masks, gradients, errors."""
    rng = np.random.default_rng(3)
    mha = MultiHeadAttention(12, 3, seed=1)
    assert mha.head_dim == 4 and len(mha.parameters()) == 8
    x = rng.normal(size=(2, 5, 12)).astype(np.float32)
    y = mha(Tensor(x))
    assert y.shape == (2, 5, 12) and mha.last_weights.shape == (2, 3, 5, 5)

    # split/merge round trip, and head h = features [4h, 4h+4)
    split = mha.split_heads(Tensor(x))
    assert split.shape == (2, 3, 5, 4) and np.array_equal(split.data[:, 1], x[..., 4:8])
    assert np.array_equal(mha.merge_heads(split).data, x)

    # reference: one head at a time (the test may loop; the module does not)
    def lin(layer, a):
        return a @ layer.weights.data + layer.bias.data
    q, k, v = lin(mha.w_q, x[0]), lin(mha.w_k, x[0]), lin(mha.w_v, x[0])
    heads = [_reference_attention(q[:, h*4:(h+1)*4], k[:, h*4:(h+1)*4], v[:, h*4:(h+1)*4])[0] for h in range(3)]
    assert np.allclose(y.data[0], lin(mha.w_o, np.concatenate(heads, axis=-1)), atol=1e-5)

    # cross-attention: key/value of another length
    memory = rng.normal(size=(2, 7, 12)).astype(np.float32)
    assert mha(Tensor(x), Tensor(memory), Tensor(memory)).shape == (2, 5, 12)
    assert mha.last_weights.shape == (2, 3, 5, 7)

    # a 3-D padding mask (B, Lq, Lk) applies to every head
    pad = np.ones((2, 5, 5), dtype=bool)
    pad[1, :, 3:] = False
    mha(Tensor(x), mask=pad)
    assert np.all(mha.last_weights.data[1, :, :, 3:] == 0) and np.all(mha.last_weights.data[0] > 0)

    _to_float64(mha)
    xv = Variable(rng.normal(size=(2, 4, 12)))
    causal = create_causal_mask(4)
    check_gradients(lambda a, *params: mha(a, mask=causal), xv, *mha.parameters())

    for args, kind in [((12, 5), ValueError), ((12, 0), ValueError)]:
        try:
            MultiHeadAttention(*args)
        except kind as err:
            assert str(args[1]) in str(err), str(err)
        else:
            raise AssertionError(f"MultiHeadAttention{args} should raise {kind.__name__}")
    print("✅ MultiHeadAttention: heads split without loops, values, masks and gradients")

test_unit_multi_head_attention()

# %% [markdown]
# ## 5. Layer normalization
#
# Stacking attention and dense layers makes activations drift in scale from layer to layer, which makes
# training fragile. **LayerNorm** normalises every position's feature vector on its own (not across the
# batch, unlike batch norm), then lets the network rescale it with learned `gamma` and shift it with `beta`:
#
# ```
# x: (..., *normalized_shape)       statistics over the trailing normalized_shape axes, N elements
# mu    = mean(x)                   (..., 1)
# var   = mean((x - mu)^2)          biased (divide by N), as PyTorch
# x_hat = (x - mu) / sqrt(var + eps)
# y     = gamma * x_hat + beta      gamma, beta: normalized_shape
# ```
#
# `gamma` starts at 1 and `beta` at 0, so a fresh LayerNorm is a pure normalisation. (PyTorch calls them
# `weight` and `bias`; both names work here.)
#
# **Fused backward.** Recording mean, subtract, square, mean, sqrt, divide, multiply, add as separate
# operations would store about eight arrays of x's size. Deriving the gradient by hand gives one formula
# that needs only `x_hat` and `1/sigma`. With `g = dL/dy * gamma`:
#
# ```
# dL/dx     = (1/sigma) * (g - mean(g) - x_hat * mean(g * x_hat))     means over the normalized axes
# dL/dgamma = sum over leading axes of dL/dy * x_hat
# dL/dbeta  = sum over leading axes of dL/dy
# ```
#
# (The two subtracted means are the gradient flowing through mu and through sigma.)
#
# **Where its time went, and what changed.** In module 16's training step LayerNorm runs five times on
# (32, 64, 64) inputs: 2,048 vectors of 64 numbers. The first version took about 3.6 ms per step (CPU
# time, forward + backward) for work that is a few passes over 0.5 MiB. Two things cost more than the
# arithmetic:
#
# - `x.mean(axis=-1)` and friends reduce the short last axis row by row (2,048 rows of 64): 0.05 ms each,
#   four of them per call. Flattening the input to (rows, N) turns a row mean into a matrix-vector product
#   with a column of `1/N`, `x2 @ average`: one BLAS call, about 6x faster. Sums of products such as the
#   variance `sum(c * c)` or `sum(g * x_hat)` go through `np.einsum("ij,ij->i", ...)`, which multiplies
#   and adds in one pass without building the product array.
# - Temporaries: `centered * centered`, `x_hat * gamma + beta`, and five arrays in the backward formula.
#   Now `x_hat` is made once and scaled in place, `out += beta` adds in place, and the backward builds
#   `d_x` in one array.
#
# After: about 2.5 ms per step for the five calls, the same values to float32 round-off.

# %% nbgrader={"grade": false, "grade_id": "layer-norm", "locked": false, "schema_version": 3, "solution": true}
#| export
class LayerNorm(Module):
    """Layer normalization over the trailing `normalized_shape` axes.

    Shapes: x (..., *normalized_shape) -> same shape. Parameters: gamma (ones) and beta (zeros),
    both of shape normalized_shape; `weight` and `bias` are aliases (PyTorch's names).
    """

    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)) and not isinstance(normalized_shape, bool):
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, (tuple, list)):
            raise TypeError(f"normalized_shape must be an int or a tuple of ints, got {normalized_shape!r}")
        normalized_shape = tuple(normalized_shape)
        if not normalized_shape or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0
                                           for n in normalized_shape):
            raise ValueError(f"normalized_shape must be a positive int or a tuple of them, got {normalized_shape!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.normalized_shape = tuple(int(n) for n in normalized_shape)
        self.eps = float(eps)
        self.gamma = Variable(np.ones(self.normalized_shape, dtype=np.float32), requires_grad=True)
        self.beta = Variable(np.zeros(self.normalized_shape, dtype=np.float32), requires_grad=True)

    @property
    def weight(self):
        return self.gamma

    @property
    def bias(self):
        return self.beta

    def forward(self, x):
        x = _as_tensor(x, "x")
        n = len(self.normalized_shape)
        if x.ndim < n or x.shape[x.ndim - n:] != self.normalized_shape:
            raise ValueError(f"LayerNorm expected input of shape (..., {', '.join(map(str, self.normalized_shape))}), "
                             f"got shape {x.shape}")
        ### BEGIN SOLUTION
        size = int(np.prod(self.normalized_shape))          # N: how many numbers each statistic averages
        x2 = x.data.reshape(-1, size)                        # one row per normalised vector
        if x2.dtype.kind != "f":
            x2 = x2.astype(np.float64)                       # integer input: float64 statistics, as np.mean
        average = np.full((size, 1), 1.0 / size, dtype=x2.dtype)   # rows @ average = every row's mean, one BLAS call
        gamma, beta = self.gamma.data.reshape(-1), self.beta.data.reshape(-1)
        x_hat = x2 - x2 @ average                            # centred (rows, N); scaled to x_hat in place below
        var = np.einsum("ij,ij->i", x_hat, x_hat)[:, None] / size   # row sums of squares, no squared array
        inv_std = 1.0 / np.sqrt(var + self.eps)               # (rows, 1)
        x_hat *= inv_std
        out = x_hat * gamma
        out += beta
        out = out.reshape(x.shape)
        if not isinstance(x, Variable):
            return Tensor(out)  # a plain Tensor in: values only (as Dense), no graph to the parameters

        def backward(grad):
            g2 = grad.reshape(-1, size)                      # dL/dy, one row per vector
            d_gamma = np.einsum("ij,ij->j", g2, x_hat).reshape(self.normalized_shape)
            d_beta = g2.sum(axis=0).reshape(self.normalized_shape)
            g = g2 * gamma
            # d_x = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)), built up in one array
            d_x = x_hat * (np.einsum("ij,ij->i", g, x_hat)[:, None] / size)
            np.subtract(g, d_x, out=d_x)
            d_x -= g @ average
            d_x *= inv_std
            return d_x.reshape(x.shape), d_gamma, d_beta

        return record_op(out, (x, self.gamma, self.beta), backward, name="layer_norm")
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-layer-norm", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_layer_norm():
    """Statistics of the output, gamma/beta, several normalized axes, gradients, errors."""
    rng = np.random.default_rng(4)
    ln = LayerNorm(6)
    assert ln.weight is ln.gamma and ln.bias is ln.beta and len(ln.parameters()) == 2
    x = (rng.normal(size=(4, 3, 6)) * 5 + 2).astype(np.float32)
    y = ln(Tensor(x))
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.allclose(y.data.mean(axis=-1), 0, atol=1e-5) and np.allclose(y.data.var(axis=-1), 1, atol=1e-3)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    assert np.allclose(y.data, ref, atol=1e-5)

    ln.gamma.data = np.full(6, 2.0, dtype=np.float32)
    ln.beta.data = np.arange(6, dtype=np.float32)
    assert np.allclose(ln(Tensor(x)).data, 2 * ref + np.arange(6), atol=1e-4)

    ln2 = LayerNorm((3, 6))
    y2 = ln2(Tensor(x))
    assert np.allclose(y2.data.reshape(4, -1).mean(axis=-1), 0, atol=1e-5)

    for module in (ln, ln2):
        _to_float64(module)
        module.gamma.data = rng.normal(size=module.gamma.shape)
        module.beta.data = rng.normal(size=module.beta.shape)
        xv = Variable(rng.normal(size=(2, 3, 6)))
        check_gradients(lambda a, g, b: module(a), xv, module.gamma, module.beta)

    try:
        ln(Tensor(np.ones((2, 5))))
    except ValueError as err:
        assert "(2, 5)" in str(err) and "6" in str(err)
    else:
        raise AssertionError("a wrong trailing shape should raise ValueError")
    print("✅ LayerNorm: zero mean, unit variance, learned scale/shift and fused gradients")

test_unit_layer_norm()

# %% [markdown]
# ## Systems Analysis
#
# Attention compares every query with every key, so its weights tensor has `B · H · L²` entries. Below we
# measure:
#
# 1. how the weights' bytes and the forward time grow with the sequence length L (expect ×4 per doubling
#    once the L² terms dominate);
# 2. what more heads cost at a fixed d_model: the same parameters and matmul work, but H times the
#    weights memory;
# 3. what the fused LayerNorm backward saves over recording every elementary step.

# %% nbgrader={"grade": false, "grade_id": "attention-analysis", "locked": false, "schema_version": 3, "solution": false}
def analyze_attention_scaling():
    """Weights bytes and forward time of scaled_dot_product_attention as L doubles (B=1, H=4, d=32)."""
    rng = np.random.default_rng(0)
    print("seq_len | weights shape       | weights bytes | forward ms | time ratio")
    previous = None
    for L in (64, 128, 256, 512, 1024):
        q = Tensor(rng.normal(size=(1, 4, L, 32)).astype(np.float32))
        _, w = scaled_dot_product_attention(q, q, q)
        seconds = best_time(lambda: scaled_dot_product_attention(q, q, q), repeats=5)
        ratio = f"{seconds / previous:5.1f}x" if previous else "    -"
        print(f"{L:7d} | {str(w.shape):19s} | {w.data.nbytes:13,d} | {seconds * 1e3:10.2f} | {ratio}")
        previous = seconds
    print("Doubling L multiplies the weights' bytes by exactly 4; time approaches x4 as L grows.")


def analyze_heads():
    """Same d_model = 64, L = 256: parameters, weights bytes and time for 1..16 heads."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.normal(size=(2, 256, 64)).astype(np.float32))
    print("heads | head_dim | parameters | weights bytes | forward ms")
    for heads in (1, 2, 4, 8, 16):
        mha = MultiHeadAttention(64, heads)
        mha(x)
        seconds = best_time(lambda: mha(x), repeats=5)
        params = sum(p.data.size for p in mha.parameters())
        print(f"{heads:5d} | {64 // heads:8d} | {params:10,d} | {mha.last_weights.data.nbytes:13,d} | {seconds * 1e3:10.2f}")
    print("Parameters stay fixed; the (B, H, L, L) weights grow linearly with the number of heads.")


def analyze_layer_norm_backward():
    """Time of the fused LayerNorm forward+backward against the same math recorded op by op."""
    rng = np.random.default_rng(0)
    ln = LayerNorm(256)
    data = rng.normal(size=(32, 128, 256)).astype(np.float32)

    def fused():
        x = Variable(data)
        ln(x).sum().backward()

    def recorded():  # the same formula, every elementary step recorded by autograd
        x = Variable(data)
        mu = x.mean(axis=-1, keepdims=True)
        c = x - mu
        var = (c * c).mean(axis=-1, keepdims=True)
        y = c / (var + 1e-5) ** 0.5 * ln.gamma + ln.beta
        y.sum().backward()

    def peak_mib(fn):  # NumPy reports its buffers to tracemalloc, so this is the real peak of the arrays
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak / 2**20

    t_fused, t_recorded = best_time(fused, repeats=3), best_time(recorded, repeats=3)
    m_fused, m_recorded = peak_mib(fused), peak_mib(recorded)
    print(f"LayerNorm on {data.shape} float32 ({data.nbytes / 2**20:.0f} MiB input), forward+backward:")
    print(f"  fused record_op: {t_fused * 1e3:6.1f} ms, peak {m_fused:5.1f} MiB")
    print(f"  op by op:        {t_recorded * 1e3:6.1f} ms, peak {m_recorded:5.1f} MiB "
          f"({t_recorded / t_fused:.1f}x the time, {m_recorded / m_fused:.1f}x the memory)")


analyze_attention_scaling()
analyze_heads()
analyze_layer_norm_backward()
