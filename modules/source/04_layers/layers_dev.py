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
# # Module 04: Layers
#
# A neural network is a composition of **layers**: objects that hold trainable parameters and map an
# input tensor to an output tensor. This module builds the three pieces every later model is made of:
#
# 1. `Module`, the base class of every layer and model. It finds its parameters by itself (no manual
#    bookkeeping), clears their gradients, switches between training and evaluation behaviour, and
#    prints itself readably.
# 2. `Dense` (alias `Linear`), the fully connected layer `y = x W + b`, initialised like PyTorch's
#    `nn.Linear`, with a fused backward that computes its three gradients with three matrix products.
# 3. `Dropout`, the regulariser that randomly zeroes activations while training and does nothing when
#    evaluating.
#
# It stands on `Tensor` (module 01) for values and on `Variable`/`record_op` (module 02) for gradients.
# Activations (module 03) sit between these layers; module 05 stacks them into networks, and modules 06
# (convolution), 07 (attention), 09 (optimizers) and 11 (training) build on `Module` and `Dense`.
#
# **Polymorphism, once more.** A plain `Tensor` in gives a plain `Tensor` out: inference, no graph. A
# `Variable` in (even one with `requires_grad=False`, such as a batch of training data) gives a
# `Variable` connected to the layer's parameters, so `loss.backward()` fills `weights.grad` and
# `bias.grad`.

# %% nbgrader={"grade": false, "grade_id": "layers-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.layers
#| export
import math

import numpy as np

from tinytorch.core.tensor import Tensor, best_time
from tinytorch.core.autograd import Variable, record_op

# %% nbgrader={"grade": false, "grade_id": "layers-test-imports", "locked": false, "schema_version": 3, "solution": false}
# Only the tests in this file need this; it is not part of the package.
from tinytorch.core.autograd import check_gradients

# %% [markdown]
# ## 1. Module: parameters without bookkeeping
#
# A model is a tree: an MLP holds Dense layers, a transformer holds attention blocks that hold Dense
# layers. An optimizer needs a flat list of every trainable tensor in that tree. Instead of asking every
# layer author to maintain such a list, `Module` **discovers** parameters by walking its attributes:
#
# - a `Variable` with `requires_grad=True` is a parameter;
# - a sub-`Module` is walked recursively;
# - a `list` or `tuple` is walked element by element (a stack of layers, a list of heads).
#
# Attributes are visited in **assignment order** (Python dicts keep insertion order), so
# `parameters()` is deterministic: `[dense1.weights, dense1.bias, dense2.weights, ...]`. Each parameter
# appears **once**, even when two layers share it (weight tying), because an optimizer that saw a tensor
# twice would update it twice. Parameters get dotted names from the path that reaches them
# (`0.weights`, `encoder.layers.1.bias`): `named_parameters()` is what module 05 saves to disk.
#
# The rest of the interface:
#
# | method | what it does |
# |---|---|
# | `__call__(x)` | calls `forward(x)`, so `layer(x)` reads like a function |
# | `zero_grad()` | sets every parameter's `.grad` to `None` (gradients accumulate otherwise) |
# | `train()` / `eval()` | set `.training` on this module and every sub-module (Dropout reads it) |
# | `__repr__` | the class, its settings (`extra_repr()`), and its children, indented |
#
# A subclass calls `super().__init__()` first, as in PyTorch. (If it forgets, `training` still
# defaults to `True` through the class attribute.)

# %% nbgrader={"grade": false, "grade_id": "module", "locked": false, "schema_version": 3, "solution": true}
#| export
def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else str(name)


def _is_layer(value):
    """A Module, or any object with a forward method (the activations of module 03)."""
    return isinstance(value, Module) or callable(getattr(value, "forward", None))


class Module:
    """Base class of layers and models: parameter discovery, train/eval, zero_grad, repr.

    Subclasses set their parameters and sub-modules as attributes in __init__ and implement forward().
    """

    training = True   # class default, so a subclass that skips super().__init__() still works

    def __init__(self):
        self.training = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def _children(self):
        """(name, value) pairs the walk visits: the attributes, in assignment order.

        Containers such as Sequential (module 05) override this to name their items 0, 1, 2, ...
        """
        return list(vars(self).items())

    def named_parameters(self, prefix=""):
        """[(dotted name, parameter), ...]: every trainable Variable reachable from this module, once."""
        ### BEGIN SOLUTION
        found, seen_params, seen_modules = [], set(), set()

        def walk(name, value):
            if isinstance(value, Variable):
                if value.requires_grad and id(value) not in seen_params:
                    seen_params.add(id(value))
                    found.append((name, value))
            elif isinstance(value, Module):
                if id(value) in seen_modules:     # a shared sub-module (or a cycle): walk it once
                    return
                seen_modules.add(id(value))
                for child_name, child in value._children():
                    walk(_join(name, child_name), child)
            elif isinstance(value, (list, tuple)):
                for index, item in enumerate(value):
                    walk(_join(name, index), item)

        walk(prefix, self)
        return found
        ### END SOLUTION

    def parameters(self):
        """Every trainable Variable reachable from this module, in assignment order, without duplicates."""
        return [param for _, param in self.named_parameters()]

    def modules(self):
        """This module and every sub-module (in lists and tuples too), each once, depth first."""
        found, seen = [], set()

        def walk(value):
            if isinstance(value, Module):
                if id(value) in seen:
                    return
                seen.add(id(value))
                found.append(value)
                for _, child in value._children():
                    walk(child)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    walk(item)

        walk(self)
        return found

    def zero_grad(self):
        """Reset the gradient of every parameter to None."""
        for param in self.parameters():
            param.zero_grad()

    def train(self, mode=True):
        """Set training mode on this module and every sub-module; returns self."""
        ### BEGIN SOLUTION
        for module in self.modules():
            module.training = bool(mode)
        return self
        ### END SOLUTION

    def eval(self):
        """Evaluation mode (Dropout becomes the identity); returns self."""
        return self.train(False)

    def extra_repr(self):
        """The settings shown in repr(), e.g. 'in_features=3, out_features=2, bias=True'."""
        return ""

    def _named_layers(self):
        """(name, layer) children shown by repr: sub-modules and activations, also inside lists."""
        layers = []
        for name, value in self._children():
            if _is_layer(value):
                layers.append((name, value))
            elif isinstance(value, (list, tuple)):
                layers += [(_join(name, i), item) for i, item in enumerate(value) if _is_layer(item)]
        return layers

    def __repr__(self):
        layers = self._named_layers()
        name = type(self).__name__
        if not layers:
            return f"{name}({self.extra_repr()})"
        lines = [f"{name}("]
        if self.extra_repr():
            lines.append(f"  {self.extra_repr()}")
        for child_name, child in layers:
            lines.append(f"  ({child_name}): " + repr(child).replace("\n", "\n  "))
        lines.append(")")
        return "\n".join(lines)


# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_module():
    """Module: discovery order, lists, dedup of shared parameters, frozen Variables, train/eval, repr."""

    class Leaf(Module):
        def __init__(self, size):
            super().__init__()
            self.w = Variable(np.ones((size, size), dtype=np.float32), requires_grad=True)
            self.b = Variable(np.zeros(size, dtype=np.float32), requires_grad=True)
            self.frozen = Variable(np.zeros(size, dtype=np.float32), requires_grad=False)

    class Tree(Module):
        def __init__(self):
            super().__init__()
            self.first = Leaf(2)
            self.blocks = [Leaf(3), Leaf(4)]
            self.scale = Variable(np.ones(1, dtype=np.float32), requires_grad=True)
            self.tied = self.first.w          # the same Variable again: listed once
            self.again = self.blocks[0]       # the same module again: walked once

    tree = Tree()
    names = [name for name, _ in tree.named_parameters()]
    assert names == ["first.w", "first.b", "blocks.0.w", "blocks.0.b", "blocks.1.w", "blocks.1.b", "scale"], names
    params = tree.parameters()
    assert params[0] is tree.first.w and params[-1] is tree.scale
    assert len({id(p) for p in params}) == len(params) == 7

    assert tree.training and all(m.training for m in tree.modules())
    assert tree.eval() is tree
    assert not any(m.training for m in tree.modules()), "eval() must reach modules inside lists"
    tree.train()
    assert tree.blocks[1].training

    tree.scale.grad = Tensor(np.ones(1, dtype=np.float32))
    tree.zero_grad()
    assert tree.scale.grad is None

    text = repr(tree)
    assert text.startswith("Tree(") and "(blocks.1): Leaf()" in text, text
    try:
        Module()(Tensor(1.0))
    except NotImplementedError as error:
        assert "Module" in str(error)
    else:
        raise AssertionError("Module.forward must raise NotImplementedError")
    print("Module: ok")


test_unit_module()

# %% [markdown]
# ## 2. Dense: y = x W + b
#
# Every output feature is a weighted sum of all input features plus a bias:
#
# ```
# x: (batch, in)   W: (in, out)   b: (out,)   ->   y = x @ W + b: (batch, out)
# ```
#
# The bias broadcasts over the batch. Any number of leading dimensions works the same way
# (`(batch, seq, in) -> (batch, seq, out)` for a sequence model): NumPy's `@` treats all but the last
# axis as a batch. Cost: `2 * batch * in * out` floating-point operations (a multiply and an add per
# weight per example), and `in * out + out` parameters.
#
# **Initialisation (as PyTorch's `nn.Linear`).** Weights and bias are drawn from
# `uniform(-1/sqrt(in), 1/sqrt(in))`. Why this scale: each output sums `in` terms, so its variance is
# `in * Var(w) * Var(x)`. With `Var(uniform(-a, a)) = a^2 / 3` and `a = 1/sqrt(in)`, the output variance is
# `Var(x) / 3` whatever the width: signals neither explode nor vanish as layers get wider. PyTorch arrives
# at this bound as **Kaiming-uniform with `a = sqrt(5)`**: the gain is `sqrt(2 / (1 + a^2)) = sqrt(1/3)`
# and the bound `gain * sqrt(3 / in) = 1 / sqrt(in)`. The bias uses the same bound, `1/sqrt(fan_in)`.
# A `seed` (an int, or a shared `np.random.Generator`) makes initialisation reproducible.
#
# **Backward, fused.** With `g = dL/dy` of shape (batch, out), the three gradients are matrix products:
#
# ```
# dL/dx = g @ W.T                      (batch, out) @ (out, in)   -> (batch, in)
# dL/dW = x.T @ g                      (in, batch)  @ (batch, out) -> (in, out)   summed over the batch
# dL/db = g.sum(axis=0)                                            -> (out,)      summed over the batch
# ```
#
# Extra leading dimensions are flattened into the batch first. One recorded node with these three
# products is cheaper and clearer than recording a matmul and a broadcast add separately. `dL/dx` is
# skipped when the input does not need a gradient (a batch of data), saving a third of the backward work.
#
# **Adding the bias in place: a lesson in measuring in context.** The first version wrote
# `out = x @ W + b`, which makes two output-sized arrays: the product, then a second one for the sum.
# `out += b` adds into the product instead. Timed alone, a Dense(64, 256) on 2,048 rows takes 0.72 ms
# either way: in a tight loop the allocator hands the same freshly freed, still-cached block back every
# time, so the extra array costs almost nothing. Inside module 16's training step it is another story:
# its 13 Dense layers allocated 9.4 MiB per step for those sums, and removing them took the step from
# 29.7 to 27.8 ms (CPU time) and its minor page faults from about 900 to about 110 per step. Memory a
# step has never touched must be found by the allocator, mapped by the operating system page by page
# (a page fault each) and pulled into the caches, all before the first addition. So measure an
# optimisation where it will run (module 15's profilers), not only in isolation. (When the bias has
# a wider dtype than the product, say float64 against float32, `out + b` still upcasts, as NumPy would.)

# %% nbgrader={"grade": false, "grade_id": "dense", "locked": false, "schema_version": 3, "solution": true}
#| export
def _check_size(value, what, who):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{who} {what} must be a positive int, got {value!r} ({type(value).__name__})")
    if value <= 0:
        raise ValueError(f"{who} {what} must be a positive int, got {value}")
    return int(value)


class Dense(Module):
    """Fully connected layer: y = x @ weights + bias.

    Shapes: input (..., in_features) -> output (..., out_features); weights (in_features, out_features),
    bias (out_features,) or None. Parameters are float32 Variables initialised from
    uniform(-1/sqrt(in_features), 1/sqrt(in_features)), like PyTorch's nn.Linear.
    seed: None, an int, or an np.random.Generator (to draw several layers from one stream).
    """

    def __init__(self, in_features, out_features, bias=True, seed=None):
        super().__init__()
        self.in_features = _check_size(in_features, "in_features", "Dense")
        self.out_features = _check_size(out_features, "out_features", "Dense")
        ### BEGIN SOLUTION
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features)
        weights = rng.uniform(-bound, bound, size=(self.in_features, self.out_features))
        self.weights = Variable(weights.astype(np.float32), requires_grad=True)
        if bias:
            self.bias = Variable(rng.uniform(-bound, bound, size=self.out_features).astype(np.float32),
                                 requires_grad=True)
        else:
            self.bias = None
        ### END SOLUTION

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def forward(self, x):
        """x: Tensor or Variable (..., in_features) -> (..., out_features), same kind as x."""
        if not isinstance(x, Tensor):
            raise TypeError(f"Dense expects a Tensor or Variable, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Dense expected input with last dimension {self.in_features}, got shape {x.shape}")
        ### BEGIN SOLUTION
        weights, bias = self.weights, self.bias
        x_data, w_data = x.data, weights.data     # the arrays of this forward pass, kept for backward
        out = x_data @ w_data
        if bias is not None:
            if np.can_cast(bias.dtype, out.dtype):
                out += bias.data          # in place: no second array the size of the output
            else:
                out = out + bias.data     # e.g. a float64 bias on a float32 product: NumPy upcasts
        if not isinstance(x, Variable):
            return Tensor(out)            # a plain Tensor in: values only, no graph

        def backward(grad):
            g2 = grad.reshape(-1, self.out_features)       # leading dims flattened into the batch
            x2 = x_data.reshape(-1, self.in_features)
            grad_x = grad @ w_data.T if x.requires_grad else None
            grad_w = x2.T @ g2 if weights.requires_grad else None
            if bias is None:
                return grad_x, grad_w
            return grad_x, grad_w, (g2.sum(axis=0) if bias.requires_grad else None)

        inputs = (x, weights) if bias is None else (x, weights, bias)
        return record_op(out, inputs, backward, name="dense")
        ### END SOLUTION


Linear = Dense

# %% nbgrader={"grade": true, "grade_id": "test-dense", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_dense():
    """Dense: shapes, init bounds, values vs NumPy, Tensor/Variable behaviour, gradients, errors."""
    layer = Dense(4, 3, seed=0)
    assert layer.weights.shape == (4, 3) and layer.bias.shape == (3,)
    assert layer.weights.dtype == np.float32 and layer.weights.requires_grad
    assert np.abs(layer.weights.data).max() <= 0.5 and np.abs(layer.bias.data).max() <= 0.5  # 1/sqrt(4)
    assert layer.parameters() == [layer.weights, layer.bias]
    np.testing.assert_array_equal(Dense(4, 3, seed=0).weights.data, layer.weights.data)
    assert Linear is Dense
    assert repr(layer) == "Dense(in_features=4, out_features=3, bias=True)"

    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    y = layer(Tensor(x))
    assert type(y) is Tensor and y.shape == (5, 3)
    np.testing.assert_allclose(y.data, x @ layer.weights.data + layer.bias.data, rtol=1e-6)
    assert layer(Tensor(np.ones((2, 7, 4), dtype=np.float32))).shape == (2, 7, 3)

    out = layer(Variable(x, requires_grad=False))     # data batch: gradients still reach the parameters
    assert isinstance(out, Variable)
    out.sum().backward()
    np.testing.assert_allclose(layer.weights.grad.data, np.tile(x.sum(axis=0)[:, None], (1, 3)), rtol=1e-5)
    np.testing.assert_allclose(layer.bias.grad.data, np.full(3, 5.0))

    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
        p.zero_grad()
    rng = np.random.default_rng(2)
    check_gradients(lambda x, w, b: layer(x), Variable(rng.normal(size=(5, 4)), requires_grad=True),
                    layer.weights, layer.bias)
    check_gradients(lambda x, w, b: layer(x), Variable(rng.normal(size=(2, 3, 4)), requires_grad=True),
                    layer.weights, layer.bias)
    no_bias = Dense(3, 2, bias=False, seed=3)
    assert no_bias.bias is None and len(no_bias.parameters()) == 1
    no_bias.weights.data = no_bias.weights.data.astype(np.float64)
    check_gradients(lambda x, w: no_bias(x), Variable(rng.normal(size=(4, 3)), requires_grad=True),
                    no_bias.weights)

    try:
        layer(Tensor(np.ones((32, 100))))
    except ValueError as error:
        assert "4" in str(error) and "(32, 100)" in str(error), str(error)
    else:
        raise AssertionError("a wrong input width must raise ValueError")
    for bad in [(0, 3), (4, -1)]:
        try:
            Dense(*bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"Dense{bad} must raise ValueError")
    print("Dense: ok")


test_unit_dense()

# %% [markdown]
# ## 3. Dropout: inverted, reproducible
#
# While training, Dropout zeroes each activation independently with probability `p`, so no unit can rely
# on any particular other unit being present: a cheap ensemble of thinned networks. The survivors are
# scaled by `1 / (1 - p)` (**inverted dropout**), so the expected value of every activation is unchanged:
# `E[y] = (1 - p) * x / (1 - p) = x`. Thanks to that scaling, evaluation needs no correction: in eval
# mode Dropout is the identity (it returns its input unchanged).
#
# ```
# mask = uniform(0, 1) >= p          (same shape as x, about (1 - p) of it True)
# y    = x * mask / (1 - p)
# dL/dx = dL/dy * mask / (1 - p)     the same scaled mask
# ```
#
# Each `Dropout` owns its own `np.random.Generator` (seeded with `seed`), so a run is reproducible without
# touching NumPy's global random state. `p` must be in `[0, 1)`: `p = 1` would drop everything and divide
# by zero.

# %% nbgrader={"grade": false, "grade_id": "dropout", "locked": false, "schema_version": 3, "solution": true}
#| export
class Dropout(Module):
    """Inverted dropout: zero each element with probability p while training, scale the rest by 1/(1-p).

    Identity in eval mode. Shapes: any -> the same. seed: None, an int or an np.random.Generator.
    """

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
            raise TypeError(f"Dropout p must be a number in [0, 1), got {p!r} ({type(p).__name__})")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout p must be in [0, 1), got {p}")
        self.p = float(p)
        self._rng = np.random.default_rng(seed)

    def extra_repr(self):
        return f"p={self.p}"

    def forward(self, x):
        """x: Tensor or Variable of any shape -> same kind and shape."""
        if not isinstance(x, Tensor):
            raise TypeError(f"Dropout expects a Tensor or Variable, got {type(x).__name__}")
        ### BEGIN SOLUTION
        if not self.training or self.p == 0.0:
            return x
        data = x.data if np.issubdtype(x.dtype, np.floating) else x.data.astype(np.float32)
        keep = 1.0 - self.p
        # float32 uniforms: half the memory of float64, and plenty of resolution for a threshold.
        scale = (self._rng.random(x.shape, dtype=np.float32) >= self.p).astype(data.dtype) / data.dtype.type(keep)
        out = data * scale

        def backward(grad):
            return (grad * scale,)

        return record_op(out, (x,), backward, name="dropout")
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-dropout", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_dropout():
    """Dropout: drop rate and mean preserved, eval identity, seeds, gradient = scaled mask, p validated."""
    x = Tensor(np.ones((200, 500), dtype=np.float32))
    drop = Dropout(p=0.3, seed=0)
    y = drop(x)
    assert type(y) is Tensor and y.dtype == np.float32
    dropped = np.mean(y.data == 0)
    assert abs(dropped - 0.3) < 0.01, f"dropped fraction {dropped:.4f}, expected about 0.3"
    np.testing.assert_allclose(y.data[y.data != 0], 1 / 0.7, rtol=1e-6)   # survivors scaled by 1/(1-p)
    assert abs(y.data.mean() - 1.0) < 0.02, f"mean {y.data.mean():.4f}: inverted dropout preserves it"

    np.testing.assert_array_equal(Dropout(0.3, seed=5)(x).data, Dropout(0.3, seed=5)(x).data)
    assert not np.array_equal(drop(x).data, y.data), "successive calls draw new masks"

    assert drop.eval()(x) is x, "eval mode is the identity"
    drop.train()

    v = Variable(np.arange(1.0, 13.0).reshape(3, 4), requires_grad=True)
    out = Dropout(0.5, seed=1)(v)
    out.backward(np.ones((3, 4)))
    np.testing.assert_array_equal(v.grad.data, out.data / v.data)   # the scaled mask itself

    for bad in (1.0, -0.1, 1.5):
        try:
            Dropout(bad)
        except ValueError as error:
            assert str(bad) in str(error)
        else:
            raise AssertionError(f"Dropout({bad}) must raise ValueError")
    print("Dropout: ok")


test_unit_dropout()

# %% [markdown]
# ## Systems Analysis
#
# We measure what a Dense layer costs:
#
# 1. **Bytes per parameter**: 4 in float32 (the default), 8 in float64. Training needs more than the
#    weights: every parameter also gets a gradient of the same size after `backward`.
# 2. **Memory of a forward pass** at batch 64 as the width grows: the output `(64, width)`, plus whatever
#    the recorded graph keeps alive for the backward pass.
# 3. **FLOPs versus time**: a Dense forward is `2 * batch * in * out` FLOPs; we time it and compute the
#    achieved GFLOP/s, which shows when the layer is compute-bound and when overhead dominates.

# %% nbgrader={"grade": false, "grade_id": "layers-analysis", "locked": false, "schema_version": 3, "solution": false}
import tracemalloc


def _peak_bytes(fn):
    """Peak memory NumPy allocated while fn() runs, in bytes (via tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def analyze_parameter_memory():
    """Parameter count and bytes of typical Dense layers; bytes per parameter measured from the arrays."""
    print("layer                 parameters   float32 MB   bytes/param   +grads after backward (MB)")
    for n_in, n_out in [(784, 128), (128, 10), (1024, 1024), (4096, 4096)]:
        layer = Dense(n_in, n_out, seed=0)
        count = sum(p.size for p in layer.parameters())
        nbytes = sum(p.data.nbytes for p in layer.parameters())
        print(f"Dense({n_in:4d}, {n_out:4d})   {count:12,d}   {nbytes / 1e6:10.2f}   {nbytes / count:11.1f}"
              f"   {2 * nbytes / 1e6:10.2f}")
    p = Dense(10, 10, seed=0).weights
    p.data = p.data.astype(np.float64)
    print(f"after p.data = p.data.astype(np.float64): {p.data.itemsize} bytes/param")


def analyze_forward_memory(batch=64):
    """Peak memory of one Dense(width, width) forward (Tensor and Variable input) and forward+backward."""
    print(f"batch {batch}: width   output MB   forward peak MB (Tensor / Variable)   forward+backward peak MB")
    rng = np.random.default_rng(0)
    for width in [128, 512, 1024, 2048]:
        layer = Dense(width, width, seed=0)
        x = rng.normal(size=(batch, width)).astype(np.float32)
        output_mb = batch * width * 4 / 1e6

        def train_step():
            layer.zero_grad()
            layer(Variable(x, requires_grad=False)).sum().backward()

        plain = _peak_bytes(lambda: layer(Tensor(x)))
        recorded = _peak_bytes(lambda: layer(Variable(x, requires_grad=False)))
        full = _peak_bytes(train_step)
        print(f"        {width:5d}   {output_mb:9.3f}   {plain / 1e6:15.3f} / {recorded / 1e6:8.3f}"
              f"          {full / 1e6:10.3f}")


def analyze_flops(batch=64):
    """Dense forward FLOPs (2 * batch * in * out) against measured time: achieved GFLOP/s."""
    print(f"batch {batch}: width       MFLOPs   time (ms)   GFLOP/s")
    rng = np.random.default_rng(0)
    for width in [64, 256, 1024, 2048]:
        layer = Dense(width, width, seed=0)
        x = Tensor(rng.normal(size=(batch, width)).astype(np.float32))
        flops = 2 * batch * width * width
        seconds = best_time(lambda: layer(x), repeats=5)
        print(f"        {width:5d}   {flops / 1e6:10.1f}   {seconds * 1e3:9.3f}   {flops / seconds / 1e9:7.2f}")


analyze_parameter_memory()
analyze_forward_memory()
analyze_flops()

# %% [markdown]
# ### What the numbers say
#
# - A float32 parameter costs 4 bytes, and after `backward` its gradient costs 4 more; module 09's Adam
#   adds two moment buffers (8 more). A `Dense(4096, 4096)` is 16.8 M parameters: 67 MB of weights, about
#   270 MB once training with Adam.
# - The forward pass with a plain `Tensor` allocates little beyond the `(batch, width)` output. With a
#   `Variable` it allocates the same, because the fused node keeps references to arrays that already
#   exist (x and the weights), not copies. Forward+backward peaks at about two weight-sized arrays (the
#   fresh `dL/dW` and the copy `.grad` keeps): at large width the gradient, not the activations,
#   dominates, because a batch of 64 is small next to the width.
# - Time grows with `batch * in * out`. The smallest layer reaches only a fraction of the GFLOP/s of the
#   mid-sized ones: Python and call overhead dominate a 0.5 MFLOP product. When the weight matrix
#   outgrows the CPU caches (16 MB at width 2048) the rate can drop again, as memory bandwidth takes
#   over (and on a shared machine, other work competes): measure, don't assume.
#
# ## Summary
#
# You built `Module` (parameter discovery, train/eval, zero_grad, repr), `Dense` with PyTorch's
# initialisation and a fused three-matmul backward, and inverted `Dropout`. Module 05 stacks them into
# `Sequential` networks and MLPs, and saves and loads their parameters.
