"""Unit tests of module 04 (layers) against the exported package."""

import math

import numpy as np
import pytest

from tinytorch.core.autograd import Variable, check_gradients, no_grad
from tinytorch.core.layers import Dense, Dropout, Linear, Module
from tinytorch.core.tensor import Tensor


def as_float64(layer):
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
    return layer


# --- Module -------------------------------------------------------------------------------------------


class Block(Module):
    def __init__(self, seed):
        super().__init__()
        self.inner = Dense(3, 4, seed=seed)
        self.drop = Dropout(0.1, seed=seed)
        self.outer = Dense(4, 2, seed=seed + 1)


class Model(Module):
    def __init__(self):
        super().__init__()
        self.embed = Variable(np.zeros((5, 3), dtype=np.float32), requires_grad=True)
        self.blocks = [Block(0), Block(10)]
        self.pair = (Dense(2, 2, seed=20), Dense(2, 2, bias=False, seed=21))
        self.head = Dense(2, 1, seed=22)
        self.tied = self.embed                            # shared Variable: listed once
        self.constant = Variable(np.ones(3), requires_grad=False)   # not trainable: not listed
        self.not_a_param = np.ones(3)                     # arrays and Tensors are not parameters
        self.also_not = Tensor(np.ones(3))


def test_parameters_in_assignment_order_without_duplicates():
    model = Model()
    names = [name for name, _ in model.named_parameters()]
    assert names == [
        "embed",
        "blocks.0.inner.weights", "blocks.0.inner.bias", "blocks.0.outer.weights", "blocks.0.outer.bias",
        "blocks.1.inner.weights", "blocks.1.inner.bias", "blocks.1.outer.weights", "blocks.1.outer.bias",
        "pair.0.weights", "pair.0.bias", "pair.1.weights",
        "head.weights", "head.bias",
    ]
    params = model.parameters()
    assert params[0] is model.embed and params[1] is model.blocks[0].inner.weights
    assert len(params) == len({id(p) for p in params})
    assert all(isinstance(p, Variable) and p.requires_grad for p in params)


def test_shared_submodule_walked_once_and_cycles_terminate():
    shared = Dense(2, 2, seed=0)

    class Twice(Module):
        def __init__(self):
            super().__init__()
            self.a = shared
            self.b = shared
            self.me = self                  # a cycle must not recurse forever

    twice = Twice()
    assert twice.parameters() == [shared.weights, shared.bias]
    assert twice.modules() == [twice, shared]


def test_train_eval_recursive_and_chainable():
    model = Model()
    assert model.training and all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    assert not model.blocks[1].drop.training and not model.pair[1].training
    assert model.train() is model and all(m.training for m in model.modules())
    model.train(False)
    assert not model.head.training


def test_subclass_without_super_init_still_works():
    class Lazy(Module):
        def __init__(self):
            self.layer = Dense(2, 3, seed=0)

        def forward(self, x):
            return self.layer(x)

    lazy = Lazy()
    assert lazy.training and len(lazy.parameters()) == 2
    assert lazy(Tensor(np.ones((1, 2), dtype=np.float32))).shape == (1, 3)


def test_zero_grad_clears_every_parameter():
    model = Model()
    x = Variable(np.ones((2, 3), dtype=np.float32), requires_grad=False)
    for block in model.blocks:
        block.outer(block.inner(x)).sum().backward()
    assert model.blocks[0].inner.weights.grad is not None
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_repr_is_nested_and_readable():
    text = repr(Block(0))
    assert text.splitlines() == [
        "Block(",
        "  (inner): Dense(in_features=3, out_features=4, bias=True)",
        "  (drop): Dropout(p=0.1)",
        "  (outer): Dense(in_features=4, out_features=2, bias=True)",
        ")",
    ]
    assert "(blocks.1): Block(\n    (inner)" in repr(Model())


def test_forward_not_implemented_names_the_class():
    class Empty(Module):
        pass

    with pytest.raises(NotImplementedError, match="Empty"):
        Empty()(Tensor(1.0))


# --- Dense --------------------------------------------------------------------------------------------


def test_dense_shapes_dtype_and_pytorch_init_bound():
    layer = Dense(300, 50, seed=0)
    assert layer.weights.shape == (300, 50) and layer.bias.shape == (50,)
    assert layer.weights.dtype == np.float32 and layer.bias.dtype == np.float32
    assert layer.weights.requires_grad and layer.bias.requires_grad
    bound = 1 / math.sqrt(300)
    for p in (layer.weights.data, layer.bias.data):
        assert np.abs(p).max() <= bound
    # uniform(-a, a): mean 0, variance a^2 / 3, and it fills the range. With n = 15,000 draws: the mean has sd
    # a / sqrt(3n) = 0.0047 a (0.05 a: 10 sd), the variance a relative sd sqrt(0.8 / n) = 0.0073 (0.05: 6.8 sd,
    # normal tail 1e-11), and all |w| stay below 0.99 a with probability 0.99**n = 4e-66.
    w = layer.weights.data
    assert abs(w.mean()) < 0.05 * bound
    assert w.var() == pytest.approx(bound ** 2 / 3, rel=0.05)
    assert np.abs(w).max() > 0.99 * bound


def test_dense_seed_int_and_generator():
    a, b = Dense(4, 3, seed=7), Dense(4, 3, seed=7)
    np.testing.assert_array_equal(a.weights.data, b.weights.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(Dense(4, 3, seed=8).weights.data, a.weights.data)
    rng = np.random.default_rng(0)
    first, second = Dense(4, 3, seed=rng), Dense(4, 3, seed=rng)   # one stream, different draws
    assert not np.array_equal(first.weights.data, second.weights.data)
    rng2 = np.random.default_rng(0)
    np.testing.assert_array_equal(Dense(4, 3, seed=rng2).weights.data, first.weights.data)


def test_dense_values_any_leading_dims():
    layer = Dense(4, 3, seed=1)
    x = np.random.default_rng(2).normal(size=(2, 5, 4)).astype(np.float32)
    expected = np.einsum("bsi,io->bso", x, layer.weights.data) + layer.bias.data
    y = layer(Tensor(x))
    assert type(y) is Tensor and y.shape == (2, 5, 3)
    np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-6)
    single = layer(Tensor(x[0, 0]))
    assert single.shape == (3,)
    np.testing.assert_allclose(single.data, expected[0, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(6, 4), (2, 3, 4), (4,)])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_gradients_float64(shape, bias):
    layer = as_float64(Dense(4, 3, bias=bias, seed=3))
    x = Variable(np.random.default_rng(4).normal(size=shape), requires_grad=True)
    params = layer.parameters()
    check_gradients(lambda x, *ps: layer(x), x, *params)


def test_dense_gradient_formulas():
    layer = Dense(3, 2, seed=5)
    x = np.random.default_rng(6).normal(size=(4, 3)).astype(np.float32)
    g = np.random.default_rng(7).normal(size=(4, 2)).astype(np.float32)
    xv = Variable(x, requires_grad=True)
    layer(xv).backward(g)
    np.testing.assert_allclose(layer.weights.grad.data, x.T @ g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.bias.grad.data, g.sum(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xv.grad.data, g @ layer.weights.data.T, rtol=1e-5, atol=1e-6)


def test_dense_data_variable_reaches_params_and_grads_accumulate():
    layer = Dense(3, 2, seed=8)
    x = Variable(np.ones((5, 3), dtype=np.float32), requires_grad=False)
    layer(x).sum().backward()
    np.testing.assert_allclose(layer.bias.grad.data, [5.0, 5.0])
    layer(x).sum().backward()
    np.testing.assert_allclose(layer.bias.grad.data, [10.0, 10.0])
    assert x.grad is None


def test_dense_no_grad_and_frozen_weights():
    layer = Dense(3, 2, seed=9)
    with no_grad():
        out = layer(Variable(np.ones((1, 3), dtype=np.float32)))
    assert not out.requires_grad
    layer.weights.requires_grad = False
    layer(Variable(np.ones((2, 3), dtype=np.float32), requires_grad=False)).sum().backward()
    assert layer.weights.grad is None and layer.bias.grad is not None
    assert layer.parameters() == [layer.bias]


def test_dense_bad_input_errors():
    layer = Dense(784, 10, seed=0)
    with pytest.raises(ValueError, match=r"784.*\(32, 100\)"):
        layer(Tensor(np.ones((32, 100), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"shape \(\)"):
        layer(Tensor(np.float32(1.0)))
    with pytest.raises(TypeError, match="ndarray"):
        layer(np.ones((1, 784)))
    for args, error in [((0, 3), ValueError), ((3, -2), ValueError), ((2.5, 3), TypeError), ((True, 3), TypeError)]:
        with pytest.raises(error, match="Dense"):
            Dense(*args)


def test_linear_alias_and_repr():
    assert Linear is Dense
    assert repr(Linear(2, 3, bias=False)) == "Dense(in_features=2, out_features=3, bias=False)"


# --- Dropout ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    x = Tensor(np.full((400, 500), 2.0, dtype=np.float32))
    y = Dropout(p, seed=1)(x).data
    n = y.size
    # 6.5 standard deviations: a normal tail of 8e-11 for each of the two (n = 200,000: the binomial is normal
    # to well within that; five sd, as before, is 6e-7)
    tolerance = 6.5 * math.sqrt(p * (1 - p) / n)
    assert abs(np.mean(y == 0) - p) < tolerance
    np.testing.assert_allclose(y[y != 0], 2.0 / (1 - p), rtol=1e-6)
    assert abs(y.mean() - 2.0) < 6.5 * 2.0 * math.sqrt(p / (1 - p) / n)   # inverted dropout keeps the mean


def test_dropout_eval_identity_and_p_zero():
    x = Variable(np.random.default_rng(0).normal(size=(3, 4)), requires_grad=True)
    drop = Dropout(0.5, seed=0).eval()
    assert drop(x) is x
    assert Dropout(0.0)(x) is x


def test_dropout_seeded_reproducible_and_independent_of_global_state():
    x = Tensor(np.ones((50, 50), dtype=np.float32))
    np.random.seed(0)
    a = Dropout(0.4, seed=3)(x).data
    np.random.seed(123)
    b = Dropout(0.4, seed=3)(x).data
    np.testing.assert_array_equal(a, b)
    drop = Dropout(0.4, seed=3)
    assert not np.array_equal(drop(x).data, drop(x).data)


def test_dropout_gradient_is_scaled_mask_float64():
    v = Variable(np.random.default_rng(2).normal(size=(20, 30)), requires_grad=True)
    out = Dropout(0.25, seed=4)(v)
    assert out.dtype == np.float64
    upstream = np.random.default_rng(3).normal(size=(20, 30))
    out.backward(upstream)
    mask_scale = out.data / v.data
    assert set(np.round(np.unique(mask_scale), 12)) <= {0.0, round(1 / 0.75, 12)}
    np.testing.assert_allclose(v.grad.data, upstream * mask_scale, rtol=1e-12)


def test_dropout_gradient_checked_with_fixed_mask():
    # The same seed gives the same mask on every call, so finite differences see one fixed function.
    v = Variable(np.random.default_rng(5).normal(size=(4, 5)), requires_grad=True)
    check_gradients(lambda x: Dropout(0.3, seed=11)(x), v)


@pytest.mark.parametrize("p,error", [(1.0, ValueError), (-0.1, ValueError), (2, ValueError), ("0.5", TypeError),
                                     (True, TypeError)])
def test_dropout_validates_p(p, error):
    with pytest.raises(error, match="p"):
        Dropout(p)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
