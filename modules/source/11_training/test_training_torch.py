"""PyTorch parity: loss values and gradients against torch.nn's losses (float64), and a Trainer run
against the same loop written in PyTorch. Skipped where PyTorch is not installed."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinytorch.core.activations import ReLU  # noqa: E402
from tinytorch.core.autograd import Variable  # noqa: E402
from tinytorch.core.dataloader import DataLoader, TensorDataset  # noqa: E402
from tinytorch.core.layers import Dense, Module  # noqa: E402
from tinytorch.core.optimizers import Adam  # noqa: E402
from tinytorch.core.training import BinaryCrossEntropyLoss, CrossEntropyLoss, MeanSquaredError, Trainer  # noqa: E402

pytestmark = pytest.mark.torch
rng = np.random.default_rng(0)  # replaced before each test by that test's own stream (below)


@pytest.fixture(autouse=True)
def _per_test_rng(request):
    """Each test draws from its own stream (the root conftest's `rng`: TINYTORCH_TEST_SEED and the test id),
    so its data does not depend on which tests ran before it."""
    global rng
    rng = request.getfixturevalue("rng")


def both(loss_tiny, loss_torch, pred, target, target_grad=False):
    """Value and gradients of the same loss in both frameworks."""
    p = Variable(pred.copy())
    t = Variable(target.copy()) if target_grad else target
    ours = loss_tiny(p, t)
    ours.backward()
    tp = torch.tensor(pred, requires_grad=True)
    tt = torch.tensor(target, requires_grad=target_grad) if target.dtype.kind == "f" else torch.tensor(target)
    theirs = loss_torch(tp, tt)
    theirs.backward()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-10, atol=1e-12)
    if target_grad:
        np.testing.assert_allclose(t.grad.data, tt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(8,), (5, 3), (2, 3, 4)])
def test_mse_matches_torch(shape):
    both(MeanSquaredError(), torch.nn.MSELoss(), rng.standard_normal(shape), rng.standard_normal(shape),
         target_grad=True)


@pytest.mark.parametrize("n,c,scale", [(1, 2, 1.0), (8, 5, 1.0), (32, 10, 3.0), (4, 7, 200.0)])
def test_cross_entropy_matches_torch(n, c, scale):
    both(CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), scale * rng.standard_normal((n, c)),
         rng.integers(0, c, n))


@pytest.mark.parametrize("shape", [(10,), (6, 1), (3, 4)])
def test_bce_matches_torch(shape):
    both(BinaryCrossEntropyLoss(), torch.nn.BCELoss(), rng.uniform(0.01, 0.99, shape),
         rng.uniform(0.0, 1.0, shape), target_grad=True)


def test_bce_hard_targets_match_torch():
    both(BinaryCrossEntropyLoss(), torch.nn.BCELoss(), rng.uniform(0.01, 0.99, (12,)),
         rng.integers(0, 2, 12).astype(np.float64))


def test_cross_entropy_float32_matches_torch():
    z = (5 * rng.standard_normal((16, 10))).astype(np.float32)
    y = rng.integers(0, 10, 16)
    ours = CrossEntropyLoss()(Variable(z), y)
    theirs = torch.nn.CrossEntropyLoss()(torch.tensor(z), torch.tensor(y))
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-5)


class Net(Module):
    def __init__(self):
        super().__init__()
        g = np.random.default_rng(7)
        self.l1, self.act, self.l2 = Dense(4, 8, seed=g), ReLU(), Dense(8, 3, seed=g)

    def forward(self, x):
        return self.l2(self.act(self.l1(x)))


def test_trainer_matches_a_pytorch_training_loop():
    """Three epochs of Trainer(Adam, CrossEntropyLoss) against the same loop in PyTorch, float64."""
    X = rng.standard_normal((40, 4))
    y = rng.integers(0, 3, 40)
    model = Net()
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    torch_model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).double()
    with torch.no_grad():
        for layer, dense in [(torch_model[0], model.l1), (torch_model[2], model.l2)]:
            layer.weight.copy_(torch.from_numpy(dense.weights.data.T))     # torch stores (out, in)
            layer.bias.copy_(torch.from_numpy(dense.bias.data))

    loader = DataLoader(TensorDataset(X, y), batch_size=16)             # no shuffle: the same batches
    history = Trainer(model, Adam(model.parameters(), lr=0.01), CrossEntropyLoss()).fit(loader, 3, verbose=False)

    opt = torch.optim.Adam(torch_model.parameters(), lr=0.01)
    losses = []
    for _ in range(3):
        total = 0.0
        for start in range(0, 40, 16):
            xb, yb = torch.from_numpy(X[start:start + 16]), torch.from_numpy(y[start:start + 16])
            loss = torch.nn.functional.cross_entropy(torch_model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        losses.append(total / 40)
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-9)
    np.testing.assert_allclose(model.l1.weights.data, torch_model[0].weight.detach().numpy().T, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.l2.bias.data, torch_model[2].bias.detach().numpy(), rtol=1e-8, atol=1e-10)


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
