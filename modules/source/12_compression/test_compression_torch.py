"""PyTorch parity: magnitude pruning against torch.nn.utils.prune (per layer and global L1), int8 values
against torch.quantize_per_tensor / quantize_per_channel with the same scales, and a quantized layer
against torch's linear on the dequantized weights. Skipped where PyTorch is not installed."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinytorch.core.compression import QuantizedDense, magnitude_prune, quantize_int8  # noqa: E402
from tinytorch.core.networks import create_mlp  # noqa: E402
from tinytorch.core.tensor import Tensor  # noqa: E402

prune = pytest.importorskip("torch.nn.utils.prune")
pytestmark = pytest.mark.torch


def torch_linears(model):
    """torch.nn.Linear copies of the model's Dense layers (torch stores weights as (out, in))."""
    linears = []
    for layer in model.layers[::2]:
        lin = torch.nn.Linear(layer.in_features, layer.out_features)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(layer.weights.data.T))
            lin.bias.copy_(torch.tensor(layer.bias.data))
        linears.append(lin)
    return linears


@pytest.mark.parametrize("amount", [0.2, 0.5, 0.8, 0.95])
def test_layer_pruning_matches_l1_unstructured(amount):
    model = create_mlp(12, [30, 20], 4, seed=0)
    linears = torch_linears(model)
    masks = magnitude_prune(model, amount, scope="layer")
    for (name, mask), lin in zip(masks.items(), linears):
        prune.l1_unstructured(lin, "weight", amount=amount)
        np.testing.assert_array_equal(mask, lin.weight_mask.numpy().T.astype(bool), err_msg=name)


@pytest.mark.parametrize("amount", [0.3, 0.7, 0.9])
def test_global_pruning_matches_global_unstructured(amount):
    model = create_mlp(12, [30, 20], 4, seed=1)
    linears = torch_linears(model)
    masks = magnitude_prune(model, amount, scope="global")
    prune.global_unstructured([(lin, "weight") for lin in linears], pruning_method=prune.L1Unstructured,
                              amount=amount)
    for (name, mask), lin in zip(masks.items(), linears):
        np.testing.assert_array_equal(mask, lin.weight_mask.numpy().T.astype(bool), err_msg=name)


def _near_half(x, scale):
    """Elements within float rounding of a .5 boundary, where float32 and float64 may round differently."""
    frac = np.abs(x.astype(np.float64) / scale) % 1.0
    return np.abs(frac - 0.5) < 1e-4


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")   # deprecated in torch 2.13, still exact
@pytest.mark.parametrize("per_channel", [False, True])
def test_int8_values_match_torch_quantize(per_channel):
    rng = np.random.default_rng(2)
    w = (rng.standard_normal((64, 32)) * rng.uniform(0.01, 2, 32)).astype(np.float32)
    q, scale = quantize_int8(w, axis=1 if per_channel else None)
    if per_channel:
        tq = torch.quantize_per_channel(torch.tensor(w), torch.tensor(scale[0].astype(np.float64)),
                                        torch.zeros(32, dtype=torch.int64), axis=1, dtype=torch.qint8)
    else:
        tq = torch.quantize_per_tensor(torch.tensor(w), float(scale), 0, torch.qint8)
    theirs = tq.int_repr().numpy()
    exempt = _near_half(w, scale)
    assert exempt.mean() < 0.01
    np.testing.assert_array_equal(q[~exempt], theirs[~exempt])
    assert np.all(np.abs(q[exempt].astype(int) - theirs[exempt]) <= 1)
    np.testing.assert_allclose(tq.dequantize().numpy()[~exempt], (q * scale)[~exempt], rtol=1e-6)


def test_quantized_dense_matches_torch_linear_on_dequantized_weights():
    rng = np.random.default_rng(3)
    model = create_mlp(16, [8], 3, seed=4)
    layer = QuantizedDense(model[0])
    x = rng.standard_normal((10, 16)).astype(np.float32)
    w = torch.tensor(layer.weight_q.astype(np.float32).T) * torch.tensor(layer.scale.T)
    theirs = torch.nn.functional.linear(torch.tensor(x), w, torch.tensor(layer.bias)).numpy()
    np.testing.assert_allclose(layer(Tensor(x)).data, theirs, rtol=1e-5, atol=1e-6)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
