"""Tests of tinytorch.core.compression (the exported package): pruning, masks, int8 quantization,
QuantizedDense, quantize_model and model_size_bytes."""

import copy

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Variable, check_gradients
from tinytorch.core.compression import (
    MaskedOptimizer,
    QuantizedDense,
    apply_masks,
    dequantize,
    magnitude_prune,
    model_size_bytes,
    prunable_parameters,
    quantize_int8,
    quantize_model,
    sparsity,
)
from tinytorch.core.layers import Dense, Dropout, Module
from tinytorch.core.networks import MLP, Sequential, create_mlp
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import CrossEntropyLoss


def mlp(seed=0):
    return create_mlp(8, [24, 16], 5, seed=seed)


def total_weights(model):
    return sum(p.size for _, p in prunable_parameters(model))


# --- pruning -------------------------------------------------------------------------------------

@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("s", [0.0, 0.1, 0.5, 0.8, 0.99])
def test_exact_sparsity(scope, s):
    model = mlp()
    masks = magnitude_prune(model, s, scope=scope)
    n = total_weights(model)
    if scope == "layer":
        for name, p in prunable_parameters(model):
            assert np.count_nonzero(p.data == 0) == round(s * p.size), name
            assert masks[name].dtype == bool and masks[name].shape == p.shape
    assert sparsity(model) == pytest.approx(round(s * n) / n, abs=1e-12) if scope == "global" else True
    assert sum(np.count_nonzero(~m) for m in masks.values()) == (
        round(s * n) if scope == "global" else sum(round(s * p.size) for _, p in prunable_parameters(model)))


def test_exact_sparsity_with_ties():
    layer = Dense(4, 5, seed=0)
    layer.weights.data[:] = 1.0                      # every weight ties
    masks = magnitude_prune(layer, 0.35)
    assert np.count_nonzero(~masks["weights"]) == 7 and np.count_nonzero(layer.weights.data) == 13


def test_layer_scope_prunes_the_smallest_of_each_layer():
    model = mlp()
    before = {name: np.abs(p.data).copy() for name, p in model.named_parameters()}
    masks = magnitude_prune(model, 0.6, scope="layer")
    for name, mask in masks.items():
        assert before[name][~mask].max() <= before[name][mask].min()


def test_global_scope_uses_one_threshold_and_differs_per_layer():
    model = mlp()
    # A layer with larger weights keeps more. Every first-layer weight is moved 1 further from 0, past every
    # other weight (|w| <= 1/sqrt(16)), so it keeps them all whatever the draw. (Scaled by 10, as before, some
    # draws reached 17 of the 19 prunings that the former bound of 10% allowed.)
    model[0].weights.data += np.sign(model[0].weights.data)
    before = {name: np.abs(p.data).copy() for name, p in model.named_parameters()}
    masks = magnitude_prune(model, 0.5, scope="global")
    pruned = np.concatenate([before[n][~m] for n, m in masks.items()])
    kept = np.concatenate([before[n][m] for n, m in masks.items()])
    assert pruned.max() <= kept.min()
    per_layer = {n: np.mean(~m) for n, m in masks.items()}
    assert per_layer["0.weights"] == 0 and per_layer["2.weights"] > 0.5, per_layer   # layer 2: 0.73, sd 0.01


def test_biases_are_not_pruned_and_repruning_is_monotone():
    model = mlp()
    biases = [p.data.copy() for name, p in model.named_parameters() if p.ndim == 1]
    first = magnitude_prune(model, 0.5, scope="global")
    second = magnitude_prune(model, 0.8, scope="global")
    for name in first:
        assert not np.any(second[name] & ~first[name]), "a weight pruned at 50% came back at 80%"
    np.testing.assert_array_equal(np.concatenate(biases),
                                  np.concatenate([p.data for _, p in model.named_parameters() if p.ndim == 1]))


def test_masks_respected_after_optimizer_steps():
    rng = np.random.default_rng(0)
    for make in (lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01), lambda ps: Adam(ps, lr=0.01)):
        model = mlp()
        masks = magnitude_prune(model, 0.7, scope="layer")
        opt = MaskedOptimizer(make(model.parameters()), model, masks)
        x = Variable(rng.standard_normal((32, 8)).astype(np.float32), requires_grad=False)
        y = rng.integers(0, 5, 32)
        for _ in range(5):
            opt.zero_grad()
            CrossEntropyLoss()(model(x), y).backward()
            opt.step()
        pruned = sum(round(0.7 * p.size) for _, p in prunable_parameters(model))
        assert sparsity(model) >= pruned / total_weights(model) - 1e-12
        for name, p in model.named_parameters():
            if name in masks:
                assert np.all(p.data[~masks[name]] == 0)


def test_without_masks_an_optimizer_step_revives_pruned_weights():
    """Why MaskedOptimizer exists: a plain step moves pruned weights away from zero."""
    rng = np.random.default_rng(1)
    model = mlp()
    magnitude_prune(model, 0.7)
    opt = SGD(model.parameters(), lr=0.1)
    x = Variable(rng.standard_normal((32, 8)).astype(np.float32), requires_grad=False)
    CrossEntropyLoss()(model(x), rng.integers(0, 5, 32)).backward()
    opt.step()
    assert sparsity(model) < 0.6


def test_masked_optimizer_forwards_lr_and_validates():
    model = mlp()
    masks = magnitude_prune(model, 0.5)
    opt = MaskedOptimizer(Adam(model.parameters(), lr=0.01), model, masks)
    opt.lr = 0.002
    assert opt.optimizer.lr == 0.002 and opt.lr == 0.002
    with pytest.raises(TypeError, match="step"):
        MaskedOptimizer(object(), model, masks)
    with pytest.raises(ValueError, match="no parameter named 'nope'"):
        MaskedOptimizer(Adam(model.parameters()), model, {"nope": np.ones((2, 2), bool)})


def test_apply_masks_is_in_place_and_checks_shapes():
    model = mlp()
    array = model[0].weights.data
    masks = {"0.weights": np.zeros(array.shape, dtype=bool)}
    assert apply_masks(model, masks) is model
    assert model[0].weights.data is array and not array.any()
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(8, 24\)"):
        apply_masks(model, {"0.weights": np.ones((3, 3), bool)})
    with pytest.raises(TypeError, match="dict"):
        apply_masks(model, [np.ones((8, 24), bool)])


@pytest.mark.parametrize("bad", [1.0, 1.2, -0.01, float("nan"), "0.5", True])
def test_sparsity_outside_range_is_rejected(bad):
    with pytest.raises(ValueError, match="0, 1"):
        magnitude_prune(mlp(), bad)


def test_non_module_and_bad_scope_are_rejected():
    with pytest.raises(TypeError, match="Module.*ndarray"):
        magnitude_prune(np.ones((4, 4)), 0.5)
    with pytest.raises(TypeError, match="list"):
        sparsity([Dense(2, 2)])
    with pytest.raises(ValueError, match="scope.*'layers'"):
        magnitude_prune(mlp(), 0.5, scope="layers")
    with pytest.raises(ValueError, match="no weight parameters"):
        magnitude_prune(Sequential([ReLU()]), 0.5)


# --- quantization --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_round_trip_error_is_at_most_half_a_step(dtype, axis):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((64, 48)) * rng.uniform(0.001, 100, size=48)).astype(dtype)
    q, scale = quantize_int8(x, axis=axis)
    assert q.dtype == np.int8 and q.shape == x.shape and scale.dtype == np.float32
    if axis is not None:
        expected = [1, 1]
        expected[axis] = x.shape[axis]
        assert scale.shape == tuple(expected)
    assert np.abs(q).max() == 127 and q.min() >= -127
    error = np.abs(dequantize(q, scale).astype(np.float64) - x)
    assert np.all(error <= scale.astype(np.float64) / 2 * (1 + 1e-6)), float((error / scale).max())


def test_quantization_is_the_nearest_grid_point():
    scale = np.float32(0.5) / 127
    x = np.array([-0.5, 0.0, 0.5, scale * 3.4, scale * 3.6, -scale * 10.2], dtype=np.float64)
    q, s = quantize_int8(x)
    assert s == np.float32(0.5 / 127)
    assert q.tolist() == [-127, 0, 127, 3, 4, -10]


def test_per_channel_beats_per_tensor_on_channels_with_different_ranges():
    rng = np.random.default_rng(3)
    ranges = np.logspace(-3, 0, 16)
    z = rng.standard_normal((100, 16))
    w = (z / np.abs(z).max(axis=0) * ranges).astype(np.float32)    # channel c spans exactly +-ranges[c]
    err_tensor = np.abs(dequantize(*quantize_int8(w)) - w)
    err_channel = np.abs(dequantize(*quantize_int8(w, axis=1)) - w)
    assert err_channel.mean() < err_tensor.mean()   # their ratio: 0.16 to 0.29 over 3000 draws (sd 0.017)
    # Per channel, every value is within half a step (ranges[c] / 127 / 2) of its grid, whatever the draw; per
    # tensor the step is 1 / 127 and all of channel 0 (|w| <= 1e-3 < half a step) rounds to 0: error 100%.
    # (The mean error over the mean |w| of a channel, asserted < 1% before, reached 1.3% in 3000 draws.)
    assert (err_channel.max(axis=0) / ranges).max() <= 1.001 / 254
    rel_tensor = err_tensor.mean(axis=0) / np.abs(w).mean(axis=0)
    assert rel_tensor[0] == pytest.approx(1.0)


def test_zeros_stay_exact_and_zero_channels_get_scale_one():
    w = np.zeros((5, 3), dtype=np.float32)
    w[:, 0] = [1, -2, 0, 0.5, 0]
    q, scale = quantize_int8(w, axis=1)
    assert scale[0, 1] == scale[0, 2] == 1.0 and not q[:, 1:].any()
    assert np.all(q[w == 0] == 0)
    q0, s0 = quantize_int8(np.zeros(4))
    assert s0 == 1.0 and not q0.any()


def test_quantize_accepts_tensors_and_rejects_bad_input():
    q, s = quantize_int8(Tensor(np.arange(-3.0, 4.0)))
    np.testing.assert_array_equal(q, [-127, -85, -42, 0, 42, 85, 127])
    with pytest.raises(ValueError, match=r"axis.*\(7,\)"):
        quantize_int8(np.ones(7), axis=1)
    with pytest.raises(ValueError, match="inf or nan"):
        quantize_int8(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="empty"):
        quantize_int8(np.zeros((0, 3)))
    with pytest.raises(TypeError, match="list"):
        quantize_int8([1.0, 2.0])
    with pytest.raises(TypeError, match="int8"):
        dequantize(np.ones(3, dtype=np.int32), 1.0)
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        dequantize(np.ones(3, dtype=np.int8), np.ones(4))


# --- QuantizedDense and quantize_model -----------------------------------------------------------

def test_quantized_dense_matches_dequantized_weights_and_is_close_to_float():
    rng = np.random.default_rng(4)
    dense = Dense(40, 12, seed=1)
    x = rng.standard_normal((7, 40)).astype(np.float32)
    for per_channel, scale_shape in ((True, (1, 12)), (False, ())):
        layer = QuantizedDense(dense, per_channel=per_channel)
        assert layer.scale.shape == scale_shape
        y = layer(Tensor(x)).data
        np.testing.assert_allclose(y, x @ layer.dequantized_weights() + dense.bias.data, rtol=1e-5, atol=1e-6)
        rel = np.linalg.norm(y - dense(Tensor(x)).data) / np.linalg.norm(dense(Tensor(x)).data)
        assert rel < 0.01, rel         # 0.0039 on average over 2000 draws, sd 0.00045, at most 0.0058


def test_quantized_dense_without_bias_and_float64_gradient():
    dense = Dense(6, 4, bias=False, seed=2)
    layer = QuantizedDense(dense)
    assert layer.bias is None and "bias=False" in repr(layer)
    x = Variable(np.random.default_rng(5).standard_normal((3, 2, 6)), requires_grad=True)
    out = layer(x)
    assert isinstance(out, Variable) and out.dtype == np.float64
    check_gradients(lambda v: layer(v), x)


def test_quantized_dense_errors():
    with pytest.raises(TypeError, match="Dense.*ReLU"):
        QuantizedDense(ReLU())
    layer = QuantizedDense(Dense(5, 2, seed=0))
    with pytest.raises(ValueError, match=r"5.*\(4, 3\)"):
        layer(Tensor(np.ones((4, 3), dtype=np.float32)))
    with pytest.raises(TypeError, match="ndarray"):
        layer(np.ones((4, 5)))


def test_quantized_model_output_close_to_float_model_and_original_untouched():
    rng = np.random.default_rng(6)
    model = MLP(20, [64, 32], 6, seed=0)
    snapshot = copy.deepcopy([p.data for p in model.parameters()])
    small = quantize_model(model)
    assert isinstance(small, MLP) and small is not model and small.layers is not model.layers
    assert all(isinstance(layer, Dense) for layer in model.layers[::2])
    assert all(isinstance(layer, QuantizedDense) for layer in small.layers[::2])
    assert small.layers[1] is model.layers[1]            # activations are shared
    for p, before in zip(model.parameters(), snapshot):
        np.testing.assert_array_equal(p.data, before)
    x = Tensor(rng.standard_normal((100, 20)).astype(np.float32))
    ref, out = model(x).data, small(x).data
    # 0.0047 on average over 600 draws, sd 0.0010, at most 0.0084: 0.02 is 15 sd away (0.01, before, 5 sd)
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < 0.02
    assert small.parameters() == []


def test_quantize_model_on_custom_modules_nested_and_shared_layers():
    class Net(Module):
        def __init__(self):
            super().__init__()
            shared = Dense(4, 4, seed=0)
            self.body = Sequential([shared, ReLU(), Sequential([Dense(4, 4, seed=1), Dropout(0.1)]), shared])
            self.head = Dense(4, 2, seed=2)

        def forward(self, x):
            return self.head(self.body(x))

    net = Net().eval()
    small = quantize_model(net).eval()
    assert isinstance(small.head, QuantizedDense) and isinstance(small.body[2][0], QuantizedDense)
    assert small.body[0] is small.body[3]                 # used twice, quantized once
    assert isinstance(net.head, Dense) and isinstance(net.body[2][0], Dense)
    x = Tensor(np.random.default_rng(7).standard_normal((10, 4)).astype(np.float32))
    np.testing.assert_allclose(small(x).data, net(x).data, atol=0.02)
    layer = quantize_model(Dense(3, 3, seed=0))
    assert isinstance(layer, QuantizedDense)


def test_pruned_then_quantized_keeps_the_zeros():
    model = mlp()
    masks = magnitude_prune(model, 0.8, scope="global")
    small = quantize_model(model)
    for (name, mask), layer in zip(masks.items(), small.layers[::2]):
        assert np.all(layer.weight_q[~mask] == 0), name


def test_model_size_bytes_from_the_shapes():
    model = MLP(30, [20], 7, seed=0)
    weights, biases = 30 * 20 + 20 * 7, 20 + 7
    assert model_size_bytes(model) == 4 * (weights + biases)
    assert model_size_bytes(model, weights_only=True) == 4 * weights
    per_channel, per_tensor = quantize_model(model), quantize_model(model, per_channel=False)
    assert model_size_bytes(per_channel) == weights + 4 * (20 + 7) + 4 * biases
    assert model_size_bytes(per_channel, weights_only=True) == weights + 4 * (20 + 7)
    assert model_size_bytes(per_tensor, weights_only=True) == weights + 4 * 2
    assert 4 * weights / model_size_bytes(per_tensor, weights_only=True) > 3.9
    for p in model.parameters():                          # float64 doubles it
        p.data = p.data.astype(np.float64)
    assert model_size_bytes(model) == 8 * (weights + biases)


def test_model_size_counts_shared_arrays_once():
    shared = Dense(10, 10, seed=0)
    assert model_size_bytes(Sequential([shared, ReLU(), shared])) == model_size_bytes(shared) == 4 * 110
    with pytest.raises(TypeError, match="Module"):
        model_size_bytes({"weights": np.ones(3)})


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
