"""Module 05 (networks) together with 01-04: small MLPs trained by hand-written gradient descent.

Optimizers arrive in module 09, so the updates here are written out: p.data -= lr * p.grad.data. The
real Tensor, Variable, activations and Dense are used throughout; a broken lower module fails here.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import Variable, no_grad
from tinytorch.core.layers import Dense, Dropout
from tinytorch.core.networks import MLP, Sequential, create_mlp, load_parameters, save_parameters
from tinytorch.core.tensor import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # contract_*.py, also when run as a script
from contract_activations import activations_contract  # tests/support/
from contract_autograd import autograd_contract  # tests/support/
from contract_layers import layers_contract  # tests/support/
from contract_tensor import tensor_contract  # tests/support/


def sgd_step(model, lr):
    for p in model.parameters():
        p.data = p.data - lr * p.grad.data


def xor_data():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    return x, y


def test_mlp_learns_xor_with_binary_cross_entropy():
    """XOR is not linearly separable: the hidden layer is what makes it learnable."""
    x, y = xor_data()
    model = create_mlp(2, [8], 1, activation=Tanh, output_activation=Sigmoid, seed=0)
    inputs, targets = Variable(x, requires_grad=False), Tensor(y)

    def loss_fn():
        p = model(inputs)
        return -(targets * (p + 1e-7).log() + (1 - targets) * (1 - p + 1e-7).log()).mean()

    first = loss_fn().item()
    for _ in range(500):
        model.zero_grad()
        loss_fn().backward()
        sgd_step(model, 0.5)
    last = loss_fn().item()
    assert last < 0.05 * first, f"loss {first:.4f} -> {last:.4f}"
    predictions = model(Tensor(x)).data > 0.5
    np.testing.assert_array_equal(predictions, y > 0.5)


def test_mlp_fits_a_nonlinear_regression():
    """y = sin(2x) on [-2, 2] with a ReLU MLP and mean squared error."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(128, 1)).astype(np.float32)
    y = np.sin(2 * x)
    model = MLP(1, [32, 32], 1, seed=1)
    inputs, targets = Variable(x, requires_grad=False), Tensor(y)

    def loss_fn():
        diff = model(inputs) - targets
        return (diff * diff).mean()

    first = loss_fn().item()
    for _ in range(600):
        model.zero_grad()
        loss_fn().backward()
        sgd_step(model, 0.1)
    last = loss_fn().item()
    assert last < 0.03 * first and last < 0.02, f"loss {first:.4f} -> {last:.5f}"
    # a linear model cannot do this: the best line leaves most of the variance
    design = np.hstack([x, np.ones_like(x)])
    residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    assert last < 0.2 * np.mean(residual ** 2)


def test_three_class_spirals_with_softmax_cross_entropy_and_dropout():
    """Three interleaved arms; softmax + cross-entropy written with Tensor ops; Dropout on while training."""
    rng = np.random.default_rng(2)
    per_class, classes = 40, 3
    radius = np.linspace(0.1, 1.0, per_class)
    xs, labels = [], []
    for k in range(classes):
        angle = np.linspace(k * 2 * np.pi / classes, k * 2 * np.pi / classes + 2.5, per_class)
        angle = angle + rng.normal(0, 0.1, per_class)
        xs.append(np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))
        labels.append(np.full(per_class, k))
    x = np.concatenate(xs).astype(np.float32)
    labels = np.concatenate(labels)
    onehot = Tensor(np.eye(classes, dtype=np.float32)[labels])

    model = Sequential([Dense(2, 64, seed=3), ReLU(), Dropout(0.1, seed=4), Dense(64, 64, seed=5), ReLU(),
                        Dense(64, classes, seed=6), Softmax()])
    inputs = Variable(x, requires_grad=False)
    for _ in range(800):
        model.zero_grad()
        probs = model(inputs)
        loss = -((probs + 1e-7).log() * onehot).sum() / len(x)
        loss.backward()
        sgd_step(model, 0.5)
    model.eval()
    with no_grad():
        accuracy = np.mean(model(inputs).data.argmax(axis=1) == labels)
    assert accuracy > 0.9, f"training accuracy {accuracy:.3f}"


def test_trained_model_survives_save_and_load(tmp_path):
    x, y = xor_data()
    model = create_mlp(2, [8], 1, activation=Tanh, output_activation=Sigmoid, seed=0)
    inputs, targets = Variable(x, requires_grad=False), Tensor(y)
    for _ in range(200):
        model.zero_grad()
        diff = model(inputs) - targets
        (diff * diff).mean().backward()
        sgd_step(model, 1.0)
    path = tmp_path / "xor.npz"
    save_parameters(model, path)
    fresh = create_mlp(2, [8], 1, activation=Tanh, output_activation=Sigmoid, seed=123)
    assert not np.array_equal(fresh(Tensor(x)).data, model(Tensor(x)).data)
    load_parameters(fresh, path)
    np.testing.assert_array_equal(fresh(Tensor(x)).data, model(Tensor(x)).data)


LOWER_CONTRACTS = [tensor_contract, autograd_contract, activations_contract, layers_contract]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
