"""PyTorch parity: TinyTorch's optimizers follow torch.optim's trajectories step for step (float64).

Skipped where PyTorch is not installed.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinytorch.core.autograd import Variable  # noqa: E402
from tinytorch.core.optimizers import SGD, Adam, StepLR  # noqa: E402
from tinytorch.core.tensor import Tensor  # noqa: E402

pytestmark = pytest.mark.torch
STEPS = 20


def problem(seed=0):
    """An MLP-like regression: pred = ((x W1 + b1) ** 2) W2 + b2, loss = mean((pred - y) ** 2).

    Bounded draws: the loss is quartic, and with normal draws (scale 0.5) 7% of data sets sent plain SGD to
    infinity within 20 steps, 36% with momentum, 58% with the StepLR case, where NaN == NaN let the
    comparison pass. Uniform ones keep every parameter below 1.05 on 3000 data sets, for every case here.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (16, 4))
    y = rng.uniform(-1, 1, (16, 2))
    params = [rng.uniform(-0.6, 0.6, (4, 6)), rng.uniform(-0.1, 0.1, 6),
              rng.uniform(-0.6, 0.6, (6, 2)), rng.uniform(-0.1, 0.1, 2)]
    return x, y, params


def tiny_loss(x, y, W1, b1, W2, b2):
    pred = ((Tensor(x) @ W1 + b1) ** 2) @ W2 + b2
    diff = pred - Tensor(y)
    return (diff * diff).mean()


def torch_loss(x, y, W1, b1, W2, b2):
    pred = ((torch.from_numpy(x) @ W1 + b1) ** 2) @ W2 + b2
    return ((pred - torch.from_numpy(y)) ** 2).mean()


def run_both(make_tiny, make_torch, steps=STEPS, skip=None, scheduler=None):
    """Train the same problem in both frameworks; return the per-step parameter lists of each.

    skip(step) -> index of a parameter left out of the loss at that step (its grad stays None).
    scheduler: (tiny_factory, torch_factory) for a learning-rate schedule stepped after each step.
    """
    x, y, init = problem()
    tiny = [Variable(p.copy()) for p in init]
    ref = [torch.tensor(p.copy(), dtype=torch.float64, requires_grad=True) for p in init]
    opt_tiny, opt_torch = make_tiny(tiny), make_torch(ref)
    sched_tiny = scheduler[0](opt_tiny) if scheduler else None
    sched_torch = scheduler[1](opt_torch) if scheduler else None
    history = []
    for step in range(steps):
        left_out = skip(step) if skip else None
        t_args = [p if i != left_out else Tensor(p.data.copy()) for i, p in enumerate(tiny)]
        r_args = [p if i != left_out else p.detach().clone() for i, p in enumerate(ref)]
        opt_tiny.zero_grad()
        opt_torch.zero_grad()
        tiny_loss(x, y, *t_args).backward()
        torch_loss(x, y, *r_args).backward()
        opt_tiny.step()
        opt_torch.step()
        if scheduler:
            sched_tiny.step()
            sched_torch.step()
        history.append(([p.data.copy() for p in tiny], [p.detach().numpy().copy() for p in ref]))
    return history


def assert_same_trajectory(history):
    moved = False
    for step, (ours, theirs) in enumerate(history):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert np.all(np.isfinite(b)), f"step {step + 1}: torch diverged, so the comparison would be vacuous"
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=f"step {step + 1}, parameter {i}")
    first, last = history[0][0], history[-1][0]
    moved = any(not np.allclose(a, b) for a, b in zip(first, last))
    assert moved, "the parameters did not move: the comparison would be vacuous"


@pytest.mark.parametrize("kwargs", [
    {"lr": 0.05},
    {"lr": 0.05, "momentum": 0.9},
    {"lr": 0.05, "weight_decay": 0.1},
    {"lr": 0.02, "momentum": 0.8, "weight_decay": 0.05},
])
def test_sgd_trajectory_matches_torch(kwargs):
    assert_same_trajectory(run_both(lambda p: SGD(p, **kwargs), lambda p: torch.optim.SGD(p, **kwargs)))


@pytest.mark.parametrize("kwargs", [
    {},
    {"lr": 0.01},
    {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6},
    {"lr": 0.01, "weight_decay": 0.1},
])
def test_adam_trajectory_matches_torch(kwargs):
    assert_same_trajectory(run_both(lambda p: Adam(p, **kwargs), lambda p: torch.optim.Adam(p, **kwargs)))


@pytest.mark.parametrize("make_tiny,make_torch", [
    (lambda p: SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01)),
    (lambda p: Adam(p, lr=0.01, weight_decay=0.01), lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01)),
])
def test_parameters_without_gradient_are_skipped_as_in_torch(make_tiny, make_torch):
    """The second layer's bias is left out of every third loss: its grad is None there, in both."""
    history = run_both(make_tiny, make_torch, skip=lambda step: 3 if step % 3 == 0 else None)
    assert_same_trajectory(history)


def test_steplr_schedule_matches_torch():
    tiny_opt = SGD([Variable(np.zeros(1))], lr=0.3)
    torch_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    ours, theirs = StepLR(tiny_opt, step_size=3, gamma=0.5), torch.optim.lr_scheduler.StepLR(torch_opt, 3, 0.5)
    assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr())
    for _ in range(12):
        tiny_opt.step()
        torch_opt.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)


def test_steplr_default_gamma_matches_torch():
    tiny_opt = SGD([Variable(np.zeros(1))], lr=1.0)
    torch_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    ours, theirs = StepLR(tiny_opt, step_size=2), torch.optim.lr_scheduler.StepLR(torch_opt, 2)
    for _ in range(6):
        torch_opt.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)


def test_sgd_with_steplr_trajectory_matches_torch():
    history = run_both(lambda p: SGD(p, lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                       scheduler=(lambda o: StepLR(o, 5, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 5, 0.5)))
    assert_same_trajectory(history)


def test_adam_float32_trajectory_close_to_torch():
    """float32 parameters: the same trajectory up to float32 round-off."""
    x, y, init = problem(1)
    tiny = [Variable(p.astype(np.float32)) for p in init]
    ref = [torch.tensor(p.astype(np.float32), requires_grad=True) for p in init]
    opt_tiny, opt_torch = Adam(tiny, lr=0.01), torch.optim.Adam(ref, lr=0.01)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    for _ in range(STEPS):
        opt_tiny.zero_grad()
        opt_torch.zero_grad()
        tiny_loss(x32, y32, *tiny).backward()
        torch_loss(x32, y32, *ref).backward()
        opt_tiny.step()
        opt_torch.step()
    for a, b in zip(tiny, ref):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-4, atol=1e-5)


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
