# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 09: Optimizers
#
# Autograd (module 02) tells us, for every parameter `p`, the gradient `p.grad`: the direction in
# which the loss grows fastest. An **optimizer** turns those gradients into parameter updates. The
# simplest rule, gradient descent, steps against the gradient: `p <- p - lr * grad`. Everything in this
# module is a refinement of that line:
#
# 1. `Optimizer`: the shared machinery: the parameter list, `zero_grad()`, and a `step()` that visits
#    every parameter that has a gradient and keeps per-parameter **state**.
# 2. `SGD`: gradient descent with optional **momentum** (a running sum of past gradients that speeds up
#    travel along consistent directions and damps oscillation) and **weight decay** (L2 regularisation).
# 3. `Adam`: per-parameter adaptive step sizes from running averages of the gradient and its square,
#    with bias correction. The default optimizer of modern deep learning.
# 4. `StepLR`: a learning-rate schedule: multiply the rate by `gamma` every `step_size` epochs.
#
# The update rules match PyTorch's `torch.optim` definitions of the same names exactly, so a model
# trained here follows the same trajectory as in PyTorch (the tests check this to 1e-6).
#
# Two rules hold for every optimizer:
#
# - **Updates are in place on `p.data`** (the NumPy array), vectorized over the whole parameter. The
#   layer holding `p` sees the new values without being told.
# - **Updates are never recorded** in the autograd graph: the optimizer works on the arrays, not on
#   Variables, so a step adds nothing to the next backward pass.

# %% nbgrader={"grade": false, "grade_id": "optimizers-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.optimizers
#| export
import math
import numbers

import numpy as np

from tinytorch.core.tensor import Tensor
from tinytorch.core.autograd import Variable

# %% [markdown]
# ## 1. The Optimizer base class
#
# Every optimizer holds:
#
# - `params`: the list of `Variable`s it updates (usually `model.parameters()`);
# - `lr`: the learning rate, a plain attribute so that schedules (`StepLR`) can change it;
# - `state`: one dict per parameter for whatever the rule needs to remember between steps (a momentum
#   buffer, Adam's running averages). It is created lazily at the first step, so an optimizer that
#   never steps costs nothing.
#
# `step()` is the same loop for every rule: for each parameter **with a gradient** (a parameter whose
# `grad` is `None` did not take part in the last backward pass, and is skipped, as in PyTorch), call
# `self._update(p, grad, state)` where `grad` is the gradient's NumPy array. Subclasses only write
# `_update`.
#
# `zero_grad()` resets every parameter's gradient to `None` (gradients accumulate across backward
# calls, so each training step starts by clearing them).
#
# Hyper-parameters are checked when the optimizer is built: a negative learning rate or a beta of 1
# is a bug that would otherwise show up as a diverging loss many steps later.

# %% nbgrader={"grade": false, "grade_id": "optimizer-base", "locked": false, "schema_version": 3, "solution": true}
#| export
def _check_number(owner, name, value, low=0.0, high=None, high_inclusive=True):
    """`value` as a float, after checking it is a real number in [low, high] (or [low, high))."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner} {name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if not math.isfinite(value) or value < low or too_high:
        upper = "" if high is None else (f", <= {high}" if high_inclusive else f", < {high}")
        raise ValueError(f"{owner} {name} must be finite, >= {low}{upper}; got {value}")
    return value


class Optimizer:
    """Base class: holds the parameters, `lr` and per-parameter state; `step()` and `zero_grad()`.

    Subclasses define `_update(p, grad, state)`: change `p.data` in place given `grad` (an ndarray of
    p's shape) and `state` (this parameter's dict, kept between steps).
    """

    def __init__(self, params, lr):
        ### BEGIN SOLUTION
        if isinstance(params, (Tensor, np.ndarray)):
            raise TypeError(f"{type(self).__name__} takes a list of parameters (e.g. model.parameters()), "
                            f"got a single {type(params).__name__}; wrap it in a list")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list: nothing to optimize")
        for i, p in enumerate(params):
            if not isinstance(p, Variable):
                raise TypeError(f"{type(self).__name__} parameter {i} must be a Variable, got {type(p).__name__}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{type(self).__name__} got the same parameter twice; each must appear once "
                             f"(it would be updated twice per step)")
        self.params = params
        self.lr = _check_number(type(self).__name__, "lr", lr)
        self.state = [{} for _ in params]
        ### END SOLUTION

    def zero_grad(self):
        """Reset every parameter's gradient to None (PyTorch's set_to_none default)."""
        ### BEGIN SOLUTION
        for p in self.params:
            p.zero_grad()
        ### END SOLUTION

    def step(self):
        """Update every parameter that has a gradient, in place; parameters with grad None are skipped."""
        ### BEGIN SOLUTION
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            grad = np.asarray(p.grad.data if isinstance(p.grad, Tensor) else p.grad)
            if grad.shape != p.data.shape:
                raise ValueError(f"{type(self).__name__}: gradient of shape {grad.shape} does not match its "
                                 f"parameter of shape {p.data.shape}")
            self._update(p, grad, state)
        ### END SOLUTION

    def _update(self, p, grad, state):
        raise NotImplementedError(f"{type(self).__name__} must define _update(p, grad, state)")

    def state_bytes(self):
        """Bytes held in optimizer state (momentum buffers, running averages) across all parameters."""
        return sum(v.nbytes for state in self.state for v in state.values() if isinstance(v, np.ndarray))

# %% [markdown]
# ## 2. SGD with momentum and weight decay
#
# PyTorch's definition, for each parameter `p` with gradient `g` (all arrays of p's shape):
#
# ```
# d_p = g + weight_decay * p                    # L2 regularisation, folded into the gradient
# buf = d_p                      (first step)    # momentum buffer, only when momentum != 0
# buf = momentum * buf + d_p     (later steps)
# p   = p - lr * buf             (or lr * d_p without momentum)
# ```
#
# **Momentum.** With momentum 0.9 the buffer is roughly the sum of the last ten gradients: along a
# direction where gradients agree the step grows up to 10x, while components that flip sign from step
# to step cancel. **Weight decay** adds `weight_decay * p` to the gradient, i.e. the gradient of
# `weight_decay / 2 * ||p||^2`, pulling weights towards zero.
#
# **Memory.** Plain SGD keeps no state; momentum keeps one buffer the size of the parameter (1x).
# **Time.** A few vectorized passes over the parameter: O(#parameters), negligible beside the
# forward and backward passes.
#
# In-place NumPy (`buf *= momentum; buf += d_p; p.data -= lr * buf`) avoids allocating new arrays on
# every step, and keeps `p.data` the same array the layer holds.

# %% nbgrader={"grade": false, "grade_id": "sgd", "locked": false, "schema_version": 3, "solution": true}
#| export
class SGD(Optimizer):
    """Stochastic gradient descent: SGD(params, lr, momentum=0.0, weight_decay=0.0), as torch.optim.SGD.

    d_p = g + weight_decay * p; buf = d_p (first step) then momentum * buf + d_p; p -= lr * buf.
    State: one momentum buffer of p's shape when momentum != 0, none otherwise.
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum = _check_number("SGD", "momentum", momentum)
        self.weight_decay = _check_number("SGD", "weight_decay", weight_decay)

    def _update(self, p, grad, state):
        ### BEGIN SOLUTION
        d_p = grad
        if self.weight_decay != 0.0:
            d_p = d_p + self.weight_decay * p.data          # a new array: never modify the gradient itself
        if self.momentum != 0.0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(d_p, dtype=p.data.dtype, copy=True)
            else:
                buf *= self.momentum
                buf += d_p
            d_p = buf
        p.data -= self.lr * d_p
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-sgd", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def _quadratic_grad(p, target):
    """Run backward on L = sum((p - target)^2) so that p.grad = 2 (p - target)."""
    loss = ((p - Tensor(target)) ** 2).sum()
    loss.backward()
    return loss


def test_unit_sgd():
    """SGD: the plain rule, momentum and weight decay against the formulas, in place, grad None skipped."""
    target = np.array([1.0, -2.0, 3.0])
    p = Variable(np.zeros(3))
    array_before = p.data
    opt = SGD([p], lr=0.1)
    _quadratic_grad(p, target)
    opt.step()
    np.testing.assert_allclose(p.data, 0.1 * 2 * target)           # p - lr * 2 (p - target), from p = 0
    assert p.data is array_before                                   # updated in place
    assert opt.state_bytes() == 0

    # momentum and weight decay, three steps against the formulas written out in NumPy
    p = Variable(np.array([0.5, -1.0, 2.0]))
    opt = SGD([p], lr=0.05, momentum=0.9, weight_decay=0.1)
    ref, buf = p.data.copy(), None
    for _ in range(3):
        opt.zero_grad()
        _quadratic_grad(p, target)
        opt.step()
        d_p = 2 * (ref - target) + 0.1 * ref
        buf = d_p if buf is None else 0.9 * buf + d_p
        ref = ref - 0.05 * buf
        np.testing.assert_allclose(p.data, ref, rtol=1e-12, atol=1e-12)
    assert opt.state_bytes() == p.data.nbytes                        # one buffer: 1x the parameter

    # a parameter without gradient is left alone; zero_grad clears gradients to None
    q = Variable(np.ones(2))
    opt = SGD([p, q], lr=0.1, momentum=0.9)
    opt.zero_grad()
    _quadratic_grad(p, target)
    opt.step()
    np.testing.assert_array_equal(q.data, np.ones(2))
    assert "momentum_buffer" not in opt.state[1]
    opt.zero_grad()
    assert p.grad is None and q.grad is None
    print("SGD: ok")


test_unit_sgd()

# %% nbgrader={"grade": true, "grade_id": "test-optimizer-validation", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_optimizer_validation():
    """Bad parameters and hyper-parameters are rejected with messages naming the value."""
    p = Variable(np.zeros(2))
    cases = [(lambda: SGD([], lr=0.1), ValueError, "empty"),
             (lambda: SGD([p, p], lr=0.1), ValueError, "twice"),
             (lambda: SGD(p, lr=0.1), TypeError, "list"),
             (lambda: SGD([np.zeros(2)], lr=0.1), TypeError, "ndarray"),
             (lambda: SGD([p], lr=-0.1), ValueError, "-0.1"),
             (lambda: SGD([p], lr="0.1"), TypeError, "'0.1'"),
             (lambda: SGD([p], lr=0.1, momentum=-0.5), ValueError, "-0.5")]
    for make, error, fragment in cases:
        try:
            make()
        except error as caught:
            assert fragment in str(caught), (fragment, str(caught))
        else:
            raise AssertionError(f"expected {error.__name__} mentioning {fragment!r}")
    print("optimizer validation: ok")


test_unit_optimizer_validation()

# %% [markdown]
# ## 3. Adam: adaptive moments
#
# Adam keeps two running averages per parameter element: `m`, of the gradient (first moment, like
# momentum), and `v`, of the squared gradient (second moment, a per-element scale). PyTorch's
# definition (step t = 1, 2, ...):
#
# ```
# g     = g + weight_decay * p                    # L2 penalty added to the gradient (this is Adam, not AdamW)
# m     = beta1 * m + (1 - beta1) * g
# v     = beta2 * v + (1 - beta2) * g * g
# m_hat = m / (1 - beta1 ** t)                     # bias correction: m and v start at 0
# v_hat = v / (1 - beta2 ** t)
# p     = p - lr * m_hat / (sqrt(v_hat) + eps)
# ```
#
# **Why bias correction.** At t = 1, `m = (1 - beta1) g = 0.1 g`: far too small because the average
# started at zero. Dividing by `1 - beta1 ** t` (= 0.1 at t = 1) undoes exactly that, so the first step
# is `lr * g / (|g| + eps)`, about `lr` in size whatever the gradient's scale.
#
# **Why it works.** Dividing by `sqrt(v_hat)` gives every element its own step size: elements with
# large, noisy gradients take small steps, elements with small consistent gradients take larger ones.
# Steps are roughly bounded by `lr`, which makes the learning rate much easier to choose than SGD's.
#
# **Memory.** Two arrays per parameter (m and v): Adam's state is 2x the model's parameters. With the
# parameters and gradients, training with Adam holds 4 copies of the model.

# %% nbgrader={"grade": false, "grade_id": "adam", "locked": false, "schema_version": 3, "solution": true}
#| export
class Adam(Optimizer):
    """Adam(params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0), as torch.optim.Adam.

    Weight decay is L2 added to the gradient (not AdamW). State per parameter: step count t, m and v
    (two arrays of p's shape: 2x the parameter's memory).
    """

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise TypeError(f"Adam betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(_check_number("Adam", f"betas[{i}]", b, high=1.0, high_inclusive=False)
                           for i, b in enumerate(betas))
        self.eps = _check_number("Adam", "eps", eps)
        self.weight_decay = _check_number("Adam", "weight_decay", weight_decay)

    def _update(self, p, grad, state):
        ### BEGIN SOLUTION
        beta1, beta2 = self.betas
        if self.weight_decay != 0.0:
            grad = grad + self.weight_decay * p.data
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)          # m
            state["exp_avg_sq"] = np.zeros_like(p.data)       # v
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1.0 - beta1) * grad
        v *= beta2
        v += (1.0 - beta2) * (grad * grad)
        bias_correction1 = 1.0 - beta1 ** t
        bias_correction2 = 1.0 - beta2 ** t
        # lr * m_hat / (sqrt(v_hat) + eps), written as PyTorch does to need one temporary fewer
        denom = np.sqrt(v) / math.sqrt(bias_correction2) + self.eps
        p.data -= (self.lr / bias_correction1) * (m / denom)
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-adam", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_adam():
    """Adam: first step ~ lr * sign(g), several steps against the formulas, 2x state, weight decay."""
    target = np.array([1.0, -2.0, 300.0])
    p = Variable(np.zeros(3))
    opt = Adam([p], lr=0.01)
    _quadratic_grad(p, target)
    opt.step()
    # bias correction makes the first step lr * g / (|g| + eps): about lr, whatever the gradient's scale
    np.testing.assert_allclose(p.data, 0.01 * np.sign(target), rtol=1e-6)
    assert opt.state_bytes() == 2 * p.data.nbytes

    p = Variable(np.array([0.5, -1.0, 2.0]))
    opt = Adam([p], lr=0.1, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)
    ref, m, v = p.data.copy(), 0.0, 0.0
    for t in range(1, 6):
        opt.zero_grad()
        _quadratic_grad(p, target)
        opt.step()
        g = 2 * (ref - target) + 0.01 * ref
        m = 0.8 * m + 0.2 * g
        v = 0.99 * v + 0.01 * g * g
        ref = ref - 0.1 * (m / (1 - 0.8 ** t)) / (np.sqrt(v / (1 - 0.99 ** t)) + 1e-6)
        np.testing.assert_allclose(p.data, ref, rtol=1e-10, atol=1e-12)
    for betas, fragment in [((0.9, 1.0), "1.0"), ((-0.1, 0.9), "-0.1"), ((0.9,), "pair")]:
        try:
            Adam([p], betas=betas)
        except (ValueError, TypeError) as caught:
            assert fragment in str(caught), (fragment, str(caught))
        else:
            raise AssertionError(f"Adam(betas={betas}) should be rejected")
    print("Adam: ok")


test_unit_adam()

# %% [markdown]
# ## 4. StepLR: a learning-rate schedule
#
# Large steps make fast progress early; near a minimum they overshoot. A schedule lowers the rate as
# training goes on. `StepLR(optimizer, step_size, gamma=0.1)` multiplies the optimizer's `lr` by `gamma`
# every `step_size` calls of `scheduler.step()` (one call per epoch):
#
# ```
# lr(epoch) = base_lr * gamma ** (epoch // step_size)
# ```
#
# Like PyTorch, it applies this as a chain (`lr *= gamma` whenever the epoch count reaches a multiple of
# `step_size`), and `get_last_lr()` returns the current rates as a list (one per parameter group; a
# TinyTorch optimizer has a single group).

# %% nbgrader={"grade": false, "grade_id": "steplr", "locked": false, "schema_version": 3, "solution": true}
#| export
class StepLR:
    """StepLR(optimizer, step_size, gamma=0.1): lr = base_lr * gamma ** (epoch // step_size).

    Call `step()` once per epoch, after the optimizer's steps; `get_last_lr()` -> [lr].
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        ### BEGIN SOLUTION
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"StepLR needs an Optimizer (SGD, Adam), got {type(optimizer).__name__}")
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral) or step_size < 1:
            raise ValueError(f"StepLR step_size must be a positive integer (epochs), got {step_size!r}")
        self.optimizer = optimizer
        self.step_size = int(step_size)
        self.gamma = _check_number("StepLR", "gamma", gamma)
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        ### END SOLUTION

    def step(self):
        """Advance one epoch; multiply the optimizer's lr by gamma when a multiple of step_size is reached."""
        ### BEGIN SOLUTION
        self.last_epoch += 1
        if self.last_epoch % self.step_size == 0:
            self.optimizer.lr *= self.gamma
        ### END SOLUTION

    def get_last_lr(self):
        """The current learning rate(s), as a list (as PyTorch)."""
        return [self.optimizer.lr]

# %% nbgrader={"grade": true, "grade_id": "test-steplr", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_steplr():
    """StepLR follows base_lr * gamma ** (epoch // step_size) and changes the optimizer's lr."""
    opt = SGD([Variable(np.zeros(1))], lr=1.0)
    scheduler = StepLR(opt, step_size=3, gamma=0.5)
    seen = []
    for epoch in range(1, 10):
        scheduler.step()
        seen.append(scheduler.get_last_lr()[0])
        np.testing.assert_allclose(opt.lr, 1.0 * 0.5 ** (epoch // 3), rtol=1e-12)
    assert seen[:3] == [1.0, 1.0, 0.5]
    for bad in [0, 2.5]:
        try:
            StepLR(opt, step_size=bad)
        except ValueError as caught:
            assert str(bad) in str(caught)
        else:
            raise AssertionError(f"StepLR(step_size={bad}) should fail")
    print("StepLR: ok")


test_unit_steplr()

# %% [markdown]
# ## Systems Analysis
#
# 1. **State memory.** For the digits MLP of the examples (64 -> 128 -> 64 -> 10), the bytes of the
#    parameters and of each optimizer's state after one step: SGD 0x, SGD with momentum 1x, Adam 2x.
# 2. **Time per step** as the number of parameters grows, per optimizer, and the time per parameter
#    element. An optimizer step is a handful of vectorized passes over memory, so it should scale
#    linearly, with a fixed Python cost per parameter tensor that dominates for small models.

# %% nbgrader={"grade": false, "grade_id": "optimizers-analysis", "locked": false, "schema_version": 3, "solution": false}
import time


def _mlp_params(sizes, rng):
    """Float32 weights and biases of an MLP with the given layer widths, with random gradients set."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        for shape in [(fan_in, fan_out), (fan_out,)]:
            p = Variable(rng.standard_normal(shape).astype(np.float32))
            p.grad = Tensor(rng.standard_normal(shape).astype(np.float32))
            params.append(p)
    return params


def _optimizers(params):
    return [("SGD", SGD(params, lr=0.01)), ("SGD momentum", SGD(params, lr=0.01, momentum=0.9)),
            ("Adam", Adam(params, lr=0.001))]


def analyze_state_memory():
    """Bytes of parameters and of optimizer state for the 64-128-64-10 digits MLP, after one step."""
    params = _mlp_params([64, 128, 64, 10], np.random.default_rng(0))
    param_bytes = sum(p.data.nbytes for p in params)
    count = sum(p.data.size for p in params)
    print(f"digits MLP 64-128-64-10: {count} parameters, {param_bytes / 1024:.1f} KB in float32")
    print("optimizer       state (KB)   x parameters")
    for name, opt in _optimizers(params):
        opt.step()
        print(f"{name:14s}  {opt.state_bytes() / 1024:10.1f}   {opt.state_bytes() / param_bytes:8.1f}x")


def analyze_step_time():
    """Median time of one step as the model grows: microseconds and nanoseconds per parameter element."""
    rng = np.random.default_rng(0)
    print("parameters   optimizer       step (us)   ns/element")
    for width in [64, 256, 1024]:
        params = _mlp_params([width, width, width, 10], rng)
        count = sum(p.data.size for p in params)
        for name, opt in _optimizers(params):
            opt.lr = 0.0                      # measure the arithmetic without letting weights drift
            times = []
            for _ in range(15):
                start = time.perf_counter()
                opt.step()
                times.append(time.perf_counter() - start)
            seconds = float(np.median(times))
            print(f"{count:10d}   {name:14s}  {seconds * 1e6:9.1f}   {seconds / count * 1e9:10.2f}")


analyze_state_memory()
analyze_step_time()

# %% [markdown]
# ### What the numbers say
#
# - State memory is exactly 0x (SGD), 1x (momentum) and 2x (Adam) the parameters. For a model with a
#   billion float32 parameters that is 0, 4 and 8 GB on top of the 4 GB of weights and 4 GB of gradients.
# - For small models the step time is dominated by the fixed Python cost per parameter tensor (a few
#   microseconds each, 6 tensors here); for large ones it grows linearly with the element count, at a
#   few nanoseconds per element: memory bandwidth, since each element is read and written a few times.
#   Adam costs several times SGD per element (more passes over memory: m, v, a square root, a division).
# - Either way a step is small beside the forward and backward passes, which cost O(batch × parameters).
#
# ## Summary
#
# You built the `Optimizer` base (parameter list, per-parameter state, `step`, `zero_grad`), `SGD` with
# momentum and weight decay, `Adam` with bias correction, and `StepLR`. All match `torch.optim`'s
# definitions. Module 11's `Trainer` calls `zero_grad()`, `backward()` and `step()` once per batch.
