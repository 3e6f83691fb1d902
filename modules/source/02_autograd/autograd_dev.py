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
# # Module 02: Autograd
#
# Training a network means nudging every parameter in the direction that lowers the loss, and that
# direction is the **gradient**: the derivative of one number (the loss) with respect to every
# parameter. A network has millions of parameters; deriving each gradient by hand is hopeless.
# **Automatic differentiation** does it mechanically: record every operation of the forward pass, then
# walk the record backwards applying the chain rule once per operation.
#
# ```
# forward:   x ──┐
#                ├─ mul ─→ h ─→ sum ─→ loss         each arrow is a recorded operation
#            w ──┘
# backward:  dloss/dloss = 1 → dloss/dh = ones(h.shape) → dloss/dw = x · ones, dloss/dx = w · ones
# ```
#
# You build this on module 01's `Tensor`:
#
# 1. `no_grad` / `is_grad_enabled`: a switch that turns recording off (evaluation, optimizer updates).
# 2. `unbroadcast`: the gradient of a broadcast operand is summed back to the operand's own shape.
# 3. `record_op`: the one door into the graph; every differentiable operation goes through it.
# 4. `Variable`, a `Tensor` subclass: each operation computes its value with `Tensor` and records how to
#    send the gradient back; `backward()` walks the graph in reverse topological order.
# 5. `numerical_gradient` and `check_gradients`: finite differences that verify every backward pass,
#    here and in every later module.
#
# Two rules run through everything:
#
# - **A gradient has the shape of the thing it is the gradient of.** `w.grad.shape == w.shape`, always.
# - **Gradients add up.** A variable used twice receives the sum of both contributions; calling
#   `backward()` twice adds to `.grad` (as PyTorch), which is why optimizers call `zero_grad()`.

# %% nbgrader={"grade": false, "grade_id": "autograd-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.autograd
#| export
import functools

import numpy as np

from tinytorch.core.tensor import Tensor, best_time

# %% [markdown]
# ## 1. Turning recording off: `no_grad`
#
# Recording costs memory (every intermediate array stays alive until backward) and time. When we only
# want values (evaluating a model, updating parameters in an optimizer) we switch it off:
#
# ```python
# with no_grad():
#     predictions = model(x_test)      # Variables with requires_grad=False and no history
# ```
#
# The switch is one module-level flag. `no_grad` saves the old value on entry and restores it on exit,
# so nested blocks and exceptions behave. It also works as a decorator, `@no_grad()`.

# %% nbgrader={"grade": false, "grade_id": "grad-mode", "locked": false, "schema_version": 3, "solution": true}
#| export
_GRAD_ENABLED = True    # is the graph being recorded right now?


def is_grad_enabled():
    """True when operations on Variables are recorded (the default), False inside `no_grad()`."""
    return _GRAD_ENABLED


class no_grad:
    """Context manager (and decorator) that turns recording off: `with no_grad(): ...`."""

    def __enter__(self):
        ### BEGIN SOLUTION
        global _GRAD_ENABLED
        self._previous = _GRAD_ENABLED
        _GRAD_ENABLED = False
        return self
        ### END SOLUTION

    def __exit__(self, exc_type, exc_value, traceback):
        ### BEGIN SOLUTION
        global _GRAD_ENABLED
        _GRAD_ENABLED = self._previous
        return False            # never swallow an exception
        ### END SOLUTION

    def __call__(self, function):
        """Use as a decorator: `@no_grad()` runs every call of `function` without recording."""
        @functools.wraps(function)
        def without_recording(*args, **kwargs):
            with no_grad():
                return function(*args, **kwargs)
        return without_recording

# %% nbgrader={"grade": true, "grade_id": "test-grad-mode", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_unit_no_grad():
    """no_grad switches recording off, restores it on exit (also after an exception and when nested)."""
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        with no_grad():
            assert not is_grad_enabled()
        assert not is_grad_enabled()
    assert is_grad_enabled()
    try:
        with no_grad():
            raise KeyError("boom")
    except KeyError:
        pass
    assert is_grad_enabled(), "an exception inside no_grad must not leave recording off"

    @no_grad()
    def evaluate():
        return is_grad_enabled()
    assert evaluate() is False and is_grad_enabled()
    print("✅ no_grad and is_grad_enabled work")

test_unit_no_grad()

# %% [markdown]
# ## 2. Undoing broadcasting: `unbroadcast`
#
# In `y = x + b` with x: (32, 10) and b: (10,), NumPy silently reuses `b` for each of the 32 rows. Each
# use contributes to the gradient, so the gradient of `b` is the upstream gradient **summed over the
# rows**: (32, 10) → (10,). In general, broadcasting did two things that we undo by summing:
#
# 1. It **prepended** axes: (10,) became (1, 10). Sum the gradient over those leading axes.
# 2. It **stretched** axes of length 1: (1, 10) became (32, 10). Sum over them, keeping the axis.
#
# ```
# grad (4, 2, 3) → shape (2, 1):  sum over axis 0 → (2, 3);  sum over axis 1, keepdims → (2, 1)
# ```
#
# Cost: one pass over the gradient, proportional to its size. Every binary operation's backward uses it,
# so the engine applies it to every gradient (operations never need to think about broadcasting).

# %% nbgrader={"grade": false, "grade_id": "unbroadcast", "locked": false, "schema_version": 3, "solution": true}
#| export
def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, undoing NumPy broadcasting.

    grad: ndarray whose shape is `shape` broadcast to something larger (or `shape` itself).
    Returns an ndarray of exactly `shape`. Raises ValueError if `shape` does not broadcast to grad's.
    """
    ### BEGIN SOLUTION
    grad = np.asarray(grad)
    shape, grad_shape = tuple(shape), grad.shape
    if grad_shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"unbroadcast: a gradient of shape {grad_shape} cannot be summed to the larger "
                         f"shape {shape}")
    if extra:                                    # 1. axes that broadcasting prepended
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:                                # 2. axes of length 1 that broadcasting stretched
        grad = grad.sum(axis=stretched, keepdims=True)
    if grad.shape != shape:
        raise ValueError(f"unbroadcast: shape {shape} does not broadcast to the gradient's shape "
                         f"{grad_shape}, so the gradient cannot be summed back to it")
    return grad
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-unbroadcast", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_unit_unbroadcast():
    """Leading axes and stretched length-1 axes are summed away; matching shapes pass through."""
    g = np.ones((4, 2, 3))
    assert unbroadcast(g, (4, 2, 3)) is g
    assert np.array_equal(unbroadcast(g, (3,)), np.full(3, 8.0))
    assert np.array_equal(unbroadcast(g, (2, 1)), np.full((2, 1), 12.0))
    assert np.array_equal(unbroadcast(g, (4, 1, 3)), np.full((4, 1, 3), 2.0))
    assert np.array_equal(unbroadcast(g, ()), np.array(24.0))
    for bad in [(5,), (2, 2, 4, 2, 3)]:
        try:
            unbroadcast(g, bad)
        except ValueError as err:
            assert str(bad) in str(err), str(err)
        else:
            raise AssertionError(f"unbroadcast to {bad} must raise ValueError")
    print("✅ unbroadcast sums gradients back to the operand's shape")

test_unit_unbroadcast()

# %% [markdown]
# ## 3. Recording an operation: `record_op`
#
# Every differentiable operation, here and in every later module, has the same three parts:
#
# 1. compute the output **value** with NumPy,
# 2. write a **backward function**: given the gradient of the loss with respect to the output (an array
#    shaped like the output), return the gradient with respect to each input,
# 3. hand both to `record_op(data, inputs, backward_fn, name)`.
#
# ```python
# def relu(x):                                  # x: Tensor or Variable
#     out = np.maximum(x.data, 0)
#     def backward(grad):                       # grad: shaped like out
#         return (grad * (x.data > 0),)         # one entry per input
#     return record_op(out, (x,), backward, name="relu")
# ```
#
# `record_op` decides what comes out:
#
# | inputs | recording on, some input requires grad | otherwise |
# |---|---|---|
# | no `Variable` among them | plain `Tensor` | plain `Tensor` |
# | at least one `Variable` | `Variable` that remembers `inputs` and `backward_fn` | `Variable` with `requires_grad=False`, no history |
#
# So a function written once works on plain Tensors (fast values, no graph) and on Variables (a graph
# for training). Inputs that are not Variables are **constants**: they get no gradient. `record_op` uses
# the class `Variable` defined below; Python looks the name up when the function runs.

# %% nbgrader={"grade": false, "grade_id": "record-op", "locked": false, "schema_version": 3, "solution": true}
#| export
def _requires_grad(x):
    """Does `x` want a gradient? Only Variables with requires_grad=True do; everything else is constant."""
    return isinstance(x, Variable) and x.requires_grad


def record_op(data, inputs, backward_fn, name=""):
    """Wrap the result of an operation, recording it in the graph when needed.

    data: the output value (ndarray). inputs: the operands (Tensors, Variables or constants).
    backward_fn(grad) -> tuple with one gradient (ndarray or None) per input; grad is shaped like data.
    Returns a Tensor if no input is a Variable, else a Variable (with history when recording).
    """
    ### BEGIN SOLUTION
    inputs = tuple(inputs)
    if not any(isinstance(x, Variable) for x in inputs):
        return Tensor(data)                       # a Tensor in gives plain values out
    out = Variable(data, requires_grad=False)
    if _GRAD_ENABLED and any(_requires_grad(x) for x in inputs):
        out.requires_grad = True
        out._inputs = inputs
        out._backward_fn = backward_fn
        out._op = name
    return out
    ### END SOLUTION

# %% [markdown]
# ## 4. Walking the graph: topological order
#
# `backward()` must process an operation only after **every** operation that used its output has sent
# its gradient back; otherwise a variable used twice would propagate half its gradient. Ordering the
# nodes so that every node comes after its inputs is a **topological sort**; we walk it in reverse.
#
# A recursive depth-first search is the textbook version, but Python stops recursing at about 1000
# frames and an RNN unrolled over a long sequence is deeper than that. So we keep our own stack: each
# node is pushed twice, once to expand its inputs and once (marked "done") to emit it after them.
#
# Only Variables that require a gradient are visited: constants and `no_grad` results have nothing to
# receive. Cost: each node and edge is visited once, O(nodes + edges).

# %% nbgrader={"grade": false, "grade_id": "topological-order", "locked": false, "schema_version": 3, "solution": true}
#| export
def _topological_order(root):
    """The Variables that `root` depends on (and root), each after all of its inputs. Iterative DFS."""
    ### BEGIN SOLUTION
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)                  # all its inputs are already in `order`
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))              # come back to emit it after its inputs
        for parent in node._inputs:
            if _requires_grad(parent) and id(parent) not in visited:
                stack.append((parent, False))
    return order
    ### END SOLUTION

# %% [markdown]
# ## 5. `Variable`: a Tensor that remembers
#
# `Variable(data, requires_grad=True)` is a `Tensor` with four more attributes:
#
# | attribute | meaning |
# |---|---|
# | `requires_grad` | should gradients flow to (and through) this variable? |
# | `grad` | `None` until `backward()`, then a `Tensor` shaped like the variable (leaves only) |
# | `_inputs`, `_backward_fn` | the operation that produced it; empty for a **leaf** (made by the user) |
#
# Every `Tensor` operation is overridden with the same pattern: ask `Tensor` (via `super()`) for the
# value, so module 01's dtype rules, broadcasting and error messages apply unchanged, then record the
# derivative. The derivatives, with `g` the gradient arriving from the output:
#
# | operation | gradient to `a` | gradient to `b` |
# |---|---|---|
# | `a + b` | `g` | `g` |
# | `a - b` | `g` | `-g` |
# | `a * b` | `g * b` | `g * a` |
# | `a / b` | `g / b` | `-g * a / b**2` |
# | `a ** b` | `g * b * a**(b-1)` | `g * a**b * log(a)` |
# | `a @ b`, (n,k)@(k,m) | `g @ b.T`, (n,m)@(m,k) = (n,k) | `a.T @ g`, (k,n)@(n,m) = (k,m) |
# | `-a`, `a.exp()`, `a.log()` | `-g`, `g * exp(a)`, `g / a` | |
# | `a.sum(axis)`, `a.mean(axis)` | `g` broadcast back over the reduced axes (divided by their size for mean) | |
# | `a.max(axis)` | `g` to the maximal entries, split evenly among ties | |
# | `a.reshape(s)`, `a.transpose(p)` | `g` reshaped back, transposed by the inverse permutation | |
# | `a[index]` | zeros of `a.shape` with `g` added at `index` (`np.add.at`: repeated indices add up) | |
#
# Broadcasting never appears in this table: the engine `unbroadcast`s every gradient to its input's
# shape and casts it to the input's dtype.
#
# `backward(grad=None)` seeds the output's gradient (1.0 for a one-element output; otherwise you must pass
# one of the output's shape), then walks the topological order from the output back: each node hands its
# gradient to its `backward_fn` and adds the results into a dictionary keyed by `id(input)`. Leaves
# store what reaches them in `.grad`, adding to what is already there.
#
# The graph is kept after `backward()`, so calling it again adds the same gradients a second time.
# Matmul computes only the gradients that some input needs: it is the expensive operation.

# %% nbgrader={"grade": false, "grade_id": "derivative-helpers", "locked": false, "schema_version": 3, "solution": true}
#| export
def _data(x):
    """The NumPy value of an operand: a Tensor's array; numbers and arrays unchanged; lists converted."""
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, (list, tuple)):
        return Tensor(x).data
    return x


def _plain_index(index):
    """An index with every Tensor replaced by its array (what NumPy and np.add.at understand)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(_plain_index(part) for part in index)
    return index


def _reduced_axes(axis, ndim):
    """The axes a reduction collapses, as non-negative ints (axis None means all of them)."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(int(ax) % ndim for ax in axes)


def _expand_to(values, shape, axes):
    """Undo a reduction's shape: put back the reduced `axes` with length 1, then broadcast to `shape`."""
    kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
    return np.broadcast_to(np.reshape(values, kept), shape)


def _matmul_backward(grad, a, b, need_a=True, need_b=True):
    """Gradients of out = a @ b (NumPy matmul: batched, broadcast batch dims, 1-D operands).

    grad is shaped like out. Returns (grad_a, grad_b) shaped like a and b (None where not needed).
    """
    ### BEGIN SOLUTION
    # Treat 1-D operands as matrices, as matmul does: a (k,) is a row (1, k), b (k,) a column (k, 1).
    # The output lost those axes, so put them back into grad: the column's last, then the row's.
    a2 = a[np.newaxis, :] if a.ndim == 1 else a
    b2 = b[:, np.newaxis] if b.ndim == 1 else b
    g2 = np.expand_dims(grad, -1) if b.ndim == 1 else grad
    g2 = np.expand_dims(g2, -2) if a.ndim == 1 else g2
    grad_a = grad_b = None
    if need_a:   # (..., n, m) @ (..., m, k) -> (..., n, k), then sum broadcast batch dims away
        grad_a = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
    if need_b:   # (..., k, n) @ (..., n, m) -> (..., k, m)
        grad_b = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
    return grad_a, grad_b
    ### END SOLUTION


def _pow_grad_base(grad, base, exponent):
    """d(base ** exponent)/d(base) = exponent * base ** (exponent - 1), times grad (0 where exponent is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        local = exponent * np.power(base, exponent - 1.0)
    return grad * np.where(np.equal(exponent, 0), 0.0, local)


def _pow_grad_exponent(grad, base, out):
    """d(base ** exponent)/d(exponent) = base ** exponent * log(base), times grad.

    log(base) is real only for base > 0; at base == 0 the product tends to 0 (we use 0, as PyTorch);
    below 0 the derivative is undefined (nan).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        local = out * np.log(base)
    return grad * np.where(np.equal(base, 0), 0.0, local)

# %% nbgrader={"grade": false, "grade_id": "variable-class", "locked": false, "schema_version": 3, "solution": true}
#| export
class Variable(Tensor):
    """A Tensor that records the operations applied to it, so `backward()` can compute gradients.

    Variable(data, requires_grad=True, dtype=None). data and dtype follow Tensor's rules, except that a
    variable requiring a gradient needs a floating dtype: integer or boolean data then becomes float32
    (a gradient of 0.5 cannot live in an int). `.grad` is None until `backward()`.
    """

    def __init__(self, data, requires_grad=True, dtype=None):
        ### BEGIN SOLUTION
        super().__init__(data, dtype=dtype)
        if requires_grad and self.dtype.kind != "f":
            if dtype is not None:  # an explicit integer dtype and a gradient contradict each other
                raise TypeError(
                    f"a Variable of dtype {self.dtype} cannot require gradients (gradients are fractions); "
                    f"use a floating dtype such as np.float32, or requires_grad=False for labels or indices"
                )
            self.data = self.data.astype(np.float32)
        self.requires_grad = bool(requires_grad)
        self.grad = None              # a Tensor after backward(), on leaves only
        self._inputs = ()             # the operands of the operation that produced this Variable
        self._backward_fn = None      # that operation's backward function; None for a leaf
        self._op = ""                 # its name, for repr and error messages
        ### END SOLUTION

    @property
    def is_leaf(self):
        """True for Variables made by the user (or under no_grad): they have no recorded history."""
        return self._backward_fn is None

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="Variable(")
        history = f", op={self._op!r}" if self._op else ""
        return f"Variable({body}, dtype={self.dtype}, requires_grad={self.requires_grad}{history})"

    # ---- the backward pass --------------------------------------------------------------------

    def backward(self, grad=None):
        """Compute the gradient of this Variable with respect to every leaf it depends on.

        grad: the gradient of the final objective with respect to self, shaped like self (Tensor, array
        or number); may be omitted when self has exactly one element (it is then 1.0).
        Leaves with requires_grad=True get (or add to) `.grad`.
        """
        ### BEGIN SOLUTION
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a Variable that does not require grad: it was made with "
                "requires_grad=False, under no_grad(), or from inputs that need no gradient"
            )
        grads = {id(self): self._seed_gradient(grad)}
        for node in reversed(_topological_order(self)):
            node_grad = grads.pop(id(node), None)
            if node_grad is None:                  # no path from self reached this node
                continue
            if node.is_leaf:
                node._accumulate(node_grad)
                continue
            input_grads = node._call_backward_fn(node_grad)
            for inp, inp_grad in zip(node._inputs, input_grads):
                if inp_grad is None or not _requires_grad(inp):
                    continue                       # constants receive nothing
                try:
                    inp_grad = unbroadcast(inp_grad, inp.shape).astype(inp.dtype, copy=False)
                except ValueError as err:
                    raise ValueError(f"backward of '{node._op}' returned a gradient that does not fit "
                                     f"its input of shape {inp.shape}: {err}") from None
                previous = grads.get(id(inp))
                grads[id(inp)] = inp_grad if previous is None else previous + inp_grad
        ### END SOLUTION

    def _seed_gradient(self, grad):
        """The starting gradient: 1.0 for one element, else the given grad (checked, copied, cast)."""
        if grad is None:
            if self.size != 1:
                raise ValueError(
                    f"backward() needs a gradient for a Variable of shape {self.shape}: pass "
                    f"grad= of shape {self.shape} (e.g. np.ones({self.shape})), or reduce to one "
                    f"number first (y.sum().backward())"
                )
            return np.ones(self.shape, dtype=self.dtype)
        grad = np.array(_data(grad), dtype=self.dtype)        # a copy: the user's array stays untouched
        if grad.shape != self.shape:
            if grad.size == 1 and self.size == 1:
                return grad.reshape(self.shape)
            raise ValueError(f"backward(grad): grad has shape {grad.shape} but the Variable has shape "
                             f"{self.shape}; they must be the same")
        return grad

    def _call_backward_fn(self, grad):
        """Run this node's backward function and check it returned one gradient per input."""
        input_grads = self._backward_fn(grad)
        if not isinstance(input_grads, (tuple, list)):
            raise TypeError(f"the backward function of '{self._op}' must return a tuple with one gradient "
                            f"per input, got {type(input_grads).__name__}; write `return (grad_x,)`")
        if len(input_grads) != len(self._inputs):
            raise ValueError(f"the backward function of '{self._op}' returned {len(input_grads)} "
                             f"gradients for {len(self._inputs)} inputs")
        return input_grads

    def _accumulate(self, grad):
        """Add `grad` into self.grad (a Tensor), creating it on the first backward."""
        if self.grad is None:
            self.grad = Tensor(np.array(grad, dtype=self.dtype))     # a copy we own
        else:
            self.grad = Tensor((self.grad.data + grad).astype(self.dtype, copy=False))

    def zero_grad(self):
        """Forget the gradient (`.grad = None`), as PyTorch's zero_grad(set_to_none=True)."""
        self.grad = None

    def detach(self):
        """A Variable sharing this data, with requires_grad=False and no history."""
        return Variable(self.data, requires_grad=False)

    # ---- arithmetic: value from Tensor, derivative recorded here ------------------------------

    def __add__(self, other):
        out = super().__add__(other)
        if out is NotImplemented:
            return out
        def backward(grad):
            return grad, grad
        return record_op(out.data, (self, other), backward, "add")

    def __radd__(self, other):
        out = super().__radd__(other)
        if out is NotImplemented:
            return out
        def backward(grad):
            return grad, grad
        return record_op(out.data, (other, self), backward, "add")

    def __sub__(self, other):
        out = super().__sub__(other)
        if out is NotImplemented:
            return out
        def backward(grad):
            return grad, -grad
        return record_op(out.data, (self, other), backward, "sub")

    def __rsub__(self, other):
        out = super().__rsub__(other)
        if out is NotImplemented:
            return out
        def backward(grad):
            return grad, -grad
        return record_op(out.data, (other, self), backward, "sub")

    def __mul__(self, other):
        out = super().__mul__(other)
        if out is NotImplemented:
            return out
        a, b = self.data, _data(other)
        def backward(grad):
            return grad * b, grad * a
        return record_op(out.data, (self, other), backward, "mul")

    def __rmul__(self, other):
        out = super().__rmul__(other)
        if out is NotImplemented:
            return out
        a, b = _data(other), self.data
        def backward(grad):
            return grad * b, grad * a
        return record_op(out.data, (other, self), backward, "mul")

    def __truediv__(self, other):
        out = super().__truediv__(other)
        if out is NotImplemented:
            return out
        a, b = self.data, _data(other)
        def backward(grad):
            return grad / b, -grad * a / (b * b)
        return record_op(out.data, (self, other), backward, "div")

    def __rtruediv__(self, other):
        out = super().__rtruediv__(other)
        if out is NotImplemented:
            return out
        a, b = _data(other), self.data
        def backward(grad):
            return grad / b, -grad * a / (b * b)
        return record_op(out.data, (other, self), backward, "div")

    def __pow__(self, exponent):
        out = super().__pow__(exponent)
        if out is NotImplemented:
            return out
        base, power = self.data, _data(exponent)
        exponent_needs_grad = _requires_grad(exponent)     # log(base) only when someone needs it
        def backward(grad):
            grad_exponent = _pow_grad_exponent(grad, base, out.data) if exponent_needs_grad else None
            return _pow_grad_base(grad, base, power), grad_exponent
        return record_op(out.data, (self, exponent), backward, "pow")

    def __rpow__(self, base):
        out = super().__rpow__(base)
        if out is NotImplemented:
            return out
        base_value, power = _data(base), self.data
        base_needs_grad = _requires_grad(base)
        def backward(grad):
            grad_base = _pow_grad_base(grad, base_value, power) if base_needs_grad else None
            return grad_base, _pow_grad_exponent(grad, base_value, out.data)
        return record_op(out.data, (base, self), backward, "pow")

    def __neg__(self):
        out = super().__neg__()
        def backward(grad):
            return (-grad,)
        return record_op(out.data, (self,), backward, "neg")

    # ---- matrix multiplication ----------------------------------------------------------------

    def __matmul__(self, other):
        out = super().__matmul__(other)
        if out is NotImplemented:
            return out
        a, b = self.data, _data(other)
        need_a, need_b = _requires_grad(self), _requires_grad(other)
        def backward(grad):
            return _matmul_backward(grad, a, b, need_a, need_b)
        return record_op(out.data, (self, other), backward, "matmul")

    def __rmatmul__(self, other):
        out = super().__rmatmul__(other)
        if out is NotImplemented:
            return out
        a, b = _data(other), self.data
        need_a, need_b = _requires_grad(other), _requires_grad(self)
        def backward(grad):
            return _matmul_backward(grad, a, b, need_a, need_b)
        return record_op(out.data, (other, self), backward, "matmul")

    # ---- reductions ---------------------------------------------------------------------------

    def sum(self, axis=None, keepdims=False):
        out = super().sum(axis=axis, keepdims=keepdims)
        shape, axes = self.shape, _reduced_axes(axis, self.ndim)
        def backward(grad):
            return (_expand_to(grad, shape, axes),)          # every summed element gets g
        return record_op(out.data, (self,), backward, "sum")

    def mean(self, axis=None, keepdims=False):
        out = super().mean(axis=axis, keepdims=keepdims)
        shape, axes = self.shape, _reduced_axes(axis, self.ndim)
        count = int(np.prod([shape[ax] for ax in axes]))     # how many elements each mean averaged
        def backward(grad):
            return (_expand_to(grad, shape, axes) / count,)
        return record_op(out.data, (self,), backward, "mean")

    def max(self, axis=None, keepdims=False):
        out = super().max(axis=axis, keepdims=keepdims)
        a, shape, axes = self.data, self.shape, _reduced_axes(axis, self.ndim)
        def backward(grad):
            is_max = a == _expand_to(out.data, shape, axes)             # True at every maximal entry
            ties = np.sum(is_max, axis=axes, keepdims=True)             # how many share each maximum
            return (_expand_to(grad, shape, axes) * is_max / ties,)
        return record_op(out.data, (self,), backward, "max")

    # ---- shape operations ---------------------------------------------------------------------

    def reshape(self, *shape):
        out = super().reshape(*shape)
        original = self.shape
        def backward(grad):
            return (grad.reshape(original),)
        return record_op(out.data, (self,), backward, "reshape")

    def transpose(self, *axes):
        out = super().transpose(*axes)
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        permutation = [int(ax) % self.ndim for ax in axes] if axes else list(reversed(range(self.ndim)))
        inverse = tuple(int(i) for i in np.argsort(permutation))   # undoes the permutation
        def backward(grad):
            return (grad.transpose(inverse),)
        return record_op(out.data, (self,), backward, "transpose")

    def __getitem__(self, index):
        out = super().__getitem__(index)
        index, shape = _plain_index(index), self.shape
        def backward(grad):
            full = np.zeros(shape, dtype=grad.dtype)
            np.add.at(full, index, grad)          # unlike full[index] += grad, repeats accumulate
            return (full,)
        return record_op(out.data, (self,), backward, "getitem")

    # ---- elementwise functions ----------------------------------------------------------------

    def exp(self):
        out = super().exp()
        def backward(grad):
            return (grad * out.data,)             # d exp(a) / da = exp(a): reuse the output
        return record_op(out.data, (self,), backward, "exp")

    def log(self):
        out = super().log()
        a = self.data
        def backward(grad):
            return (grad / a,)
        return record_op(out.data, (self,), backward, "log")

    # Comparisons (< <= > >= == !=) are inherited from Tensor: they return plain bool Tensors, which
    # have no gradient. .T is inherited too: it calls self.transpose(), which records.

# %% [markdown]
# ### Testing Variable
#
# First, gradients we can work out by hand. For `y = (w * x).sum()` with `x = [1, 2, 3]`, `dy/dw = x`.

# %% nbgrader={"grade": true, "grade_id": "test-variable-basics", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_variable_basics():
    """Leaves get .grad; gradients accumulate; no_grad, detach, zero_grad; errors name shapes."""
    x = Tensor([1.0, 2.0, 3.0])                     # a plain Tensor: a constant
    w = Variable([0.5, -1.0, 2.0])
    y = (w * x).sum()
    assert isinstance(y, Variable) and y.requires_grad and not y.is_leaf
    y.backward()
    assert isinstance(w.grad, Tensor) and w.grad.shape == w.shape and w.grad.dtype == np.float32
    assert np.allclose(w.grad.data, [1.0, 2.0, 3.0])

    (w * x).sum().backward()                        # a second backward adds
    assert np.allclose(w.grad.data, [2.0, 4.0, 6.0])
    w.zero_grad()
    assert w.grad is None

    # a variable used twice receives both contributions: d(w*w)/dw = 2w
    (w * w).sum().backward()
    assert np.allclose(w.grad.data, 2 * w.data)

    # broadcasting: b (3,) added to every row of a (2, 3) gets the column sums
    a = Variable(np.ones((2, 3)))
    b = Variable(np.zeros(3))
    ((a + b) * Tensor([[1.0], [2.0]])).sum().backward()
    assert b.grad.shape == (3,) and np.allclose(b.grad.data, [3.0, 3.0, 3.0])

    # matmul by hand: d sum(x @ W) / dW = x.T @ ones
    x2 = np.array([[1.0, 2.0], [3.0, 4.0]])
    W = Variable(np.eye(2))
    (Tensor(x2) @ W).sum().backward()
    assert np.allclose(W.grad.data, x2.T @ np.ones((2, 2)))

    with no_grad():
        z = w * 2
    assert isinstance(z, Variable) and not z.requires_grad and z.is_leaf
    d = w.detach()
    assert d.data is w.data and not d.requires_grad
    assert isinstance(Tensor([1.0]) * Tensor([2.0]), Tensor) and not isinstance(Tensor([1.0]) * 2, Variable)
    assert (w > 0).dtype == np.bool_ and not isinstance(w > 0, Variable)

    try:
        Variable(np.ones((2, 3))).sum(axis=0).backward()
    except ValueError as err:
        assert "(3,)" in str(err), str(err)
    else:
        raise AssertionError("backward() on a (3,) Variable without grad must raise ValueError")
    print("✅ Variable: leaves, accumulation, broadcasting, no_grad, detach")

test_unit_variable_basics()

# %% nbgrader={"grade": true, "grade_id": "test-record-op", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_record_op():
    """A new operation written with record_op: Tensor in -> Tensor out, Variable in -> gradients flow."""
    def relu(x):
        out = np.maximum(x.data, 0)
        def backward(grad):
            return (grad * (x.data > 0),)
        return record_op(out, (x,), backward, name="relu")

    plain = relu(Tensor([-1.0, 2.0]))
    assert type(plain) is Tensor and np.array_equal(plain.data, [0.0, 2.0])

    x = Variable([-1.0, 2.0, 3.0])
    y = relu(x)
    assert isinstance(y, Variable) and y._op == "relu"
    y.sum().backward()
    assert np.array_equal(x.grad.data, [0.0, 1.0, 1.0])

    frozen = Variable([1.0], requires_grad=False)
    assert not relu(frozen).requires_grad and isinstance(relu(frozen), Variable)

    # a deep chain: iterative, no RecursionError
    v = Variable(np.ones(2))
    h = v
    for _ in range(5000):
        h = h * 1.0
    h.sum().backward()
    assert np.array_equal(v.grad.data, [1.0, 1.0])
    print("✅ record_op: Tensor in gives Tensor out; Variables get gradients; deep graphs work")

test_unit_record_op()

# %% [markdown]
# ## 6. Gradient checking
#
# How do we know a backward function is right? Compare it with the definition of the derivative:
#
# $$\frac{\partial f}{\partial x_i} \approx \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2\epsilon}$$
#
# The **central** difference has error O(ε²), against O(ε) for the one-sided version. With ε = 1e-6 in
# float64 it agrees with a correct gradient to about 1e-8. In float32 (7 significant digits) the
# difference of two nearly equal numbers loses almost all its digits, so checks must run in **float64**.
#
# `check_gradients(fn, *inputs)` handles outputs of any shape by projecting them onto a fixed random
# direction `p`: it checks the gradient of `sum(fn(inputs) * p)`, which involves every output element
# with a different weight (a plain `sum` would miss errors that cancel, such as a transposed gradient).
#
# Cost: two evaluations of `fn` per input element, so it is a test tool for small inputs only.

# %% nbgrader={"grade": false, "grade_id": "gradient-checking", "locked": false, "schema_version": 3, "solution": true}
#| export
def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of the scalar function f(ndarray) -> float at x.

    x: array (copied to float64; the caller's array is not modified). Returns a float64 array shaped
    like x: (f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for every element i.
    """
    ### BEGIN SOLUTION
    x = np.array(x, dtype=np.float64)         # our own copy, nudged one element at a time
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        f_plus = f(x)
        x[index] = original - eps
        f_minus = f(x)
        x[index] = original
        grad[index] = (f_plus - f_minus) / (2 * eps)
    return grad
    ### END SOLUTION


def check_gradients(fn, *inputs, eps=1e-6, atol=1e-6, rtol=1e-4):
    """Check the gradients `backward()` computes for fn(*inputs) against finite differences.

    inputs: float64 Variables with requires_grad=True. fn(*inputs) returns a Variable of any shape.
    Raises AssertionError naming the input, the worst element and both values; returns True otherwise.
    The inputs' .grad are left as they were.
    """
    ### BEGIN SOLUTION
    for i, x in enumerate(inputs):
        if not isinstance(x, Variable) or x.dtype != np.float64 or not x.requires_grad:
            raise TypeError(
                f"check_gradients: input {i} must be a float64 Variable with requires_grad=True, got "
                f"{type(x).__name__} of dtype {getattr(x, 'dtype', None)}; use Variable(x, dtype=np.float64) "
                f"(float32 round-off would swamp the finite differences)"
            )

    # Analytic gradients of sum(fn(inputs) * projection), by backward().
    saved = [x.grad for x in inputs]
    try:
        for x in inputs:
            x.grad = None
        out = fn(*inputs)
        if not isinstance(out, Variable) or not out.requires_grad:
            raise TypeError(f"check_gradients: fn must return a Variable connected to the inputs, got "
                            f"{type(out).__name__}")
        projection = np.random.default_rng(0).standard_normal(out.shape)
        out.backward(projection)
        analytic = [np.zeros(x.shape) if x.grad is None else x.grad.data for x in inputs]
    finally:
        for x, grad in zip(inputs, saved):
            x.grad = grad

    # Numerical gradients, one input at a time, and the comparison.
    for i, x in enumerate(inputs):
        original = x.data

        def projected_output(values):
            x.data = values
            with no_grad():
                return float(np.sum(np.asarray(_data(fn(*inputs))) * projection))

        try:
            numeric = numerical_gradient(projected_output, original, eps)
        finally:
            x.data = original
        tolerance = atol + rtol * np.abs(numeric)
        difference = np.abs(analytic[i] - numeric)
        bad = ~(difference <= tolerance)        # also catches nan
        if bad.any():
            excess = np.where(bad, np.nan_to_num(difference - tolerance, nan=np.inf), -np.inf)
            worst = np.unravel_index(np.argmax(excess), x.shape)
            raise AssertionError(
                f"check_gradients: wrong gradient for input {i} (shape {x.shape}) at index {worst}: "
                f"backward() gives {analytic[i][worst]:.8g}, finite differences give {numeric[worst]:.8g} "
                f"(|difference| {difference[worst]:.3g} > atol {atol} + rtol {rtol} * |numeric|; "
                f"{int(bad.sum())} of {bad.size} elements are off)"
            )
    return True
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-gradient-checking", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_gradient_checking():
    """numerical_gradient matches known derivatives; check_gradients passes good ops and catches bad ones."""
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    assert np.allclose(numerical_gradient(lambda v: float(np.sum(v ** 3)), x), 3 * x ** 2, atol=1e-6)
    assert np.array_equal(x, [[1.0, -2.0], [0.5, 3.0]]), "numerical_gradient must not modify x"

    a = Variable(np.random.default_rng(1).standard_normal((2, 3)))
    assert check_gradients(lambda v: (v * v).sum(axis=0), a)
    assert a.grad is None, "check_gradients must leave .grad as it found it"

    def wrong_square(v):              # claims d(v^2)/dv = v instead of 2v
        def backward(grad):
            return (grad * v.data,)
        return record_op(v.data ** 2, (v,), backward, name="wrong_square")
    try:
        check_gradients(wrong_square, a)
    except AssertionError as err:
        assert "input 0" in str(err) and "finite differences" in str(err), str(err)
    else:
        raise AssertionError("check_gradients must catch a wrong backward")
    assert a.grad is None
    print("✅ numerical_gradient and check_gradients work, and catch a wrong gradient")

test_unit_gradient_checking()

# %% nbgrader={"grade": true, "grade_id": "test-all-op-gradients", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_all_op_gradients():
    """Every Variable operation passes check_gradients in float64, including broadcasting and ties."""
    rng = np.random.default_rng(2)

    def var(*shape, low=None):
        values = rng.standard_normal(shape)
        return Variable(np.abs(values) + low if low is not None else values, dtype=np.float64)

    cases = [
        (lambda a, b: a + b, var(2, 3), var(3)),
        (lambda a, b: a - b, var(2, 1), var(1, 3)),
        (lambda a, b: a * b, var(4, 2, 3), var(2, 1)),
        (lambda a, b: a / b, var(2, 3), var(3, low=0.5)),
        (lambda a, b: a ** b, var(2, 3, low=0.5), var(3)),
        (lambda a: a ** 3, var(2, 3)),
        (lambda a: 2.0 ** a, var(3)),
        (lambda a: 1.0 - a, var(3)),
        (lambda a: 1.0 / a, var(3, low=0.5)),
        (lambda a: -a, var(2, 2)),
        (lambda a, b: a @ b, var(2, 3), var(3, 4)),
        (lambda a, b: a @ b, var(5, 1, 2, 3), var(4, 3, 2)),
        (lambda a, b: a @ b, var(3), var(2, 3, 4)),
        (lambda a, b: a @ b, var(2, 3), var(3)),
        (lambda a: a.sum(axis=(0, 2), keepdims=True), var(2, 3, 4)),
        (lambda a: a.mean(axis=-1), var(2, 3, 4)),
        (lambda a: a.max(axis=1), var(2, 5)),
        (lambda a: a.reshape(3, -1), var(2, 3, 2)),
        (lambda a: a.transpose(1, 2, 0), var(2, 3, 4)),
        (lambda a: a.T, var(2, 3)),
        (lambda a: a[np.array([0, 0, 2]), 1:], var(3, 4)),
        (lambda a: a[a > 0], var(3, 4)),
        (lambda a: a.exp(), var(2, 3)),
        (lambda a: a.log(), var(2, 3, low=0.5)),
    ]
    for fn, *inputs in cases:
        check_gradients(fn, *inputs)

    # ties: max of [1, 3, 3] sends half of the gradient to each 3
    t = Variable([1.0, 3.0, 3.0])
    t.max().backward()
    assert np.allclose(t.grad.data, [0.0, 0.5, 0.5])
    print(f"✅ all {len(cases)} operation gradients match finite differences")

test_unit_all_op_gradients()

# %% [markdown]
# ## Systems Analysis
#
# Autograd trades memory for time. To run backward we must keep, for every recorded operation, the
# arrays its backward function needs (`mul` keeps both operands, `exp` its output) until backward has
# used them. That is why training needs several times the memory of inference, and why `no_grad()`
# matters for evaluation. We measure:
#
# 1. **Memory kept alive by the graph**, per recorded operation, against the same computation under
#    `no_grad()` (where each intermediate is freed as soon as the next one is computed).
# 2. **The cost of backward**: forward versus forward + backward time for a small two-layer network.
#    Each matmul in the forward pass needs two matmuls in the backward pass, so forward + backward
#    should cost roughly 2-3x the forward pass alone.
# 3. **Deep graphs**: the iterative walk handles graphs far deeper than Python's recursion limit.

# %% nbgrader={"grade": false, "grade_id": "autograd-analysis", "locked": false, "schema_version": 3, "solution": false}
import sys
import time
import tracemalloc


def analyze_graph_memory(n_ops=50, size=10_000):
    """Bytes the graph keeps alive per recorded op: a chain y = ((x * 1.01) * 1.01)... of n_ops muls."""
    def chain(x):
        for _ in range(n_ops):
            x = x * 1.01
        return x

    x = Variable(np.ones(size, dtype=np.float32))
    array_bytes = x.data.nbytes
    tracemalloc.start()
    try:
        with no_grad():
            start = tracemalloc.get_traced_memory()[0]
            result = chain(x)
            without_graph = tracemalloc.get_traced_memory()[0] - start
            del result
        start = tracemalloc.get_traced_memory()[0]
        result = chain(x)                    # keeps the whole chain alive through result._inputs
        with_graph = tracemalloc.get_traced_memory()[0] - start
        del result
    finally:
        tracemalloc.stop()
    print(f"chain of {n_ops} muls on {size:,} float32 elements ({array_bytes / 1e3:.0f} kB per array)")
    print(f"  no_grad():  {without_graph / 1e3:8.0f} kB alive after forward (only the output)")
    print(f"  recording:  {with_graph / 1e3:8.0f} kB alive, {with_graph / n_ops / 1e3:.1f} kB per op "
          f"= {with_graph / n_ops / array_bytes:.2f} arrays per op")


def analyze_backward_cost(batch=32, width=64):
    """Forward vs forward+backward time for x @ W1 + b1 -> relu -> @ W2 -> mean squared error."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((batch, width)).astype(np.float32))
    target = Tensor(rng.standard_normal((batch, 10)).astype(np.float32))
    W1 = Variable(rng.standard_normal((width, width)).astype(np.float32) * 0.1)
    b1 = Variable(np.zeros(width, dtype=np.float32))
    W2 = Variable(rng.standard_normal((width, 10)).astype(np.float32) * 0.1)

    def forward():
        h = x @ W1 + b1
        h = h * (h > 0)                    # ReLU: the mask is a constant bool Tensor
        return ((h @ W2 - target) ** 2).mean()

    def forward_backward():
        for p in (W1, b1, W2):
            p.zero_grad()
        forward().backward()

    def forward_no_grad():
        with no_grad():
            forward()

    t_plain = best_time(forward_no_grad, repeats=20)
    t_forward = best_time(forward, repeats=20)
    t_both = best_time(forward_backward, repeats=20)
    print(f"2-layer net, batch {batch}, width {width}:")
    print(f"  forward under no_grad: {t_plain * 1e6:8.1f} us")
    print(f"  forward (recording):   {t_forward * 1e6:8.1f} us  ({t_forward / t_plain:.2f}x no_grad)")
    print(f"  forward + backward:    {t_both * 1e6:8.1f} us  ({t_both / t_forward:.2f}x forward)")


def analyze_graph_depth(depth=20_000):
    """Backward through a chain far deeper than Python's recursion limit; time per node."""
    x = Variable(np.ones(4))
    h = x
    for _ in range(depth):
        h = h + 1.0
    start = time.perf_counter()
    h.sum().backward()
    seconds = time.perf_counter() - start
    print(f"backward through {depth:,} nodes (recursion limit {sys.getrecursionlimit():,}): "
          f"{seconds * 1e3:.1f} ms, {seconds / depth * 1e6:.2f} us per node; x.grad = {x.grad.data}")


analyze_graph_memory()
analyze_backward_cost()
analyze_graph_depth()

# %% [markdown]
# ### What the numbers say
#
# - Under `no_grad()` only the final result survives; recording keeps about one array per `mul` alive
#   (each intermediate output, which the next `mul` holds as its operand). A real network keeps every
#   activation of every layer until backward: activation memory, not parameter memory, usually limits
#   the batch size during training.
# - Recording itself is cheap next to the arithmetic (a few percent here). Backward costs one to two
#   forward passes (two matmuls for each forward matmul, fewer when an operand is a constant such as the
#   input batch), so a training step costs roughly 2-3x an inference step.
# - The iterative walk costs a few microseconds per node, whatever the depth.
#
# ## Summary
#
# You built reverse-mode automatic differentiation: `Variable` records each operation through
# `record_op`, `backward()` walks the graph in reverse topological order, `unbroadcast` returns each
# gradient to its input's shape, and `check_gradients` verifies any backward function against finite
# differences. Every later module adds operations with `record_op` and tests them with `check_gradients`.
