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
# # Module 12: Compression
#
# A trained model is a pile of float32 numbers: 4 bytes per parameter. Most of those bytes are not
# needed. This module removes them in the two ways every deployment toolkit offers:
#
# 1. **Magnitude pruning**: set the weights with the smallest absolute values to exactly zero, per layer or
#    with one global threshold, and keep the **masks** so that fine-tuning cannot bring them back.
# 2. **int8 quantization**: store each weight as an 8-bit integer plus a float scale (per tensor or per
#    output channel): 1 byte instead of 4. `QuantizedDense` computes its forward pass from the int8
#    weights, and `quantize_model` swaps every `Dense` of a trained model for one.
#
# And we measure what it costs: bytes before and after (`model_size_bytes`), the rounding error, and the
# accuracy of a trained model as the sparsity grows and after int8.
#
# It stands on `Module` and `Dense` (04) for the models, `Variable`/`record_op` (02) for the one
# differentiable operation (the quantized forward), and the optimizers (09) for fine-tuning a pruned model.

# %% nbgrader={"grade": false, "grade_id": "compression-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.compression
#| export
import copy
import numbers

import numpy as np

from tinytorch.core.tensor import Tensor, median_time
from tinytorch.core.autograd import Variable, record_op
from tinytorch.core.layers import Dense, Module

# %% nbgrader={"grade": false, "grade_id": "compression-test-imports", "locked": false, "schema_version": 3, "solution": false}
# Only the tests and the analysis in this file need these; they are not part of the package.
import tracemalloc

from tinytorch.core.autograd import check_gradients, no_grad
from tinytorch.core.activations import ReLU
from tinytorch.core.networks import Sequential, create_mlp
from tinytorch.core.optimizers import Adam
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.training import Accuracy, CrossEntropyLoss, Trainer

# %% [markdown]
# ## 1. Magnitude pruning
#
# The simplest and still a strong criterion: a weight close to zero contributes little to any output,
# so set it to zero. For a target **sparsity** `s` (the fraction of zeros) and `n` weights, prune the
# `k = round(s * n)` weights of smallest `|w|`.
#
# ```
# |W| = [[0.9, 0.1], [0.05, 0.4]]      s = 0.5, k = 2      mask = [[True, False], [False, True]]
# W * mask = [[0.9, 0], [0, 0.4]]                          (True = kept)
# ```
#
# **What is pruned.** Weight matrices and kernels: every parameter with 2 or more dimensions (Dense
# `weights` (in, out), Conv2D `weight` (out, in, kh, kw), embedding tables). Biases and norm gains are
# 1-D: a tiny share of the bytes, and each one shifts a whole output channel, so they stay.
#
# **Per layer or global.** `scope="layer"` prunes `s` of *every* weight tensor. `scope="global"` ranks all
# weights of the model together and prunes the `k` smallest overall: layers whose weights are small
# (wide layers, whose initialisation bound is `1/sqrt(fan_in)`) lose more, layers that matter keep more.
#
# **Exact sparsity.** Thresholding `|w| <= t` over-prunes when several weights tie at `t` (already
# pruned zeros always tie). We select exactly the `k` smallest with `np.argpartition` instead, O(n) rather
# than a full O(n log n) sort; pruning again at a higher sparsity re-selects the old zeros first.
#
# **Masks.** `magnitude_prune` returns `{parameter name: boolean mask}` (True = kept), named as in
# `model.named_parameters()`. Setting weights to zero once is not enough: the next optimizer step adds
# `-lr * grad` to them (the gradient of a zero weight is not zero) and Adam's momentum keeps pushing.
# `apply_masks(model, masks)` zeroes them again, in place (the optimizer holds the same arrays).
#
# **Cost.** Pruning itself is one pass over the weights. It does **not** shrink a dense array: a zero
# float32 still takes 4 bytes. The savings come from sparse storage formats or sparse kernels (measured
# below), or from structured pruning (whole rows or channels), which this module does not cover.

# %% nbgrader={"grade": false, "grade_id": "pruning", "locked": false, "schema_version": 3, "solution": true}
#| export
def _check_model(model, who):
    if not isinstance(model, Module):
        raise TypeError(f"{who} expects a Module (a layer or a model), got {type(model).__name__}")


def prunable_parameters(model):
    """[(name, parameter)] that pruning acts on: every parameter of `model` with 2 or more dimensions."""
    _check_model(model, "prunable_parameters")
    return [(name, p) for name, p in model.named_parameters() if p.ndim >= 2]


def magnitude_prune(model, sparsity, scope="layer"):
    """Zero the fraction `sparsity` of smallest-magnitude weights of `model`, in place; return the masks.

    sparsity: a number in [0, 1). scope: "layer" (that fraction of every weight tensor) or "global" (of all
    weights together, one threshold). Exactly round(sparsity * n) weights are pruned per group of n.
    Returns {name: bool array of the parameter's shape, True where the weight is kept}.
    """
    _check_model(model, "magnitude_prune")
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real) or not 0.0 <= sparsity < 1.0:
        raise ValueError(f"magnitude_prune sparsity must be a number in [0, 1), got {sparsity!r} "
                         f"(0.8 prunes 80% of the weights)")
    if scope not in ("layer", "global"):
        raise ValueError(f"magnitude_prune scope must be 'layer' or 'global', got {scope!r}")
    params = prunable_parameters(model)
    if not params:
        raise ValueError(f"magnitude_prune: {type(model).__name__} has no weight parameters with 2 or more "
                         f"dimensions to prune")
    ### BEGIN SOLUTION
    groups = [[item] for item in params] if scope == "layer" else [params]
    masks = {}
    for group in groups:
        magnitudes = np.concatenate([np.abs(p.data).ravel() for _, p in group])
        k = int(round(sparsity * magnitudes.size))
        keep = np.ones(magnitudes.size, dtype=bool)
        if k > 0:
            keep[np.argpartition(magnitudes, k - 1)[:k]] = False     # exactly the k smallest, ties or not
        offset = 0
        for name, p in group:
            masks[name] = keep[offset:offset + p.size].reshape(p.shape)
            offset += p.size
    apply_masks(model, masks)
    return masks
    ### END SOLUTION


def apply_masks(model, masks):
    """Zero every weight whose mask entry is False, in place (after each optimizer step); returns model."""
    _check_model(model, "apply_masks")
    if not isinstance(masks, dict):
        raise TypeError(f"apply_masks expects a dict {{parameter name: bool mask}}, got {type(masks).__name__}")
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name not in params:
            raise ValueError(f"apply_masks: the model has no parameter named {name!r} "
                             f"(its parameters: {sorted(params)})")
        if np.shape(mask) != params[name].shape:
            raise ValueError(f"apply_masks: mask for {name!r} has shape {np.shape(mask)} but the parameter "
                             f"has shape {params[name].shape}")
    ### BEGIN SOLUTION
    for name, mask in masks.items():
        data = params[name].data
        np.multiply(data, mask, out=data)        # in place: optimizers hold this very array
    return model
    ### END SOLUTION


def sparsity(model):
    """Fraction of exactly-zero entries among the prunable weights (2+ dimensions) of `model`."""
    params = prunable_parameters(model)
    if not params:
        raise ValueError(f"sparsity: {type(model).__name__} has no weight parameters with 2 or more dimensions")
    ### BEGIN SOLUTION
    total = sum(p.size for _, p in params)
    zeros = sum(p.size - np.count_nonzero(p.data) for _, p in params)
    return zeros / total
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-pruning", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def _small_model(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential([Dense(6, 20, seed=rng), ReLU(), Dense(20, 12, seed=rng), ReLU(), Dense(12, 3, seed=rng)])


def test_unit_pruning():
    """Pruning: exact sparsity per layer and globally, smallest weights go, biases stay, errors."""
    for scope in ("layer", "global"):
        for s in (0.0, 0.3, 0.75, 0.9):
            model = _small_model()
            before = {name: p.data.copy() for name, p in model.named_parameters()}
            masks = magnitude_prune(model, s, scope=scope)
            assert set(masks) == {"0.weights", "2.weights", "4.weights"}, set(masks)
            if scope == "layer":
                for name, mask in masks.items():
                    assert np.count_nonzero(~mask) == round(s * mask.size), (name, s)
            total = sum(m.size for m in masks.values())
            assert sum(np.count_nonzero(~m) for m in masks.values()) == round(s * total)
            pruned = np.concatenate([np.abs(before[n])[~m] for n, m in masks.items()])
            kept = np.concatenate([np.abs(before[n])[m] for n, m in masks.items()])
            if scope == "global" and pruned.size:
                assert pruned.max() <= kept.min(), "a global threshold prunes the smallest weights overall"
            for name, p in model.named_parameters():
                if name in masks:
                    np.testing.assert_array_equal(p.data, before[name] * masks[name])
                else:
                    np.testing.assert_array_equal(p.data, before[name])          # biases untouched
    model = _small_model()
    magnitude_prune(model, 0.6, scope="global")
    expected = round(0.6 * 396) / 396                 # 6*20 + 20*12 + 12*3 = 396 weights
    assert abs(sparsity(model) - expected) < 1e-12, sparsity(model)
    for bad in (1.0, -0.1, 1.5):
        try:
            magnitude_prune(_small_model(), bad)
        except ValueError as error:
            assert str(bad) in str(error)
        else:
            raise AssertionError(f"sparsity {bad} must raise ValueError")
    try:
        magnitude_prune(np.ones((3, 3)), 0.5)
    except TypeError as error:
        assert "ndarray" in str(error)
    else:
        raise AssertionError("a non-Module must raise TypeError")
    print("magnitude_prune, apply_masks, sparsity: ok")


test_unit_pruning()

# %% [markdown]
# ## 2. Fine-tuning a pruned model: masks after every step
#
# Pruning 80% of a network at once costs accuracy; a few epochs of training on the remaining weights
# recover most of it. The pruned weights must stay zero meanwhile. `MaskedOptimizer` wraps any optimizer:
# its `step()` runs the optimizer's step and then `apply_masks`, so a training loop (the `Trainer` of
# module 11 included) needs no change. `lr` reads and writes through to the wrapped optimizer; a
# learning-rate schedule is attached to the wrapped optimizer itself (`StepLR(masked.optimizer, ...)`),
# since `StepLR` accepts only real optimizers.
#
# Cost per step: one extra multiply per weight, in place, no allocation.

# %% nbgrader={"grade": false, "grade_id": "masked-optimizer", "locked": false, "schema_version": 3, "solution": true}
#| export
class MaskedOptimizer:
    """Wrap `optimizer` so that every step() is followed by apply_masks(model, masks).

    Use it in place of the optimizer: MaskedOptimizer(Adam(model.parameters()), model, masks).
    """

    def __init__(self, optimizer, model, masks):
        for method in ("step", "zero_grad"):
            if not callable(getattr(optimizer, method, None)):
                raise TypeError(f"MaskedOptimizer expects an optimizer with {method}(), got {type(optimizer).__name__}")
        _check_model(model, "MaskedOptimizer")
        apply_masks(model, masks)           # validates the masks now, not at the first step
        self.optimizer, self.model, self.masks = optimizer, model, masks

    @property
    def lr(self):
        return self.optimizer.lr

    @lr.setter
    def lr(self, value):
        self.optimizer.lr = value

    def zero_grad(self):
        self.optimizer.zero_grad()

    def step(self):
        """One step of the wrapped optimizer, then the pruned weights are zeroed again."""
        ### BEGIN SOLUTION
        self.optimizer.step()
        apply_masks(self.model, self.masks)
        ### END SOLUTION

    def __repr__(self):
        return f"MaskedOptimizer({self.optimizer!r}, {len(self.masks)} masks)"

# %% nbgrader={"grade": true, "grade_id": "test-masked-optimizer", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_masked_optimizer():
    """After Adam steps through MaskedOptimizer the pruned weights are still zero; others moved."""
    rng = np.random.default_rng(0)
    model = _small_model()
    masks = magnitude_prune(model, 0.5, scope="global")
    opt = MaskedOptimizer(Adam(model.parameters(), lr=0.01), model, masks)
    x = Variable(rng.standard_normal((16, 6)).astype(np.float32), requires_grad=False)
    y = rng.integers(0, 3, 16)
    start = {name: p.data.copy() for name, p in model.named_parameters()}
    for _ in range(5):
        opt.zero_grad()
        CrossEntropyLoss()(model(x), y).backward()
        opt.step()
    for name, p in model.named_parameters():
        if name in masks:
            assert np.all(p.data[~masks[name]] == 0), f"{name}: a pruned weight came back"
            moved = np.mean(p.data[masks[name]] != start[name][masks[name]])
            assert moved > 0.5, f"{name}: only {moved:.0%} of the kept weights changed"
    assert abs(sparsity(model) - 0.5) < 1e-3
    opt.lr = 0.5
    assert opt.optimizer.lr == 0.5
    print("MaskedOptimizer: ok")


test_unit_masked_optimizer()

# %% [markdown]
# ## 3. Symmetric int8 quantization
#
# int8 holds the integers -128..127. **Symmetric** quantization maps the range `[-m, m]` of an array,
# `m = max|x|`, onto `[-127, 127]` with one float **scale**:
#
# ```
# scale = m / 127          q = clip(round(x / scale), -127, 127)  (int8)          x ≈ q * scale
# ```
#
# Zero maps to exactly 0 (pruned weights stay pruned), and the grid is symmetric: we leave -128 unused so
# that `-q` is always representable. Rounding to the nearest grid point makes the error of every element
# at most **half a step**: `|x - q * scale| <= scale / 2`. Since every `|x| <= m = 127 * scale`, the clip
# never cuts anything off; it is there for safety.
#
# **Per tensor or per output channel.** One scale for a whole weight matrix is set by its largest
# entry: a column (output channel) whose weights are 100x smaller than the largest is then quantized onto
# just a couple of levels. `axis=k` gives every index along axis k its own scale (`m_c / 127` for channel
# c): for Dense `weights` (in, out) the output channels are axis 1, for Conv2D (out, in, kh, kw) axis 0.
# The scales keep the reduced axes with size 1, so `q * scale` broadcasts back: a (in, out) matrix gets a
# (1, out) scale. The cost: 4 bytes per channel, small next to `in` bytes of int8 weights per channel.
#
# Details: the division is done in float64 so the rounding is exact; the scale is stored as float32 (the
# stored value is the one used to quantize, so decoding is consistent); an all-zero channel gets scale 1.0
# (any scale represents zeros exactly). Memory: one float64 temporary the size of `x` while quantizing.

# %% nbgrader={"grade": false, "grade_id": "quantize", "locked": false, "schema_version": 3, "solution": true}
#| export
INT8_MAX = 127


def _as_float_array(x, who):
    data = x.data if isinstance(x, Tensor) else x
    if not isinstance(data, np.ndarray):
        raise TypeError(f"{who} expects a NumPy array or a Tensor, got {type(x).__name__}")
    if data.dtype.kind not in "fiu":
        raise TypeError(f"{who} expects a numeric array, got dtype {data.dtype}")
    if data.size == 0:
        raise ValueError(f"{who} got an empty array of shape {data.shape}: there is nothing to quantize")
    return data


def quantize_int8(x, axis=None):
    """Symmetric int8 quantization: returns (q, scale) with q int8 of x's shape and x ≈ q * scale.

    axis=None: one float32 scale of shape (). axis=k: one scale per index along axis k (e.g. axis=1 for the
    output channels of Dense weights (in, out)), shaped like x with every other axis of size 1.
    """
    data = _as_float_array(x, "quantize_int8")
    if axis is not None:
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not -data.ndim <= axis < data.ndim:
            raise ValueError(f"quantize_int8 axis must be None or an axis of the array of shape {data.shape}, "
                             f"got {axis!r}")
        axis = int(axis) % data.ndim
    if not np.all(np.isfinite(data)):
        raise ValueError(f"quantize_int8: the array of shape {data.shape} holds inf or nan, which no scale represents")
    ### BEGIN SOLUTION
    reduce = None if axis is None else tuple(i for i in range(data.ndim) if i != axis)
    keep = axis is not None
    # max |x| without an abs() copy of the whole array
    max_abs = np.maximum(data.max(axis=reduce, keepdims=keep), -data.min(axis=reduce, keepdims=keep))
    scale = (np.asarray(max_abs, dtype=np.float64) / INT8_MAX).astype(np.float32)
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)   # an all-zero channel: any scale is exact
    t = np.divide(data, scale, dtype=np.float64)             # the one temporary: exact rounding below
    np.rint(t, out=t)
    np.clip(t, -INT8_MAX, INT8_MAX, out=t)
    return t.astype(np.int8), scale
    ### END SOLUTION


def dequantize(q, scale):
    """float32 values q * scale of int8 q and the scale from quantize_int8 (broadcast)."""
    if not isinstance(q, np.ndarray) or q.dtype != np.int8:
        got = q.dtype if isinstance(q, np.ndarray) else type(q).__name__
        raise TypeError(f"dequantize expects the int8 array from quantize_int8, got {got}")
    scale = np.asarray(scale, dtype=np.float32)
    try:
        np.broadcast_shapes(q.shape, scale.shape)
    except ValueError:
        raise ValueError(f"dequantize: scale of shape {scale.shape} does not broadcast to values of shape "
                         f"{q.shape}") from None
    ### BEGIN SOLUTION
    return q.astype(np.float32) * scale
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-quantize", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_quantize():
    """int8 round trip within scale/2, per-channel scales, zeros exact, per-channel beats per-tensor."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((30, 8)).astype(np.float32)
    q, scale = quantize_int8(w)
    assert q.dtype == np.int8 and q.shape == w.shape and scale.shape == () and scale.dtype == np.float32
    np.testing.assert_allclose(scale, np.abs(w).max() / 127, rtol=1e-6)
    assert np.abs(q).max() == 127
    error = np.abs(dequantize(q, scale) - w)
    assert np.all(error <= scale / 2 * (1 + 1e-5)), error.max() / scale

    w[:, 3] *= 0.01                                    # one output channel with a much smaller range
    w[:, 5] = 0.0                                      # and one pruned away entirely
    qc, sc = quantize_int8(w, axis=1)
    assert sc.shape == (1, 8) and sc[0, 5] == 1.0 and np.all(qc[:, 5] == 0)
    np.testing.assert_allclose(sc[0, :5], np.abs(w[:, :5]).max(axis=0) / 127, rtol=1e-6)
    assert np.all(np.abs(dequantize(qc, sc) - w) <= sc / 2 * (1 + 1e-5))
    err_tensor = np.abs(dequantize(*quantize_int8(w)) - w)[:, 3].mean()
    err_channel = np.abs(dequantize(qc, sc) - w)[:, 3].mean()
    assert err_channel < err_tensor / 10, (err_channel, err_tensor)
    assert quantize_int8(Tensor(w), axis=-1)[1].shape == (1, 8) and quantize_int8(w, axis=0)[1].shape == (30, 1)
    for bad, error_type in [((w, 2), ValueError), ((np.array([1.0, np.inf]),), ValueError),
                            (([1.0, 2.0],), TypeError)]:
        try:
            quantize_int8(*bad)
        except error_type:
            pass
        else:
            raise AssertionError(f"quantize_int8{bad!r:.40} must raise {error_type.__name__}")
    print("quantize_int8, dequantize: ok")


test_unit_quantize()

# %% [markdown]
# ## 4. A quantized Dense layer
#
# `QuantizedDense(dense)` keeps the int8 weights `q` (in, out), their scale (per output channel by
# default) and the float32 bias. Its forward pass must compute `x @ (q * scale) + b`. Two ways:
#
# 1. **int8 weights, float activations** (what we do): because the scale is constant along each column,
#    it factors out of the sum: `x @ (q * s) = (x @ q) * s`. We convert `q` to float32 (every integer up
#    to 127 is exact in float32), run the float BLAS product, and multiply each output column by its scale.
#    The only error is the weights' rounding.
# 2. **int8 weights and activations, int32 accumulation** (what int8 hardware does): quantize `x` too,
#    multiply int8 by int8 and sum in int32 (127 * 127 * in stays far below 2^31), then rescale by
#    `s_x * s_w`. On an accelerator this is 4x less memory traffic and faster arithmetic. NumPy, however,
#    has no BLAS for integers: its integer matmul is a plain loop, which the Systems Analysis measures to
#    be many times slower than float32 BLAS, and quantizing activations adds a second rounding error.
#
# So in NumPy (1) is the right choice: 4x smaller stored weights, float speed, one rounding. The price is a
# temporary float32 copy of the weights during each forward pass (4 bytes per weight, freed at once).
#
# Polymorphic as every layer: a `Tensor` in gives a `Tensor` out; a `Variable` in gives a `Variable`
# whose gradient flows to the input (`dL/dx = (g * s) @ q.T`), so a quantized layer can sit inside a
# model that is still being trained. The int8 weights themselves get no gradient: they are not
# parameters (`parameters()` is empty), a quantized layer is for inference.

# %% nbgrader={"grade": false, "grade_id": "quantized-dense", "locked": false, "schema_version": 3, "solution": true}
#| export
class QuantizedDense(Module):
    """Dense layer with int8 weights: y = (x @ q) * scale + bias, from a trained Dense.

    Shapes: input (..., in_features) -> output (..., out_features). weight_q int8 (in, out); scale float32
    (1, out) per output channel (per_channel=True) or () per tensor; bias float32 (out,) or None.
    """

    def __init__(self, layer, per_channel=True):
        super().__init__()
        if not isinstance(layer, Dense):
            raise TypeError(f"QuantizedDense is built from a Dense layer, got {type(layer).__name__}")
        self.in_features, self.out_features = layer.in_features, layer.out_features
        self.per_channel = bool(per_channel)
        ### BEGIN SOLUTION
        self.weight_q, self.scale = quantize_int8(layer.weights.data, axis=1 if self.per_channel else None)
        self.bias = None if layer.bias is None else np.array(layer.bias.data, dtype=np.float32)
        ### END SOLUTION

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, per_channel={self.per_channel}")

    def dequantized_weights(self):
        """The float32 (in, out) weights this layer computes with: q * scale."""
        return dequantize(self.weight_q, self.scale)

    def forward(self, x):
        """x: Tensor or Variable (..., in_features) -> (..., out_features), same kind as x."""
        if not isinstance(x, Tensor):
            raise TypeError(f"QuantizedDense expects a Tensor or Variable, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"QuantizedDense expected input with last dimension {self.in_features}, "
                             f"got shape {x.shape}")
        ### BEGIN SOLUTION
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        scale = self.scale.astype(dtype)
        out = (x.data.astype(dtype, copy=False) @ self.weight_q.astype(dtype)) * scale
        if self.bias is not None:
            out += self.bias
        if not isinstance(x, Variable):
            return Tensor(out)

        def backward(grad):
            # recomputed here rather than kept: the graph holds no float copy of the weights
            return ((grad * scale) @ self.weight_q.astype(dtype).T,)

        return record_op(out, (x,), backward, name="quantized_dense")
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-quantized-dense", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_quantized_dense():
    """QuantizedDense: int8 storage, output close to the float layer, Tensor/Variable, gradient, errors."""
    rng = np.random.default_rng(1)
    dense = Dense(16, 8, seed=0)
    x = rng.standard_normal((5, 16)).astype(np.float32)
    for per_channel in (True, False):
        layer = QuantizedDense(dense, per_channel=per_channel)
        assert layer.weight_q.dtype == np.int8 and layer.weight_q.shape == (16, 8)
        assert layer.parameters() == []
        y = layer(Tensor(x))
        assert type(y) is Tensor and y.dtype == np.float32 and y.shape == (5, 8)
        exact = x @ layer.dequantized_weights() + dense.bias.data
        np.testing.assert_allclose(y.data, exact, rtol=1e-5, atol=1e-5)
        bound = np.abs(x).sum(axis=1, keepdims=True) * np.broadcast_to(layer.scale, (1, 8)) / 2
        assert np.all(np.abs(y.data - dense(Tensor(x)).data) <= bound + 1e-5), "error beyond sum |x| * scale/2"
    assert layer(Tensor(np.ones((2, 3, 16), dtype=np.float32))).shape == (2, 3, 8)
    xv = Variable(rng.standard_normal((4, 16)), requires_grad=True)
    assert isinstance(layer(xv), Variable)
    check_gradients(lambda v: layer(v), xv)
    try:
        layer(Tensor(np.ones((3, 10))))
    except ValueError as error:
        assert "16" in str(error) and "(3, 10)" in str(error)
    else:
        raise AssertionError("a wrong input width must raise ValueError")
    print("QuantizedDense: ok")


test_unit_quantized_dense()

# %% [markdown]
# ## 5. Quantizing a whole model, and measuring its size
#
# `quantize_model(model)` returns a **new** model in which every `Dense` is replaced by a
# `QuantizedDense`, wherever it sits: in a `Sequential` or `MLP`, nested, or as an attribute of your own
# `Module`. Everything else (activations, Dropout, Conv2D, LayerNorm) is shared with the original, which
# stays untouched, so you can compare the float and the int8 model side by side. The copy keeps the
# model's class (an `MLP` stays an `MLP`); a layer used twice is quantized once and used twice.
#
# `model_size_bytes(model)` adds up the bytes of every array the model's modules hold (parameters,
# int8 weights, scales, biases), each array once. `weights_only=True` counts only the weight matrices and
# what decodes them (arrays with 2 or more dimensions, and quantization scales), leaving biases out. For
# a Dense(in, out): float32 weights take `4 * in * out` bytes; int8 weights `in * out` plus `4 * out`
# per-channel scales (or 4 bytes per tensor).

# %% nbgrader={"grade": false, "grade_id": "quantize-model", "locked": false, "schema_version": 3, "solution": true}
#| export
def quantize_model(model, per_channel=True):
    """A copy of `model` with every Dense replaced by a QuantizedDense; other layers are shared."""
    _check_model(model, "quantize_model")
    ### BEGIN SOLUTION
    memo = {}

    def convert(value):
        if isinstance(value, (list, tuple)):
            items = [convert(item) for item in value]
            return items if isinstance(value, list) else tuple(items)
        if not isinstance(value, Module):
            return value
        if id(value) not in memo:
            if isinstance(value, Dense):
                memo[id(value)] = QuantizedDense(value, per_channel=per_channel)
            elif not any(isinstance(m, Dense) for m in value.modules()):
                memo[id(value)] = value          # nothing to quantize inside: shared, not copied
            else:
                clone = copy.copy(value)         # a shallow copy: attributes are re-pointed below
                memo[id(value)] = clone
                for name, child in vars(value).items():
                    if isinstance(child, (Module, list, tuple)):
                        vars(clone)[name] = convert(child)
        return memo[id(value)]

    return convert(model)
    ### END SOLUTION


def _arrays(value):
    if isinstance(value, Tensor):
        return [value.data]
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (list, tuple)):
        return [array for item in value for array in _arrays(item)]
    return []


def model_size_bytes(model, weights_only=False):
    """Bytes of every array held by `model`'s modules, each counted once.

    weights_only=True: only weight matrices/kernels (2+ dimensions) and quantization scales.
    """
    _check_model(model, "model_size_bytes")
    ### BEGIN SOLUTION
    seen, total = set(), 0
    for module in model.modules():
        for name, value in vars(module).items():
            for array in _arrays(value):
                if id(array) in seen:
                    continue
                seen.add(id(array))
                is_scale = isinstance(module, QuantizedDense) and name == "scale"
                if weights_only and not (array.ndim >= 2 or is_scale):
                    continue
                total += array.nbytes
    return total
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-quantize-model", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_quantize_model():
    """quantize_model: Dense -> QuantizedDense, original untouched, outputs close; sizes from the shapes."""
    model = create_mlp(10, [32, 16], 4, seed=0)
    before = [p.data.copy() for p in model.parameters()]
    small = quantize_model(model)
    assert type(small) is type(model) and small is not model
    assert [type(layer).__name__ for layer in small] == ["QuantizedDense", "ReLU", "QuantizedDense", "ReLU",
                                                         "QuantizedDense"]
    assert [type(layer).__name__ for layer in model][0] == "Dense"
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)
    x = Tensor(np.random.default_rng(0).standard_normal((50, 10)).astype(np.float32))
    np.testing.assert_allclose(small(x).data, model(x).data, atol=0.02)
    diff = np.linalg.norm(small(x).data - model(x).data) / np.linalg.norm(model(x).data)
    assert diff < 0.02, f"relative output error {diff:.3f}"

    weights = 10 * 32 + 32 * 16 + 16 * 4
    biases = 32 + 16 + 4
    assert model_size_bytes(model) == 4 * (weights + biases)
    assert model_size_bytes(model, weights_only=True) == 4 * weights
    assert model_size_bytes(small) == weights + 4 * biases + 4 * biases       # int8 + scales + biases
    assert model_size_bytes(small, weights_only=True) == weights + 4 * biases
    per_tensor = quantize_model(model, per_channel=False)
    assert model_size_bytes(per_tensor, weights_only=True) == weights + 4 * 3
    try:
        quantize_model([Dense(2, 2)])
    except TypeError as error:
        assert "list" in str(error)
    else:
        raise AssertionError("a list is not a model")
    print("quantize_model, model_size_bytes: ok")


test_unit_quantize_model()

# %% [markdown]
# ## Systems Analysis
#
# A small model trained on synthetic data (10 Gaussian classes in 32 dimensions, a 32-128-64-10 MLP,
# Adam), then compressed. We measure:
#
# 1. **Bytes**: float32, int8 per tensor and per channel, and what 80% sparsity saves (nothing in dense
#    storage; a compressed-sparse-row (CSR) format stores values plus column indices).
# 2. **Quantization error** of the trained weights: largest error in units of the scale (at most 0.5), mean
#    error, and signal-to-noise ratio, per tensor against per channel.
# 3. **Accuracy against sparsity**, per layer and global, without fine-tuning; then 80% with a short
#    fine-tune, and after int8.
# 4. **Time and memory of the quantized forward pass**, and the int32-accumulated integer matmul we
#    decided against.

# %% nbgrader={"grade": false, "grade_id": "compression-analysis", "locked": false, "schema_version": 3, "solution": false}
def _synthetic_data(n=3000, classes=10, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, dim)) * 0.6
    y = rng.integers(0, classes, n)
    X = (centers[y] + rng.standard_normal((n, dim))).astype(np.float32)
    return X[:2400], y[:2400], X[2400:], y[2400:]


def _train_model(epochs=15, seed=0):
    X, y, Xt, yt = _synthetic_data()
    model = create_mlp(32, [128, 64], 10, seed=seed)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.003), CrossEntropyLoss())
    trainer.fit(DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True, seed=seed), epochs, verbose=False)
    return model, (X, y, Xt, yt)


def _accuracy(model, X, y):
    with no_grad():
        return Accuracy()(model(Tensor(X)), y)


_MODEL, _DATA = _train_model()


def analyze_model_size():
    """Bytes of the trained 32-128-64-10 MLP in each storage format."""
    model = _MODEL
    n_weights = sum(p.size for _, p in prunable_parameters(model))
    float_total, float_weights = model_size_bytes(model), model_size_bytes(model, weights_only=True)
    print(f"{n_weights:,} weights + {sum(p.size for p in model.parameters()) - n_weights} biases")
    print("format                              weights (B)   whole model (B)   weights smaller by")
    rows = [("float32", float_weights, float_total)]
    for label, per_channel in (("int8, one scale per tensor", False), ("int8, one scale per channel", True)):
        q = quantize_model(model, per_channel=per_channel)
        rows.append((label, model_size_bytes(q, weights_only=True), model_size_bytes(q)))
    nnz = int(round(0.2 * n_weights))
    rows_ptr = sum((p.shape[0] + 1) * 4 for _, p in prunable_parameters(model))
    biases = float_total - float_weights
    rows.append(("80% sparse, dense float32", float_weights, float_total))
    rows.append(("80% sparse, CSR float32 + int32 idx", nnz * 8 + rows_ptr, nnz * 8 + rows_ptr + biases))
    rows.append(("80% sparse, CSR int8 + int16 idx", nnz * 3 + rows_ptr, nnz * 3 + rows_ptr + biases))
    for label, weights, total in rows:
        print(f"{label:36s} {weights:11,d}   {total:15,d}   {float_weights / weights:8.2f}x")


def analyze_quantization_error():
    """Round-trip error of the trained weights, per tensor vs per channel, and on mismatched channels."""
    print("layer        scheme        max err/scale   mean |err|   SNR (dB)")
    for name, p in prunable_parameters(_MODEL):
        w = p.data
        for scheme, axis in (("per tensor", None), ("per channel", 1)):
            q, scale = quantize_int8(w, axis=axis)
            err = dequantize(q, scale) - w
            ratio = np.max(np.abs(err) / scale)
            snr = 10 * np.log10(np.sum(w.astype(np.float64) ** 2) / np.sum(err.astype(np.float64) ** 2))
            print(f"{name:12s} {scheme:12s} {ratio:14.3f}   {np.abs(err).mean():10.2e}   {snr:8.1f}")
    rng = np.random.default_rng(0)
    w = rng.standard_normal((256, 64)).astype(np.float32) * np.logspace(-2, 0, 64).astype(np.float32)
    for scheme, axis in (("per tensor", None), ("per channel", 1)):
        err = dequantize(*quantize_int8(w, axis=axis)) - w
        snr = 10 * np.log10(np.sum(w.astype(np.float64) ** 2) / np.sum(err.astype(np.float64) ** 2))
        worst = 10 * np.log10(np.sum(w[:, 0].astype(np.float64) ** 2) / np.sum(err[:, 0].astype(np.float64) ** 2))
        print(f"channel ranges 0.01..1, {scheme:12s}: SNR {snr:5.1f} dB overall, {worst:5.1f} dB on the smallest channel")


def analyze_accuracy_vs_sparsity():
    """Test accuracy after pruning (no fine-tuning) at growing sparsity; then fine-tuned; then int8."""
    X, y, Xt, yt = _DATA
    base = _accuracy(_MODEL, Xt, yt)
    print(f"float32 model: test accuracy {base:.4f}")
    print("sparsity   per-layer acc   global acc   global: per-layer sparsity")
    for s in (0.5, 0.7, 0.8, 0.9, 0.95, 0.98):
        results = []
        for scope in ("layer", "global"):
            model = copy.deepcopy(_MODEL)
            magnitude_prune(model, s, scope=scope)
            results.append(_accuracy(model, Xt, yt))
        layers = " ".join(f"{np.mean(p.data == 0):.2f}" for _, p in prunable_parameters(model))
        print(f"{s:8.2f}   {results[0]:13.4f}   {results[1]:10.4f}   {layers}")
    model = copy.deepcopy(_MODEL)
    masks = magnitude_prune(model, 0.8, scope="global")
    pruned_acc = _accuracy(model, Xt, yt)
    opt = MaskedOptimizer(Adam(model.parameters(), lr=0.001), model, masks)
    Trainer(model, opt, CrossEntropyLoss()).fit(DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True,
                                                           seed=1), 3, verbose=False)
    tuned = _accuracy(model, Xt, yt)
    print(f"80% global: {pruned_acc:.4f} pruned, {tuned:.4f} after 3 epochs of masked fine-tuning "
          f"(sparsity still {sparsity(model):.3f})")
    for label, m in (("float32", _MODEL), ("int8 per tensor", quantize_model(_MODEL, per_channel=False)),
                     ("int8 per channel", quantize_model(_MODEL)), ("80% pruned + int8", quantize_model(model))):
        print(f"{label:20s} test accuracy {_accuracy(m, Xt, yt):.4f}")


def analyze_quantized_forward(batch=64, width=512):
    """Dense vs QuantizedDense forward (time, peak memory) and int8 x int8 -> int32 matmul time."""
    rng = np.random.default_rng(0)
    dense = Dense(width, width, seed=0)
    qdense = QuantizedDense(dense)
    x = Tensor(rng.standard_normal((batch, width)).astype(np.float32))
    xq, sx = quantize_int8(x.data)
    wq32, xq32 = qdense.weight_q.astype(np.int32), xq.astype(np.int32)

    def int_matmul():
        return (xq32 @ wq32) * (sx * qdense.scale)

    print(f"Dense({width}, {width}) at batch {batch}: weights {dense.weights.data.nbytes / 1e6:.2f} MB float32, "
          f"{qdense.weight_q.nbytes / 1e6:.2f} MB int8")
    print("forward                                time (ms)   peak extra memory (MB)")
    for label, fn in (("Dense, float32 BLAS", lambda: dense(x)), ("QuantizedDense (int8 -> float32)", lambda: qdense(x)),
                      ("int8 x int8 -> int32 (no BLAS)", int_matmul)):
        seconds = median_time(fn, repeats=3)
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"{label:36s} {seconds * 1e3:10.2f}   {peak / 1e6:10.2f}")
    exact = x.data @ dense.weights.data
    for label, y in (("QuantizedDense", qdense(x).data - dense.bias.data), ("int8 activations too", int_matmul())):
        print(f"{label:22s}: relative error {np.linalg.norm(y - exact) / np.linalg.norm(exact):.2e}")


analyze_model_size()
analyze_quantization_error()
analyze_accuracy_vs_sparsity()
analyze_quantized_forward()

# %% [markdown]
# ### What the numbers say
#
# - **Bytes.** int8 weights are exactly 4x smaller than float32. Per-channel scales cost 4 bytes per output
#   column: on this small model (64 and 10 weights per column in the last two layers) that is 6% (3.76x
#   instead of 4.00x); on a layer with 1,000 inputs it is 0.4%. Biases stay float32, so the whole model
#   shrinks a little less than its weights. Pruning alone saves nothing in dense storage; in CSR each kept
#   float32 weight costs 8 bytes (value + index), so 80% sparsity saves only about 2.4x; sparse int8 with
#   16-bit indices reaches about 6x.
# - **Error.** Every element stays within half a step (max err/scale = 0.500, never more). On trained
#   weights, whose columns have similar ranges, per-channel scales gain only 1-3 dB. On channels whose
#   ranges differ 100x, one scale per tensor leaves the smallest channel a few dB of signal over the
#   rounding noise, while per channel keeps every channel above 40 dB.
# - **Accuracy.** Half the weights go at almost no cost. From 70% on, per-layer pruning hurts far more
#   than global (at 80%: about 0.54 against 0.87): it strips the small 64 -> 10 output layer as hard as
#   the big ones, while the global threshold takes most from the 128 x 64 middle layer, whose weights are
#   smallest. Pushed further, the global threshold empties that layer (per-layer sparsity 0.98, then
#   1.00) and the model falls to chance: in practice a global threshold gets a cap per layer. Three epochs
#   of masked fine-tuning bring the 80% model back to within a prediction or two of the float model. int8
#   changes the accuracy by at most a prediction or two, pruned or not.
# - **Speed.** The quantized forward costs about as much as the float one plus the int8 -> float32
#   conversion, and briefly holds a float32 copy of the weights (the peak memory column: 4 bytes per
#   weight). The integer matmul that int8 hardware would use is over 100x slower in NumPy (no integer
#   BLAS) and adds the activations' rounding error (3x the relative error): that is why `QuantizedDense`
#   computes in float.
#
# ## Summary
#
# You built magnitude pruning (per layer and global, exact sparsity, masks that survive fine-tuning
# through `MaskedOptimizer`), symmetric int8 quantization per tensor and per channel with a proven
# half-step error bound, `QuantizedDense` and `quantize_model`, and `model_size_bytes` to measure the
# result. `examples/compress_digits` applies all of it to the digits classifier.
