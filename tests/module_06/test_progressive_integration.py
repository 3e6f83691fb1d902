"""Module 06 (spatial) together with everything it stands on: Tensor (01), Variable and autograd (02),
ReLU (03), Module and Dense (04), Sequential (05).

Small but real CNN pipelines built from the lower modules' actual classes (no mocks): a broken Tensor
operation, gradient rule, activation or Dense layer makes these tests fail.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Variable, check_gradients, no_grad
from tinytorch.core.layers import Dense, Module
from tinytorch.core.networks import Sequential
from tinytorch.core.spatial import AvgPool2D, Conv2D, Flatten, MaxPool2D, avg_pool2d, flatten
from tinytorch.core.tensor import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # contract_*.py, also when run as a script
from contract_activations import activations_contract  # tests/support/
from contract_autograd import autograd_contract  # tests/support/
from contract_layers import layers_contract  # tests/support/
from contract_networks import networks_contract  # tests/support/
from contract_tensor import tensor_contract  # tests/support/


class SmallCNN(Module):
    """(N, 1, 6, 6) -> conv 3x3 (8 maps, same padding) -> ReLU -> max pool 2 -> flatten -> Dense -> (N, classes).

    8 maps: a freshly drawn map is dead (ReLU 0 everywhere) on a batch of 8 bars images with probability 0.03,
    so with 4 maps all were dead, and a test of gradients saw none, about once in a million draws (0.03**4);
    with 8, 0.03**8 = 7e-13.
    """

    def __init__(self, classes=2, seed=0):
        super().__init__()
        self.conv = Conv2D(1, 8, 3, padding=1, seed=seed)
        self.relu = ReLU()
        self.pool = MaxPool2D(2)
        self.fc = Dense(8 * 3 * 3, classes, seed=seed + 1)

    def forward(self, x):
        return self.fc(flatten(self.pool(self.relu(self.conv(x)))))


def bars(n, seed):
    """Images with one vertical (class 0) or horizontal (class 1) bar of ones on a noisy background."""
    rng = np.random.default_rng(seed)
    x = 0.1 * rng.standard_normal((n, 1, 6, 6))
    labels = rng.integers(0, 2, size=n)
    where = rng.integers(0, 6, size=n)
    vertical, horizontal = labels == 0, labels == 1
    x[vertical, 0, :, where[vertical]] += 1.0
    x[horizontal, 0, where[horizontal], :] += 1.0
    return x.astype(np.float32), labels


def test_parameters_are_found_in_order():
    model = SmallCNN()
    params = model.parameters()
    assert params == [model.conv.weight, model.conv.bias, model.fc.weights, model.fc.bias]
    assert [p.shape for p in params] == [(8, 1, 3, 3), (8,), (72, 2), (2,)]


def test_tensor_in_tensor_out_and_same_values_as_variable_path():
    model = SmallCNN()
    x, _ = bars(5, seed=1)
    plain = model(Tensor(x))
    assert type(plain) is Tensor and plain.shape == (5, 2)
    graph = model(Variable(x, requires_grad=False))
    assert isinstance(graph, Variable) and graph.requires_grad
    np.testing.assert_allclose(plain.data, graph.data, rtol=1e-6)
    with no_grad():
        quiet = model(Variable(x, requires_grad=False))
    assert not quiet.requires_grad


def test_backward_reaches_every_parameter():
    model = SmallCNN()
    x, _ = bars(8, seed=2)
    out = model(Variable(x, requires_grad=False))
    ((out * out).mean()).backward()
    for p in model.parameters():
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.dtype == np.float32
        assert np.abs(p.grad.data).sum() > 0
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_whole_cnn_gradients_match_finite_differences(away_from_kinks):
    """check_gradients through Conv2D -> ReLU -> MaxPool2D -> flatten -> Dense, in float64."""
    model = SmallCNN(seed=3)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    x = Variable(np.random.default_rng(4).standard_normal((2, 1, 6, 6)))
    away_from_kinks(lambda a, *params: model(a), x, *model.parameters())  # ReLU and max-pool kinks: see the conftest
    check_gradients(lambda a, *params: model(a), x, *model.parameters())


def test_sequential_cnn_matches_hand_written_module():
    """The same layers in a Sequential (05) give the same outputs, parameters and gradients."""
    hand = SmallCNN(seed=10)
    seq = Sequential([hand.conv, ReLU(), MaxPool2D(2), Flatten(), hand.fc])
    assert seq.parameters() == hand.parameters()
    x, _ = bars(6, seed=11)
    np.testing.assert_array_equal(seq(Tensor(x)).data, hand(Tensor(x)).data)
    (seq(Variable(x, requires_grad=False)) * 1.0).sum().backward()
    from_seq = [p.grad.data.copy() for p in seq.parameters()]
    hand.zero_grad()
    hand(Variable(x, requires_grad=False)).sum().backward()
    for a, p in zip(from_seq, hand.parameters()):
        np.testing.assert_allclose(a, p.grad.data, rtol=1e-6)
    stacked = Sequential([Conv2D(1, 2, 3, padding=1, seed=0), ReLU(), Conv2D(2, 3, 3, stride=2, seed=1),
                          ReLU(), AvgPool2D(2), Flatten()])
    assert stacked(Tensor(x)).shape == (6, 3)  # 6x6 -> 6x6 -> 2x2 -> 1x1


def test_conv_then_tensor_ops_global_average():
    """Global average pooling two ways: AvgPool2D over the whole map, and Tensor.mean over axes (2, 3)."""
    conv = Conv2D(2, 3, 3, seed=5)
    for p in conv.parameters():
        p.data = p.data.astype(np.float64)
    x = np.random.default_rng(6).standard_normal((2, 2, 5, 5))
    a, b = Variable(x), Variable(x)
    pooled = flatten(AvgPool2D(3)(conv(a)))               # (2, 3)
    meaned = conv(b).mean(axis=(2, 3))                    # (2, 3), module 02's mean
    np.testing.assert_allclose(pooled.data, meaned.data, rtol=1e-12)
    weights = np.arange(6.0).reshape(2, 3)
    (pooled * weights).sum().backward()
    grad_a, grad_w = a.grad.data.copy(), conv.weight.grad.data.copy()
    conv.zero_grad()
    (meaned * weights).sum().backward()
    np.testing.assert_allclose(grad_a, b.grad.data, rtol=1e-10)
    np.testing.assert_allclose(grad_w, conv.weight.grad.data, rtol=1e-10)
    check_gradients(lambda v: avg_pool2d(conv(v), 3) * 2.0 + 1.0, Variable(x))


def test_cnn_learns_bars_with_plain_gradient_descent():
    """A few steps of hand-written gradient descent on an MSE loss separate vertical from horizontal bars."""
    # The recipe was 4 maps, 60 steps at lr 0.5 on 64 images: 12% of draws missed (at that rate ReLUs die for
    # good, and 64 images teach some bar positions poorly). 8 maps, 250 steps at lr 0.2 on 256 images: all of
    # 300 draws reached 100% on 2048 test images.
    model = SmallCNN(seed=7)
    x, labels = bars(256, seed=8)
    target = np.eye(2, dtype=np.float32)[labels]
    data = Variable(x, requires_grad=False)

    def loss_fn():
        diff = model(data) - Tensor(target)
        return (diff * diff).mean()

    first = float(loss_fn().data)
    for _ in range(250):
        loss = loss_fn()
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data = p.data - 0.2 * p.grad.data
    final = float(loss_fn().data)
    assert final < 0.5 * first, f"loss went from {first:.4f} to {final:.4f}"

    test_x, test_labels = bars(64, seed=9)
    predicted = model(Tensor(test_x)).data.argmax(axis=1)
    accuracy = (predicted == test_labels).mean()
    assert accuracy >= 0.9, f"test accuracy {accuracy:.2f} on the bars task"


def test_errors_name_the_layer_and_shapes():
    model = SmallCNN()
    with pytest.raises(ValueError, match=r"in_channels=1.*\(2, 3, 6, 6\)"):
        model(Tensor(np.zeros((2, 3, 6, 6), dtype=np.float32)))
    # A wrong image size passes the convolution and the pooling, then Dense names the flattened width.
    with pytest.raises(ValueError, match="72"):
        model(Tensor(np.zeros((2, 1, 8, 8), dtype=np.float32)))


LOWER_CONTRACTS = [
    tensor_contract, autograd_contract, activations_contract, layers_contract, networks_contract,
]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
