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
# # Module 03: Activations
#
# A stack of linear layers is still one linear map: `(x W1) W2 = x (W1 W2)`. What lets a network bend
# its decision boundary, and so learn anything interesting, is a **nonlinearity** applied elementwise
# between the layers: the activation function.
#
# Here you build the five activations every later module uses:
#
# | class | formula | where it is used |
# |---|---|---|
# | `ReLU` | `max(x, 0)` | hidden layers of MLPs and CNNs (modules 05, 06) |
# | `Sigmoid` | `1 / (1 + e^-x)` | binary probabilities (module 11's `BinaryCrossEntropyLoss`) |
# | `Tanh` | `(e^x - e^-x) / (e^x + e^-x)` | bounded hidden units, RNNs |
# | `Softmax(axis=-1)` | `e^x_i / sum_j e^x_j` | class probabilities, attention weights (module 07) |
# | `GELU` | `x * Phi(x)` | transformers (module 16) |
#
# Each one is **polymorphic**, like every layer in TinyTorch: give it a `Tensor` and you get a plain
# `Tensor` of values back; give it a `Variable` (module 02) and the result is a `Variable` that remembers
# how it was made, so `backward()` can send gradients through it.
#
# Each activation is one node in the autograd graph, with a **fused, analytic backward**: instead of
# building `1 / (1 + exp(-x))` out of four recorded operations (negate, exp, add, divide), each with its
# own saved arrays and backward closure, we compute the output in one go and write its derivative by
# hand. The Systems Analysis at the end measures what that saves.
#
# Two numerical traps get special care: `Sigmoid` must not overflow `exp` for large `|x|`, and `Softmax`
# must not overflow for large logits. Both are handled by rewriting the formula, not by clipping.

# %% nbgrader={"grade": false, "grade_id": "activations-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.activations
#| export
import math

import numpy as np

from tinytorch.core.tensor import Tensor, best_time
from tinytorch.core.autograd import record_op

# %% nbgrader={"grade": false, "grade_id": "activations-test-imports", "locked": false, "schema_version": 3, "solution": false}
# Only the tests in this file need these; they are not part of the package.
from tinytorch.core.autograd import Variable, check_gradients

# %% [markdown]
# ## 0. Shared helpers
#
# Every activation starts the same way: check that it was given a `Tensor` (a `Variable` is a `Tensor`
# too), and get a floating-point array to compute with. Integer inputs are promoted to `float32` (the
# exponential of an integer is not an integer); float64 inputs stay float64, so gradient checks keep
# their precision.
#
# Every activation shares one base class, `Activation`: `__call__` calls `forward`, and `__repr__` shows
# the class and its settings (`Softmax(axis=-1)`), which is how a network of layers prints itself in
# module 05.

# %% nbgrader={"grade": false, "grade_id": "activation-base", "locked": false, "schema_version": 3, "solution": false}
#| export
def _check_input(x, who):
    """Raise TypeError unless `x` is a Tensor (or Variable)."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{who} expects a Tensor or Variable, got {type(x).__name__}; "
            f"wrap NumPy data first, e.g. {who}()(Tensor(x))"
        )


def _float_data(x):
    """x's array if it is floating point, else a float32 copy (ints and bools)."""
    data = x.data
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float32)
    return data


class Activation:
    """Base class of the activations: callable, stateless, printable.

    Subclasses implement `forward(x)`: x is a Tensor or Variable of any shape, and the result has the
    same shape (a Tensor for a Tensor, a Variable for a Variable).
    """

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def extra_repr(self):
        """The settings shown inside the parentheses of repr(); none by default."""
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


# %% [markdown]
# ## 1. ReLU: max(x, 0)
#
# The Rectified Linear Unit keeps positive values and zeroes the rest. Its derivative is 1 where
# `x > 0` and 0 where `x < 0`; at exactly 0 it is undefined, and we use 0 (as PyTorch does).
#
# ```
# forward:  y = max(x, 0)                 one comparison per element
# backward: dL/dx = dL/dy * (x > 0)       a mask: the gradient passes or is blocked
# ```
#
# Cost: one pass over the input forward, one backward; the backward needs only `x` (or the mask), which
# the closure keeps alive until the graph is freed. ReLU's cheapness, and its gradient of exactly 1 for
# active units (no shrinking through many layers), is why it became the default hidden activation.
#
# **How to plug into autograd** (docs/framework.md): compute the output array, write
# `backward(grad)` returning one gradient per input, and hand both to `record_op`. `record_op`
# returns a plain `Tensor` when the input is a plain `Tensor`, and a connected `Variable` otherwise.

# %% nbgrader={"grade": false, "grade_id": "relu", "locked": false, "schema_version": 3, "solution": true}
#| export
class ReLU(Activation):
    """ReLU(x) = max(x, 0), elementwise. Shapes: any -> the same."""

    def forward(self, x):
        """x: Tensor or Variable of any shape -> same type and shape, negatives replaced by 0."""
        _check_input(x, "ReLU")
        ### BEGIN SOLUTION
        data = x.data
        out = np.maximum(data, 0).astype(data.dtype, copy=False)

        def backward(grad):
            # The gradient flows only where the input was positive (0 at x == 0, as PyTorch).
            return (grad * (data > 0),)

        return record_op(out, (x,), backward, name="relu")
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-relu", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_relu():
    """ReLU: values, Tensor in -> Tensor out, gradient is the mask, checked numerically."""
    x = Tensor(np.array([[-2.0, -0.5, 0.0], [0.5, 1.0, 3.0]], dtype=np.float32))
    y = ReLU()(x)
    assert type(y) is Tensor, f"a plain Tensor in must give a plain Tensor out, got {type(y).__name__}"
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, np.maximum(x.data, 0))

    v = Variable(np.array([-1.5, 0.0, 2.0]), requires_grad=True)
    out = ReLU()(v)
    assert isinstance(out, Variable)
    out.sum().backward()
    np.testing.assert_array_equal(v.grad.data, [0.0, 0.0, 1.0])

    rng = np.random.default_rng(0)
    data = rng.uniform(0.1, 2.0, size=(3, 4)) * rng.choice([-1.0, 1.0], size=(3, 4))  # away from the kink
    check_gradients(ReLU(), Variable(data, requires_grad=True))

    try:
        ReLU()(np.array([1.0]))
    except TypeError as error:
        assert "ndarray" in str(error)
    else:
        raise AssertionError("ReLU on a NumPy array must raise TypeError")
    print("ReLU: ok")


test_unit_relu()

# %% [markdown]
# ## 2. Sigmoid without overflow
#
# `sigmoid(x) = 1 / (1 + e^-x)` squashes any real number into (0, 1). Written naively it breaks for
# large negative inputs: `e^-x` with `x = -1000` is `e^1000`, which overflows to `inf` (NumPy warns).
# The trick is to only ever exponentiate a **non-positive** number. With `z = e^-|x|` (always in (0, 1]):
#
# ```
# x >= 0:  sigmoid(x) = 1 / (1 + e^-x)          = 1 / (1 + z)
# x <  0:  sigmoid(x) = e^x / (1 + e^x)         = z / (1 + z)
# ```
#
# Both branches are computed for the whole array with `np.where`: no Python loop, no overflow.
#
# The derivative has a famous closed form in terms of the **output** `s`:
# `d sigmoid / dx = s (1 - s)`. So the backward keeps `s` (which it needs anyway) instead of `x`.

# %% nbgrader={"grade": false, "grade_id": "sigmoid", "locked": false, "schema_version": 3, "solution": true}
#| export
class Sigmoid(Activation):
    """Sigmoid(x) = 1 / (1 + exp(-x)), elementwise, stable for any |x|. Shapes: any -> the same."""

    def forward(self, x):
        """x: Tensor or Variable of any shape -> values in [0, 1], same type and shape."""
        _check_input(x, "Sigmoid")
        ### BEGIN SOLUTION
        data = _float_data(x)
        z = np.exp(-np.abs(data))                 # in (0, 1]: never overflows
        positive = 1.0 / (1.0 + z)                # sigmoid(|x|)
        s = np.where(data >= 0, positive, z * positive).astype(data.dtype, copy=False)

        def backward(grad):
            return (grad * s * (1.0 - s),)

        return record_op(s, (x,), backward, name="sigmoid")
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-sigmoid", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_sigmoid():
    """Sigmoid: values, symmetry, no overflow at +-1000, gradient checked numerically."""
    x = np.linspace(-6, 6, 13)
    y = Sigmoid()(Tensor(x))
    np.testing.assert_allclose(y.data, 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(y.data + y.data[::-1], 1.0, rtol=1e-12)   # sigmoid(-x) = 1 - sigmoid(x)

    with np.errstate(over="raise", invalid="raise"):  # an overflow or nan would raise FloatingPointError
        big = Sigmoid()(Tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=np.float32)))
    assert big.dtype == np.float32
    assert np.all(np.isfinite(big.data))
    np.testing.assert_allclose(big.data, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-12)

    rng = np.random.default_rng(1)
    check_gradients(Sigmoid(), Variable(rng.normal(0, 3, size=(4, 5)), requires_grad=True))
    print("Sigmoid: ok")


test_unit_sigmoid()

# %% [markdown]
# ## 3. Tanh
#
# `tanh(x)` is a rescaled sigmoid (`tanh(x) = 2 sigmoid(2x) - 1`) with outputs in (-1, 1) and zero
# mean for symmetric inputs. NumPy's `np.tanh` is already stable for large `|x|`. Like sigmoid, its
# derivative is a function of the output `t`: `d tanh / dx = 1 - t^2`.

# %% nbgrader={"grade": false, "grade_id": "tanh", "locked": false, "schema_version": 3, "solution": true}
#| export
class Tanh(Activation):
    """Tanh(x), elementwise, outputs in (-1, 1). Shapes: any -> the same."""

    def forward(self, x):
        """x: Tensor or Variable of any shape -> same type and shape."""
        _check_input(x, "Tanh")
        ### BEGIN SOLUTION
        t = np.tanh(_float_data(x))

        def backward(grad):
            return (grad * (1.0 - t * t),)

        return record_op(t, (x,), backward, name="tanh")
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-tanh", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_tanh():
    """Tanh: values against NumPy, odd symmetry, bounded, gradient checked numerically."""
    x = np.linspace(-4, 4, 9)
    y = Tanh()(Tensor(x))
    np.testing.assert_allclose(y.data, np.tanh(x), rtol=1e-12)
    np.testing.assert_allclose(y.data, -y.data[::-1], atol=1e-15)
    assert np.all(np.abs(Tanh()(Tensor(np.array([-800.0, 800.0]))).data) <= 1.0)

    rng = np.random.default_rng(2)
    check_gradients(Tanh(), Variable(rng.normal(0, 2, size=(2, 3, 4)), requires_grad=True))
    print("Tanh: ok")


test_unit_tanh()

# %% [markdown]
# ## 4. Softmax: stable, over any axis
#
# Softmax turns a vector of scores (logits) into probabilities: `softmax(x)_i = e^x_i / sum_j e^x_j`.
# Two facts make it practical:
#
# 1. **Shift invariance.** Subtracting the same constant `c` from every logit multiplies numerator and
#    denominator by `e^-c`: the result is unchanged. Choosing `c = max(x)` makes every exponent `<= 0`,
#    so `exp` never overflows, and the largest term is exactly `e^0 = 1`, so the sum never underflows to
#    0. Logits of 1000 (common after a bad initialisation) then work instead of producing `nan`.
# 2. **Axis.** For a batch of logits of shape (batch, classes), the probabilities run over the last axis
#    (`axis=-1`, PyTorch's default for `nn.Softmax(dim=-1)`); attention (module 07) uses the last axis of a
#    (batch, heads, queries, keys) array. Reductions use `keepdims=True` so the (batch, 1) max and sum
#    broadcast back against (batch, classes).
#
# **Backward.** The Jacobian of softmax is `ds_i/dx_j = s_i (delta_ij - s_j)`, a (classes, classes)
# matrix per row. We never build it: multiplying it by the incoming gradient `g` simplifies to
#
# ```
# dL/dx = s * (g - sum(g * s, axis, keepdims=True))
# ```
#
# which costs O(classes) per row instead of O(classes^2).

# %% nbgrader={"grade": false, "grade_id": "softmax", "locked": false, "schema_version": 3, "solution": true}
#| export
class Softmax(Activation):
    """Softmax over one axis (default: the last), numerically stable. Shapes: any -> the same.

    The entries along `axis` are positive and sum to 1.
    """

    def __init__(self, axis=-1):
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Softmax axis must be an int, got {axis!r} ({type(axis).__name__})")
        self.axis = int(axis)

    def extra_repr(self):
        return f"axis={self.axis}"

    def forward(self, x):
        """x: Tensor or Variable with at least one axis -> probabilities along self.axis."""
        _check_input(x, "Softmax")
        if not -x.ndim <= self.axis < x.ndim:
            raise ValueError(
                f"Softmax(axis={self.axis}) needs an input with at least "
                f"{self.axis + 1 if self.axis >= 0 else -self.axis} dimension(s), got shape {x.shape}"
            )
        ### BEGIN SOLUTION
        axis = self.axis
        data = _float_data(x)
        shifted = data - data.max(axis=axis, keepdims=True)   # every exponent <= 0: no overflow
        e = np.exp(shifted)
        s = e / e.sum(axis=axis, keepdims=True)

        def backward(grad):
            # Jacobian-vector product without the Jacobian: s * (g - <g, s>) along the axis.
            return (s * (grad - (grad * s).sum(axis=axis, keepdims=True)),)

        return record_op(s, (x,), backward, name="softmax")
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-softmax", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_softmax():
    """Softmax: rows sum to 1, shift invariance, large logits, both axes, gradients, bad axis."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, 5))
    p = Softmax()(Tensor(logits)).data
    expected = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(Softmax()(Tensor(logits + 100.0)).data, p, rtol=1e-10)

    q = Softmax(axis=0)(Tensor(logits)).data
    np.testing.assert_allclose(q.sum(axis=0), 1.0, rtol=1e-12)

    with np.errstate(over="raise", invalid="raise"):
        big = Softmax()(Tensor(np.array([[1000.0, 999.0, -1000.0]], dtype=np.float32))).data
    np.testing.assert_allclose(big, [[1 / (1 + np.exp(-1.0)), np.exp(-1.0) / (1 + np.exp(-1.0)), 0.0]],
                               rtol=1e-6, atol=1e-30)

    check_gradients(Softmax(), Variable(rng.normal(size=(3, 4)), requires_grad=True))
    check_gradients(Softmax(axis=0), Variable(rng.normal(size=(3, 4)), requires_grad=True))
    check_gradients(Softmax(), Variable(rng.normal(size=(2, 3)) * 5 + 500.0, requires_grad=True))

    for bad_axis in (2, -3):
        try:
            Softmax(axis=bad_axis)(Tensor(logits))
        except ValueError as error:
            assert "(4, 5)" in str(error), str(error)
        else:
            raise AssertionError(f"Softmax(axis={bad_axis}) on shape (4, 5) must raise ValueError")
    assert repr(Softmax()) == "Softmax(axis=-1)"
    print("Softmax: ok")


test_unit_softmax()

# %% [markdown]
# ## 5. GELU: exact, with a vectorized erfc
#
# The Gaussian Error Linear Unit weights each input by the probability that a standard normal variable
# is below it: `GELU(x) = x * Phi(x)`, with `Phi(x) = (1 + erf(x / sqrt 2)) / 2` the normal CDF. It is
# smooth where ReLU has a kink, and it is the activation of BERT and GPT.
#
# PyTorch offers two forms, and its default is the exact one:
#
# | `approximate=` | formula | notes |
# |---|---|---|
# | `'none'` (default) | `x * Phi(x)` | needs `erf` |
# | `'tanh'` | `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` | the approximation of the original GELU paper, used by GPT-2 |
#
# **Our decision:** TinyTorch follows PyTorch's default, `approximate='none'`, and also offers `'tanh'`.
# NumPy has no `erf`, and `math.erf` works on one Python float at a time (a Python loop over elements,
# hundreds of times slower). So we write a vectorized one.
#
# **A vectorized erfc in a dozen lines.** We need `Phi(x) = erfc(-x / sqrt 2) / 2`, and using `erfc`
# (rather than `1 + erf`) keeps full *relative* precision in the far left tail, where `Phi` is tiny.
# For `z >= 0`, `erfc(z)` behaves like `e^(-z^2)` times something smooth, so we write
#
# ```
# erfc(z) = t * exp(-z^2 + P(t)),   t = 2 / (2 + z)  in (0, 1]
# ```
#
# and approximate the smooth `P` by a Chebyshev series in `u = 2t - 1` (Numerical Recipes, 3rd ed.,
# section 6.2.2). Its 26 coefficients (below, computed once with 50-digit arithmetic in mpmath; they agree
# with Numerical Recipes' table) decay to 1e-16, so the result is accurate to about 1e-15 relative
# error, double precision. For `z < 0`, `erfc(z) = 2 - erfc(-z)`. Evaluating the series is
# `np.polynomial.chebyshev.chebval`: about 26 multiply-adds per element, all vectorized.
#
# **Backward.** `d/dx [x Phi(x)] = Phi(x) + x phi(x)`, with `phi(x) = e^(-x^2/2) / sqrt(2 pi)` the normal
# density. For the tanh form, with `u = sqrt(2/pi) (x + 0.044715 x^3)` and `T = tanh(u)`:
# `d/dx = 0.5 (1 + T) + 0.5 x (1 - T^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)`.

# %% nbgrader={"grade": false, "grade_id": "erfc", "locked": false, "schema_version": 3, "solution": false}
#| export
# Chebyshev coefficients of P(t) = log(erfc(z) / t) + z^2, z = 2/t - 2, in u = 2t - 1 (see the prose).
_ERFC_CHEBYSHEV = np.array([
    -0.6513268598908547, 0.6419697923564902, 0.019476473204185836, -0.009561514786808632,
    -0.0009465953444820369, 0.00036683949785276145, 4.252332480690777e-05, -2.0278578112534242e-05,
    -1.6242900046470256e-06, 1.3036558355805232e-06, 1.5626441722066142e-08, -8.523809591492654e-08,
    6.5290544390988515e-09, 5.059343495551469e-09, -9.91364156493033e-10, -2.273651222931836e-10,
    9.646791102015527e-11, 2.3940380830391146e-12, -6.886027526497553e-12, 8.944879273090725e-13,
    3.130921399342958e-13, -1.1270822361367252e-13, 3.810905255189232e-16, 7.106097613609237e-15,
    -1.5230282014571043e-15, -9.457494571291233e-17,
])


def _erfc(z):
    """The complementary error function of a float array, elementwise (about 1e-15 relative error)."""
    z = np.asarray(z, dtype=np.float64)
    a = np.abs(z)
    t = 2.0 / (2.0 + a)
    tail = t * np.exp(-a * a + np.polynomial.chebyshev.chebval(2.0 * t - 1.0, _ERFC_CHEBYSHEV))
    return np.where(z >= 0, tail, 2.0 - tail)


def _normal_cdf(x):
    """Phi(x) = P(N(0, 1) <= x), elementwise, in float64."""
    return 0.5 * _erfc(-np.asarray(x, dtype=np.float64) / math.sqrt(2.0))


# %% nbgrader={"grade": false, "grade_id": "test-erfc", "locked": true, "schema_version": 3, "solution": false}
def test_unit_erfc():
    """The vectorized erfc agrees with Python's math.erfc to double precision."""
    z = np.concatenate([np.linspace(-6, 6, 2401), [-20.0, -9.5, 9.5, 20.0]])
    expected = np.array([math.erfc(v) for v in z])
    np.testing.assert_allclose(_erfc(z), expected, rtol=1e-13, atol=0)
    np.testing.assert_allclose(_normal_cdf(np.array([0.0, 1.0, -1.0])),
                               [0.5, 0.5 * math.erfc(-1 / math.sqrt(2)), 0.5 * math.erfc(1 / math.sqrt(2))],
                               rtol=1e-14)
    print("erfc: ok")


test_unit_erfc()

# %% nbgrader={"grade": false, "grade_id": "gelu", "locked": false, "schema_version": 3, "solution": true}
#| export
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELU(Activation):
    """GELU(x) = x * Phi(x) (approximate='none', PyTorch's default) or its tanh approximation.

    Shapes: any -> the same.
    """

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def extra_repr(self):
        return f"approximate={self.approximate!r}"

    def forward(self, x):
        """x: Tensor or Variable of any shape -> same type and shape."""
        _check_input(x, "GELU")
        ### BEGIN SOLUTION
        data = _float_data(x)
        dtype = data.dtype
        if self.approximate == "none":
            cdf = _normal_cdf(data)                    # float64 internally, for accuracy
            out = (data * cdf).astype(dtype, copy=False)

            def backward(grad):
                pdf = _INV_SQRT_2PI * np.exp(-0.5 * data * data)
                return (grad * (cdf + data * pdf),)
        else:
            inner = _SQRT_2_OVER_PI * (data + 0.044715 * data * data * data)   # x*x*x: SIMD, unlike x**3
            th = np.tanh(inner)
            out = (0.5 * data * (1.0 + th)).astype(dtype, copy=False)

            def backward(grad):
                d_inner = _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * data * data)
                return (grad * (0.5 * (1.0 + th) + 0.5 * data * (1.0 - th * th) * d_inner),)

        return record_op(out, (x,), backward, name="gelu")
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-gelu", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_gelu():
    """GELU: exact values from math.erfc, tanh form close to exact, both gradients checked numerically."""
    x = np.linspace(-5, 5, 21)
    exact = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x])   # Python's own erfc
    np.testing.assert_allclose(GELU()(Tensor(x)).data, exact, rtol=1e-13, atol=1e-15)
    tanh_form = GELU(approximate="tanh")(Tensor(x)).data
    np.testing.assert_allclose(tanh_form, exact, atol=1e-3)          # the approximation is close...
    assert np.abs(tanh_form - exact).max() > 1e-6                     # ...but not the same function
    y32 = GELU()(Tensor(x.astype(np.float32)))
    assert y32.dtype == np.float32

    rng = np.random.default_rng(4)
    check_gradients(GELU(), Variable(rng.normal(0, 2, size=(3, 4)), requires_grad=True))
    check_gradients(GELU(approximate="tanh"), Variable(rng.normal(0, 2, size=(3, 4)), requires_grad=True))
    try:
        GELU(approximate="fast")
    except ValueError as error:
        assert "fast" in str(error)
    else:
        raise AssertionError("GELU(approximate='fast') must raise ValueError")
    print("GELU: ok")


test_unit_gelu()

# %% [markdown]
# ## 6. Activations inside a graph
#
# Because every activation goes through `record_op`, they compose with everything module 02 records:
# below, a tiny two-layer computation `softmax(tanh(x W1) W2)` is differentiated end to end, and the
# gradients are checked against finite differences for every input at once.

# %% nbgrader={"grade": true, "grade_id": "test-composite", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_composite_graph():
    """A small graph mixing Variable ops and activations: gradients reach every input."""
    rng = np.random.default_rng(5)
    x = Variable(rng.normal(size=(4, 3)), requires_grad=True)
    w1 = Variable(rng.normal(size=(3, 5)), requires_grad=True)
    w2 = Variable(rng.normal(size=(5, 2)), requires_grad=True)

    def net(x, w1, w2):
        hidden = GELU()(Tanh()(x @ w1) + Sigmoid()(x @ w1))
        return Softmax()(hidden @ w2)

    check_gradients(net, x, w1, w2)
    print("composite graph: ok")


test_unit_composite_graph()

# %% [markdown]
# ## Systems Analysis
#
# Activations are **memory-bound**: each does a handful of arithmetic operations per element but must
# read and write every element, so their time is set by memory traffic, not by FLOPs. We measure:
#
# 1. **Time and memory per element** of each forward pass on a million float32 elements (nanoseconds per
#    element, and the peak extra bytes NumPy allocated per element, as seen by `tracemalloc`).
# 2. **Fused versus composed backward.** Sigmoid as one recorded node with an analytic backward, against
#    the same function built from four recorded operations `1 / (1 + exp(-x))`: time of forward + backward,
#    and peak memory (every recorded op keeps its inputs alive for the backward pass).

# %% nbgrader={"grade": false, "grade_id": "activations-analysis", "locked": false, "schema_version": 3, "solution": false}
import tracemalloc


def _peak_bytes(fn):
    """Peak memory allocated while fn() runs, in bytes (NumPy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def analyze_activation_cost(n=1_000_000):
    """Forward time (ns/element) and peak allocation (bytes/element) of each activation on n float32."""
    x = Tensor(np.random.default_rng(0).normal(size=n).astype(np.float32))
    print(f"forward on {n:,} float32 elements (input itself: 4 bytes/element)")
    print("activation                  ns/element   peak bytes/element")
    for act in [ReLU(), Sigmoid(), Tanh(), Softmax(), GELU(approximate="tanh"), GELU()]:
        seconds = best_time(lambda: act(x), repeats=3)
        peak = _peak_bytes(lambda: act(x))
        print(f"{repr(act):26s}  {seconds / n * 1e9:10.2f}   {peak / n:18.1f}")


def analyze_fused_vs_composed(n=500_000):
    """Sigmoid as one fused node versus four recorded ops: forward+backward time and peak memory."""
    data = np.random.default_rng(1).normal(size=n).astype(np.float32)
    ones = np.ones(n, dtype=np.float32)

    def fused():
        x = Variable(data, requires_grad=True)
        Sigmoid()(x).backward(ones)
        return x.grad

    def composed():
        x = Variable(data, requires_grad=True)
        (1.0 / (1.0 + (-x).exp())).backward(ones)
        return x.grad

    np.testing.assert_allclose(fused().data, composed().data, rtol=1e-5, atol=1e-7)
    t_fused, t_composed = best_time(fused, repeats=3), best_time(composed, repeats=3)
    m_fused, m_composed = _peak_bytes(fused), _peak_bytes(composed)
    print(f"sigmoid forward+backward on {n:,} float32 elements")
    print(f"fused (1 node):     {t_fused * 1e3:7.2f} ms   peak {m_fused / n:5.1f} bytes/element")
    print(f"composed (4 nodes): {t_composed * 1e3:7.2f} ms   peak {m_composed / n:5.1f} bytes/element")
    print(f"fused is {t_composed / t_fused:.1f}x faster and uses {m_composed / m_fused:.1f}x less peak memory")


analyze_activation_cost()
analyze_fused_vs_composed()

# %% [markdown]
# ### What the numbers say
#
# - ReLU and Tanh cost well under a nanosecond per element: one vectorized (SIMD) pass that reads 4 bytes
#   and writes 4 bytes per element, so memory traffic, not arithmetic, sets the time. Softmax adds two
#   reductions over the axis. Sigmoid is the slow one here: the stable formula computes both branches
#   for every element and `np.where` then picks one per element, which costs several passes plus a
#   data-dependent selection (timings on a shared machine vary from run to run; compare the ratios).
# - Exact GELU costs about an order of magnitude more time than the tanh form, and about 80 bytes of
#   peak memory per element: its erfc evaluates a 26-term Chebyshev series in float64, one full-size
#   temporary per step. That is the price of matching PyTorch's default to double precision in plain
#   NumPy (PyTorch calls a compiled `erf` that keeps everything in registers). The tanh form is the
#   cheaper choice when exact parity is not needed.
# - Peak memory per element is one to four times the 4-byte input for the float32 activations: every
#   NumPy expression allocates temporaries of the full size. Fusing into fewer NumPy calls (or in-place
#   operations) is how compiled frameworks cut it.
# - The fused Sigmoid keeps one array (`s`) for its backward; the composed version records four nodes,
#   each keeping its inputs and producing a gradient temporary, so it is slower and peaks higher. That is
#   why frameworks ship hand-written backward kernels for common functions.
#
# ## Summary
#
# You built `ReLU`, `Sigmoid`, `Tanh`, `Softmax` and `GELU`, each a single autograd node with an analytic
# backward, numerically stable for extreme inputs, polymorphic over `Tensor` and `Variable`. Module 04
# puts them between `Dense` layers.
