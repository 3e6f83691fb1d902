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
# # Module 01: Tensor
#
# Every deep-learning framework is built on one data structure: the **tensor**, an n-dimensional
# array of numbers with a shape and a dtype. Images are tensors of shape (batch, channels, height,
# width), a sentence is a tensor of shape (seq_len, d_model), the weights of a layer are a tensor of
# shape (in_features, out_features). Everything later in TinyTorch (autograd, layers, optimizers, the
# transformer at the end) is arithmetic on tensors.
#
# Here you build `Tensor`, a thin class around a NumPy array. NumPy does the number crunching in
# compiled code; your job is the **interface**: which dtype a tensor gets, which shapes may be combined,
# what a reduction over an axis returns, and what the error says when something does not fit. Those
# decisions are what module 02 (autograd) and every later module rely on.
#
# What you will build, in order:
#
# 1. `_to_array`: the dtype rules (what `Tensor(3.0)` or `Tensor([1, 2])` stores).
# 2. `_check_matmul_shapes`: when `a @ b` is allowed, and an error message that explains why not.
# 3. `_normalize_axis`: what `axis=` means for `sum`, `mean` and `max`.
# 4. `Tensor`: the class that ties them together, with operators, reductions, reshaping and indexing.
#
# Then a **Systems Analysis** measures what tensors cost: bytes per element, views versus copies,
# how matrix multiplication time grows with size, and why we never loop over elements in Python.

# %% nbgrader={"grade": false, "grade_id": "tensor-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.tensor
#| export
import reprlib
import time

import numpy as np

# %% [markdown]
# ## 1. Storage and dtype
#
# A tensor is a block of memory plus a description of how to read it: a **shape** (how many elements
# along each axis) and a **dtype** (how many bytes each element takes and how to interpret them).
# A (1000, 1000) tensor holds a million elements: 4 MB in `float32`, 8 MB in `float64`.
#
# PyTorch's rules, which TinyTorch follows:
#
# | you write | stored as | why |
# |---|---|---|
# | `Tensor(3.0)`, `Tensor([[1.5, 2.0]])` | `float32` | half the memory of float64 and precise enough for training |
# | `Tensor(3)`, `Tensor([1, 2, 3])` | `int64` | labels, indices, counts |
# | `Tensor(True)`, `Tensor([True, False])` | `bool` | masks |
# | `Tensor(np_array)`, `Tensor(np.float64(2.0))` | the array's own dtype | the caller chose it on purpose (gradient checks need float64) |
# | `Tensor(other_tensor)` | the same array, no copy | wrapping must be free |
# | `Tensor(x, dtype=np.float16)` | `float16` | an explicit `dtype=` always wins |
#
# Anything that is not numeric (a string, `None`, a dict, a ragged list) is rejected **at construction**
# with an error that says what was given. Failing early is kinder than a confusing NumPy error three
# operations later.
#
# `_to_array(data, dtype=None)` applies these rules to everything except `Tensor` arguments (the class,
# below, unwraps those first).

# %% nbgrader={"grade": false, "grade_id": "to-array", "locked": false, "schema_version": 3, "solution": true}
#| export
# dtype kinds a Tensor may hold: b = bool, i = signed int, u = unsigned int, f = float.
_NUMERIC_KINDS = "biuf"


def _to_array(data, dtype=None):
    """Convert `data` (a number, nested list, NumPy array or NumPy scalar) to a NumPy array.

    - NumPy arrays and NumPy scalars keep their dtype (no copy for arrays).
    - Python numbers and nested lists: floats -> float32, ints -> int64, bools -> bool.
    - `dtype=` casts the result.

    Raises TypeError for non-numeric data and ValueError for ragged nested lists.
    """
    ### BEGIN SOLUTION
    if isinstance(data, (np.ndarray, np.generic)):
        array = np.asarray(data)        # keeps the dtype; an ndarray is not copied
        from_python = False
    else:
        try:
            array = np.array(data)
        except ValueError as err:       # ragged nested lists such as [[1, 2], [3]]
            raise ValueError(
                f"Tensor() needs a rectangular nested list (every row the same length), "
                f"got {reprlib.repr(data)}; NumPy says: {err}"
            ) from None
        from_python = True

    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"Tensor() needs numeric data (a number, a nested list of numbers, a NumPy array or a "
            f"Tensor), got {type(data).__name__} {reprlib.repr(data)} (NumPy would store it as "
            f"dtype {array.dtype})"
        )

    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"Tensor dtype must be bool, integer or floating, got dtype={dtype}")
        return array.astype(dtype, copy=False)

    if from_python and array.dtype.kind == "f":
        array = array.astype(np.float32)  # Python floats default to float32, as in PyTorch
    elif from_python and array.dtype.kind == "i":
        array = array.astype(np.int64, copy=False)
    return array
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-to-array", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_to_array():
    """The dtype rules: Python floats -> float32, ints -> int64, NumPy keeps its dtype, junk is rejected."""
    assert _to_array(3.0).dtype == np.float32
    assert _to_array([[1.5, 2.0], [3.0, 4.0]]).shape == (2, 2)
    assert _to_array([[1.5, 2.0], [3.0, 4.0]]).dtype == np.float32
    assert _to_array([1, 2, 3]).dtype == np.int64
    assert _to_array([True, False]).dtype == np.bool_
    assert _to_array(np.zeros(3, dtype=np.float64)).dtype == np.float64
    assert _to_array(np.float64(2.0)).dtype == np.float64
    assert _to_array(np.arange(3, dtype=np.int8)).dtype == np.int8
    assert _to_array([1, 2], dtype=np.float64).dtype == np.float64

    source = np.ones(4)
    assert np.shares_memory(_to_array(source), source), "an ndarray must not be copied"

    for bad in ["hello", None, {"a": 1}, [1, "two"]]:
        try:
            _to_array(bad)
        except TypeError as err:
            assert type(bad).__name__ in str(err), f"the error should say what was given: {err}"
        else:
            raise AssertionError(f"_to_array({bad!r}) should raise TypeError")
    try:
        _to_array([[1, 2], [3]])
    except ValueError as err:
        assert "rectangular" in str(err)
    else:
        raise AssertionError("a ragged list should raise ValueError")
    print("✅ _to_array: dtype rules and input validation work")

test_unit_to_array()

# %% [markdown]
# ## 2. Elementwise arithmetic and broadcasting
#
# `a + b`, `a - b`, `a * b`, `a / b` and `a ** b` work **elementwise**: output element `i` depends only
# on input element `i`. When the shapes differ, NumPy **broadcasts**: align the shapes from the right;
# each pair of dimensions must be equal, or one of them must be 1 (or missing), and that one is
# repeated without copying memory.
#
# ```
# x:      (32, 10)     a batch of 32 rows
# bias:       (10,)    one value per column
# x+bias: (32, 10)     bias is reused for every row
#
# (2, 3) + (4,)   -> error: 3 != 4 and neither is 1
# ```
#
# Broadcasting is why `x @ W + b` works for any batch size. It is also the main thing autograd has to
# undo (module 02): the gradient of `bias` must be summed back from (32, 10) to (10,).
#
# Cost: an elementwise op reads both inputs and writes the output once, so its time is proportional to
# the number of output elements. These ops are limited by memory bandwidth, not arithmetic.
#
# ## 3. Matrix multiplication
#
# `a @ b` follows NumPy's `matmul`:
#
# | left | right | result | meaning |
# |---|---|---|---|
# | (n, k) | (k, m) | (n, m) | the classic matrix product |
# | (B, n, k) | (B, k, m) | (B, n, m) | a batch of B products |
# | (B, n, k) | (k, m) | (B, n, m) | the batch dimensions broadcast |
# | (k,) | (k, m) | (m,) | a 1-D left operand is a row vector, then squeezed |
# | (n, k) | (k,) | (n,) | a 1-D right operand is a column vector, then squeezed |
#
# The **inner** dimensions must agree: the last dimension of the left operand and the second-to-last
# of the right one (for a 1-D right operand, its only dimension). Scalars are not allowed (use `*`).
#
# Cost: each of the n·m outputs is a dot product of length k, so n·m·k multiply-adds. Doubling every
# dimension multiplies the work by 8. This is the operation that dominates neural-network time, which
# is why the error message for mismatched shapes deserves care: it is the error learners see most.

# %% nbgrader={"grade": false, "grade_id": "matmul-shapes", "locked": false, "schema_version": 3, "solution": true}
#| export
def _check_matmul_shapes(left, right):
    """Raise ValueError unless arrays of shapes `left` and `right` can be matrix-multiplied.

    `left` and `right` are shape tuples. Rules (NumPy's matmul): both have at least one dimension;
    left[-1] equals right[-2] (right[0] when right is 1-D); the batch dimensions (all but the last
    two) broadcast.
    """
    ### BEGIN SOLUTION
    left, right = tuple(left), tuple(right)
    if len(left) == 0 or len(right) == 0:
        raise ValueError(
            f"matmul: shapes {left} and {right}: both operands need at least one dimension; "
            f"to multiply by a scalar use * instead of @"
        )
    inner_left = left[-1]
    inner_right = right[-2] if len(right) >= 2 else right[0]
    if inner_left != inner_right:
        where = "second-to-last of right" if len(right) >= 2 else "length of 1-D right"
        raise ValueError(
            f"matmul: shapes {left} and {right} are not aligned: "
            f"{inner_left} (last dim of left) != {inner_right} ({where})"
        )
    try:
        np.broadcast_shapes(left[:-2], right[:-2])
    except ValueError:
        raise ValueError(
            f"matmul: shapes {left} and {right}: the batch dimensions {left[:-2]} and {right[:-2]} "
            f"cannot be broadcast together (each pair must be equal or 1)"
        ) from None
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-matmul-shapes", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_check_matmul_shapes():
    """Aligned shapes pass silently; misaligned ones name both shapes and the two inner dimensions."""
    for left, right in [((2, 3), (3, 4)), ((5, 2, 3), (3, 4)), ((5, 2, 3), (1, 3, 4)), ((3,), (3, 4)),
                        ((2, 3), (3,)), ((3,), (3,))]:
        _check_matmul_shapes(left, right)   # must not raise

    try:
        _check_matmul_shapes((2, 3), (4, 5))
    except ValueError as err:
        expected = ("matmul: shapes (2, 3) and (4, 5) are not aligned: "
                    "3 (last dim of left) != 4 (second-to-last of right)")
        assert str(err) == expected, str(err)
    else:
        raise AssertionError("(2, 3) @ (4, 5) must be rejected")

    for left, right in [((), (3,)), ((2, 3, 4), (5, 4, 2)), ((2, 3), (4,))]:
        try:
            _check_matmul_shapes(left, right)
        except ValueError as err:
            assert str(left) in str(err) and str(right) in str(err), str(err)
        else:
            raise AssertionError(f"{left} @ {right} must be rejected")
    print("✅ _check_matmul_shapes: accepts NumPy matmul shapes, explains mismatches")

test_unit_check_matmul_shapes()

# %% [markdown]
# ## 4. Reductions and `axis`
#
# `sum`, `mean` and `max` collapse one or more axes. For a tensor of shape (2, 3, 4):
#
# | call | result shape |
# |---|---|
# | `t.sum()` | `()` — everything, one number |
# | `t.sum(axis=0)` | `(3, 4)` |
# | `t.sum(axis=-1)` | `(2, 3)` — negative axes count from the end |
# | `t.sum(axis=(0, 2))` | `(3,)` |
# | `t.sum(axis=1, keepdims=True)` | `(2, 1, 4)` — the reduced axis stays, with length 1 |
#
# `keepdims=True` is what makes `x - x.mean(axis=1, keepdims=True)` broadcast correctly (normalization,
# softmax). `_normalize_axis` turns every accepted form into a tuple of non-negative axes, and rejects
# axes that are out of range or repeated with a message naming the tensor's shape.

# %% nbgrader={"grade": false, "grade_id": "normalize-axis", "locked": false, "schema_version": 3, "solution": true}
#| export
def _normalize_axis(axis, shape, op_name):
    """Return `axis` as a tuple of non-negative ints (or None, meaning every axis).

    axis: None, an int, or a tuple/list of ints, for a tensor of shape `shape`.
    op_name names the operation in error messages ("sum", "max", ...).
    """
    ### BEGIN SOLUTION
    if axis is None:
        return None
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    ndim = len(shape)
    normalized = []
    for ax in axes:
        if isinstance(ax, bool) or not isinstance(ax, (int, np.integer)):
            raise TypeError(f"{op_name}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= ax < ndim:
            raise ValueError(
                f"{op_name}: axis {ax} is out of range for a tensor of shape {tuple(shape)} "
                f"(valid axes: {-ndim} to {ndim - 1})"
            )
        normalized.append(int(ax) % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op_name}: axis {axis!r} names the same axis twice (shape {tuple(shape)})")
    return tuple(normalized)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-normalize-axis", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_unit_normalize_axis():
    """None stays None; ints and tuples become non-negative tuples; bad axes name the shape."""
    assert _normalize_axis(None, (2, 3), "sum") is None
    assert _normalize_axis(0, (2, 3), "sum") == (0,)
    assert _normalize_axis(-1, (2, 3), "sum") == (1,)
    assert _normalize_axis((0, -1), (2, 3, 4), "sum") == (0, 2)
    assert _normalize_axis([1], (2, 3), "sum") == (1,)
    for bad, error in [(2, ValueError), ((0, -2), ValueError), (1.5, TypeError)]:
        try:
            _normalize_axis(bad, (2, 3), "mean")
        except error as err:
            assert "mean" in str(err) and ("(2, 3)" in str(err) or error is TypeError), str(err)
        else:
            raise AssertionError(f"axis={bad!r} for shape (2, 3) must raise {error.__name__}")
    print("✅ _normalize_axis: int, tuple, negative axes; clear errors")

test_unit_normalize_axis()

# %% [markdown]
# ## 5. The `Tensor` class
#
# Now the pieces come together. A `Tensor` holds one NumPy array in `.data` and never changes it:
# every operation returns a **new** `Tensor`. (Like NumPy, indexing with slices and `reshape` may return
# a *view* that shares memory with the original; that is cheap, and safe because no operation writes.)
#
# Design points worth noticing as you read the class:
#
# - **One helper for all binary operators.** `_binary` unwraps the other operand, puts the operands in
#   the right order (for the reflected forms `2 * t`, `1 - t`, `arr @ t`), calls NumPy and wraps the
#   result. When broadcasting fails it raises an error that names both shapes.
# - **Python numbers stay Python numbers.** NumPy treats a bare `2.0` as "weak", so `float32 * 2.0`
#   stays `float32`. Converting it to an array first would silently change the result's dtype.
# - **`__array_ufunc__ = None`** tells NumPy not to handle `ndarray + Tensor` itself (it would build an
#   array of Python objects); NumPy returns `NotImplemented` and Python calls `Tensor.__radd__`.
# - **`__hash__` is identity.** `==` is elementwise (it returns a Tensor), so Python would otherwise make
#   tensors unhashable; PyTorch makes the same choice, and module 02 needs tensors as dict keys.
# - **Every method computes with NumPy directly** and never calls another Tensor operation. Module 02
#   subclasses `Tensor` and reuses these methods for the forward values; if `mean` called `self.sum()`,
#   the subclass would record the sum twice.

# %% nbgrader={"grade": false, "grade_id": "tensor-class", "locked": false, "schema_version": 3, "solution": true}
#| export
def _operand(value):
    """The NumPy value of the other operand of a binary operator, or NotImplemented.

    Tensors give their array; arrays, NumPy scalars and Python numbers pass through unchanged (Python
    numbers stay "weak" so float32 * 2.0 stays float32); lists go through the dtype rules.
    """
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (np.ndarray, np.generic, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return _to_array(value)
    return NotImplemented        # lets Python raise its usual "unsupported operand" TypeError


def _plain_index(index):
    """An index with every Tensor replaced by its array, so NumPy can use it."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(_plain_index(part) for part in index)
    return index


class Tensor:
    """An n-dimensional array of numbers: a NumPy array in `.data`, plus operations.

    Tensor(data, dtype=None): data is a number, nested list, NumPy array, NumPy scalar or Tensor.
    See `_to_array` for the dtype rules.
    """

    # NumPy: don't handle `ndarray <op> Tensor` yourself; return NotImplemented so Python calls
    # Tensor's reflected method (__radd__, __rmatmul__, ...).
    __array_ufunc__ = None

    def __init__(self, data, dtype=None):
        ### BEGIN SOLUTION
        if isinstance(data, Tensor):
            data = data.data                 # wrap the same array: no copy
        self.data = _to_array(data, dtype)
        ### END SOLUTION

    # ---- what the tensor is -------------------------------------------------------------------

    @property
    def shape(self):
        """The length of every axis, a tuple: (2, 3) for a 2x3 matrix, () for a scalar."""
        return self.data.shape

    @property
    def dtype(self):
        """The NumPy dtype of the elements (float32, int64, bool, ...)."""
        return self.data.dtype

    @property
    def ndim(self):
        """The number of axes: len(shape)."""
        return self.data.ndim

    @property
    def size(self):
        """The number of elements: the product of shape."""
        return self.data.size

    def numpy(self):
        """The underlying NumPy array (not a copy)."""
        return self.data

    def item(self):
        """The single element as a Python number; the tensor must hold exactly one element."""
        ### BEGIN SOLUTION
        if self.data.size != 1:
            raise ValueError(
                f"item() needs a tensor with exactly one element, got shape {self.shape} "
                f"({self.size} elements); reduce it first, e.g. t.sum().item()"
            )
        return self.data.item()
        ### END SOLUTION

    def __len__(self):
        """The length of the first axis, as for a NumPy array."""
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor (shape ()) is undefined; use .item() to get its value")
        return len(self.data)

    def __bool__(self):
        """True or False for a one-element tensor; ambiguous (ValueError) otherwise, as in NumPy."""
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                f"use .numpy().any() or .numpy().all()"
            )
        return bool(self.data)

    def __array__(self, dtype=None, copy=None):
        """Let NumPy read a Tensor: np.asarray(t) is t.data."""
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return np.asarray(self.data, dtype=dtype)

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        return f"Tensor({body}, dtype={self.dtype})"

    # Identity hashing (as PyTorch): `==` is elementwise, yet tensors can be dict keys and set members.
    __hash__ = object.__hash__

    # ---- elementwise arithmetic ---------------------------------------------------------------

    def _binary(self, numpy_op, other, name, reflected=False):
        """Apply numpy_op to (self, other), or (other, self) when reflected; broadcast as NumPy."""
        ### BEGIN SOLUTION
        other = _operand(other)
        if other is NotImplemented:
            return NotImplemented
        left, right = (other, self.data) if reflected else (self.data, other)
        try:
            result = numpy_op(left, right)
        except ValueError:
            try:
                np.broadcast_shapes(np.shape(left), np.shape(right))
            except ValueError:
                raise ValueError(
                    f"{name}: shapes {np.shape(left)} and {np.shape(right)} cannot be broadcast "
                    f"together (align them from the right; each pair of dimensions must be equal or 1)"
                ) from None
            raise                              # a different problem: keep NumPy's message
        return Tensor(result)
        ### END SOLUTION

    def __add__(self, other):
        """self + other, elementwise with broadcasting: (32, 10) + (10,) -> (32, 10)."""
        return self._binary(np.add, other, "add")

    def __radd__(self, other):
        """other + self (2 + t, array + t)."""
        return self._binary(np.add, other, "add", reflected=True)

    def __sub__(self, other):
        """self - other, elementwise."""
        return self._binary(np.subtract, other, "sub")

    def __rsub__(self, other):
        """other - self (1 - t)."""
        return self._binary(np.subtract, other, "sub", reflected=True)

    def __mul__(self, other):
        """self * other, elementwise (not the matrix product: that is @)."""
        return self._binary(np.multiply, other, "mul")

    def __rmul__(self, other):
        """other * self (2 * t)."""
        return self._binary(np.multiply, other, "mul", reflected=True)

    def __truediv__(self, other):
        """self / other, elementwise; integer tensors give floats, as in NumPy."""
        return self._binary(np.true_divide, other, "div")

    def __rtruediv__(self, other):
        """other / self (1 / t)."""
        return self._binary(np.true_divide, other, "div", reflected=True)

    def __pow__(self, exponent):
        """self ** exponent; the exponent may be a number or a tensor (broadcast)."""
        return self._binary(np.power, exponent, "pow")

    def __rpow__(self, base):
        """base ** self (2 ** t)."""
        return self._binary(np.power, base, "pow", reflected=True)

    def __neg__(self):
        """-self."""
        return Tensor(np.negative(self.data))

    # ---- comparisons: bool tensors, never differentiable -------------------------------------

    def __lt__(self, other):
        return self._binary(np.less, other, "lt")

    def __le__(self, other):
        return self._binary(np.less_equal, other, "le")

    def __gt__(self, other):
        return self._binary(np.greater, other, "gt")

    def __ge__(self, other):
        return self._binary(np.greater_equal, other, "ge")

    def __eq__(self, other):
        return self._binary(np.equal, other, "eq")

    def __ne__(self, other):
        return self._binary(np.not_equal, other, "ne")

    # ---- matrix multiplication ----------------------------------------------------------------

    def __matmul__(self, other):
        """self @ other with NumPy matmul semantics: (n, k) @ (k, m) -> (n, m), batched, 1-D allowed."""
        ### BEGIN SOLUTION
        other = _operand(other)
        if other is NotImplemented:
            return NotImplemented
        _check_matmul_shapes(self.shape, np.shape(other))
        return Tensor(np.matmul(self.data, other))
        ### END SOLUTION

    def __rmatmul__(self, other):
        """other @ self (array @ t)."""
        other = _operand(other)
        if other is NotImplemented:
            return NotImplemented
        _check_matmul_shapes(np.shape(other), self.shape)
        return Tensor(np.matmul(other, self.data))

    # ---- reductions ---------------------------------------------------------------------------

    def sum(self, axis=None, keepdims=False):
        """Sum over `axis` (None = all, an int, or a tuple): (2, 3).sum(axis=0) -> (3,)."""
        ### BEGIN SOLUTION
        axis = _normalize_axis(axis, self.shape, "sum")
        return Tensor(np.sum(self.data, axis=axis, keepdims=keepdims))
        ### END SOLUTION

    def mean(self, axis=None, keepdims=False):
        """Arithmetic mean over `axis`; integer tensors give float64, as in NumPy."""
        ### BEGIN SOLUTION
        axis = _normalize_axis(axis, self.shape, "mean")
        return Tensor(np.mean(self.data, axis=axis, keepdims=keepdims))
        ### END SOLUTION

    def max(self, axis=None, keepdims=False):
        """Largest element over `axis`."""
        ### BEGIN SOLUTION
        axis = _normalize_axis(axis, self.shape, "max")
        if self.size == 0:
            raise ValueError(f"max of an empty tensor (shape {self.shape}) is undefined")
        return Tensor(np.max(self.data, axis=axis, keepdims=keepdims))
        ### END SOLUTION

    # ---- shape operations ---------------------------------------------------------------------

    def reshape(self, *shape):
        """Same elements, new shape: t.reshape(3, 2) or t.reshape((3, 2)); one -1 is inferred."""
        ### BEGIN SOLUTION
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        try:
            return Tensor(self.data.reshape(shape))
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {self.shape} ({self.size} elements) "
                f"into shape {shape}; the number of elements must stay the same"
            ) from None
        ### END SOLUTION

    def transpose(self, *axes):
        """Permute the axes: no axes reverses them (as NumPy); t.transpose(0, 2, 1) swaps the last two.

        Shapes: (2, 3, 4).transpose() -> (4, 3, 2); (2, 3, 4).transpose(0, 2, 1) -> (2, 4, 3).
        """
        ### BEGIN SOLUTION
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if not axes:
            return Tensor(self.data.transpose())
        ndim = self.ndim
        in_range = all(isinstance(ax, (int, np.integer)) and -ndim <= ax < ndim for ax in axes)
        if not in_range or sorted(int(ax) % ndim for ax in axes) != list(range(ndim)):
            raise ValueError(
                f"transpose: axes {axes} are not a permutation of the {ndim} axes of a tensor of "
                f"shape {self.shape}; name every axis once, e.g. transpose{tuple(reversed(range(ndim)))}, "
                f"or pass no axes to reverse them"
            )
        return Tensor(self.data.transpose(axes))
        ### END SOLUTION

    @property
    def T(self):
        """The transpose with the axes reversed (as NumPy's .T): (n, m) -> (m, n)."""
        return self.transpose()      # through the method, so subclasses that override it get .T too

    def __getitem__(self, index):
        """NumPy indexing: ints, slices, None, Ellipsis, int or bool arrays (or Tensors)."""
        ### BEGIN SOLUTION
        return Tensor(self.data[_plain_index(index)])
        ### END SOLUTION

    # ---- elementwise functions ----------------------------------------------------------------

    def exp(self):
        """e ** x, elementwise."""
        return Tensor(np.exp(self.data))

    def log(self):
        """Natural logarithm, elementwise (-inf at 0, nan below 0, as NumPy)."""
        return Tensor(np.log(self.data))

# %% [markdown]
# ### Testing the Tensor
#
# Each test below checks one part of the class against NumPy, which is the reference for every value.

# %% nbgrader={"grade": true, "grade_id": "test-tensor-creation", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_tensor_creation():
    """Construction, properties, dtype rules, numpy(), item(), len(), repr(), hashing."""
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert t.dtype == np.float32
    assert Tensor(7).dtype == np.int64 and Tensor(7).shape == ()
    assert Tensor(np.zeros(2, dtype=np.float64)).dtype == np.float64
    assert Tensor([1, 2], dtype=np.float32).dtype == np.float32

    wrapped = Tensor(t)
    assert wrapped.data is t.data, "wrapping a Tensor must not copy"
    assert isinstance(t.numpy(), np.ndarray) and t.numpy() is t.data
    assert Tensor([[2.5]]).item() == 2.5
    assert "Tensor(" in repr(t) and "float32" in repr(t)

    assert len({t, wrapped}) == 2, "tensors hash by identity"
    try:
        Tensor("abc")
    except TypeError as err:
        assert "str" in str(err)
    else:
        raise AssertionError("Tensor('abc') must raise TypeError")
    try:
        t.item()
    except ValueError as err:
        assert "(2, 3)" in str(err)
    else:
        raise AssertionError("item() on 6 elements must raise ValueError")
    print("✅ Tensor creation and properties work")

test_unit_tensor_creation()

# %% nbgrader={"grade": true, "grade_id": "test-tensor-arithmetic", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_tensor_arithmetic():
    """+ - * / ** and their reflected forms, broadcasting, comparisons, dtype preservation."""
    a_np = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    b_np = np.array([10.0, 20.0, 30.0], dtype=np.float32)
    a, b = Tensor(a_np), Tensor(b_np)

    checks = [
        (a + b, a_np + b_np), (a - b, a_np - b_np), (a * b, a_np * b_np), (a / b, a_np / b_np),
        (a ** 2, a_np ** 2), (a ** b / 1e30, a_np ** b_np / 1e30), (-a, -a_np),
        (2 + a, 2 + a_np), (1 - a, 1 - a_np), (3 * a, 3 * a_np), (1 / a, 1 / a_np), (2 ** a, 2 ** a_np),
        (b_np + a, b_np + a_np), (b_np - a, b_np - a_np),   # ndarray on the left defers to Tensor
    ]
    for got, expected in checks:
        assert isinstance(got, Tensor), type(got)
        assert got.shape == expected.shape
        assert np.allclose(got.data, expected)

    assert (a * 2.0).dtype == np.float32, "a Python float must not upcast float32"
    assert (Tensor(np.ones(2)) * 2.0).dtype == np.float64
    assert ((a > 2).data == (a_np > 2)).all() and (a > 2).dtype == np.bool_
    assert ((a == a).data).all() and not ((a != a).data).any()
    assert ((a <= 3).data == (a_np <= 3)).all() and ((a >= 3).data == (a_np >= 3)).all()
    assert ((a < b).data == (a_np < b_np)).all()

    try:
        a + Tensor(np.ones(4))
    except ValueError as err:
        assert "(2, 3)" in str(err) and "(4,)" in str(err), str(err)
    else:
        raise AssertionError("(2, 3) + (4,) must raise ValueError")
    print("✅ Tensor arithmetic, broadcasting and comparisons work")

test_unit_tensor_arithmetic()

# %% nbgrader={"grade": true, "grade_id": "test-tensor-matmul", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_tensor_matmul():
    """@ for 2-D, batched (with broadcast batch dims) and 1-D operands; shape errors."""
    rng = np.random.default_rng(0)
    for left, right in [((2, 3), (3, 4)), ((5, 2, 3), (5, 3, 4)), ((5, 2, 3), (3, 4)),
                        ((1, 2, 3), (4, 3, 2)), ((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,))]:
        x, y = rng.standard_normal(left), rng.standard_normal(right)
        got = Tensor(x) @ Tensor(y)
        assert got.shape == np.matmul(x, y).shape and np.allclose(got.data, x @ y)
        assert np.allclose((x @ Tensor(y)).data, x @ y)      # ndarray @ Tensor
    try:
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    except ValueError as err:
        assert "(2, 3) and (4, 5) are not aligned" in str(err), str(err)
    else:
        raise AssertionError("(2, 3) @ (4, 5) must raise ValueError")
    print("✅ Tensor matmul works")

test_unit_tensor_matmul()

# %% nbgrader={"grade": true, "grade_id": "test-tensor-reductions", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_tensor_reductions():
    """sum/mean/max with axis None, int, negative, tuple, and keepdims."""
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    t = Tensor(x)
    for axis in [None, 0, 1, -1, (0, 2), (0, 1, 2)]:
        for keepdims in [False, True]:
            for name in ["sum", "mean", "max"]:
                got = getattr(t, name)(axis=axis, keepdims=keepdims)
                expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)
                assert got.shape == expected.shape, (name, axis, keepdims)
                assert np.allclose(got.data, expected)
    try:
        t.sum(axis=3)
    except ValueError as err:
        assert "(2, 3, 4)" in str(err)
    else:
        raise AssertionError("axis=3 on a 3-D tensor must raise ValueError")
    print("✅ Tensor reductions work")

test_unit_tensor_reductions()

# %% nbgrader={"grade": true, "grade_id": "test-tensor-shapes", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_tensor_shapes_and_indexing():
    """reshape, transpose, .T, indexing, exp, log."""
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = Tensor(x)
    assert t.reshape(6, 4).shape == (6, 4) and t.reshape((4, -1)).shape == (4, 6)
    assert t.transpose().shape == (4, 3, 2) and t.T.shape == (4, 3, 2)
    assert np.array_equal(t.transpose(0, 2, 1).data, x.transpose(0, 2, 1))
    assert np.array_equal(t[1].data, x[1])
    assert np.array_equal(t[:, 1:, ::2].data, x[:, 1:, ::2])
    assert np.array_equal(t[Tensor([1, 1, 0])].data, x[[1, 1, 0]])
    assert np.array_equal(t[t > 20].data, x[x > 20])
    assert np.allclose(Tensor([0.0, 1.0]).exp().data, np.exp([0.0, 1.0]))
    assert np.allclose(Tensor([1.0, np.e]).log().data, [0.0, 1.0])
    for call in [lambda: t.reshape(5, 5), lambda: t.transpose(0, 1)]:
        try:
            call()
        except ValueError as err:
            assert "(2, 3, 4)" in str(err), str(err)
        else:
            raise AssertionError("a bad reshape/transpose must raise ValueError")
    print("✅ Tensor reshape, transpose, indexing, exp, log work")

test_unit_tensor_shapes_and_indexing()

# %% [markdown]
# ## Systems Analysis
#
# A tensor library is a memory-management and bandwidth problem as much as a math problem. We measure:
#
# 1. **Bytes per element.** Memory is `size × itemsize`; the dtype decides the constant. Halving the
#    dtype halves memory and memory traffic — the idea behind the int8 quantization of module 12.
# 2. **Views versus copies.** `reshape` and `transpose` return views (new shape, same memory) in
#    constant time; a copy costs time proportional to the size.
# 3. **Matmul scaling.** n·n·n multiply-adds: doubling n should multiply the time by about 8 once the
#    matrices are large enough to keep the CPU busy.
# 4. **Vectorization.** The same arithmetic in a Python loop versus one NumPy call.

# %% [markdown]
# ### Measuring time
#
# One timing of a fast operation is mostly noise. On a shared machine another process can take the CPU
# in the middle of a run, and the first call of an operation pays one-time costs (NumPy allocating
# buffers, caches filling, libraries loading), so a single number can be off by a factor of several.
# Two habits make timings worth comparing:
#
# - **Best of N**, `best_time(fn, repeats=5)`: run `fn()` several times and keep the fastest. Noise only
#   ever adds time, so the minimum is the run least disturbed by other work: the number to use when
#   comparing two ways of computing the same thing.
# - **Median of N**, `median_time(fn, repeats=5, warmup=0)`: when each run does real work that varies (a
#   training step that allocates), the median is the typical cost, not moved by one slow or one lucky
#   run. `warmup` calls before the measured ones pay the first-call costs without being counted.
#
# Both are part of the package: every later module's Systems Analysis times its code with them.

# %% nbgrader={"grade": false, "grade_id": "tensor-timing", "locked": false, "schema_version": 3, "solution": false}
#| export
def best_time(fn, repeats=5):
    """The fastest of `repeats` runs of fn(), in seconds (the run least disturbed by other work)."""
    if repeats < 1:
        raise ValueError(f"best_time needs repeats >= 1, got {repeats}")
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def median_time(fn, repeats=5, warmup=0):
    """The median of `repeats` runs of fn(), in seconds, after `warmup` calls that are not measured."""
    if repeats < 1:
        raise ValueError(f"median_time needs repeats >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))

# %% nbgrader={"grade": false, "grade_id": "tensor-analysis", "locked": false, "schema_version": 3, "solution": false}
def analyze_dtype_memory():
    """Bytes per element by dtype, and what a (1000, 1000) tensor costs in each."""
    print("dtype     bytes/element   (1000, 1000) tensor")
    for dtype in [np.float64, np.float32, np.float16, np.int64, np.int8, np.bool_]:
        t = Tensor(np.zeros((1000, 1000), dtype=dtype))
        print(f"{np.dtype(dtype).name:8s}  {t.data.itemsize:13d}   {t.data.nbytes / 1e6:6.1f} MB")


def analyze_copy_vs_view():
    """reshape/transpose are views (constant time); a copy scales with size."""
    t = Tensor(np.ones((1000, 1000), dtype=np.float32))
    view_time = best_time(lambda: t.reshape(500, 2000))
    transpose_time = best_time(lambda: t.T)
    copy_time = best_time(lambda: Tensor(t.data.copy()))
    shares = np.shares_memory(t.reshape(500, 2000).data, t.data)
    print(f"reshape (view, shares memory: {shares}): {view_time * 1e6:8.2f} us")
    print(f"transpose (view):                    {transpose_time * 1e6:8.2f} us")
    print(f"copy of 4 MB:                        {copy_time * 1e6:8.2f} us "
          f"({copy_time / view_time:.0f}x the reshape)")


def analyze_matmul_scaling():
    """Time of an (n, n) @ (n, n) product as n doubles, and the achieved GFLOP/s."""
    rng = np.random.default_rng(0)
    print("    n      time (ms)   vs previous   GFLOP/s")
    previous = None
    for n in [64, 128, 256, 512]:
        a = Tensor(rng.standard_normal((n, n)).astype(np.float32))
        b = Tensor(rng.standard_normal((n, n)).astype(np.float32))
        seconds = best_time(lambda: a @ b)
        growth = f"{seconds / previous:9.1f}x" if previous else "         -"
        print(f"{n:5d}   {seconds * 1e3:10.3f}   {growth}   {2 * n ** 3 / seconds / 1e9:7.1f}")
        previous = seconds


def analyze_vectorization():
    """A Python loop over elements versus one vectorized NumPy call, on 10,000 elements."""
    rng = np.random.default_rng(0)
    a = Tensor(rng.standard_normal(10_000).astype(np.float32))
    b = Tensor(rng.standard_normal(10_000).astype(np.float32))

    def python_loop():
        out = np.empty_like(a.data)
        for i in range(a.size):
            out[i] = a.data[i] * b.data[i] + 1.0
        return out

    loop_time = best_time(python_loop, repeats=3)
    vector_time = best_time(lambda: a * b + 1.0)
    print(f"a * b + 1 on 10,000 elements: Python loop {loop_time * 1e3:.2f} ms, "
          f"vectorized {vector_time * 1e3:.3f} ms -> {loop_time / vector_time:.0f}x faster vectorized")


analyze_dtype_memory()
analyze_copy_vs_view()
analyze_matmul_scaling()
analyze_vectorization()

# %% [markdown]
# ### What the numbers say
#
# - Memory is linear in the element count with the dtype as the constant: float32 is the default because
#   it halves float64's memory and bandwidth at a precision training tolerates.
# - A view costs about a microsecond regardless of size; a copy costs time proportional to the bytes.
#   Prefer operations that return views, and copy only when you must.
# - Matmul time grows roughly 8x per doubling of n once the matrices are big enough; for small n, fixed
#   overheads dominate and the growth looks smaller. This cubic growth is why matmul dominates training.
# - A Python loop is hundreds of times slower than the same arithmetic in NumPy: the interpreter pays
#   for every element. That is why TinyTorch never loops over elements in an operation.
#
# ## Summary
#
# You built `Tensor`: dtype rules, elementwise arithmetic with broadcasting, NumPy matmul semantics,
# reductions with `axis` and `keepdims`, reshaping, transposing, indexing, `exp` and `log`, and error
# messages that name the shapes involved. Module 02 subclasses it as `Variable`, reusing each method for
# the forward value and adding the backward pass.
