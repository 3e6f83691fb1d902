"""Module 04 (layers) together with 01-03: Dense trained by hand-written SGD, layers with activations.

Uses the real Tensor, Variable and activations, so a broken lower module fails here.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import Variable, check_gradients, no_grad
from tinytorch.core.layers import Dense, Dropout, Module
from tinytorch.core.tensor import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # contract_*.py, also when run as a script
from contract_activations import activations_contract  # tests/support/
from contract_autograd import autograd_contract  # tests/support/
from contract_tensor import tensor_contract  # tests/support/


def linear_regression_data(seed=0, n=200):
    rng = np.random.default_rng(seed)
    true_w = np.array([[2.0, -1.0], [0.5, 3.0], [-1.5, 0.25]], dtype=np.float32)
    true_b = np.array([0.7, -0.3], dtype=np.float32)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = x @ true_w + true_b + 0.01 * rng.normal(size=(n, 2)).astype(np.float32)
    return x, y, true_w, true_b


def mse(prediction, target):
    diff = prediction - target
    return (diff * diff).mean()


def test_dense_learns_linear_regression_with_hand_written_sgd():
    x, y, true_w, true_b = linear_regression_data()
    layer = Dense(3, 2, seed=0)
    inputs, targets = Variable(x, requires_grad=False), Tensor(y)
    losses = []
    for _ in range(150):
        layer.zero_grad()
        loss = mse(layer(inputs), targets)
        loss.backward()
        for p in layer.parameters():
            p.data = p.data - 0.1 * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0], f"loss {losses[0]:.4f} -> {losses[-1]:.6f}"
    np.testing.assert_allclose(layer.weights.data, true_w, atol=0.01)
    np.testing.assert_allclose(layer.bias.data, true_b, atol=0.01)
    assert layer.weights.dtype == np.float32


def test_two_layer_module_with_activations_gradients_checked():
    class TwoLayer(Module):
        def __init__(self):
            super().__init__()
            self.hidden = Dense(4, 6, seed=1)
            self.act = Tanh()
            self.out = Dense(6, 3, seed=2)

        def forward(self, x):
            return Softmax()(self.out(self.act(self.hidden(x))))

    model = TwoLayer()
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    x = Variable(np.random.default_rng(3).normal(size=(5, 4)), requires_grad=True)
    check_gradients(lambda x, *params: model(x), x, *model.parameters())
    assert "(act): Tanh()" in repr(model)


def test_dropout_between_layers_train_vs_eval():
    class Net(Module):
        def __init__(self):
            super().__init__()
            self.l1 = Dense(8, 32, seed=0)
            self.drop = Dropout(0.5, seed=0)
            self.l2 = Dense(32, 1, seed=1)

        def forward(self, x):
            return Sigmoid()(self.l2(self.drop(ReLU()(self.l1(x)))))

    net = Net()
    x = Tensor(np.random.default_rng(4).normal(size=(16, 8)).astype(np.float32))
    net.eval()
    a, b = net(x).data, net(x).data
    np.testing.assert_array_equal(a, b)                     # eval: deterministic
    net.train()
    assert not np.array_equal(net(x).data, net(x).data)     # train: a fresh mask each call
    xv = Variable(x.data, requires_grad=False)
    net(xv).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    # One example: a hidden unit gets no gradient into its outgoing weight when ReLU or Dropout zeroed it,
    # so dropout (p = 0.5) adds zero rows beyond the ReLU-inactive ones.
    net.zero_grad()
    one = Variable(x.data[:1], requires_grad=False)
    net(one).sum().backward()
    relu_inactive = int(np.sum(net.l1(Tensor(x.data[:1])).data <= 0))
    zero_rows = int(np.sum(net.l2.weights.grad.data[:, 0] == 0))
    assert zero_rows > relu_inactive, (zero_rows, relu_inactive)


def test_inference_under_no_grad_and_plain_tensors():
    layer = Dense(3, 2, seed=5)
    with no_grad():
        out = layer(Variable(np.ones((2, 3), dtype=np.float32)))
    assert not out.requires_grad
    assert type(layer(Tensor(np.ones((2, 3), dtype=np.float32)))) is Tensor


LOWER_CONTRACTS = [tensor_contract, autograd_contract, activations_contract]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
