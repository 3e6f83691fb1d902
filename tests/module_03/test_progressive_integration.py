"""Module 03 (activations) together with 01 (Tensor) and 02 (Variable): small composite graphs.

Everything here uses the real lower modules, so a broken Tensor operator or a broken backward pass in
02 fails these tests even when the activations themselves are right.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import Variable, check_gradients, no_grad
from tinytorch.core.tensor import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # contract_*.py, also when run as a script
from contract_autograd import autograd_contract  # tests/support/
from contract_tensor import tensor_contract  # tests/support/


def test_two_layer_network_by_hand_gradients_checked(away_from_kinks):
    """softmax(relu(x W1 + b1) W2 + b2) built from Variable ops and activations: every gradient checked."""
    rng = np.random.default_rng(0)
    x = Variable(rng.normal(size=(5, 3)), requires_grad=True)
    w1 = Variable(rng.normal(size=(3, 6)), requires_grad=True)
    b1 = Variable(rng.normal(size=(6,)) + 0.5, requires_grad=True)
    w2 = Variable(rng.normal(size=(6, 4)), requires_grad=True)
    b2 = Variable(rng.normal(size=(4,)), requires_grad=True)

    def net(x, w1, b1, w2, b2):
        return Softmax()(ReLU()(x @ w1 + b1) @ w2 + b2)

    away_from_kinks(net, x, w1, b1, w2, b2)   # no pre-activation near ReLU's kink (conftest)
    assert np.abs(x.data @ w1.data + b1.data).min() >= 1e-4
    check_gradients(net, x, w1, b1, w2, b2)


def test_cross_entropy_from_softmax_matches_closed_form_gradient():
    """-mean(log softmax(z)[y]) through Tensor ops: the gradient is (softmax(z) - onehot(y)) / n."""
    rng = np.random.default_rng(1)
    logits = Variable(rng.normal(size=(6, 4)), requires_grad=True)
    labels = np.array([0, 3, 1, 2, 3, 0])
    onehot = np.eye(4)[labels]
    probs = Softmax()(logits)
    loss = -((probs.log() * Tensor(onehot)).sum() / 6)
    loss.backward()
    expected = (probs.data - onehot) / 6
    np.testing.assert_allclose(logits.grad.data, expected, rtol=1e-10, atol=1e-12)


def test_logistic_regression_gradient_descent_learns_separable_data():
    """Sigmoid + binary cross-entropy written with Tensor ops; 100 plain gradient steps separate two blobs."""
    rng = np.random.default_rng(2)
    n = 100
    x = np.concatenate([rng.normal(-2, 1, size=(n, 2)), rng.normal(2, 1, size=(n, 2))])
    y = np.concatenate([np.zeros(n), np.ones(n)])[:, None]
    w = Variable(np.zeros((2, 1)), requires_grad=True)
    b = Variable(np.zeros(1), requires_grad=True)
    inputs, targets = Variable(x, requires_grad=False), Tensor(y)

    def loss_fn():
        p = Sigmoid()(inputs @ w + b)
        return -(targets * (p + 1e-12).log() + (1 - targets) * (1 - p + 1e-12).log()).mean()

    first = loss_fn().item()
    for _ in range(100):
        w.zero_grad()
        b.zero_grad()
        loss = loss_fn()
        loss.backward()
        w.data = w.data - 0.5 * w.grad.data
        b.data = b.data - 0.5 * b.grad.data
    last = loss_fn().item()
    assert first == pytest.approx(np.log(2.0))
    assert last < 0.15 * first, f"loss went from {first:.4f} to {last:.4f}"
    with no_grad():
        predictions = Sigmoid()(Tensor(x) @ Tensor(w.data) + Tensor(b.data)).data > 0.5
    assert np.mean(predictions == (y > 0.5)) > 0.95


def test_activations_chain_and_reuse_in_one_graph(away_from_kinks):
    """A Variable used by several activations: gradients from every path add up."""
    rng = np.random.default_rng(3)
    x = Variable(rng.normal(size=(3, 4)), requires_grad=True)

    def f(x):
        return Tanh()(x) * Sigmoid()(x) + GELU()(x) - GELU(approximate="tanh")(x * 2.0) + ReLU()(x + 3.0)

    away_from_kinks(f, x)   # x + 3 away from ReLU's kink (conftest)
    check_gradients(f, x)


def test_tensor_pipeline_stays_plain():
    """Plain Tensors through activations and Tensor ops never create Variables."""
    x = Tensor(np.random.default_rng(4).normal(size=(2, 3)).astype(np.float32))
    out = Softmax()(GELU()(Tanh()(x) * 2.0 + Sigmoid()(x)) @ Tensor(np.ones((3, 3), dtype=np.float32)))
    assert type(out) is Tensor and out.dtype == np.float32
    np.testing.assert_allclose(out.data.sum(axis=-1), 1.0, rtol=1e-6)


LOWER_CONTRACTS = [tensor_contract, autograd_contract]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
