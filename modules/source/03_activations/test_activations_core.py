"""Unit tests of module 03 (activations) against the exported package."""

import math

import numpy as np
import pytest

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import Variable, check_gradients, no_grad
from tinytorch.core.tensor import Tensor

ALL = [ReLU(), Sigmoid(), Tanh(), Softmax(), Softmax(axis=0), GELU(), GELU(approximate="tanh")]


def normal_cdf(v):
    return 0.5 * math.erfc(-v / math.sqrt(2.0))


REFERENCE = {  # NumPy / math formulas written independently of the implementation
    "ReLU": lambda x: np.maximum(x, 0.0),
    "Sigmoid": lambda x: np.array([1.0 / (1.0 + math.exp(-v)) for v in x.ravel()]).reshape(x.shape),
    "Tanh": np.tanh,
    "GELU": lambda x: np.array([v * normal_cdf(v) for v in x.ravel()]).reshape(x.shape),
}


@pytest.mark.parametrize("act", ALL, ids=repr)
def test_tensor_in_gives_tensor_out_same_shape(act):
    x = Tensor(np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32))
    y = act(x)
    assert type(y) is Tensor
    assert y.shape == x.shape and y.dtype == np.float32


@pytest.mark.parametrize("act", ALL, ids=repr)
def test_variable_in_gives_connected_variable(act):
    v = Variable(np.random.default_rng(1).normal(size=(2, 5)), requires_grad=True)
    out = act(v)
    assert isinstance(out, Variable) and out.requires_grad
    out.backward(np.ones(out.shape))
    assert v.grad is not None and v.grad.shape == v.shape


@pytest.mark.parametrize("act", ALL, ids=repr)
def test_no_grad_records_nothing(act):
    v = Variable(np.ones((2, 3)), requires_grad=True)
    with no_grad():
        out = act(v)
    assert isinstance(out, Variable) and not out.requires_grad


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_values_match_reference_formulas(name):
    x = np.linspace(-8.0, 8.0, 33)
    act = {"ReLU": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh, "GELU": GELU}[name]()
    np.testing.assert_allclose(act(Tensor(x)).data, REFERENCE[name](x), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("act", [ReLU(), Sigmoid(), Tanh(), GELU(), GELU(approximate="tanh")], ids=repr)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2)])
def test_elementwise_gradients_float64(act, shape):
    rng = np.random.default_rng(sum(shape))
    data = rng.uniform(0.2, 3.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)  # away from ReLU's kink
    check_gradients(act, Variable(data, requires_grad=True))


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
def test_softmax_gradients_every_axis(axis):
    data = np.random.default_rng(axis + 7).normal(size=(3, 4, 5))
    check_gradients(Softmax(axis=axis), Variable(data, requires_grad=True))


def test_softmax_gradients_large_logits():
    data = np.random.default_rng(3).normal(size=(4, 6)) * 3.0 + 800.0
    check_gradients(Softmax(), Variable(data, requires_grad=True))
    check_gradients(Softmax(axis=0), Variable(-data, requires_grad=True))


def test_softmax_probabilities_and_stability():
    logits = np.array([[1000.0, 1000.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise"):
        p = Softmax()(Tensor(logits)).data
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    x = np.random.default_rng(4).normal(size=(2, 3, 4))
    for axis in (0, 1, 2, -1):
        np.testing.assert_allclose(Softmax(axis=axis)(Tensor(x)).data.sum(axis=axis), 1.0, rtol=1e-12)
    # shift invariance: adding a constant along the axis changes nothing
    np.testing.assert_allclose(Softmax(axis=1)(Tensor(x + 50.0)).data, Softmax(axis=1)(Tensor(x)).data, rtol=1e-10)


def test_softmax_gradient_sums_to_zero_along_axis():
    # Probabilities always sum to 1, so any upstream gradient gives a gradient with zero sum along the axis.
    v = Variable(np.random.default_rng(5).normal(size=(3, 5)), requires_grad=True)
    Softmax()(v).backward(np.random.default_rng(6).normal(size=(3, 5)))
    np.testing.assert_allclose(v.grad.data.sum(axis=-1), 0.0, atol=1e-12)


def test_sigmoid_extremes_no_overflow():
    x = np.array([-1e4, -745.0, -88.0, -30.0, 0.0, 30.0, 88.0, 745.0, 1e4])
    for dtype in (np.float32, np.float64):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            s = Sigmoid()(Tensor(x.astype(dtype))).data
        assert s.dtype == dtype and np.all((s >= 0) & (s <= 1))
        assert s[0] == 0.0 and s[-1] == 1.0 and s[4] == 0.5
    s64 = Sigmoid()(Tensor(np.array([-30.0])))
    np.testing.assert_allclose(s64.data, [math.exp(-30.0) / (1 + math.exp(-30.0))], rtol=1e-12)  # tail precision


def test_gelu_tail_and_symmetry():
    x = np.array([-12.0, -6.0, 0.0, 6.0, 12.0])
    y = GELU()(Tensor(x)).data
    np.testing.assert_allclose(y[0], -12.0 * 0.5 * math.erfc(12.0 / math.sqrt(2)), rtol=1e-12)  # tiny, exact
    # GELU(x) - GELU(-x) = x Phi(x) + x Phi(-x) = x
    np.testing.assert_allclose(y - GELU()(Tensor(-x)).data, x, rtol=1e-14, atol=1e-15)


def test_integer_input_is_promoted_to_float32():
    y = Sigmoid()(Tensor(np.array([0, 1, 2])))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, 1 / (1 + np.exp(-np.array([0.0, 1.0, 2.0]))), rtol=1e-6)
    assert ReLU()(Tensor(np.array([-1, 2]))).data.tolist() == [0, 2]


def test_gradient_accumulates_across_calls():
    v = Variable(np.array([0.5, -0.5]), requires_grad=True)
    Tanh()(v).sum().backward()
    first = v.grad.data.copy()
    Tanh()(v).sum().backward()
    np.testing.assert_allclose(v.grad.data, 2 * first)


@pytest.mark.parametrize("cls", [ReLU, Sigmoid, Tanh, Softmax, GELU])
def test_non_tensor_input_raises_type_error(cls):
    with pytest.raises(TypeError, match="list"):
        cls()([1.0, 2.0])


def test_bad_settings_raise():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        Softmax(axis=1)(Tensor(np.ones(3)))
    with pytest.raises(ValueError, match=r"shape \(\)"):
        Softmax()(Tensor(np.float64(1.0)))
    with pytest.raises(TypeError, match="axis"):
        Softmax(axis=1.5)
    with pytest.raises(ValueError, match="approximate"):
        GELU(approximate="erf")


def test_repr():
    assert [repr(a) for a in (ReLU(), Softmax(axis=0), GELU())] == ["ReLU()", "Softmax(axis=0)", "GELU(approximate='none')"]


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
