"""Unit tests of tinytorch.core.autograd: values, gradients (check_gradients in float64), the engine, errors."""

import itertools

import numpy as np
import pytest

from tinytorch.core.autograd import (
    Variable,
    check_gradients,
    is_grad_enabled,
    no_grad,
    numerical_gradient,
    record_op,
    unbroadcast,
)
from tinytorch.core.tensor import Tensor

RNG = np.random.default_rng(0)  # replaced before each test by that test's own stream (below)


@pytest.fixture(autouse=True)
def _per_test_rng(rng):
    """Each test draws from its own stream (the root conftest's `rng`: TINYTORCH_TEST_SEED and the test id),
    so its data does not depend on which tests ran before it."""
    global RNG
    RNG = rng


def var(*shape, positive=False, requires_grad=True):
    """A float64 Variable of random values (shifted to [0.5, ...) when positive)."""
    values = RNG.standard_normal(shape)
    if positive:
        values = np.abs(values) + 0.5
    return Variable(values, requires_grad=requires_grad, dtype=np.float64)


# ---- construction ------------------------------------------------------------------------------

def test_variable_is_a_tensor_with_grad_state():
    v = Variable([1.0, 2.0])
    assert isinstance(v, Tensor) and v.requires_grad and v.grad is None and v.is_leaf
    assert v.dtype == np.float32 and v.shape == (2,)
    assert Variable(np.ones(2)).dtype == np.float64
    assert Variable([1.0], dtype=np.float64).dtype == np.float64
    assert not Variable([1.0], requires_grad=False).requires_grad
    assert "requires_grad=True" in repr(v) and repr(v).startswith("Variable(")


def test_integer_data_requiring_grad_becomes_float32():
    v = Variable([1, 2, 3])
    assert v.dtype == np.float32 and np.array_equal(v.data, [1.0, 2.0, 3.0])
    (v * v).sum().backward()
    assert np.array_equal(v.grad.data, [2.0, 4.0, 6.0])
    assert Variable(np.arange(3)).dtype == np.float32
    assert Variable([1, 2, 3], requires_grad=False).dtype == np.int64  # labels and indices stay integers
    with pytest.raises(TypeError, match="cannot require gradients"):
        Variable([1, 2, 3], dtype=np.int64)


def test_variable_hash_is_identity():
    a, b = Variable([1.0]), Variable([1.0])
    assert len({a, b}) == 2 and {a: 1}[a] == 1


# ---- values: every op gives the same value as Tensor, and a Variable --------------------------------

VALUE_OPS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: a ** b, "matmul": lambda a, b: a @ b,
    "radd": lambda a, b: 2.0 + a, "rsub": lambda a, b: 2.0 - a, "rmul": lambda a, b: 2.0 * a,
    "rdiv": lambda a, b: 2.0 / a, "rpow": lambda a, b: 2.0 ** a, "neg": lambda a, b: -a,
    "sum": lambda a, b: a.sum(axis=0), "mean": lambda a, b: a.mean(axis=1, keepdims=True),
    "max": lambda a, b: a.max(), "reshape": lambda a, b: a.reshape(-1), "transpose": lambda a, b: a.transpose(),
    "T": lambda a, b: a.T, "getitem": lambda a, b: a[1:, [0, 0]], "exp": lambda a, b: a.exp(),
    "log": lambda a, b: a.log(),
}


@pytest.mark.parametrize("name", sorted(VALUE_OPS))
def test_values_match_tensor(name):
    op = VALUE_OPS[name]
    a, b = np.abs(RNG.standard_normal((3, 3))) + 0.5, np.abs(RNG.standard_normal((3, 3))) + 0.5
    expected = op(Tensor(a), Tensor(b))
    got = op(Variable(a), Variable(b))
    assert isinstance(got, Variable) and got.requires_grad
    assert type(expected) is Tensor
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got.data, expected.data)


def test_results_keep_float32():
    v = Variable(np.ones((2, 3), dtype=np.float32))
    for result in [v * 2.0, v + 1, 1 - v, v / 3.0, v ** 2, v @ np.ones((3, 2), dtype=np.float32),
                   v.sum(), v.mean(0), v.max(1), v.exp(), v[0]]:
        assert result.dtype == np.float32, result


def test_comparisons_are_plain_bool_tensors():
    v = Variable([1.0, 2.0, 3.0])
    for result in [v < 2, v <= 2, v > 2, v >= 2, v == 2, v != 2, v < Variable([3.0, 2.0, 1.0])]:
        assert type(result) is Tensor and result.dtype == np.bool_


# ---- gradients of every op against finite differences ---------------------------------------------

BROADCAST_PAIRS = [((2, 3), (2, 3)), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 1), (1, 3)), ((4, 1, 3), (2, 1)),
                   ((), (2, 3)), ((2, 3), ()), ((1,), (2, 3, 1))]
BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: a ** b,
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("left, right", BROADCAST_PAIRS)
def test_binary_gradients_with_broadcasting(name, left, right):
    check_gradients(BINARY[name], var(*left, positive=True), var(*right, positive=True))


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradients_variable_and_constant(name):
    """A Variable combined with a plain Tensor, an ndarray or a Python number, on either side."""
    op = BINARY[name]
    constant = np.abs(RNG.standard_normal((2, 3))) + 0.5
    for other in [Tensor(constant), constant, 1.5]:
        check_gradients(lambda a: op(a, other), var(2, 3, positive=True))
        check_gradients(lambda a: op(other, a), var(2, 3, positive=True))


@pytest.mark.parametrize("fn", [
    lambda a: -a, lambda a: 1.0 - a, lambda a: 3.0 / a, lambda a: 2.0 ** a, lambda a: a ** 2,
    lambda a: a ** -1.5, lambda a: a ** 0.5, lambda a: a.exp(), lambda a: a.log(),
    lambda a: np.ones((2, 3)) - a, lambda a: np.full((2, 3), 2.0) / a,
], ids=["neg", "rsub", "rtruediv", "rpow", "pow2", "pow-1.5", "sqrt", "exp", "log", "ndarray-rsub",
        "ndarray-rtruediv"])
def test_unary_gradients(fn):
    check_gradients(fn, var(2, 3, positive=True))


def test_pow_with_variable_exponent_and_base():
    check_gradients(lambda a, b: a ** b, var(3, positive=True), var(3))
    check_gradients(lambda b: Tensor([0.5, 2.0, 3.0]) ** b, var(3))


def test_pow_zero_exponent_gives_zero_gradient():
    x = Variable([0.0, 2.0], dtype=np.float64)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


MATMUL_SHAPES = [((2, 3), (3, 4)), ((1, 1), (1, 1)), ((5, 2, 3), (5, 3, 4)), ((5, 2, 3), (3, 4)),
                 ((2, 3), (5, 3, 4)), ((2, 1, 2, 3), (4, 3, 2)), ((3, 1, 2, 3), (1, 2, 3, 2)),
                 ((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)), ((5, 2, 3), (3,)), ((3,), (5, 3, 2))]


@pytest.mark.parametrize("left, right", MATMUL_SHAPES)
def test_matmul_gradients(left, right):
    check_gradients(lambda a, b: a @ b, var(*left), var(*right))


@pytest.mark.parametrize("left, right", [((2, 3), (3, 4)), ((5, 2, 3), (3,))])
def test_matmul_gradients_with_constant_operand(left, right):
    constant_left, constant_right = RNG.standard_normal(left), RNG.standard_normal(right)
    check_gradients(lambda b: Tensor(constant_left) @ b, var(*right))
    check_gradients(lambda b: constant_left @ b, var(*right))      # ndarray @ Variable
    check_gradients(lambda a: a @ Tensor(constant_right), var(*left))


def _all_axes(ndim):
    """None, every single axis (positive and negative) and every tuple of distinct axes."""
    axes = [None] + list(range(ndim)) + [-1]
    for r in range(1, ndim + 1):
        axes += list(itertools.combinations(range(ndim), r))
    return axes


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@pytest.mark.parametrize("axis", _all_axes(3))
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_gradients(name, axis, keepdims, away_from_kinks):
    fn, x = (lambda a: getattr(a, name)(axis=axis, keepdims=keepdims)), var(2, 3, 4)
    away_from_kinks(fn, x)    # max: no two candidates within 1e-4 of each other (conftest)
    check_gradients(fn, x)


def test_reductions_of_scalars_and_vectors(away_from_kinks):
    for fn in [lambda a: a.sum(), lambda a: a.mean(), lambda a: a.max()]:
        check_gradients(fn, Variable(1.5, dtype=np.float64))
        x = var(5)
        away_from_kinks(fn, x)
        check_gradients(fn, x)


def test_max_splits_gradient_among_ties():
    x = Variable(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]))
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    x.zero_grad()
    x.max().backward()
    np.testing.assert_allclose(x.grad.data, [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0]])
    x.zero_grad()
    x.max(axis=0, keepdims=True).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])


@pytest.mark.parametrize("shape, new_shape", [((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)), ((6,), (2, 1, 3)),
                                              ((2, 3), ((3, 2),))])
def test_reshape_gradients(shape, new_shape):
    check_gradients(lambda a: a.reshape(*new_shape) * Tensor(np.arange(a.size).reshape(a.reshape(*new_shape).shape)),
                    var(*shape))


@pytest.mark.parametrize("axes", [(), (1, 0, 2), (2, 0, 1), (0, 2, 1), (-1, 0, 1), ((1, 2, 0),)])
def test_transpose_gradients(axes):
    check_gradients(lambda a: a.transpose(*axes), var(2, 3, 4))


def test_T_gradient():
    check_gradients(lambda a: a.T, var(2, 3))
    check_gradients(lambda a: a.T @ a, var(2, 3))


INDICES = [
    0, -1, (1, 2), slice(1, None), (slice(None), 1), (Ellipsis, 0), (None, 0), np.array([2, 0, 2]),
    [0, 0, 1, 0], (np.array([0, 1, 1]), np.array([3, 2, 2])), np.array([True, False, True]),
    (slice(None), np.array([True, False, True, True])), (slice(None, None, -1), slice(0, 4, 2)),
    (np.array([[0, 0], [2, 2]]), slice(1, 3)), Tensor([1, 1, 2]),
]


@pytest.mark.parametrize("index", INDICES, ids=[repr(i) for i in INDICES])
def test_indexing_gradients(index):
    check_gradients(lambda a: a[index], var(3, 4))


def test_indexing_with_bool_tensor_mask():
    check_gradients(lambda a: a[a > 0], var(3, 4))


def test_repeated_indices_accumulate():
    x = Variable(np.zeros(4))
    x[np.array([1, 1, 1, 3])].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 3.0, 0.0, 1.0])


def test_composite_gradients():
    """A small network: gradients of every parameter at once."""
    x = Tensor(RNG.standard_normal((4, 3)))
    w1, b1, w2 = var(3, 5), var(5), var(5, 2)
    # h * (h > 0) has a kink at h = 0, where the central difference (eps 1e-6) disagrees with backward():
    # keep every pre-activation at least 1e-3 away (20 values of sd ~2: about 1 draw in 120 moves the bias).
    # The max below only shifts the logits: the loss does not depend on it.
    while np.abs(x.data @ w1.data + b1.data).min() < 1e-3:
        b1.data = b1.data + RNG.normal(0.0, 0.01, b1.shape)

    def net(w1, b1, w2):
        h = x @ w1 + b1
        h = h * (h > 0)
        logits = h @ w2
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
        return -log_probs[np.arange(4), np.array([0, 1, 1, 0])].mean()

    check_gradients(net, w1, b1, w2)


# ---- the engine ------------------------------------------------------------------------------------

def test_gradients_accumulate_across_backward_calls():
    w = var(3)
    x = Tensor(np.array([1.0, 2.0, 3.0]))
    (w * x).sum().backward()
    first = w.grad.data.copy()
    (w * x).sum().backward()
    np.testing.assert_allclose(w.grad.data, 2 * first)


def test_same_graph_backward_twice_accumulates():
    w = var(3)
    y = (w * w).sum()
    y.backward()
    y.backward()
    np.testing.assert_allclose(w.grad.data, 4 * w.data)


def test_variable_used_many_times_gets_summed_gradient():
    x = var(2, 3)
    y = (x * x + x * 3.0 - x / 2.0).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data + 3.0 - 0.5)


def test_diamond_graph():
    """a feeds b and c, both feed d: a must receive both paths' gradients, processed once."""
    a = var(3)
    b = a * 2.0
    c = a.exp()
    d = (b * c).sum()
    d.backward()
    np.testing.assert_allclose(a.grad.data, 2 * np.exp(a.data) + 2 * a.data * np.exp(a.data))


def test_only_leaves_keep_grad():
    a = var(3)
    b = a * 2.0
    b.sum().backward()
    assert a.grad is not None and b.grad is None and not b.is_leaf


def test_grad_is_a_tensor_of_the_variables_shape_and_dtype():
    w = Variable(np.ones((3, 1), dtype=np.float32))
    x = Variable(np.ones((2, 3), dtype=np.float64), requires_grad=False)
    (x @ w).sum().backward()
    assert type(w.grad) is Tensor and w.grad.shape == (3, 1) and w.grad.dtype == np.float32


def test_backward_with_explicit_gradient():
    x = var(2, 3)
    y = x * 2.0
    seed = RNG.standard_normal((2, 3))
    y.backward(seed)
    np.testing.assert_allclose(x.grad.data, 2 * seed)
    x.zero_grad()
    y.backward(Tensor(seed))
    np.testing.assert_allclose(x.grad.data, 2 * seed)
    np.testing.assert_array_equal(seed, seed.copy())


def test_backward_on_a_leaf():
    x = var(3)
    x.backward(np.ones(3))
    np.testing.assert_array_equal(x.grad.data, np.ones(3))


def test_backward_of_one_element_non_scalar():
    x = var(1, 1)
    (x * 3.0).backward()
    np.testing.assert_allclose(x.grad.data, [[3.0]])


def test_backward_needs_grad_for_non_scalar():
    y = var(2, 3) * 2.0
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        y.backward()


def test_backward_grad_shape_mismatch():
    y = var(2, 3) * 2.0
    with pytest.raises(ValueError, match=r"grad has shape \(3,\) but the Variable has shape \(2, 3\)"):
        y.backward(np.ones(3))


def test_backward_without_requires_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Variable([1.0], requires_grad=False).sum().backward()


def test_deep_graph_does_not_recurse():
    x = var(2)
    h = x
    for _ in range(3000):
        h = h + 0.0
    h.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])


def test_zero_grad_and_detach():
    x = var(3)
    (x * 2.0).sum().backward()
    x.zero_grad()
    assert x.grad is None
    d = x.detach()
    assert isinstance(d, Variable) and d.data is x.data and not d.requires_grad and d.is_leaf
    y = d * 2.0
    assert not y.requires_grad
    z = (x * d).sum()            # d is a constant inside a graph
    z.backward()
    np.testing.assert_allclose(x.grad.data, x.data)


def test_requires_grad_false_inputs_get_no_grad():
    a, frozen = var(3), var(3, requires_grad=False)
    (a * frozen).sum().backward()
    assert frozen.grad is None and a.grad is not None


# ---- no_grad ---------------------------------------------------------------------------------------

def test_no_grad_records_nothing():
    x = var(3)
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2.0).exp().sum()
    assert is_grad_enabled()
    assert isinstance(y, Variable) and not y.requires_grad and y.is_leaf and y._inputs == ()
    with pytest.raises(RuntimeError):
        y.backward()


def test_no_grad_nesting_exceptions_and_decorator():
    with no_grad():
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            _ = 1 / 0
    assert is_grad_enabled()

    @no_grad()
    def double(v):
        return v * 2.0
    result = double(var(2))
    assert not result.requires_grad and is_grad_enabled()
    assert double.__name__ == "double"


# ---- record_op and unbroadcast -------------------------------------------------------------------

def _relu(x):
    out = np.maximum(x.data, 0)

    def backward(grad):
        return (grad * (x.data > 0),)
    return record_op(out, (x,), backward, name="relu")


def test_record_op_tensor_in_tensor_out():
    out = _relu(Tensor([-1.0, 2.0]))
    assert type(out) is Tensor
    np.testing.assert_array_equal(out.data, [0.0, 2.0])


def test_record_op_variable_in_variable_out():
    x = Variable(np.array([-1.0, 0.5, 2.0]))
    out = _relu(x)
    assert isinstance(out, Variable) and out.requires_grad and out._op == "relu"
    check_gradients(_relu, Variable(np.array([-1.0, 0.5, 2.0])))


def test_record_op_mixed_inputs_constant_gets_nothing():
    x, c = var(3), Tensor(np.ones(3))

    def weighted(a, b):
        def backward(grad):
            return grad * b.data, grad * a.data
        return record_op(a.data * b.data, (a, b), backward, "weighted")
    out = weighted(x, c)
    assert isinstance(out, Variable)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.ones(3))


def test_record_op_with_frozen_variable_or_no_grad():
    frozen = Variable([1.0], requires_grad=False)
    out = _relu(frozen)
    assert isinstance(out, Variable) and not out.requires_grad
    with no_grad():
        out = _relu(var(2))
    assert isinstance(out, Variable) and not out.requires_grad and out._inputs == ()


def test_record_op_backward_unbroadcasts_and_casts():
    x = Variable(np.ones(3, dtype=np.float32))

    def broadcast_to_rows(a):
        def backward(grad):                     # returns a (2, 3) float64 gradient for a (3,) input
            return (np.asarray(grad, dtype=np.float64),)
        return record_op(np.broadcast_to(a.data, (2, 3)).copy(), (a,), backward, "rows")
    broadcast_to_rows(x).sum().backward()
    assert x.grad.shape == (3,) and x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0, 2.0])


def test_record_op_bad_backward_is_explained():
    x = var(3)
    not_a_tuple = record_op(x.data * 2, (x,), lambda grad: grad * 2, "double")
    with pytest.raises(TypeError, match="'double' must return a tuple"):
        not_a_tuple.sum().backward()
    too_many = record_op(x.data * 2, (x,), lambda grad: (grad, grad), "double")
    with pytest.raises(ValueError, match="returned 2 gradients for 1 inputs"):
        too_many.sum().backward()
    wrong_shape = record_op(x.data * 2, (x,), lambda grad: (np.ones(4),), "double")
    with pytest.raises(ValueError, match=r"'double'.*shape \(3,\)"):
        wrong_shape.sum().backward()


@pytest.mark.parametrize("grad_shape, shape, expected", [
    ((4, 2, 3), (4, 2, 3), 1.0), ((4, 2, 3), (3,), 8.0), ((4, 2, 3), (2, 1), 12.0),
    ((4, 2, 3), (4, 1, 3), 2.0), ((4, 2, 3), (), 24.0), ((4, 2, 3), (1, 1, 1), 24.0),
])
def test_unbroadcast(grad_shape, shape, expected):
    out = unbroadcast(np.ones(grad_shape), shape)
    assert out.shape == shape
    np.testing.assert_array_equal(out, np.full(shape, expected))


@pytest.mark.parametrize("shape", [(5,), (2, 2), (1, 4, 2, 3)])
def test_unbroadcast_errors(shape):
    with pytest.raises(ValueError, match=r"\(4, 2, 3\)"):
        unbroadcast(np.ones((4, 2, 3)), shape)


# ---- numerical_gradient and check_gradients ---------------------------------------------------

def test_numerical_gradient_known_derivatives():
    x = np.array([[0.3, -1.2], [2.0, 0.7]])
    np.testing.assert_allclose(numerical_gradient(lambda v: float(np.sum(np.sin(v))), x), np.cos(x), atol=1e-8)
    np.testing.assert_allclose(numerical_gradient(lambda v: float(v[0, 1] * v[1, 0]), x),
                               [[0.0, 2.0], [-1.2, 0.0]], atol=1e-8)
    np.testing.assert_array_equal(x, [[0.3, -1.2], [2.0, 0.7]])
    assert numerical_gradient(lambda v: float(np.sum(v)), np.ones(3, dtype=np.float32)).dtype == np.float64


def test_check_gradients_returns_true_and_restores_grad():
    x = var(2, 2)
    x.grad = Tensor(np.full((2, 2), 7.0))
    assert check_gradients(lambda a: (a * a).sum(axis=1), x) is True
    np.testing.assert_array_equal(x.grad.data, np.full((2, 2), 7.0))
    y = var(2)
    check_gradients(lambda a: a.exp(), y)
    assert y.grad is None


def test_check_gradients_catches_a_wrong_backward():
    def wrong_exp(a):
        out = np.exp(a.data)
        return record_op(out, (a,), lambda grad: (grad * out * 1.01,), "wrong_exp")
    with pytest.raises(AssertionError, match=r"wrong gradient for input 0 \(shape \(2, 3\)\) at index"):
        check_gradients(wrong_exp, var(2, 3))


def test_check_gradients_catches_a_transposed_gradient():
    """A plain sum would not notice gradients sent to the wrong elements; the projection does."""
    def wrong_transpose(a):
        return record_op(a.data.T.copy(), (a,), lambda grad: (grad.T[::-1, ::-1].copy(),), "bad_T")
    with pytest.raises(AssertionError, match="input 0"):
        check_gradients(wrong_transpose, var(3, 3))


def test_check_gradients_names_the_wrong_input():
    def wrong_second(a, b):
        return record_op(a.data * b.data, (a, b), lambda grad: (grad * b.data, grad * a.data * 2), "bad_mul")
    with pytest.raises(AssertionError, match="input 1"):
        check_gradients(wrong_second, var(3), var(3))


def test_check_gradients_catches_a_missing_gradient():
    def forgets_b(a, b):
        return record_op(a.data * b.data, (a, b), lambda grad: (grad * b.data, None), "forgets")
    with pytest.raises(AssertionError, match="input 1"):
        check_gradients(forgets_b, var(3), var(3))


def test_check_gradients_rejects_float32_and_non_variables():
    with pytest.raises(TypeError, match="float64"):
        check_gradients(lambda a: a * 2.0, Variable(np.ones(2, dtype=np.float32)))
    with pytest.raises(TypeError, match="float64 Variable"):
        check_gradients(lambda a: a * 2.0, Tensor(np.ones(2)))
    with pytest.raises(TypeError, match="must return a Variable"):
        check_gradients(lambda a: Tensor(a.data), var(2))


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
