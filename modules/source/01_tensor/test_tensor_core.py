"""Unit tests of the exported Tensor (tinytorch.core.tensor): values against NumPy, dtype rules, errors."""

import numpy as np
import pytest

from tinytorch.core.tensor import Tensor

RNG = np.random.default_rng(0)  # replaced before each test by that test's own stream (below)


@pytest.fixture(autouse=True)
def _per_test_rng(rng):
    """Each test draws from its own stream (the root conftest's `rng`: TINYTORCH_TEST_SEED and the test id),
    so its data does not depend on which tests ran before it."""
    global RNG
    RNG = rng


def randn(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


# ---- construction and dtype rules --------------------------------------------------------------

@pytest.mark.parametrize("data, dtype", [
    (3.0, np.float32), ([1.5, 2.5], np.float32), ([[1.0], [2.0]], np.float32),
    (3, np.int64), ([1, 2, 3], np.int64), (True, np.bool_), ([True, False], np.bool_),
    (np.zeros(3, dtype=np.float64), np.float64), (np.zeros(3, dtype=np.float16), np.float16),
    (np.arange(3, dtype=np.int32), np.int32), (np.float64(1.0), np.float64), (np.int8(3), np.int8),
])
def test_dtype_rules(data, dtype):
    assert Tensor(data).dtype == dtype


def test_dtype_argument_casts():
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert Tensor(np.ones(2), dtype="float32").dtype == np.float32
    assert Tensor(Tensor([1.0]), dtype=np.float64).dtype == np.float64


def test_wrapping_does_not_copy():
    array = np.ones((2, 2))
    t = Tensor(array)
    assert t.data is array
    assert Tensor(t).data is array
    assert t.numpy() is array


def test_properties_len_item_repr():
    t = Tensor(np.zeros((2, 3, 4), dtype=np.float32))
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.size == 24 and len(t) == 2
    assert Tensor([[5.0]]).item() == 5.0 and isinstance(Tensor([[5.0]]).item(), float)
    assert Tensor(3).item() == 3
    text = repr(Tensor([1.0, 2.0]))
    assert text.startswith("Tensor(") and "float32" in text


def test_scalar_len_and_bool():
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))
    assert bool(Tensor([1.0])) is True and bool(Tensor(0.0)) is False
    with pytest.raises(ValueError, match=r"\(2,\)"):
        bool(Tensor([1.0, 2.0]))


def test_item_needs_one_element():
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        Tensor(np.ones((2, 3))).item()


@pytest.mark.parametrize("bad, given", [("hello", "str"), (None, "NoneType"), ({"a": 1}, "dict"),
                                        ([1, "x"], "list"), (object(), "object")])
def test_non_numeric_data_is_a_type_error(bad, given):
    with pytest.raises(TypeError, match=given):
        Tensor(bad)


def test_ragged_list_is_a_value_error():
    with pytest.raises(ValueError, match="rectangular"):
        Tensor([[1.0, 2.0], [3.0]])


def test_non_numeric_dtype_is_a_type_error():
    with pytest.raises(TypeError, match="dtype"):
        Tensor([1.0], dtype=object)


def test_hash_is_identity():
    a, b = Tensor([1.0]), Tensor([1.0])
    assert len({a, b}) == 2
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b"


def test_np_asarray_reads_tensor():
    t = Tensor([1.0, 2.0])
    assert np.asarray(t) is t.data
    np.testing.assert_array_equal(np.array([t, t]), [[1.0, 2.0], [1.0, 2.0]])


# ---- elementwise arithmetic --------------------------------------------------------------------

BINARY = {
    "add": (lambda a, b: a + b), "sub": (lambda a, b: a - b), "mul": (lambda a, b: a * b),
    "div": (lambda a, b: a / b), "pow": (lambda a, b: a ** b),
}
SHAPE_PAIRS = [((2, 3), (2, 3)), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 1), (1, 3)), ((4, 1, 3), (2, 1)),
               ((), (2, 3)), ((2, 3), ())]


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("left, right", SHAPE_PAIRS)
def test_binary_ops_match_numpy(name, left, right):
    op = BINARY[name]
    a, b = np.abs(randn(*left)) + 0.5, np.abs(randn(*right)) + 0.5   # positive: pow stays real
    expected = op(a, b)
    for got in [op(Tensor(a), Tensor(b)), op(Tensor(a), b), op(a, Tensor(b))]:
        assert isinstance(got, Tensor)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got.data, expected)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_reflected_python_scalars(name):
    op = BINARY[name]
    a = np.abs(randn(2, 3)) + 0.5
    np.testing.assert_allclose(op(2.0, Tensor(a)).data, op(2.0, a))
    np.testing.assert_allclose(op(Tensor(a), 2.0).data, op(a, 2.0))


def test_list_operand():
    np.testing.assert_allclose((Tensor([1.0, 2.0]) + [10.0, 20.0]).data, [11.0, 22.0])


def test_negation():
    a = randn(2, 3)
    np.testing.assert_allclose((-Tensor(a)).data, -a)


def test_python_scalars_do_not_upcast():
    t32 = Tensor(np.ones(3, dtype=np.float32))
    for result in [t32 + 1.0, 2.0 * t32, t32 / 3.0, t32 ** 2, 1.0 - t32, 1 / t32]:
        assert result.dtype == np.float32
    assert (Tensor(np.ones(3)) * 2.0).dtype == np.float64
    assert (Tensor([1, 2]) / 2).dtype == np.float64       # true division of ints gives floats, as NumPy


def test_ops_do_not_mutate_inputs():
    a, b = randn(2, 3), randn(3)
    a_copy, b_copy = a.copy(), b.copy()
    ta, tb = Tensor(a), Tensor(b)
    for result in [ta + tb, ta - tb, ta * tb, ta / tb, -ta, ta.exp(), ta.sum(0), ta.T, ta @ tb]:
        assert result is not ta
    np.testing.assert_array_equal(a, a_copy)
    np.testing.assert_array_equal(b, b_copy)


def test_broadcast_error_names_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"\(4,\) and \(2, 3\)"):
        np.ones(4) * Tensor(np.ones((2, 3)))


def test_unsupported_operand_is_a_type_error():
    with pytest.raises(TypeError):
        Tensor([1.0]) + "a"
    with pytest.raises(TypeError):
        Tensor([1.0]) @ object()


def test_ndarray_on_the_left_defers_to_tensor():
    a, b = randn(2, 3), randn(2, 3)
    for result in [a + Tensor(b), a - Tensor(b), a * Tensor(b), a / Tensor(b), a < Tensor(b)]:
        assert isinstance(result, Tensor)


def test_numpy_ufuncs_are_refused():
    with pytest.raises(TypeError):
        np.exp(Tensor([1.0]))


# ---- comparisons ---------------------------------------------------------------------------------

@pytest.mark.parametrize("op", [
    lambda a, b: a < b, lambda a, b: a <= b, lambda a, b: a > b,
    lambda a, b: a >= b, lambda a, b: a == b, lambda a, b: a != b,
])
def test_comparisons_give_bool_tensors(op):
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    b = np.array([2.0, 2.0, 2.0])
    for got in [op(Tensor(a), Tensor(b)), op(Tensor(a), b), op(a, Tensor(b)), op(Tensor(a), 2.0)]:
        assert isinstance(got, Tensor) and got.dtype == np.bool_
        np.testing.assert_array_equal(got.data, op(a, b))


def test_equality_with_non_numeric_is_false():
    assert (Tensor([1.0]) == "x") is False
    assert (Tensor([1.0]) != None) is True  # noqa: E711  (falls back to identity)


# ---- matmul ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("left, right", [
    ((2, 3), (3, 4)), ((1, 1), (1, 1)), ((5, 2, 3), (5, 3, 4)), ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)),
    ((2, 1, 2, 3), (4, 3, 2)), ((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)), ((5, 2, 3), (3,)),
    ((3,), (5, 3, 2)),
])
def test_matmul_matches_numpy(left, right):
    a, b = randn(*left), randn(*right)
    expected = np.matmul(a, b)
    for got in [Tensor(a) @ Tensor(b), Tensor(a) @ b, a @ Tensor(b)]:
        assert isinstance(got, Tensor) and got.shape == expected.shape
        np.testing.assert_allclose(got.data, expected)


def test_matmul_error_message():
    message = ("matmul: shapes (2, 3) and (4, 5) are not aligned: "
               "3 (last dim of left) != 4 (second-to-last of right)")
    with pytest.raises(ValueError) as info:
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    assert str(info.value) == message


@pytest.mark.parametrize("left, right, pattern", [
    ((2, 3), (4,), r"3 \(last dim of left\) != 4"),
    ((2, 2, 3), (3, 3, 4), r"batch dimensions \(2,\) and \(3,\)"),
    ((), (3,), r"at least one dimension"),
])
def test_matmul_other_errors(left, right, pattern):
    with pytest.raises(ValueError, match=pattern):
        Tensor(np.ones(left)) @ Tensor(np.ones(right))


def test_matmul_with_python_scalar_is_rejected():
    with pytest.raises(ValueError, match="use \\*"):
        Tensor(np.ones((2, 2))) @ 2.0


# ---- reductions ----------------------------------------------------------------------------------

AXES = [None, 0, 1, 2, -1, -3, (0,), (0, 1), (1, 2), (0, 2), (0, 1, 2), (-1, 0), [0, 2]]


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_match_numpy(name, axis, keepdims):
    x = randn(2, 3, 4)
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    expected = getattr(np, name)(x, axis=np_axis, keepdims=keepdims)
    got = getattr(Tensor(x), name)(axis=axis, keepdims=keepdims)
    assert isinstance(got, Tensor) and got.shape == expected.shape
    np.testing.assert_allclose(got.data, expected)


def test_reduction_positional_axis():
    x = randn(2, 3)
    np.testing.assert_allclose(Tensor(x).sum(1).data, x.sum(1))


def test_reduction_keeps_float32():
    t = Tensor(np.ones((2, 3), dtype=np.float32))
    assert t.sum().dtype == np.float32 and t.mean(0).dtype == np.float32 and t.max().dtype == np.float32


@pytest.mark.parametrize("axis, error, pattern", [
    (3, ValueError, r"sum: axis 3 is out of range for a tensor of shape \(2, 3, 4\)"),
    (-4, ValueError, r"out of range"),
    ((0, 0), ValueError, r"same axis twice"),
    ((1, -2), ValueError, r"same axis twice"),
    (1.0, TypeError, r"axis must be an int"),
])
def test_reduction_axis_errors(axis, error, pattern):
    with pytest.raises(error, match=pattern):
        Tensor(np.ones((2, 3, 4))).sum(axis=axis)


def test_max_of_empty_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        Tensor(np.ones((0, 3))).max()


# ---- shape operations -------------------------------------------------------------------------

def test_reshape_forms():
    x = randn(2, 3, 4)
    t = Tensor(x)
    for args, shape in [((6, 4), (6, 4)), (((6, 4),), (6, 4)), (([4, 6],), (4, 6)), ((-1,), (24,)),
                        ((2, -1), (2, 12)), ((24, 1, 1), (24, 1, 1))]:
        got = t.reshape(*args)
        assert got.shape == shape
        np.testing.assert_array_equal(got.data, x.reshape(shape))


def test_reshape_error():
    with pytest.raises(ValueError, match=r"shape \(2, 3\) \(6 elements\) into shape \(4,\)"):
        Tensor(np.ones((2, 3))).reshape(4)


@pytest.mark.parametrize("axes", [(), ((1, 0, 2),), (2, 0, 1), (0, 2, 1), (-1, 0, 1), ([1, 2, 0],)])
def test_transpose_matches_numpy(axes):
    x = randn(2, 3, 4)
    np_axes = None
    if axes:
        np_axes = tuple(axes[0]) if isinstance(axes[0], (tuple, list)) else axes
    np.testing.assert_array_equal(Tensor(x).transpose(*axes).data, x.transpose(np_axes))


def test_T_reverses_axes():
    x = randn(2, 3, 4)
    np.testing.assert_array_equal(Tensor(x).T.data, x.T)
    np.testing.assert_array_equal(Tensor(randn(5)).T.data.shape, (5,))


@pytest.mark.parametrize("axes", [(0, 1), (0, 1, 1), (0, 1, 3)])
def test_transpose_error(axes):
    with pytest.raises(ValueError, match=r"not a permutation .* shape \(2, 3, 4\)"):
        Tensor(np.ones((2, 3, 4))).transpose(*axes)


# ---- indexing --------------------------------------------------------------------------------------

INDICES = [
    0, -1, (1, 2), slice(1, None), (slice(None), 1), (Ellipsis, 0), (None, 0), np.array([2, 0, 2]),
    [0, 0, 1], (np.array([0, 1]), np.array([3, 2])), np.array([True, False, True]),
    (slice(None), np.array([True, False, True, False])),
]


@pytest.mark.parametrize("index", INDICES, ids=[repr(i) for i in INDICES])
def test_indexing_matches_numpy(index):
    x = randn(3, 4)
    got = Tensor(x)[index]
    assert isinstance(got, Tensor)
    np.testing.assert_array_equal(got.data, x[index])


def test_indexing_with_tensors():
    x = randn(3, 4)
    t = Tensor(x)
    np.testing.assert_array_equal(t[Tensor([2, 0])].data, x[[2, 0]])
    np.testing.assert_array_equal(t[t > 0].data, x[x > 0])
    np.testing.assert_array_equal(t[Tensor([0, 1]), Tensor([3, 3])].data, x[[0, 1], [3, 3]])


def test_integer_index_gives_0d_tensor():
    t = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert t[1, 2].shape == () and t[1, 2].dtype == np.float32 and t[1, 2].item() == 5.0


def test_index_out_of_bounds():
    with pytest.raises(IndexError):
        Tensor(np.ones(3))[5]


# ---- exp / log -------------------------------------------------------------------------------------

def test_exp_log():
    x = np.abs(randn(2, 3)) + 0.1
    np.testing.assert_allclose(Tensor(x).exp().data, np.exp(x))
    np.testing.assert_allclose(Tensor(x).log().data, np.log(x))
    assert Tensor([1.0]).exp().dtype == np.float32
    np.testing.assert_allclose(Tensor(x).log().exp().data, x)


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
