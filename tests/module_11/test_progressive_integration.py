"""Module 11 (training) with everything it stands on: Tensor, autograd, activations, Dense/Dropout,
Sequential/MLP, DataLoader and the optimizers. Realistic small training runs with the real classes; a
broken lower module (wrong gradient, broken parameter discovery, a loader that drops examples, a wrong
optimizer rule) makes them fail.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import Variable, check_gradients, no_grad
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.layers import Dense, Dropout
from tinytorch.core.networks import MLP, Sequential, create_mlp
from tinytorch.core.optimizers import SGD, Adam, StepLR
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Accuracy, BinaryCrossEntropyLoss, CrossEntropyLoss, MeanSquaredError, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # contract_*.py, also when run as a script
from contract_activations import activations_contract  # tests/support/
from contract_autograd import autograd_contract  # tests/support/
from contract_dataloader import dataloader_contract  # tests/support/
from contract_layers import layers_contract  # tests/support/
from contract_networks import networks_contract  # tests/support/
from contract_optimizers import optimizers_contract  # tests/support/
from contract_tensor import tensor_contract  # tests/support/


def spirals(n_per_class=60, classes=3, seed=0):
    """Interleaved spirals: not linearly separable, a real test of a hidden layer."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for c in range(classes):
        r = np.linspace(0.1, 1.0, n_per_class)
        theta = c * 2 * np.pi / classes + 3.0 * r + 0.1 * rng.standard_normal(n_per_class)
        X.append(np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1))
        y.append(np.full(n_per_class, c))
    return np.concatenate(X).astype(np.float32), np.concatenate(y)


def test_mlp_with_trainer_learns_spirals():
    X, y = spirals()
    model = create_mlp(2, [32, 32], 3, seed=0)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.02), CrossEntropyLoss(), metrics=[Accuracy()])
    history = trainer.fit(DataLoader(TensorDataset(X, y), batch_size=30, shuffle=True, seed=0), epochs=60,
                          verbose=False)
    assert history["accuracy"][-1] > 0.95, history["accuracy"][-1]
    assert trainer.evaluate(DataLoader(TensorDataset(X, y), batch_size=64))["accuracy"] > 0.95


def test_sequential_with_dropout_tanh_and_validation():
    X, y = spirals(seed=1)
    perm = np.random.default_rng(0).permutation(len(X))
    X, y = X[perm], y[perm]
    model = Sequential([Dense(2, 64, seed=0), Tanh(), Dropout(0.1, seed=0), Dense(64, 3, seed=1)])
    opt = Adam(model.parameters(), lr=0.02)
    trainer = Trainer(model, opt, CrossEntropyLoss(), metrics=[Accuracy()], scheduler=StepLR(opt, 40, 0.5))
    history = trainer.fit(DataLoader(TensorDataset(X[:150], y[:150]), batch_size=25, shuffle=True, seed=1),
                          epochs=80, val_loader=DataLoader(TensorDataset(X[150:], y[150:]), batch_size=30),
                          verbose=False)
    assert history["val_accuracy"][-1] > 0.85, history["val_accuracy"]
    assert opt.lr == pytest.approx(0.02 * 0.25)
    assert model.training                        # evaluate restored training mode


def test_xor_with_mse_sigmoid_and_sgd():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    model = MLP(2, [8], 1, activation=Tanh, output_activation=Sigmoid, seed=0)
    trainer = Trainer(model, SGD(model.parameters(), lr=1.0, momentum=0.9), MeanSquaredError(),
                      metrics=[Accuracy()])
    history = trainer.fit(DataLoader(TensorDataset(X, y), batch_size=4), epochs=400, verbose=False)
    assert history["accuracy"][-1] == 1.0 and history["loss"][-1] < 0.01


def test_binary_classifier_with_bce():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 2)).astype(np.float32)
    y = ((X ** 2).sum(axis=1) < 1.0).astype(np.float32)[:, None]       # inside the unit circle
    model = create_mlp(2, [16], 1, output_activation=Sigmoid, seed=2)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.05), BinaryCrossEntropyLoss(), metrics=[Accuracy()])
    history = trainer.fit(DataLoader(TensorDataset(X, y), batch_size=40, shuffle=True, seed=0), epochs=80,
                          verbose=False)
    assert history["accuracy"][-1] > 0.93


def test_losses_compose_with_lower_modules_gradients():
    """Gradients through a whole network into the losses, against finite differences (float64)."""
    net = create_mlp(3, [4], 3, activation=Tanh, seed=5)
    for p in net.parameters():
        p.data = p.data.astype(np.float64)
    x = Variable(np.random.default_rng(0).standard_normal((5, 3)), requires_grad=False)
    y = np.array([0, 2, 1, 1, 0])
    assert check_gradients(lambda *params: CrossEntropyLoss()(net(x), y), *net.parameters())
    probs_net = Sequential([Dense(3, 1, seed=1), Sigmoid()])
    for p in probs_net.parameters():
        p.data = p.data.astype(np.float64)
    t = np.array([[1.0], [0.0], [1.0], [0.0], [1.0]])
    assert check_gradients(lambda *params: BinaryCrossEntropyLoss()(probs_net(x), t), *probs_net.parameters())
    assert check_gradients(lambda *params: MeanSquaredError()(probs_net(x), t), *probs_net.parameters())


def test_cross_entropy_equals_log_of_softmax_module():
    """The fused loss agrees with module 03's Softmax followed by an explicit log."""
    z = np.random.default_rng(0).standard_normal((6, 5))
    y = np.array([0, 1, 2, 3, 4, 0])
    probs = Softmax()(Tensor(z)).data
    np.testing.assert_allclose(CrossEntropyLoss()(Tensor(z), y).data, -np.mean(np.log(probs[np.arange(6), y])),
                               rtol=1e-10)


def test_evaluation_is_plain_and_deterministic():
    X, y = spirals()
    model = Sequential([Dense(2, 16, seed=0), ReLU(), Dropout(0.5, seed=3), Dense(16, 3, seed=1)])
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss(), metrics=[Accuracy()])
    loader = DataLoader(TensorDataset(X, y), batch_size=50)
    assert trainer.evaluate(loader) == trainer.evaluate(loader)
    with no_grad():
        out = model(Tensor(X))
    assert type(out) is Tensor or not out.requires_grad


LOWER_CONTRACTS = [
    tensor_contract, autograd_contract, activations_contract, layers_contract, networks_contract,
    dataloader_contract, optimizers_contract,
]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
