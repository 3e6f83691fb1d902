"""Tests of tinytorch.core.optimizers (the exported package): SGD, Adam, StepLR and the Optimizer base."""

import numpy as np
import pytest

from tinytorch.core.autograd import Variable
from tinytorch.core.optimizers import SGD, Adam, Optimizer, StepLR
from tinytorch.core.tensor import Tensor


def least_squares(seed=0, n=40, d=5):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d))
    b = rng.standard_normal((n, 1))
    solution = np.linalg.lstsq(A, b, rcond=None)[0]
    return Tensor(A), Tensor(b), solution


def loss_of(A, b, w):
    residual = A @ w - b
    return (residual * residual).mean()


def train(opt, A, b, w, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss_of(A, b, w).backward()
        opt.step()


# --- convergence --------------------------------------------------------------------------------

@pytest.mark.parametrize("make,steps,decay_every", [
    (lambda p: SGD(p, lr=0.1), 600, None),
    (lambda p: SGD(p, lr=0.05, momentum=0.9), 300, None),
    # Adam at a constant rate circles the minimum at a distance that depends on the data: 5 of 400 draws ended
    # more than 1e-3 away after 800 steps (up to 6e-3). Decaying the rate (x0.3 every 200 steps) brings every
    # one of the 400 within 3e-15. (SGD's error after its steps: at most 1e-7 over 300 draws.)
    (lambda p: Adam(p, lr=0.05), 800, 200),
])
def test_reaches_the_least_squares_solution(make, steps, decay_every):
    A, b, solution = least_squares()
    w = Variable(np.zeros((5, 1)))
    opt = make([w])
    scheduler = StepLR(opt, step_size=decay_every, gamma=0.3) if decay_every else None
    for _ in range(steps):
        train(opt, A, b, w, 1)
        if scheduler is not None:
            scheduler.step()
    np.testing.assert_allclose(w.data, solution, atol=1e-3)


def test_weight_decay_shrinks_towards_the_ridge_solution():
    """SGD with weight decay wd minimises mean((Aw-b)^2) + wd/2 ||w||^2: the ridge solution."""
    A, b, _ = least_squares()
    wd = 0.5
    n = A.shape[0]
    ridge = np.linalg.solve(2 / n * A.data.T @ A.data + wd * np.eye(5), 2 / n * A.data.T @ b.data)
    w = Variable(np.zeros((5, 1)))
    train(SGD([w], lr=0.1, momentum=0.5, weight_decay=wd), A, b, w, 400)
    np.testing.assert_allclose(w.data, ridge, atol=1e-6)


# --- update rules, step by step -----------------------------------------------------------------

def test_sgd_momentum_rule_by_hand():
    p = Variable(np.array([1.0, 2.0]))
    opt = SGD([p], lr=0.5, momentum=0.5)
    grads = [np.array([1.0, -1.0]), np.array([2.0, 0.0]), np.array([0.0, 4.0])]
    expected = np.array([1.0, 2.0])
    buf = None
    for g in grads:
        p.grad = Tensor(g)
        opt.step()
        buf = g if buf is None else 0.5 * buf + g
        expected = expected - 0.5 * buf
        np.testing.assert_allclose(p.data, expected)
    np.testing.assert_allclose(expected, [1.0 - 0.5 * 1 - 0.5 * 2.5 - 0.5 * 1.25,
                                          2.0 + 0.5 - 0.5 * (-0.5) - 0.5 * 3.75])


def test_adam_first_step_is_lr_times_sign_for_any_gradient_scale():
    for scale in [1e-3, 1.0, 1e4]:
        p = Variable(np.zeros(4))
        p.grad = Tensor(scale * np.array([1.0, -2.0, 3.0, -4.0]))
        Adam([p], lr=0.01).step()
        np.testing.assert_allclose(p.data, -0.01 * np.sign(p.grad.data), rtol=1e-4)


def test_adam_bias_correction_and_per_parameter_step_count():
    """A parameter that gets a gradient only on some steps has its own step count (as PyTorch)."""
    p, q = Variable(np.zeros(1)), Variable(np.zeros(1))
    opt = Adam([p, q], lr=0.1)
    for step in range(3):
        p.grad = Tensor(np.ones(1))
        q.grad = Tensor(np.ones(1)) if step == 2 else None
        opt.step()
    assert opt.state[0]["step"] == 3 and opt.state[1]["step"] == 1
    # a constant gradient gives m_hat = v_hat = g: every step is lr * g / (|g| + eps)
    np.testing.assert_allclose(p.data, [-0.3], rtol=1e-6)
    np.testing.assert_allclose(q.data, [-0.1], rtol=1e-6)


def test_adam_weight_decay_is_l2_in_the_gradient_not_adamw():
    """With zero gradient, Adam's L2 decay still moves p by lr * sign(p) on step 1 (AdamW would move lr*wd*p)."""
    p = Variable(np.array([2.0, -3.0]))
    p.grad = Tensor(np.zeros(2))
    Adam([p], lr=0.01, weight_decay=0.1).step()
    np.testing.assert_allclose(p.data, [2.0 - 0.01, -3.0 + 0.01], rtol=1e-6)


# --- in place, not recorded, dtypes -------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
                                  lambda p: Adam(p, weight_decay=0.01)])
def test_updates_are_in_place_float32_and_not_recorded(make):
    w = Variable(np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32))
    x = Tensor(np.ones((4, 3), dtype=np.float32))
    array = w.data
    opt = make([w])
    for _ in range(3):
        opt.zero_grad()
        (x @ w).sum().backward()
        grad_before = w.grad.data.copy()
        opt.step()
        np.testing.assert_array_equal(w.grad.data, grad_before)      # the gradient is not modified
    assert w.data is array and w.dtype == np.float32                 # in place, dtype kept
    assert w.is_leaf and w.requires_grad and w._inputs == ()         # nothing recorded
    assert all(v.dtype == np.float32 for s in opt.state for v in s.values() if isinstance(v, np.ndarray))
    opt.zero_grad()
    (x @ w).sum().backward()                                          # the next backward is unaffected
    np.testing.assert_allclose(w.grad.data, np.full((3, 2), 4.0))


def test_parameters_without_gradient_are_skipped():
    used, unused = Variable(np.ones(2)), Variable(np.ones(2))
    for opt in [SGD([used, unused], lr=0.1, momentum=0.9, weight_decay=1.0), Adam([used, unused], weight_decay=1.0)]:
        opt.zero_grad()
        (used * 3.0).sum().backward()
        opt.step()
        np.testing.assert_array_equal(unused.data, np.ones(2))
        assert opt.state[1] == {}


def test_zero_grad_sets_every_gradient_to_none():
    params = [Variable(np.ones(3)), Variable(np.ones((2, 2)))]
    opt = SGD(params, lr=0.1)
    (params[0].sum() + params[1].sum()).backward()
    assert all(p.grad is not None for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_state_memory_is_0_1_2_times_the_parameters():
    params = [Variable(np.ones((10, 20), dtype=np.float32)), Variable(np.ones(20, dtype=np.float32))]
    nbytes = sum(p.data.nbytes for p in params)
    for p in params:
        p.grad = Tensor(np.ones(p.shape, dtype=np.float32))
    for opt, factor in [(SGD(params, lr=0.1), 0), (SGD(params, lr=0.1, momentum=0.9), 1), (Adam(params), 2)]:
        assert opt.state_bytes() == 0                 # lazily created
        opt.step()
        assert opt.state_bytes() == factor * nbytes


def test_accepts_a_generator_of_parameters():
    params = [Variable(np.ones(2)), Variable(np.ones(3))]
    assert SGD((p for p in params), lr=0.1).params == params


# --- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make,error,fragment", [
    (lambda p: SGD([], lr=0.1), ValueError, "empty"),
    (lambda p: SGD([p, p], lr=0.1), ValueError, "twice"),
    (lambda p: SGD(p, lr=0.1), TypeError, "list"),
    (lambda p: SGD([Tensor([1.0])], lr=0.1), TypeError, "Tensor"),
    (lambda p: SGD([p], lr=-1.0), ValueError, "-1.0"),
    (lambda p: SGD([p], lr=float("nan")), ValueError, "nan"),
    (lambda p: SGD([p], lr=None), TypeError, "None"),
    (lambda p: SGD([p], lr=True), TypeError, "True"),
    (lambda p: SGD([p], lr=0.1, momentum=-0.9), ValueError, "-0.9"),
    (lambda p: SGD([p], lr=0.1, weight_decay=-1e-4), ValueError, "weight_decay"),
    (lambda p: Adam([p], lr=-0.001), ValueError, "-0.001"),
    (lambda p: Adam([p], betas=(1.0, 0.999)), ValueError, "betas\\[0\\]"),
    (lambda p: Adam([p], betas=(0.9, 1.5)), ValueError, "1.5"),
    (lambda p: Adam([p], betas=0.9), TypeError, "pair"),
    (lambda p: Adam([p], eps=-1e-8), ValueError, "eps"),
    (lambda p: Adam([p], weight_decay=-0.1), ValueError, "-0.1"),
])
def test_bad_arguments(make, error, fragment):
    with pytest.raises(error, match=fragment):
        make(Variable(np.zeros(2)))


def test_gradient_of_the_wrong_shape_is_reported():
    p = Variable(np.zeros((2, 3)))
    p.grad = Tensor(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        SGD([p], lr=0.1).step()


def test_base_class_needs_an_update_rule():
    p = Variable(np.zeros(2))
    p.grad = Tensor(np.ones(2))
    with pytest.raises(NotImplementedError, match="_update"):
        Optimizer([p], lr=0.1).step()


# --- StepLR -------------------------------------------------------------------------------------

def test_steplr_schedule_and_effect_on_the_updates():
    p = Variable(np.zeros(1))
    opt = SGD([p], lr=0.1)
    scheduler = StepLR(opt, step_size=2)              # gamma defaults to 0.1, as PyTorch
    assert scheduler.gamma == 0.1 and scheduler.get_last_lr() == [0.1]
    lrs = []
    for _epoch in range(1, 7):
        p.grad = Tensor(np.ones(1))
        before = p.data.copy()
        opt.step()
        np.testing.assert_allclose(before - p.data, opt.lr)         # the step used the current lr
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    np.testing.assert_allclose(lrs, [0.1 * 0.1 ** (e // 2) for e in range(1, 7)])


@pytest.mark.parametrize("kwargs,error", [({"step_size": 0}, ValueError), ({"step_size": 1.5}, ValueError),
                                          ({"step_size": 2, "gamma": -0.5}, ValueError)])
def test_steplr_bad_arguments(kwargs, error):
    opt = SGD([Variable(np.zeros(1))], lr=0.1)
    with pytest.raises(error):
        StepLR(opt, **kwargs)
    with pytest.raises(TypeError, match="Optimizer"):
        StepLR("sgd", step_size=1)


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
