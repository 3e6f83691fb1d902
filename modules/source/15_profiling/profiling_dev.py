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
# # Module 15: Profiling
#
# Module 14 answered "how long does this take?". Profiling answers **where** the time and the memory go,
# and whether that is what the arithmetic says it should be. Four questions, four tools:
#
# 1. **How big is the model?** `count_parameters(model)` and `memory_footprint(model, optimizer,
#    input_shape)`: bytes of parameters, gradients, optimizer state (none for plain SGD, one copy for
#    momentum, two for Adam) and activations, for training and for inference.
# 2. **How much arithmetic is a forward pass?** `layer_flops(layer, input_shape)` and
#    `count_flops(model, input_shape)` for every layer type TinyTorch has: Dense, Conv2D, pooling,
#    activations, attention, LayerNorm, Embedding, and Sequential/MLP containers of them.
# 3. **How much memory does a call really use?** `profile_memory(fn, *args)` with the standard library's
#    `tracemalloc` (peak and retained bytes, the top allocation sites with file:line), and
#    `memray_profile(fn, *args)` with memray when it is installed.
# 4. **Which layer takes the time?** `profile_layers(model, x)` times every layer of a Sequential forward
#    (and backward, when `x` is a Variable) with module 14's `benchmark` and prints a table: layer,
#    output shape, parameters, FLOPs, time, achieved GFLOP/s and share.
#
# The Systems Analysis puts them together: FLOPs against measured time (matrix products run near the
# machine's speed, elementwise layers far below it), and the memory of training against inference for an
# MLP, a CNN and an attention block.
#
# It stands on every layer of modules 03-10, the optimizers of module 09 and the harness of module 14.

# %% nbgrader={"grade": false, "grade_id": "profiling-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.profiling
#| export
import math
import numbers
import os
import tempfile
import time
import tracemalloc

import numpy as np

from tinytorch.core.tensor import Tensor
from tinytorch.core.autograd import Variable
from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.layers import Dense, Dropout, Module
from tinytorch.core.networks import Sequential
from tinytorch.core.spatial import AvgPool2D, Conv2D, Flatten, MaxPool2D, flatten
from tinytorch.core.attention import LayerNorm, MultiHeadAttention, SelfAttention
from tinytorch.core.embeddings import Embedding, PositionalEncoding
from tinytorch.core.optimizers import SGD, Adam, Optimizer
from tinytorch.core.benchmarking import benchmark, format_seconds

# %% nbgrader={"grade": false, "grade_id": "profiling-test-imports", "locked": false, "schema_version": 3, "solution": false}
# Only the tests and the analysis below use these.
from tinytorch.core.autograd import no_grad
from tinytorch.core.networks import MLP
from tinytorch.core.training import CrossEntropyLoss, MeanSquaredError

# %% [markdown]
# ## 0. Helpers: readable byte counts
#
# `format_bytes(1536) == "1.50 KiB"`. Binary units (KiB = 1024 bytes), as memray and the README's
# memory reports use. Given.

# %% nbgrader={"grade": false, "grade_id": "helpers", "locked": false, "schema_version": 3, "solution": false}
#| export
def format_bytes(n):
    """Bytes with a binary unit: 512 B, 1.50 KiB, 3.25 MiB, 1.00 GiB."""
    n = float(n)
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"


def format_count(n):
    """A large count readably: 950, 12.3 K, 4.56 M, 7.89 G."""
    n = float(n)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f}"


def _check_shape(input_shape, who):
    """A tuple of positive ints, or a clear TypeError/ValueError."""
    if isinstance(input_shape, (numbers.Integral,)) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"{who} expects input_shape as a tuple of ints, e.g. (32, 784), got {input_shape!r}")
    if not input_shape or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0
                                  for d in input_shape):
        raise ValueError(f"{who} expects input_shape as a non-empty tuple of positive ints, got {tuple(input_shape)!r}")
    return tuple(int(d) for d in input_shape)

# %% [markdown]
# ## 1. Counting parameters
#
# A model's size is the number of trainable numbers it holds: `sum(p.size for p in model.parameters())`.
# `Module.parameters()` (module 04) already lists each parameter once, even when two layers share it, so
# the count is right for tied weights too. Activations are plain objects without parameters: they count 0.
#
# | layer | parameters |
# |---|---|
# | `Dense(i, o)` | `i·o + o` |
# | `Conv2D(c, o, k)` | `o·c·k·k + o` |
# | `LayerNorm(d)` | `2d` (gamma, beta) |
# | `Embedding(n, d)` | `n·d` |
# | `MultiHeadAttention(d, h)` | `4(d·d + d)`, whatever h is |

# %% nbgrader={"grade": false, "grade_id": "count-parameters", "locked": false, "schema_version": 3, "solution": true}
#| export
def _parameters_of(model, who):
    """The parameters of a Module (a list), [] for a parameter-free callable such as an activation."""
    if isinstance(model, Module):
        return model.parameters()
    if isinstance(model, (list, tuple)) and all(isinstance(p, Variable) for p in model):
        return list(model)
    if callable(getattr(model, "forward", None)) or callable(model):
        return []
    raise TypeError(f"{who} expects a Module, a layer or a list of parameters, got {type(model).__name__}")


def count_parameters(model):
    """Number of trainable values (elements of every parameter, each parameter once) of a model or layer."""
    params = _parameters_of(model, "count_parameters")
    ### BEGIN SOLUTION
    return int(sum(p.size for p in params))
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-count-parameters", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_count_parameters():
    """count_parameters against the formulas of the table, for each kind of layer and a whole MLP."""
    assert count_parameters(Dense(784, 128)) == 784 * 128 + 128
    assert count_parameters(Dense(10, 3, bias=False)) == 30
    assert count_parameters(Conv2D(3, 16, 5)) == 16 * 3 * 5 * 5 + 16
    assert count_parameters(LayerNorm(64)) == 128
    assert count_parameters(Embedding(100, 32)) == 3200
    assert count_parameters(MultiHeadAttention(64, 8)) == 4 * (64 * 64 + 64)
    assert count_parameters(ReLU()) == 0 and count_parameters(MaxPool2D(2)) == 0
    mlp = MLP(64, [128, 64], 10, seed=0)
    assert count_parameters(mlp) == (64 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10) == 17226
    assert count_parameters(mlp) == sum(p.data.size for p in mlp.parameters())
    shared = Dense(8, 8)
    assert count_parameters(Sequential([shared, ReLU(), shared])) == 72      # a shared layer counts once
    try:
        count_parameters(42)
    except TypeError as error:
        assert "int" in str(error)
    else:
        raise AssertionError("an int is not a model")
    print(f"count_parameters: ok (digits MLP: {count_parameters(mlp):,})")


test_unit_count_parameters()

# %% [markdown]
# ## 2. Counting FLOPs
#
# A **FLOP** is one floating-point operation. The convention (the one PyTorch's `FlopCounterMode`,
# fvcore and most papers use for matrix products): **a multiply-add counts as 2 FLOPs**. A dot product
# of length `i` is `i` multiply-adds, `2i` FLOPs. Elementwise work counts one FLOP per arithmetic
# operation, and one per call of a transcendental function (`exp`, `tanh`, `erf`), however many cycles
# it really takes.
#
# For an input of shape `s` with `n` elements (for Dense, `rows = n / in`; for images `N, C, H, W` and
# outputs `Ho, Wo`):
#
# | layer | FLOPs of one forward | why |
# |---|---|---|
# | `Dense(i, o)` | `2·rows·i·o` | i multiply-adds per output, starting from the bias |
# | `Conv2D(C, O, kh×kw)` | `2·N·O·Ho·Wo·C·kh·kw` | C·kh·kw multiply-adds per output, starting from the bias |
# | `MaxPool2D(kh×kw)` | `N·C·Ho·Wo·(kh·kw − 1)` | comparisons: a max of k values takes k − 1 |
# | `AvgPool2D(kh×kw)` | `N·C·Ho·Wo·kh·kw` | k − 1 adds and a divide per output |
# | `ReLU` / `Tanh` | `n` | one max / one tanh per element |
# | `Sigmoid` | `4n` | negate, exp, add, divide: `1 / (1 + exp(−x))` |
# | `GELU` exact / tanh | `5n` / `9n` | `0.5·x·(1 + erf(x/√2))`; `0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))` |
# | `Softmax` over L entries | `rows·(5L − 2)` | max (L−1), subtract L, exp L, sum (L−1), divide L |
# | `LayerNorm` over D features | `rows·(7D + 3)` | mean 1, centre 1, square 1, variance 1, normalise 1, gamma 1, beta 1 per element; +eps, sqrt, reciprocal per row |
# | `Embedding`, `Flatten` | `0` | a lookup, a reshape: memory traffic, no arithmetic |
# | `Dropout` | `n` while training, `0` in eval | the mask multiply |
# | `PositionalEncoding` | `n` | one add |
# | `SelfAttention(d)` on (B, L, d) | `4·2·B·L·d² + 2·B·L²·d + B·L² + B·L·(5L − 2) + 2·B·L²·d` | Q, K, V, out projections; `QKᵀ`; scale; softmax; weights·V |
# | `MultiHeadAttention(d, h)` | as above with `h` heads of `d/h`: `2·B·L²·d` twice, `h·B·L²` scale, `h·B·L·(5L − 2)` softmax | the heads split the work, they do not add to it |
# | `Sequential` / `MLP` | the sum over its layers, each given the previous output's shape | |
#
# **The bias is free.** `x @ W + b` computes, per output, i multiplies, i − 1 adds inside the dot product
# and 1 add of the bias: exactly `2i`, i multiply-adds whose accumulator starts at the bias instead of 0
# (what a fused multiply-add unit, or BLAS's `C = b; C += x W`, does). So Dense and Conv2D cost `2 × MACs`
# with or without bias, as PyTorch's `FlopCounterMode` counts them; the test below checks the Dense count
# against the arithmetic actually performed, counted operation by operation.
#
# `layer_flops(layer, input_shape)` returns `(flops, output_shape)`: a container needs each layer's output
# shape to count the next layer. `count_flops(model, input_shape)` returns the number alone. A layer type
# it does not know raises a `TypeError` naming the type: silently counting 0 would make a model look
# cheaper than it is. Shapes are checked as the layers check them, with the same kind of message.
#
# Attention is **quadratic** in the sequence length L (the `L²` terms) while everything else is linear:
# for long sequences it dominates, which the analysis shows.

# %% nbgrader={"grade": false, "grade_id": "flops", "locked": false, "schema_version": 3, "solution": true}
#| export
ELEMENTWISE_FLOPS = {ReLU: 1, Tanh: 1, Sigmoid: 4}   # FLOPs per element; GELU depends on its form


def _conv_output_hw(shape, kernel, stride, padding, who):
    if len(shape) != 4:
        raise ValueError(f"{who} expects input of shape (N, C, H, W), got {shape}")
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = (shape[2] + 2 * ph - kh) // sh + 1, (shape[3] + 2 * pw - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"{who}: kernel {kernel} does not fit an input of shape {shape} "
                         f"(padding {padding}, stride {stride})")
    return ho, wo


def _attention_flops(shape, d_model, heads, who):
    """FLOPs of self-attention over x (..., L, d_model): projections, scores, scale, softmax, weights @ V."""
    if len(shape) < 2 or shape[-1] != d_model:
        raise ValueError(f"{who} expected x of shape (..., seq, {d_model}), got {shape}")
    length = shape[-2]
    batch = math.prod(shape[:-2])
    rows = batch * length
    projections = 4 * 2 * rows * d_model * d_model            # query, key, value and output Dense layers
    scores = 2 * batch * length * length * d_model            # Q K^T, all heads together
    scale = heads * batch * length * length
    softmax = heads * batch * length * (5 * length - 2)
    mix = 2 * batch * length * length * d_model               # weights @ V
    return projections + scores + scale + softmax + mix


def layer_flops(layer, input_shape):
    """(FLOPs of one forward pass of `layer` on an input of `input_shape`, the output shape).

    Convention: a multiply-add is 2 FLOPs; elementwise work 1 FLOP per operation (see the table above).
    Sequential containers (and MLP) sum their layers. An unknown layer type raises TypeError.
    """
    shape = _check_shape(input_shape, "layer_flops")
    n = math.prod(shape)
    ### BEGIN SOLUTION
    if isinstance(layer, Sequential):
        total = 0
        for sub in layer:
            flops, shape = layer_flops(sub, shape)
            total += flops
        return total, shape
    if isinstance(layer, Dense):
        i, o = layer.in_features, layer.out_features
        if shape[-1] != i:
            raise ValueError(f"Dense expected input with last dimension {i}, got shape {shape}")
        return 2 * (n // i) * i * o, shape[:-1] + (o,)          # i multiply-adds per output
    if isinstance(layer, Conv2D):
        if len(shape) != 4 or shape[1] != layer.in_channels:
            raise ValueError(f"Conv2D(in_channels={layer.in_channels}) expected input of shape "
                             f"(N, {layer.in_channels}, H, W), got {shape}")
        ho, wo = _conv_output_hw(shape, layer.kernel_size, layer.stride, layer.padding, "Conv2D")
        kh, kw = layer.kernel_size
        outputs = shape[0] * layer.out_channels * ho * wo
        return 2 * outputs * layer.in_channels * kh * kw, (shape[0], layer.out_channels, ho, wo)
    if isinstance(layer, (MaxPool2D, AvgPool2D)):
        who = type(layer).__name__
        ho, wo = _conv_output_hw(shape, layer.kernel_size, layer.stride, (0, 0), who)
        window = layer.kernel_size[0] * layer.kernel_size[1]
        outputs = shape[0] * shape[1] * ho * wo
        per_output = window - 1 if isinstance(layer, MaxPool2D) else window
        return outputs * per_output, (shape[0], shape[1], ho, wo)
    if isinstance(layer, Flatten) or layer is flatten:
        if len(shape) < 2:
            raise ValueError(f"flatten needs at least 2 dimensions, got shape {shape}")
        return 0, (shape[0], n // shape[0])
    if isinstance(layer, Dropout):
        return (n if layer.training and layer.p > 0 else 0), shape
    if type(layer) in ELEMENTWISE_FLOPS:
        return ELEMENTWISE_FLOPS[type(layer)] * n, shape
    if isinstance(layer, GELU):
        return (9 if layer.approximate == "tanh" else 5) * n, shape
    if isinstance(layer, Softmax):
        length = shape[layer.axis]
        return (n // length) * (5 * length - 2), shape
    if isinstance(layer, LayerNorm):
        d = math.prod(layer.normalized_shape)
        if shape[len(shape) - len(layer.normalized_shape):] != layer.normalized_shape:
            raise ValueError(f"LayerNorm expected input of shape (..., {', '.join(map(str, layer.normalized_shape))}), "
                             f"got shape {shape}")
        return (n // d) * (7 * d + 3), shape
    if isinstance(layer, Embedding):
        return 0, shape + (layer.embedding_dim,)
    if isinstance(layer, PositionalEncoding):
        if len(shape) < 2 or shape[-1] != layer.d_model:
            raise ValueError(f"PositionalEncoding expected input of shape (..., seq, {layer.d_model}), got {shape}")
        return n, shape
    if isinstance(layer, MultiHeadAttention):
        return _attention_flops(shape, layer.d_model, layer.num_heads, "MultiHeadAttention"), shape
    if isinstance(layer, SelfAttention):
        return _attention_flops(shape, layer.d_model, 1, "SelfAttention"), shape
    raise TypeError(f"layer_flops does not know how to count the FLOPs of a {type(layer).__name__} "
                    f"({layer!r}); known: Sequential/MLP, Dense, Conv2D, MaxPool2D, AvgPool2D, Flatten, Dropout, "
                    f"ReLU, Tanh, Sigmoid, GELU, Softmax, LayerNorm, Embedding, PositionalEncoding, "
                    f"SelfAttention, MultiHeadAttention")
    ### END SOLUTION


def count_flops(model, input_shape):
    """FLOPs of one forward pass of `model` (a layer, or a Sequential/MLP of them) on `input_shape`."""
    return layer_flops(model, input_shape)[0]

# %% nbgrader={"grade": true, "grade_id": "test-flops-layers", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_layer_flops():
    """FLOPs of each layer type against its hand-derived formula, and the output shapes."""
    assert layer_flops(Dense(784, 128), (32, 784)) == (2 * 32 * 784 * 128, (32, 128))
    assert layer_flops(Dense(10, 4, bias=False), (2, 3, 10)) == (2 * 6 * 10 * 4, (2, 3, 4))
    # 8x8 image, 3x3 kernel, padding 1: 8x8 out; stride 2, no padding: 3x3 out
    assert layer_flops(Conv2D(1, 8, 3, padding=1), (4, 1, 8, 8)) == (2 * 4 * 8 * 64 * 9, (4, 8, 8, 8))
    assert layer_flops(Conv2D(3, 2, 3, stride=2, bias=False), (1, 3, 8, 8)) == (2 * 2 * 9 * 27, (1, 2, 3, 3))
    assert layer_flops(MaxPool2D(2), (4, 8, 8, 8)) == (4 * 8 * 16 * 3, (4, 8, 4, 4))
    assert layer_flops(AvgPool2D(2), (4, 8, 8, 8)) == (4 * 8 * 16 * 4, (4, 8, 4, 4))
    assert layer_flops(Flatten(), (4, 8, 4, 4)) == (0, (4, 128))
    assert layer_flops(ReLU(), (5, 7)) == (35, (5, 7)) and layer_flops(Tanh(), (5, 7))[0] == 35
    assert layer_flops(Sigmoid(), (5, 7))[0] == 140
    assert layer_flops(GELU(), (10,))[0] == 50 and layer_flops(GELU(approximate="tanh"), (10,))[0] == 90
    assert layer_flops(Softmax(), (3, 10)) == (3 * 48, (3, 10))
    assert layer_flops(LayerNorm(16), (2, 5, 16)) == (10 * (7 * 16 + 3), (2, 5, 16))
    assert layer_flops(Embedding(100, 32), (4, 12)) == (0, (4, 12, 32))
    assert layer_flops(PositionalEncoding(50, 16), (2, 10, 16)) == (320, (2, 10, 16))
    dropout = Dropout(0.5)
    assert layer_flops(dropout, (4, 4))[0] == 16 and layer_flops(dropout.eval(), (4, 4))[0] == 0
    # attention, B=2, L=10, d=16: four projections, Q K^T, scale, softmax, weights @ V
    B, L, d = 2, 10, 16
    projections = 4 * 2 * B * L * d * d
    single = projections + 2 * B * L * L * d + B * L * L + B * L * (5 * L - 2) + 2 * B * L * L * d
    assert layer_flops(SelfAttention(d), (B, L, d)) == (single, (B, L, d))
    multi = projections + 2 * B * L * L * d + 4 * B * L * L + 4 * B * L * (5 * L - 2) + 2 * B * L * L * d
    assert layer_flops(MultiHeadAttention(d, 4), (B, L, d)) == (multi, (B, L, d))
    print("layer_flops: ok")


test_unit_layer_flops()

# %% nbgrader={"grade": true, "grade_id": "test-count-flops", "locked": true, "points": 5, "schema_version": 3, "solution": false}
class _CountingFloat:
    """A number that counts the multiplications and additions done with it (for the test below)."""

    ops = 0

    def __init__(self, value):
        self.value = value

    def _other(self, other):
        return other.value if isinstance(other, _CountingFloat) else other

    def __mul__(self, other):
        _CountingFloat.ops += 1
        return _CountingFloat(self.value * self._other(other))

    def __add__(self, other):
        _CountingFloat.ops += 1
        return _CountingFloat(self.value + self._other(other))

    __rmul__, __radd__ = __mul__, __add__


def test_unit_count_flops():
    """count_flops: a CNN and an MLP sum their layers; a Dense layer's count equals its actual arithmetic."""
    cnn = Sequential([Conv2D(1, 4, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(), Dense(4 * 4 * 4, 10)])
    conv = 2 * 2 * 4 * 64 * 9                  # batch 2, 4 filters, 8x8 outputs, 1x3x3 windows
    expected = conv + 2 * 4 * 64 + 2 * 4 * 16 * 3 + 0 + 2 * 2 * 64 * 10
    assert count_flops(cnn, (2, 1, 8, 8)) == expected
    mlp = MLP(64, [128, 64], 10, seed=0)
    assert count_flops(mlp, (32, 64)) == sum(2 * 32 * i * o for i, o in [(64, 128), (128, 64), (64, 10)]) \
        + 32 * 128 + 32 * 64                   # + the two ReLUs
    # The actual arithmetic: Dense computes x @ W + b (module 04); do exactly that on counting numbers.
    layer = Dense(5, 3, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_allclose(layer(Tensor(x)).data, x @ layer.weights.data + layer.bias.data, rtol=1e-6)
    counting = np.vectorize(_CountingFloat, otypes=[object])
    _CountingFloat.ops = 0
    out = counting(x) @ counting(layer.weights.data) + counting(layer.bias.data)
    assert out.shape == (4, 3) and isinstance(out[0, 0], _CountingFloat)
    assert _CountingFloat.ops == count_flops(layer, (4, 5)) == 2 * 4 * 5 * 3
    for bad, shape, error, fragment in [(Dense(8, 2), (4, 9), ValueError, "(4, 9)"),
                                        (Conv2D(3, 4, 3), (1, 1, 8, 8), ValueError, "in_channels=3"),
                                        (Dense(8, 2), (4, -8), ValueError, "positive"),
                                        (lambda x: x, (4, 8), TypeError, "function"),
                                        (Sequential([Dense(8, 2), Module()]), (4, 8), TypeError, "Module")]:
        try:
            count_flops(bad, shape)
        except error as caught:
            assert fragment in str(caught), (fragment, str(caught))
        else:
            raise AssertionError(f"{bad!r} on {shape} must be rejected")
    print(f"count_flops: ok (CNN on 2x1x8x8: {count_flops(cnn, (2, 1, 8, 8)):,} FLOPs)")


test_unit_count_flops()

# %% [markdown]
# ## 3. The memory of a model: parameters, gradients, optimizer state, activations
#
# Training holds much more than the weights. For `P` parameters stored in float32 (4 bytes each):
#
# | what | bytes | when |
# |---|---|---|
# | parameters | `4P` | always |
# | gradients | `4P` | training: one `.grad` per parameter, same shape and dtype |
# | optimizer state | `0` (SGD), `4P` (SGD with momentum: one buffer), `8P` (Adam: m and v) | training |
# | activations | every layer's output, kept by the graph until `backward` | training |
# | activations | at most one layer's input and output at a time | inference |
#
# So an Adam training step needs about **4x the parameter memory before any activation**, and the
# activations grow with the batch size while the rest does not.
#
# `memory_footprint(model, optimizer=None, input_shape=None)` returns a `MemoryFootprint` with those
# numbers for training and inference. `optimizer` is an `SGD`/`Adam` instance or one of the strings
# `"sgd"`, `"momentum"`, `"adam"`. With `input_shape` (and a Sequential or a single layer, whose output
# shapes `layer_flops` knows) it adds the activations: the **sum** of the layer outputs for training, the
# **largest input + output pair** for inference. This is a lower bound: layers also keep internal buffers
# for their backward pass (im2col columns, attention weights, masks); the analysis measures how much.

# %% nbgrader={"grade": false, "grade_id": "memory-footprint", "locked": false, "schema_version": 3, "solution": true}
#| export
class MemoryFootprint:
    """Bytes a model needs: parameters, gradients, optimizer state, activations (training and inference)."""

    def __init__(self, parameters, gradients, optimizer_state, activations_training, activations_inference):
        self.parameters, self.gradients, self.optimizer_state = parameters, gradients, optimizer_state
        self.activations_training, self.activations_inference = activations_training, activations_inference

    @property
    def training(self):
        """Total bytes of a training step: parameters + gradients + optimizer state + activations."""
        return self.parameters + self.gradients + self.optimizer_state + self.activations_training

    @property
    def inference(self):
        """Total bytes of a forward pass without a graph: parameters + the largest live activations."""
        return self.parameters + self.activations_inference

    def __str__(self):
        rows = [("parameters", self.parameters), ("gradients", self.gradients),
                ("optimizer state", self.optimizer_state), ("activations (training)", self.activations_training),
                ("training total", self.training), ("activations (inference)", self.activations_inference),
                ("inference total", self.inference)]
        return "\n".join(f"{name:<24} {format_bytes(value):>12}" for name, value in rows)

    def __repr__(self):
        return f"MemoryFootprint(training={self.training}, inference={self.inference})"


_STATE_COPIES = {None: 0, "sgd": 0, "momentum": 1, "adam": 2}


def _optimizer_copies(optimizer):
    """How many parameter-sized arrays the optimizer keeps per parameter."""
    if isinstance(optimizer, Adam):
        return 2
    if isinstance(optimizer, SGD):
        return 1 if optimizer.momentum != 0 else 0
    if isinstance(optimizer, Optimizer):
        raise TypeError(f"memory_footprint does not know the state of a {type(optimizer).__name__}")
    key = optimizer.lower() if isinstance(optimizer, str) else optimizer
    if key not in _STATE_COPIES:
        raise ValueError(f"memory_footprint optimizer must be an SGD/Adam instance or one of 'sgd', 'momentum', "
                         f"'adam' (or None), got {optimizer!r}")
    return _STATE_COPIES[key]


def memory_footprint(model, optimizer=None, input_shape=None, dtype=np.float32):
    """Bytes of parameters, gradients, optimizer state and (with input_shape) activations of `model`.

    Activations use `dtype` (float32 by default) and the output shapes from layer_flops.
    """
    params = _parameters_of(model, "memory_footprint")
    copies = _optimizer_copies(optimizer)
    itemsize = np.dtype(dtype).itemsize
    ### BEGIN SOLUTION
    param_bytes = int(sum(p.data.nbytes for p in params))
    training_acts = inference_acts = 0
    if input_shape is not None:
        shape = _check_shape(input_shape, "memory_footprint")
        layers = list(model) if isinstance(model, Sequential) else [model]
        sizes = [math.prod(shape)]                           # the input, then every layer's output
        for layer in layers:
            shape = layer_flops(layer, shape)[1]
            sizes.append(math.prod(shape))
        training_acts = itemsize * sum(sizes[1:])            # the graph keeps every output until backward
        inference_acts = itemsize * max(a + b for a, b in zip(sizes, sizes[1:]))   # one layer at a time
    return MemoryFootprint(param_bytes, param_bytes, copies * param_bytes, training_acts, inference_acts)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-memory-footprint", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_memory_footprint():
    """memory_footprint: 4 bytes per float32 parameter, gradients alike, 0/1/2 optimizer copies, activations."""
    mlp = MLP(64, [128, 64], 10, seed=0)
    P = count_parameters(mlp)
    plain = memory_footprint(mlp)
    assert plain.parameters == plain.gradients == 4 * P and plain.optimizer_state == 0
    assert memory_footprint(mlp, "momentum").optimizer_state == 4 * P
    assert memory_footprint(mlp, Adam(mlp.parameters())).optimizer_state == 8 * P
    assert memory_footprint(mlp, SGD(mlp.parameters(), lr=0.1)).optimizer_state == 0
    assert memory_footprint(mlp, SGD(mlp.parameters(), lr=0.1, momentum=0.9)).optimizer_state == 4 * P
    fp = memory_footprint(mlp, "adam", input_shape=(32, 64))
    # outputs: Dense 32x128, ReLU 32x128, Dense 32x64, ReLU 32x64, Dense 32x10
    assert fp.activations_training == 4 * 32 * (128 + 128 + 64 + 64 + 10)
    assert fp.activations_inference == 4 * 32 * (128 + 128)      # the largest input + output pair
    assert fp.training == 4 * P * 4 + fp.activations_training and fp.inference == 4 * P + fp.activations_inference
    assert "optimizer state" in str(fp)
    try:
        memory_footprint(mlp, "rmsprop")
    except ValueError as error:
        assert "rmsprop" in str(error)
    else:
        raise AssertionError("an unknown optimizer name must be rejected")
    print(fp)


test_unit_memory_footprint()

# %% [markdown]
# ## 4. Measuring memory: tracemalloc (and memray)
#
# Formulas say what memory a model *should* need; a profiler says what a call *did* use. Python ships
# one: `tracemalloc` records every allocation made through Python's allocators, with the stack that made
# it. NumPy reports its array buffers to tracemalloc too, so arrays are seen, with the Python line that
# created them.
#
# `profile_memory(fn, *args, top=5)` runs `fn(*args)` once under tracemalloc and returns a
# `MemoryProfile`:
#
# - `peak_bytes`: the most memory held at once **during** the call, above what was held before it
#   (`tracemalloc.reset_peak()` just before the call, `get_traced_memory()` after);
# - `current_bytes`: what is still held after it returns (its result, caches, leaks);
# - `sites`: the top allocation sites of that retained memory, as `file:line` with bytes and counts.
#   Each allocation is attributed to the innermost frame **outside NumPy**: "numeric.py:232" (inside
#   `np.ones`) would tell you nothing; the line of your code that called `np.ones` does.
# - `result`: what `fn` returned.
#
# tracemalloc cannot tell *which* allocations made up the peak: it only keeps live ones. memray, a
# native profiler, records every allocation and can show the memory alive at the high-water mark.
# `memray_profile(fn, *args)` does the same job with memray when it is installed (Linux, macOS) and
# reports the sites alive **at the peak**; without memray it raises an `ImportError` saying so. Two
# tracers cannot be active at once: under `memray run` (our `profile:15_profiling` task) or a pytest-memray
# budget test, `memray_profile` raises a `RuntimeError` explaining that.
#
# Overhead: tracemalloc with 25 frames per trace slows allocation-heavy code several times; use it to
# understand memory, never while timing.

# %% nbgrader={"grade": false, "grade_id": "profile-memory", "locked": false, "schema_version": 3, "solution": true}
#| export
class AllocationSite:
    """Memory allocated at one line: filename, lineno, size (bytes) and count (allocations)."""

    def __init__(self, filename, lineno, size, count):
        self.filename, self.lineno, self.size, self.count = filename, lineno, size, count

    def __str__(self):
        return f"{self.filename}:{self.lineno}  {format_bytes(self.size)} in {self.count} allocation(s)"

    def __repr__(self):
        return f"AllocationSite({self})"


class MemoryProfile:
    """What a call used: peak_bytes, current_bytes (still held after), the top sites, its result."""

    def __init__(self, tool, peak_bytes, current_bytes, sites, result, total_allocations=None):
        self.tool, self.peak_bytes, self.current_bytes = tool, peak_bytes, current_bytes
        self.sites, self.result, self.total_allocations = sites, result, total_allocations

    def __str__(self):
        lines = [f"{self.tool}: peak {format_bytes(self.peak_bytes)}, still held after the call "
                 f"{format_bytes(self.current_bytes)}"
                 + (f", {self.total_allocations:,} allocations" if self.total_allocations is not None else "")]
        lines += [f"  {site}" for site in self.sites]
        return "\n".join(lines)

    def __repr__(self):
        return f"MemoryProfile(tool={self.tool!r}, peak_bytes={self.peak_bytes}, current_bytes={self.current_bytes})"


_NUMPY_DIR = os.path.dirname(np.__file__) + os.sep
_SKIPPED_FILES = (tracemalloc.__file__,)


def _user_frame(frames):
    """(filename, lineno) of the innermost frame outside NumPy and tracemalloc; frames innermost first."""
    fallback = None
    for filename, lineno in frames:
        fallback = fallback or (filename, lineno)
        if not filename.startswith(_NUMPY_DIR) and filename not in _SKIPPED_FILES and not filename.startswith("<frozen"):
            return filename, lineno
    return fallback or ("<unknown>", 0)


def _top_sites(entries, top, exclude=None):
    """Group (frames, size, count) entries by their user frame; the `top` largest, biggest first.

    exclude: a code object whose own lines are left out (the profiler's bookkeeping).
    """
    own = set()
    if exclude is not None:
        own = {(exclude.co_filename, line) for _, _, line in exclude.co_lines() if line is not None}
    sites = {}
    for frames, size, count in entries:
        key = _user_frame(frames)
        if key in own:
            continue
        total = sites.setdefault(key, [0, 0])
        total[0] += size
        total[1] += count
    ordered = sorted(sites.items(), key=lambda item: (-item[1][0], item[0]))
    return [AllocationSite(f, line, size, count) for (f, line), (size, count) in ordered[:top] if size > 0]


def profile_memory(fn, *args, top=5, **kwargs):
    """Run fn(*args, **kwargs) once under tracemalloc: peak and retained bytes, top retained sites, result."""
    if not callable(fn):
        raise TypeError(f"profile_memory expects a callable, got {type(fn).__name__}")
    ### BEGIN SOLUTION
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(25)                       # 25 frames: enough to get out of NumPy's own functions
    try:
        before = tracemalloc.take_snapshot()
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn(*args, **kwargs)
        current, peak = tracemalloc.get_traced_memory()
        after = tracemalloc.take_snapshot()
    finally:
        if started:
            tracemalloc.stop()
    grown = [(list(reversed([(frame.filename, frame.lineno) for frame in stat.traceback])), stat.size_diff,
              stat.count_diff) for stat in after.compare_to(before, "traceback") if stat.size_diff > 0]
    sites = _top_sites(grown, top, exclude=profile_memory.__code__)    # not our own snapshot objects
    return MemoryProfile("tracemalloc", peak - baseline, current - baseline, sites, result)
    ### END SOLUTION


def memray_profile(fn, *args, top=5, native=False, **kwargs):
    """Run fn(*args, **kwargs) once under memray (when installed): peak, retained bytes, sites at the peak.

    Raises ImportError when memray cannot be imported, RuntimeError when memray already tracks this process.
    """
    if not callable(fn):
        raise TypeError(f"memray_profile expects a callable, got {type(fn).__name__}")
    try:
        import memray                               # optional: tinytorch itself needs NumPy alone
    except ImportError as error:
        raise ImportError("memray_profile needs memray (`pip install memray`, Linux and macOS only); "
                          "profile_memory(fn, ...) measures with tracemalloc everywhere") from error
    with tempfile.TemporaryDirectory() as folder:
        capture = os.path.join(folder, "capture.bin")
        tracker = memray.Tracker(capture, native_traces=native)
        try:
            tracker.__enter__()
        except RuntimeError as error:
            raise RuntimeError(f"memray_profile: memray is already tracking this process (under `memray run`, "
                               f"`doit profile:...` or a pytest-memray test), and two trackers cannot run at "
                               f"once; use profile_memory (tracemalloc) there ({error})") from None
        try:
            result = fn(*args, **kwargs)
        finally:
            tracker.__exit__(None, None, None)
        reader = memray.FileReader(capture)
        try:
            def entries(records):
                return [([(f, line) for _, f, line in r.stack_trace()], r.size, r.n_allocations) for r in records]
            at_peak = entries(reader.get_high_watermark_allocation_records(merge_threads=True))
            held = sum(r.size for r in reader.get_leaked_allocation_records(merge_threads=True))
            peak, total = reader.metadata.peak_memory, reader.metadata.total_allocations
        finally:
            reader.close()
    return MemoryProfile("memray", peak, held, _top_sites(at_peak, top), result, total)

# %% nbgrader={"grade": true, "grade_id": "test-profile-memory", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def _allocate_and_keep(n):
    kept = np.ones(n)                                 # the line the profile must name
    temporary = np.ones(4 * n)                        # freed before returning: counts in the peak only
    return kept + temporary[:n] * 0


def test_unit_profile_memory():
    """profile_memory: peak >= the known allocations, the result's site is its line, the result comes back."""
    profile = profile_memory(_allocate_and_keep, 100_000)
    n_bytes = 100_000 * 8
    assert profile.tool == "tracemalloc" and profile.result.shape == (100_000,)
    assert profile.peak_bytes >= 5 * n_bytes                  # kept + temporary alive together
    assert n_bytes <= profile.current_bytes < 2 * n_bytes     # only the result survives
    site = profile.sites[0]
    lines = _allocate_and_keep.__code__.co_firstlineno
    assert site.filename == _allocate_and_keep.__code__.co_filename
    assert site.lineno == lines + 3 and site.size >= n_bytes  # `return kept + ...` allocated the result
    assert not tracemalloc.is_tracing()                       # left as it found it
    empty = profile_memory(lambda: None)
    assert empty.result is None and empty.current_bytes < 10_000
    print(profile)


test_unit_profile_memory()

# %% [markdown]
# ## 5. Profiling a model layer by layer
#
# `profile_layers(model, x)` answers "which layer takes the time?" for a `Sequential` (or a single layer):
#
# 1. It runs the forward pass once, keeping each layer's input.
# 2. For each layer it times the forward pass on that input with module 14's `benchmark` (warmup,
#    calibrated inner loop, median of `repeats` samples).
# 3. When `x` is a `Variable` (training), it also times the layer's **backward**: it runs the layer on a
#    fresh `Variable` copy of its input (requiring a gradient, as inside a network) and times
#    `out.backward(ones)`; the graph is kept between calls, so every call repeats the same work. The
#    gradients this accumulates on the parameters are put back as they were afterwards.
# 4. It prints (with `verbose=True`) and returns a `LayerProfile` whose `rows` hold, per layer: index,
#    name, output shape, parameters, FLOPs (`None` for a layer type `layer_flops` does not know: the
#    time is still measured), forward and backward seconds, GFLOP/s of the forward, and the layer's
#    **share** of the total time.
#
# The timer is a parameter, as in module 14, so the test drives it with a fake clock.

# %% nbgrader={"grade": false, "grade_id": "profile-layers", "locked": false, "schema_version": 3, "solution": true}
#| export
def _short_name(layer):
    """A compact description of a layer for tables: Dense(64->128), Conv2D(1->8, 3x3), ReLU, ..."""
    if isinstance(layer, Dense):
        return f"Dense({layer.in_features}->{layer.out_features})"
    if isinstance(layer, Conv2D):
        return f"Conv2D({layer.in_channels}->{layer.out_channels}, {layer.kernel_size[0]}x{layer.kernel_size[1]})"
    if isinstance(layer, (MaxPool2D, AvgPool2D)):
        return f"{type(layer).__name__}({layer.kernel_size[0]}x{layer.kernel_size[1]})"
    if isinstance(layer, MultiHeadAttention):
        return f"MultiHeadAttention({layer.d_model}, {layer.num_heads} heads)"
    if isinstance(layer, LayerNorm):
        return f"LayerNorm({', '.join(map(str, layer.normalized_shape))})"
    return getattr(layer, "__name__", None) or type(layer).__name__


class LayerRow:
    """One row of a layer profile; times in seconds (backward None when not measured)."""

    def __init__(self, index, name, output_shape, params, flops, forward, backward):
        self.index, self.name, self.output_shape = index, name, output_shape
        self.params, self.flops, self.forward, self.backward = params, flops, forward, backward
        self.share = 0.0

    @property
    def total(self):
        return self.forward + (self.backward or 0.0)

    @property
    def gflops_per_second(self):
        """Achieved GFLOP/s of the forward pass (None without FLOPs or time)."""
        if self.flops is None or self.forward <= 0:
            return None
        return self.flops / self.forward / 1e9


class LayerProfile:
    """Rows of profile_layers plus the total time; str() is the table."""

    def __init__(self, rows, training):
        self.rows, self.training = rows, training
        self.total_seconds = sum(row.total for row in rows)

    def __str__(self):
        header = (f"{'#':>2}  {'layer':<32} {'output shape':<18} {'params':>9} {'FLOPs':>9} {'forward':>10}"
                  + (f" {'backward':>10}" if self.training else "") + f" {'GFLOP/s':>8} {'share':>6}")
        lines = [header]
        for r in self.rows:
            rate = r.gflops_per_second
            lines.append(f"{r.index:>2}  {r.name:<32} {str(r.output_shape):<18} {r.params:>9,} "
                         f"{format_count(r.flops) if r.flops is not None else '-':>9} {format_seconds(r.forward):>10}"
                         + (f" {format_seconds(r.backward) if r.backward is not None else '-':>10}" if self.training else "")
                         + f" {f'{rate:.2f}' if rate is not None else '-':>8} {r.share:>6.1%}")
        lines.append(f"total {format_seconds(self.total_seconds)}"
                     + (" (forward + backward)" if self.training else " (forward)"))
        return "\n".join(lines)


def profile_layers(model, x, repeats=5, warmup=1, min_time=0.0005, timer=time.perf_counter, verbose=True):
    """Time every layer of a Sequential (or one layer) on x: forward, and backward when x is a Variable.

    Returns a LayerProfile (rows: layer, output shape, params, FLOPs, times, GFLOP/s, share) and prints it.
    """
    layers = list(model) if isinstance(model, Sequential) else [model]
    if not layers or not all(callable(layer) for layer in layers):
        raise TypeError(f"profile_layers expects a Sequential of layers or a layer, got {type(model).__name__}")
    if not isinstance(x, Tensor):
        x = Tensor(np.asarray(x))
    training = isinstance(x, Variable)
    saved = [(p, p.grad) for p in _parameters_of(model, "profile_layers")]
    rows = []
    ### BEGIN SOLUTION
    try:
        h = x
        for index, layer in enumerate(layers):
            inputs = h
            forward = benchmark(layer, inputs, repeats=repeats, warmup=warmup, min_time=min_time, timer=timer)
            h = layer(inputs)
            backward = None
            if training:
                # inside a network every layer but the first must also send a gradient to its input
                fresh = inputs if index == 0 else Variable(inputs.data, requires_grad=True)
                out = layer(fresh)
                if isinstance(out, Variable) and out.requires_grad:
                    seed_grad = np.ones_like(out.data)
                    backward = benchmark(out.backward, seed_grad, repeats=repeats, warmup=warmup,
                                         min_time=min_time, timer=timer).median
            try:
                flops = layer_flops(layer, inputs.shape)[0]
            except TypeError:
                flops = None                        # unknown layer type: still timed, FLOPs shown as '-'
            rows.append(LayerRow(index, _short_name(layer), h.shape, count_parameters(layer), flops,
                                 forward.median, backward))
    finally:
        for p, grad in saved:                       # profiling must not leave gradients behind
            p.grad = grad
    profile = LayerProfile(rows, training)
    for row in rows:
        row.share = row.total / profile.total_seconds if profile.total_seconds > 0 else 0.0
    ### END SOLUTION
    if verbose:
        print(profile)
    return profile

# %% nbgrader={"grade": true, "grade_id": "test-profile-layers", "locked": true, "points": 10, "schema_version": 3, "solution": false}
class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _Busy(Module):
    """A layer that 'takes' `cost` fake seconds per forward and passes its input through."""

    def __init__(self, clock, cost):
        super().__init__()
        self.clock, self.cost = clock, cost

    def forward(self, x):
        self.clock.now += self.cost
        return x


def test_unit_profile_layers():
    """profile_layers: one row per layer, shapes, params, FLOPs, shares from a fake clock, grads restored."""
    clock = _FakeClock()
    model = Sequential([Dense(8, 16, seed=0), _Busy(clock, 3.0), ReLU(), _Busy(clock, 1.0), Dense(16, 4, seed=1)])
    x = Tensor(np.ones((5, 8), dtype=np.float32))
    profile = profile_layers(model, x, repeats=3, min_time=0.0, timer=clock, verbose=False)
    assert len(profile.rows) == 5 and not profile.training
    assert [r.output_shape for r in profile.rows] == [(5, 16), (5, 16), (5, 16), (5, 16), (5, 4)]
    assert [r.params for r in profile.rows] == [8 * 16 + 16, 0, 0, 0, 16 * 4 + 4]
    assert profile.rows[0].flops == 2 * 5 * 8 * 16 and profile.rows[1].flops is None
    assert [r.forward for r in profile.rows] == [0.0, 3.0, 0.0, 1.0, 0.0]
    assert [r.share for r in profile.rows] == [0.0, 0.75, 0.0, 0.25, 0.0]
    assert profile.total_seconds == 4.0
    # training: backward measured for layers with a graph; parameters' gradients left untouched
    xv = Variable(np.ones((5, 8), dtype=np.float32), requires_grad=False)
    train = profile_layers(model, xv, repeats=2, min_time=0.0, timer=clock, verbose=False)
    assert train.training and train.rows[0].backward is not None and train.rows[2].backward is not None
    assert all(p.grad is None for p in model.parameters())
    table = str(train)
    assert table.count("\n") == 6 and "Dense(8->16)" in table and "backward" in table
    assert abs(sum(r.share for r in train.rows) - 1.0) < 1e-12
    print(profile)


test_unit_profile_layers()

# %% [markdown]
# ## Systems Analysis
#
# 1. **FLOPs against measured time.** `profile_layers` on a CNN, an MLP and an attention block (real
#    clock): achieved GFLOP/s per layer type. Matrix-product layers approach what BLAS can do on one
#    core; elementwise layers (ReLU, pooling, LayerNorm) do a few FLOPs per byte moved and run far below.
# 2. **The memory of training against inference**, for the same three models: the estimate of
#    `memory_footprint` (parameters + gradients + Adam state + activations) beside the peak that
#    `profile_memory` measures for one Adam training step and for one forward pass under `no_grad`.
# 3. **tracemalloc against memray** on the same training step.

# %% nbgrader={"grade": false, "grade_id": "profiling-analysis", "locked": false, "schema_version": 3, "solution": false}
def _models():
    """(name, model, input array, loss) for the analysis: the digits MLP, a small CNN, an attention block."""
    rng = np.random.default_rng(0)
    mlp = MLP(64, [128, 64], 10, seed=0)
    cnn = Sequential([Conv2D(1, 16, 3, padding=1, seed=1), ReLU(), MaxPool2D(2),
                      Conv2D(16, 32, 3, padding=1, seed=2), ReLU(), MaxPool2D(2), Flatten(),
                      Dense(32 * 7 * 7, 10, seed=3)])
    attention = Sequential([LayerNorm(64), MultiHeadAttention(64, 4, seed=4), LayerNorm(64),
                            Dense(64, 256, seed=5), GELU(), Dense(256, 64, seed=6)])
    return [("MLP 64-128-64-10", mlp, rng.standard_normal((64, 64)).astype(np.float32)),
            ("CNN 28x28", cnn, rng.standard_normal((32, 1, 28, 28)).astype(np.float32)),
            ("attention block", attention, rng.standard_normal((8, 32, 64)).astype(np.float32))]


def analyze_flops_vs_time():
    """Per-layer forward and backward times, FLOPs and achieved GFLOP/s for the three models."""
    by_type = {}
    for name, model, x in _models():
        print(f"\n{name}, input {x.shape}, {count_flops(model, x.shape):,} FLOPs per forward, "
              f"{count_parameters(model):,} parameters (training: Variable input)")
        profile = profile_layers(model, Variable(x, requires_grad=False), repeats=5, min_time=0.001)
        for row in profile.rows:
            if row.flops:
                kind = row.name.split("(")[0]
                flops, seconds = by_type.get(kind, (0, 0.0))
                by_type[kind] = (flops + row.flops, seconds + row.forward)
    print("\nachieved forward GFLOP/s by layer type (all three models together):")
    for kind, (flops, seconds) in sorted(by_type.items(), key=lambda item: -item[1][0] / item[1][1]):
        print(f"  {kind:<20} {flops / seconds / 1e9:8.2f} GFLOP/s   ({format_count(flops)} FLOPs in {format_seconds(seconds)})")


def _adam_step(model, x, loss_fn, target):
    """Build what one training step builds: graph, gradients and (on the first step) Adam's state."""
    opt = Adam(model.parameters(), lr=1e-3)
    loss = loss_fn(model(Variable(x, requires_grad=False)), target)
    loss.backward()
    opt.step()
    return opt


def _inference(model, x):
    with no_grad():
        return model(Tensor(x))


def analyze_training_vs_inference_memory():
    """Estimated (memory_footprint) and measured (tracemalloc peak) memory: one Adam step against inference."""
    print("model               params   estimate: train  infer   measured peak: train step  inference   train/infer")
    for name, model, x in _models():
        out_shape = layer_flops(model, x.shape)[1]
        if name.startswith("MLP"):           # a classifier: cross-entropy against labels
            loss_fn, target = CrossEntropyLoss(), np.zeros(len(x), dtype=np.int64)
        else:                                # anything else: mean squared error against zeros
            loss_fn, target = MeanSquaredError(), np.zeros(out_shape, dtype=np.float32)
        estimate = memory_footprint(model, "adam", input_shape=x.shape)
        train = profile_memory(_adam_step, model, x, loss_fn, target)
        infer = profile_memory(_inference, model, x)
        model.zero_grad()
        print(f"{name:<18} {format_bytes(estimate.parameters):>9}   {format_bytes(estimate.training):>10} "
              f"{format_bytes(estimate.inference):>9}   {format_bytes(train.peak_bytes):>24} "
              f"{format_bytes(infer.peak_bytes):>11}   {train.peak_bytes / infer.peak_bytes:10.1f}x")
        if name == "CNN 28x28":
            print("  where the CNN step's retained memory was allocated (tracemalloc, after the step):")
            for site in train.sites[:3]:
                print(f"    {os.path.basename(site.filename)}:{site.lineno}  {format_bytes(site.size)}")


def analyze_tracemalloc_vs_memray():
    """The same training step measured by tracemalloc and by memray (when memray can run here)."""
    name, model, x = _models()[0]
    y = np.random.default_rng(0).integers(0, 10, len(x))
    traced = profile_memory(_adam_step, model, x, CrossEntropyLoss(), y)
    print(f"{name}, one Adam step at batch {len(x)}:")
    print(f"  tracemalloc peak {format_bytes(traced.peak_bytes)}")
    try:
        native = memray_profile(_adam_step, model, x, CrossEntropyLoss(), y)
    except (ImportError, RuntimeError, OSError) as reason:   # no memray, or memray already tracking us
        print(f"  memray comparison skipped: {reason}")
        return
    print(f"  memray      peak {format_bytes(native.peak_bytes)} ({native.total_allocations:,} allocations); "
          f"at the peak, the largest sites:")
    for site in native.sites[:3]:
        print(f"    {os.path.basename(site.filename)}:{site.lineno}  {format_bytes(site.size)}")


analyze_flops_vs_time()
analyze_training_vs_inference_memory()
analyze_tracemalloc_vs_memray()

# %% [markdown]
# ### What the numbers say
#
# Numbers from one run on the project's 2-core machine, single BLAS thread (yours will differ):
#
# - **FLOPs do not predict time; FLOPs per byte do.** Dense layers reached ~65-85 GFLOP/s and the
#   second Conv2D ~50 (both are matrix products: each number loaded is used many times). ReLU and
#   LayerNorm ran at ~3 GFLOP/s: one or a few FLOPs per 4-byte element read and written, so they wait on
#   memory, not on arithmetic. In the CNN, the two MaxPool2D layers did 0.7% of the FLOPs but took ~60% of
#   the time (0.1 GFLOP/s: module 06 copies every window, then takes an argmax and gathers). In the
#   attention block the exact GELU (float64 Chebyshev series for `erf`, module 03) did 1% of the FLOPs and
#   took half the time. Those are the layers worth optimising, and FLOP counts alone would never say so.
# - **Small layers are overhead.** Dense(64->10) at batch 64 ran at ~14 GFLOP/s against ~67 for
#   Dense(64->128): 82 K FLOPs take microseconds, the same order as the fixed cost of a call (module 14).
# - **Backward costs about twice the forward** for the matrix-product layers (two products: one for the
#   input's gradient, one for the weights'), as the formulas predict.
# - **Training against inference memory.** For the MLP the estimate (parameters + gradients + Adam's two
#   copies + every activation, 368 KiB) came within 10% of the measured peak of a training step (405 KiB),
#   about 4x the inference peak. For the CNN the measured training peak (15.5 MiB) was nearly 3x the
#   estimate: the estimate counts only layer outputs, but the backward pass also keeps the im2col columns
#   of each convolution (9 values per input pixel for a 3x3 kernel) and the pooling windows and their
#   argmax indices. For the attention block, inference itself peaked at 5.4 MiB for a 256 KiB activation:
#   exact GELU's float64 temporaries, about 20x its input. A profiler finds these; a formula does not.
# - **tracemalloc and memray agree** within a few percent on the training step (403 KiB against 398 KiB):
#   NumPy reports its buffers to tracemalloc, and memray sees every `malloc`. memray's extra is that it
#   knows what was alive **at the peak**: the gradient buffers (autograd.py) and Adam's `m` and `v`
#   (optimizers.py). memray would also see memory that never goes through Python's allocators or NumPy's
#   (OpenBLAS's work buffers, C libraries): tracemalloc is blind to those.
#
# ## Summary
#
# You can now say what a model costs before running it (parameters, FLOPs, bytes for training and for
# inference) and check it against what it does (tracemalloc and memray peaks, per-layer times and
# achieved GFLOP/s). Module 16 trains a character-level transformer: these tools say where its time and
# memory go.
