"""Unit tests of module 05 (networks) against the exported package."""

import numpy as np
import pytest

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import Variable, check_gradients
from tinytorch.core.layers import Dense, Dropout, Module
from tinytorch.core.networks import MLP, Sequential, create_mlp, load_parameters, save_parameters
from tinytorch.core.tensor import Tensor


def as_float64(model):
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    return model


# --- Sequential ---------------------------------------------------------------------------------------


def test_sequential_applies_layers_in_order():
    calls = []

    class Tag(Module):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, x):
            calls.append(self.name)
            return x * 2.0

    out = Sequential([Tag("a"), Tag("b"), Tag("c")])(Tensor(np.ones(2, dtype=np.float32)))
    assert calls == ["a", "b", "c"]
    np.testing.assert_array_equal(out.data, [8.0, 8.0])


def test_sequential_container_protocol():
    layers = [Dense(2, 3, seed=0), ReLU(), Dense(3, 1, seed=1)]
    model = Sequential(layers)
    assert len(model) == 3 and list(model) == layers and model[1] is layers[1] and model[-1] is layers[2]
    head = model[:2]
    assert isinstance(head, Sequential) and list(head) == layers[:2]
    assert head.parameters() == [layers[0].weights, layers[0].bias]      # slices share the layers
    assert model.append(Sigmoid()) is model and len(model) == 4
    assert Sequential(tuple(layers)).parameters() == model.parameters()


def test_sequential_names_and_nested_containers():
    inner = Sequential([Dense(2, 2, seed=0), Tanh()])
    model = Sequential([inner, Dense(2, 1, seed=1)])
    assert [n for n, _ in model.named_parameters()] == ["0.0.weights", "0.0.bias", "1.weights", "1.bias"]
    assert model.modules()[:3] == [model, inner, inner[0]]
    model.eval()
    assert not inner.training and not inner[0].training


def test_sequential_repr_shows_every_layer():
    text = repr(Sequential([Dense(2, 3, bias=False, seed=0), GELU(), Dropout(0.2), Softmax()]))
    assert text.splitlines() == [
        "Sequential(",
        "  (0): Dense(in_features=2, out_features=3, bias=False)",
        "  (1): GELU(approximate='none')",
        "  (2): Dropout(p=0.2)",
        "  (3): Softmax(axis=-1)",
        ")",
    ]


def test_sequential_dropout_follows_train_eval():
    model = Sequential([Dense(4, 64, seed=0), Dropout(0.5, seed=1), Dense(64, 2, seed=2)])
    x = Tensor(np.ones((3, 4), dtype=np.float32))
    assert not np.array_equal(model(x).data, model(x).data)
    model.eval()
    np.testing.assert_array_equal(model(x).data, model(x).data)


def test_sequential_gradients_float64():
    model = as_float64(Sequential([Dense(3, 4, seed=0), Tanh(), Dense(4, 2, seed=1), Softmax()]))
    x = Variable(np.random.default_rng(0).normal(size=(5, 3)), requires_grad=True)
    check_gradients(lambda x, *ps: model(x), x, *model.parameters())


def test_sequential_rejects_bad_arguments():
    with pytest.raises(TypeError, match="list of layers"):
        Sequential(Dense(2, 2))
    with pytest.raises(TypeError, match="layer 1"):
        Sequential([ReLU(), "relu"])
    with pytest.raises(TypeError, match="append"):
        Sequential().append(3)


# --- MLP / create_mlp --------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [[], [7], [7, 5, 3]])
def test_mlp_structure_shapes_and_count(hidden):
    model = MLP(6, hidden, 4)
    sizes = [6, *hidden, 4]
    dense = [layer for layer in model if isinstance(layer, Dense)]
    assert [(d.in_features, d.out_features) for d in dense] == list(zip(sizes[:-1], sizes[1:]))
    assert sum(isinstance(layer, ReLU) for layer in model) == len(hidden)
    assert isinstance(model[-1], Dense)                                     # logits by default
    assert sum(p.size for p in model.parameters()) == sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    assert model(Tensor(np.ones((2, 9, 6), dtype=np.float32))).shape == (2, 9, 4)
    assert isinstance(model, Sequential) and model.hidden_sizes == hidden


def test_mlp_activation_class_instance_or_none():
    assert [type(l).__name__ for l in MLP(2, [3, 3], 1, activation=Tanh)] == ["Dense", "Tanh", "Dense", "Tanh", "Dense"]
    shared = GELU(approximate="tanh")
    model = MLP(2, [3, 3], 1, activation=shared, output_activation=Sigmoid())
    assert model[1] is shared and model[3] is shared and isinstance(model[-1], Sigmoid)
    assert len(MLP(2, [3, 3], 1, activation=None)) == 3
    with pytest.raises(TypeError, match="activation"):
        MLP(2, [3], 1, activation="relu")


def test_create_mlp_seed_reproducible_and_forwarded():
    a = create_mlp(5, [8, 8], 3, activation=Tanh, output_activation=Softmax, seed=42)
    b = create_mlp(5, [8, 8], 3, activation=Tanh, output_activation=Softmax, seed=42)
    assert isinstance(a, MLP) and isinstance(a[-1], Softmax) and isinstance(a[1], Tanh)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    c = create_mlp(5, [8, 8], 3, seed=43)
    assert not np.array_equal(a[0].weights.data, c[0].weights.data)
    # the layers draw from one stream: no two layers of the same shape start equal
    assert not np.array_equal(a[2].weights.data[:5], a[0].weights.data)


def test_mlp_gradients_float64():
    model = as_float64(create_mlp(3, [4, 4], 2, activation=Tanh, output_activation=Sigmoid, seed=0))
    x = Variable(np.random.default_rng(1).normal(size=(6, 3)), requires_grad=True)
    check_gradients(lambda x, *ps: model(x), x, *model.parameters())


@pytest.mark.parametrize("args", [(3, 4, 2), (3, "4", 2)])
def test_mlp_hidden_sizes_must_be_a_list(args):
    with pytest.raises(TypeError, match="hidden_sizes"):
        MLP(*args)


@pytest.mark.parametrize("args", [(0, [4], 2), (3, [4, -1], 2), (3, [4], 0), (3, [2.5], 1)])
def test_mlp_sizes_must_be_positive_ints(args):
    with pytest.raises(ValueError, match="positive ints"):
        MLP(*args)


def test_mlp_wrong_input_width_names_shapes():
    with pytest.raises(ValueError, match=r"last dimension 6, got shape \(2, 5\)"):
        MLP(6, [3], 1)(Tensor(np.ones((2, 5), dtype=np.float32)))


# --- save / load -------------------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    path = tmp_path / "weights.npz"
    source = create_mlp(4, [6, 5], 3, seed=0)
    save_parameters(source, path)
    assert path.exists() and not (tmp_path / "weights.npz.npz").exists()
    with np.load(path) as archive:
        assert sorted(archive.files) == sorted(name for name, _ in source.named_parameters())
        np.testing.assert_array_equal(archive["2.weights"], source[2].weights.data)
        assert archive["0.weights"].dtype == np.float32
    target = create_mlp(4, [6, 5], 3, seed=99)
    load_parameters(target, str(path))                        # str or Path
    for (n1, p), (n2, q) in zip(source.named_parameters(), target.named_parameters()):
        assert n1 == n2
        np.testing.assert_array_equal(p.data, q.data)
        assert q.data is not p.data
    x = Tensor(np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32))
    np.testing.assert_array_equal(source(x).data, target(x).data)


def test_save_path_without_suffix_is_written_exactly(tmp_path):
    path = tmp_path / "checkpoint"
    model = create_mlp(2, [2], 1, seed=0)
    save_parameters(model, path)
    assert path.exists()
    load_parameters(create_mlp(2, [2], 1, seed=1), path)


def test_load_casts_to_model_dtype(tmp_path):
    path = tmp_path / "f64.npz"
    source = as_float64(create_mlp(2, [3], 1, seed=0))
    save_parameters(source, path)
    target = create_mlp(2, [3], 1, seed=1)
    load_parameters(target, path)
    assert all(p.dtype == np.float32 for p in target.parameters())
    np.testing.assert_allclose(target[0].weights.data, source[0].weights.data, rtol=1e-6)


def test_load_shape_mismatch_names_parameter_and_both_shapes(tmp_path):
    path = tmp_path / "m.npz"
    save_parameters(create_mlp(4, [6], 3, seed=0), path)
    target = create_mlp(4, [7], 3, seed=1)
    before = [p.data.copy() for p in target.parameters()]
    with pytest.raises(ValueError, match=r"0\.weights.*\(4, 6\).*\(4, 7\)"):
        load_parameters(target, path)
    for p, old in zip(target.parameters(), before):           # nothing was loaded
        np.testing.assert_array_equal(p.data, old)


def test_load_count_mismatch_names_missing_parameters(tmp_path):
    path = tmp_path / "m.npz"
    save_parameters(create_mlp(4, [6], 3, seed=0), path)
    with pytest.raises(ValueError, match=r"4 parameters but the model has 6.*'4\.weights'"):
        load_parameters(create_mlp(4, [6, 6], 3, seed=1), path)
    with pytest.raises(ValueError, match=r"4 parameters but the model has 2.*not in the model.*'2\.bias'"):
        load_parameters(create_mlp(4, [], 3, seed=1), path)


def test_load_same_count_different_names(tmp_path):
    path = tmp_path / "m.npz"
    save_parameters(Sequential([Dense(2, 2, seed=0), Dense(2, 2, seed=1)]), path)
    with pytest.raises(ValueError, match="missing from the file"):
        load_parameters(Sequential([Dense(2, 2, seed=0), ReLU(), Dense(2, 2, seed=1)]), path)


def test_save_load_reject_non_modules(tmp_path):
    with pytest.raises(TypeError, match="Module"):
        save_parameters([Dense(2, 2)], tmp_path / "x.npz")
    with pytest.raises(TypeError, match="Module"):
        load_parameters("model", tmp_path / "x.npz")


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
