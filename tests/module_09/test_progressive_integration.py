"""Module 09 (optimizers) with the modules it stands on: Tensor (01), Variable/autograd (02) and the
DataLoader (08). Real mini-batch training loops written with Variable arithmetic; a broken lower module
(wrong gradients, broken broadcasting, a loader that loses examples) makes them fail.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.autograd import Variable, check_gradients, no_grad
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.optimizers import SGD, Adam, StepLR
from tinytorch.core.tensor import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # contract_*.py, also when run as a script
from contract_autograd import autograd_contract  # tests/support/
from contract_dataloader import dataloader_contract  # tests/support/
from contract_tensor import tensor_contract  # tests/support/


def regression_data(n=256, d=4, seed=0, noise=0.01):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    true_w = rng.standard_normal((d, 1))
    y = X @ true_w + 0.5 + noise * rng.standard_normal((n, 1))
    return X, y, true_w


def mse(pred, target):
    diff = pred - target
    return (diff * diff).mean()


def test_minibatch_sgd_with_momentum_recovers_the_linear_model():
    X, y, true_w = regression_data()
    w, b = Variable(np.zeros((4, 1))), Variable(np.zeros(1))
    opt = SGD([w, b], lr=0.05, momentum=0.9)
    loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True, seed=0)
    for _ in range(30):
        for xb, yb in loader:
            opt.zero_grad()
            mse(xb @ w + b, yb).backward()      # (32,4)@(4,1) + (1,) broadcast: b's gradient is summed back
            opt.step()
    np.testing.assert_allclose(w.data, true_w, atol=0.01)
    np.testing.assert_allclose(b.data, [0.5], atol=0.01)


def test_softmax_regression_with_adam_and_steplr_separates_three_clusters():
    rng = np.random.default_rng(1)
    centers = np.array([[2.0, 0.0], [-2.0, 2.0], [0.0, -2.5]])
    labels = rng.integers(0, 3, 300)
    X = centers[labels] + 0.5 * rng.standard_normal((300, 2))
    onehot = np.eye(3)[labels]
    W, b = Variable(0.01 * rng.standard_normal((2, 3))), Variable(np.zeros(3))
    opt = Adam([W, b], lr=0.1)
    scheduler = StepLR(opt, step_size=5, gamma=0.5)
    losses = []
    for _ in range(15):
        total = 0.0
        for xb, tb in DataLoader(TensorDataset(X, onehot), batch_size=50, shuffle=True, seed=2):
            logits = xb @ W + b
            shifted = logits - Tensor(logits.data.max(axis=1, keepdims=True))     # a constant shift
            log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
            loss = -(log_probs * tb).sum() / len(xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        losses.append(total / 300)
        scheduler.step()
    assert losses[-1] < 0.1 < losses[0]
    assert scheduler.get_last_lr() == [0.1 * 0.5 ** 3]
    with no_grad():
        predicted = (Tensor(X) @ W + b).data.argmax(axis=1)
    assert (predicted == labels).mean() > 0.97


def test_the_training_loss_has_correct_gradients():
    """The loss the loops above differentiate, checked against finite differences."""
    X, y, _ = regression_data(n=8)
    w, b = Variable(np.random.default_rng(0).standard_normal((4, 1))), Variable(np.zeros(1))
    assert check_gradients(lambda w_, b_: mse(Tensor(X) @ w_ + b_, Tensor(y)), w, b)


def test_forgetting_zero_grad_accumulates_gradients():
    """Gradients add up across backward calls (autograd's contract), so a missing zero_grad doubles the step."""
    X, y, _ = regression_data(n=16)
    steps = {}
    for clear in (True, False):
        w = Variable(np.zeros((4, 1)))
        opt = SGD([w], lr=0.01)
        mse(Tensor(X) @ w, Tensor(y)).backward()       # a stale gradient from an earlier batch
        if clear:
            opt.zero_grad()
        mse(Tensor(X) @ w, Tensor(y)).backward()
        opt.step()
        steps[clear] = w.data.copy()
    np.testing.assert_allclose(steps[False], 2 * steps[True])


def test_optimizer_steps_leave_the_graph_alone():
    """After many steps the parameters are still leaves, and gradients of a new pass are exact."""
    X, y, _ = regression_data(n=32)
    w = Variable(np.zeros((4, 1)))
    opt = Adam([w], lr=0.05)
    for _ in range(5):
        opt.zero_grad()
        mse(Tensor(X) @ w, Tensor(y)).backward()
        opt.step()
    assert w.is_leaf
    opt.zero_grad()
    mse(Tensor(X) @ w, Tensor(y)).backward()
    expected = 2 * X.T @ (X @ w.data - y) / len(X)
    np.testing.assert_allclose(w.grad.data, expected, rtol=1e-10)


LOWER_CONTRACTS = [tensor_contract, autograd_contract, dataloader_contract]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
