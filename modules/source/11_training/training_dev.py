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
# # Module 11: Training
#
# Everything is in place: tensors (01), gradients (02), layers and networks (03-05), batches (08) and
# optimizers (09). Training ties them together in one loop, repeated for every batch of every epoch:
#
# ```
# prediction = model(x)                 # forward (records the graph)
# loss = loss_fn(prediction, y)         # one number: how wrong the model is on this batch
# optimizer.zero_grad()                 # forget the previous batch's gradients
# loss.backward()                       # gradients of the loss for every parameter
# optimizer.step()                      # move every parameter against its gradient
# ```
#
# This module builds what that loop needs:
#
# 1. **Losses**: `MeanSquaredError` (regression), `CrossEntropyLoss` (classification from logits and
#    integer labels, numerically stable, with a fused backward), `BinaryCrossEntropyLoss` (two classes,
#    from probabilities).
# 2. **Metrics**: `Accuracy`, the number people actually read.
# 3. **`Trainer`**: the loop above over a `DataLoader`, with validation, a per-epoch progress line and a
#    history of every number, so training a model is `Trainer(model, opt, loss).fit(loader, epochs)`.
#
# Losses follow PyTorch: they take `(prediction, target)`, return a scalar averaged over all elements, and
# are polymorphic: a `Tensor` prediction gives a plain `Tensor` loss, a `Variable` gives a `Variable`
# whose `backward()` reaches every parameter.

# %% nbgrader={"grade": false, "grade_id": "training-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.training
#| export
import numbers
import time

import numpy as np

from tinytorch.core.tensor import Tensor, median_time
from tinytorch.core.autograd import Variable, no_grad, record_op

# %% nbgrader={"grade": false, "grade_id": "training-test-imports", "locked": false, "schema_version": 3, "solution": false}
# Only the tests and the analysis below use these: the losses and the Trainer work with any model.
from tinytorch.core.autograd import check_gradients
from tinytorch.core.activations import ReLU, Sigmoid
from tinytorch.core.layers import Dense, Module
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.optimizers import SGD, Adam

# %% [markdown]
# ## 1. Mean squared error
#
# For predictions `p` and targets `t` of the same shape, with n elements in all:
#
# ```
# L = mean((p - t) ** 2)            dL/dp = 2 (p - t) / n           dL/dt = -2 (p - t) / n
# ```
#
# We write it as **one** recorded operation with its own backward instead of composing `-`, `**` and
# `mean` from Variable arithmetic: one graph node instead of three, one temporary instead of three.
#
# **Shapes must match exactly.** Predictions of shape (4, 1) against targets of shape (4,) would broadcast
# to (4, 4) and compare every prediction with every target: a silent, classic bug (PyTorch only warns).
# We raise a `ValueError` naming both shapes instead.
#
# The helpers below turn a loss's arguments into Tensors and check them once, for every loss.

# %% nbgrader={"grade": false, "grade_id": "loss-helpers", "locked": false, "schema_version": 3, "solution": false}
#| export
def _prediction(x, who):
    """The prediction argument of a loss: a Tensor/Variable with a floating dtype and some elements."""
    if isinstance(x, np.ndarray):
        x = Tensor(x)
    if not isinstance(x, Tensor):
        raise TypeError(f"{who} expects the prediction as a Tensor or Variable, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{who} expects floating-point predictions, got dtype {x.dtype}")
    if x.size == 0:
        raise ValueError(f"{who} got an empty prediction of shape {x.shape}: nothing to average")
    return x


def _target(y):
    """The target argument of a loss as a Tensor (a Variable target is kept, so it can get a gradient)."""
    return y if isinstance(y, Tensor) else Tensor(np.asarray(y))


class Loss:
    """Base class of the losses: loss(prediction, target) -> a scalar Tensor (Variable for a Variable)."""

    name = "loss"

    def __call__(self, prediction, target):
        return self.forward(prediction, target)

    def forward(self, prediction, target):
        raise NotImplementedError(f"{type(self).__name__} must define forward(prediction, target)")

    def __repr__(self):
        return f"{type(self).__name__}()"

# %% nbgrader={"grade": false, "grade_id": "mse", "locked": false, "schema_version": 3, "solution": true}
#| export
class MeanSquaredError(Loss):
    """mean((prediction - target) ** 2) over all elements, as torch.nn.MSELoss().

    Shapes: prediction and target of the same shape (any) -> a scalar (shape ()).
    """

    def forward(self, prediction, target):
        prediction, target = _prediction(prediction, "MeanSquaredError"), _target(target)
        if prediction.shape != target.shape:
            raise ValueError(
                f"MeanSquaredError: prediction shape {prediction.shape} and target shape {target.shape} differ; "
                f"reshape the target to {prediction.shape} (broadcasting would compare every prediction "
                f"with every target)"
            )
        ### BEGIN SOLUTION
        diff = prediction.data - target.data.astype(prediction.dtype, copy=False)
        out = np.asarray(np.mean(diff * diff), dtype=diff.dtype)

        def backward(grad):
            g = (2.0 / diff.size) * grad * diff
            return g, -g

        return record_op(out, (prediction, target), backward, name="mse")
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-mse", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_mse():
    """MSE: value against NumPy, Tensor in -> Tensor out, gradients to both inputs, shape errors."""
    rng = np.random.default_rng(0)
    p, t = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    loss = MeanSquaredError()(Tensor(p), Tensor(t))
    assert type(loss) is Tensor and loss.shape == ()
    np.testing.assert_allclose(loss.data, np.mean((p - t) ** 2))
    assert check_gradients(lambda a, b: MeanSquaredError()(a, b), Variable(p), Variable(t))
    assert MeanSquaredError()(Tensor(p.astype(np.float32)), t).dtype == np.float32
    try:
        MeanSquaredError()(Tensor(np.zeros((4, 1))), np.zeros(4))
    except ValueError as error:
        assert "(4, 1)" in str(error) and "(4,)" in str(error)
    else:
        raise AssertionError("shapes (4, 1) and (4,) must be rejected")
    print("MeanSquaredError: ok")


test_unit_mse()

# %% [markdown]
# ## 2. Cross-entropy from logits
#
# A classifier outputs **logits** `z` of shape (N, C): one unnormalised score per class. Softmax turns a
# row into probabilities `softmax(z)_c = exp(z_c) / sum_j exp(z_j)`, and the loss of an example with
# label `y` is `-log softmax(z)_y`, averaged over the batch:
#
# ```
# L = mean_i [ logsumexp(z_i) - z_{i, y_i} ]          logsumexp(z) = log sum_j exp(z_j)
# ```
#
# **Numerical stability.** `exp(1000)` overflows to inf in any float format, and `softmax` followed by `log`
# turns a tiny probability into `log(0) = -inf`. The identity `logsumexp(z) = m + log sum_j exp(z_j - m)`
# with `m = max_j z_j` makes every exponent <= 0 (no overflow) and at least one term equal to 1 (no log
# of 0). We never compute `log(softmax)` directly.
#
# **Fused backward.** Differentiating through softmax and log separately builds a (C, C) Jacobian per
# example; the combined derivative is simply
#
# ```
# dL/dz = (softmax(z) - onehot(y)) / N          shape (N, C)
# ```
#
# so the whole loss is a single recorded operation whose backward is one subtraction. Labels are
# integers (N,) in `[0, C)`: a label out of range is a bug in the data, reported with its value.
#
# Cost: O(N·C) time and one (N, C) array of probabilities kept for the backward pass.

# %% nbgrader={"grade": false, "grade_id": "cross-entropy", "locked": false, "schema_version": 3, "solution": true}
#| export
def _class_labels(labels, n, classes, who):
    """Integer labels of shape (n,) with values in [0, classes), as an int array; clear errors otherwise."""
    labels = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{who} expects integer class labels, got dtype {labels.dtype}; "
                        f"convert them with labels.astype(np.int64)")
    if labels.shape != (n,):
        hint = " (one-hot targets? pass labels.argmax(axis=1))" if labels.shape == (n, classes) else ""
        raise ValueError(f"{who}: logits of shape ({n}, {classes}) need labels of shape ({n},), "
                         f"got shape {labels.shape}{hint}")
    if n and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)][0]
        raise ValueError(f"{who}: label {bad} is out of range for {classes} classes (valid labels: 0 to {classes - 1})")
    return labels


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy from logits (N, C) and integer labels (N,), averaged: torch.nn.CrossEntropyLoss().

    Stable (log-sum-exp); one fused backward: dL/dlogits = (softmax - onehot) / N. Labels get no gradient.
    """

    def forward(self, logits, labels):
        logits = _prediction(logits, "CrossEntropyLoss")
        if logits.ndim != 2:
            raise ValueError(f"CrossEntropyLoss expects logits of shape (batch, classes), got shape {logits.shape}")
        n, classes = logits.shape
        labels = _class_labels(labels, n, classes, "CrossEntropyLoss")
        ### BEGIN SOLUTION
        z = logits.data
        rows = np.arange(n)
        shifted = z - z.max(axis=1, keepdims=True)               # every exponent <= 0
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)                 # >= 1: its log is safe
        log_sum_exp = np.log(sum_exp)
        out = np.asarray(np.mean(log_sum_exp[:, 0] - shifted[rows, labels]), dtype=z.dtype)

        def backward(grad):
            g = exp / sum_exp                                    # softmax, (N, C)
            g[rows, labels] -= 1.0                               # minus the one-hot labels
            g *= grad / n
            return (g,)

        return record_op(out, (logits,), backward, name="cross_entropy")
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-cross-entropy", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_cross_entropy():
    """Cross-entropy: value against the textbook formula, stability, gradient, label errors."""
    rng = np.random.default_rng(1)
    z, y = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    loss = CrossEntropyLoss()(Tensor(z), y)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loss.data, -np.mean(np.log(probs[np.arange(6), y])), rtol=1e-12)
    assert type(loss) is Tensor
    # uniform logits: loss = log(C) whatever the labels
    np.testing.assert_allclose(CrossEntropyLoss()(Tensor(np.zeros((3, 10))), [0, 5, 9]).data, np.log(10))
    # huge logits stay finite, and a confident correct prediction costs ~0
    big = CrossEntropyLoss()(Tensor(np.array([[1000.0, 0.0], [0.0, 1000.0]])), np.array([0, 0]))
    np.testing.assert_allclose(big.data, 500.0)
    assert check_gradients(lambda a: CrossEntropyLoss()(a, y), Variable(z))
    for bad_labels, error, fragment in [(np.array([0, 1, 2, 3, 4, 1]), ValueError, "label 4"),
                                        (np.array([0, 1, -1, 0, 0, 0]), ValueError, "label -1"),
                                        (y.astype(np.float32), TypeError, "float32"),
                                        (y[:5], ValueError, "(5,)")]:
        try:
            CrossEntropyLoss()(Tensor(z), bad_labels)
        except error as caught:
            assert fragment in str(caught), (fragment, str(caught))
        else:
            raise AssertionError(f"labels {bad_labels} should be rejected")
    print("CrossEntropyLoss: ok")


test_unit_cross_entropy()

# %% [markdown]
# ## 3. Binary cross-entropy from probabilities
#
# For two classes a model often outputs one probability per example (a `Sigmoid` at the end). With
# predicted probabilities `p` and targets `t` in [0, 1] of the same shape:
#
# ```
# L = -mean( t log p + (1 - t) log(1 - p) )        dL/dp = (p - t) / (p (1 - p)) / n
# ```
#
# **Clipping.** A saturated sigmoid returns exactly 0.0 or 1.0 in floating point, and `log(0) = -inf`
# would turn the loss and every gradient into inf or nan. We clip `p` to `[eps, 1 - eps]` with
# `eps = 1e-7` (the constructor's `eps=`): each term is then at most `-log(1e-7) ≈ 16.1`, and `1 - 1e-7`
# is still distinct from 1 in float32 (whose spacing just below 1 is 6e-8). The gradient is evaluated at
# the clipped probability, so a confidently wrong prediction still gets a large, finite push back.
# (PyTorch's `BCELoss` clamps each log at -100 instead; inside `[eps, 1 - eps]` both are identical.)
#
# Probabilities outside [0, 1] are a bug (logits passed where probabilities were expected) and raise a
# `ValueError`, as PyTorch does.

# %% nbgrader={"grade": false, "grade_id": "binary-cross-entropy", "locked": false, "schema_version": 3, "solution": true}
#| export
class BinaryCrossEntropyLoss(Loss):
    """-mean(t log p + (1 - t) log(1 - p)) for probabilities p and targets t in [0, 1] of the same shape.

    p is clipped to [eps, 1 - eps] (eps=1e-7) so that log never sees 0; as torch.nn.BCELoss() inside that range.
    """

    def __init__(self, eps=1e-7):
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0 < eps < 0.5:
            raise ValueError(f"BinaryCrossEntropyLoss eps must be a number in (0, 0.5), got {eps!r}")
        self.eps = float(eps)

    def __repr__(self):
        return f"BinaryCrossEntropyLoss(eps={self.eps})"

    def forward(self, prediction, target):
        who = "BinaryCrossEntropyLoss"
        prediction, target = _prediction(prediction, who), _target(target)
        if prediction.shape != target.shape:
            raise ValueError(f"{who}: prediction shape {prediction.shape} and target shape {target.shape} "
                             f"differ; reshape the target to {prediction.shape}")
        for what, values in (("probabilities", prediction.data), ("targets", target.data)):
            low, high = values.min(), values.max()
            if not (low >= 0 and high <= 1):           # also catches nan
                raise ValueError(f"{who} expects {what} in [0, 1], got values from {low} to {high}"
                                 + ("; apply Sigmoid to logits first" if what == "probabilities" else ""))
        ### BEGIN SOLUTION
        t = target.data.astype(prediction.dtype, copy=False)
        p = np.clip(prediction.data, self.eps, 1.0 - self.eps)
        log_p, log_1mp = np.log(p), np.log1p(-p)
        n = p.size
        out = np.asarray(-np.mean(t * log_p + (1.0 - t) * log_1mp), dtype=p.dtype)

        def backward(grad):
            grad_p = grad * (p - t) / (p * (1.0 - p)) / n
            grad_t = grad * (log_1mp - log_p) / n
            return grad_p, grad_t

        return record_op(out, (prediction, target), backward, name="binary_cross_entropy")
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-binary-cross-entropy", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_binary_cross_entropy():
    """BCE: value against the formula, clipping at 0 and 1, gradients, range errors."""
    rng = np.random.default_rng(2)
    p, t = rng.uniform(0.05, 0.95, (4, 3)), rng.integers(0, 2, (4, 3)).astype(np.float64)
    loss = BinaryCrossEntropyLoss()(Tensor(p), t)
    np.testing.assert_allclose(loss.data, -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)), rtol=1e-12)
    soft = rng.uniform(0.1, 0.9, (4, 3))          # soft targets inside (0, 1), so finite differences stay valid
    assert check_gradients(lambda a, b: BinaryCrossEntropyLoss()(a, b), Variable(p), Variable(soft))
    # exact 0 and 1: finite, bounded by -log(eps)
    saturated = Variable(np.array([0.0, 1.0, 1.0]))
    loss = BinaryCrossEntropyLoss()(saturated, np.array([1.0, 0.0, 1.0]))
    assert np.isfinite(loss.data) and loss.data <= -np.log(1e-7) + 1e-9
    loss.backward()
    assert np.all(np.isfinite(saturated.grad.data)) and saturated.grad.data[0] < 0 < saturated.grad.data[1]
    try:
        BinaryCrossEntropyLoss()(Tensor(np.array([0.5, 2.0])), np.array([0.0, 1.0]))
    except ValueError as error:
        assert "2.0" in str(error) and "Sigmoid" in str(error)
    else:
        raise AssertionError("probabilities above 1 must be rejected")
    print("BinaryCrossEntropyLoss: ok")


test_unit_binary_cross_entropy()

# %% [markdown]
# ## 4. Accuracy
#
# The loss is what we optimise; accuracy is what we report: the fraction of examples classified
# correctly, a plain Python float in [0, 1] (no gradient: it is a step function of the parameters).
#
# | predictions | predicted class | targets |
# |---|---|---|
# | logits or probabilities (N, C), C > 1 | `argmax` over the last axis | integer labels (N,), or one-hot (N, C) |
# | one probability per example, (N,) or (N, 1) | 1 if p > 0.5 else 0 | 0/1 of the same length |

# %% nbgrader={"grade": false, "grade_id": "accuracy", "locked": false, "schema_version": 3, "solution": true}
#| export
class Accuracy:
    """Fraction of correct predictions, a float in [0, 1].

    (N, C) scores with C > 1: argmax vs integer labels (N,) or one-hot (N, C).
    (N,) or (N, 1) probabilities: threshold 0.5 vs 0/1 targets.
    """

    name = "accuracy"

    def __call__(self, prediction, target):
        ### BEGIN SOLUTION
        p = prediction.data if isinstance(prediction, Tensor) else np.asarray(prediction)
        t = target.data if isinstance(target, Tensor) else np.asarray(target)
        if p.ndim == 2 and p.shape[1] > 1:
            n = p.shape[0]
            if t.shape == p.shape:
                t = t.argmax(axis=1)                       # one-hot targets
            if t.shape != (n,):
                raise ValueError(f"Accuracy: scores of shape {p.shape} need labels of shape ({n},), got {t.shape}")
            correct = p.argmax(axis=1) == t
        elif p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1):
            p, t = p.reshape(-1), t.reshape(-1)
            if p.shape != t.shape:
                raise ValueError(f"Accuracy: {p.size} predictions but {t.size} targets")
            correct = (p > 0.5) == (t > 0.5)
        else:
            raise ValueError(f"Accuracy expects predictions of shape (N, C), (N, 1) or (N,), got {p.shape}")
        if correct.size == 0:
            raise ValueError("Accuracy of an empty batch is undefined")
        return float(correct.mean())
        ### END SOLUTION

    def __repr__(self):
        return "Accuracy()"

# %% nbgrader={"grade": true, "grade_id": "test-accuracy", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_accuracy():
    """Accuracy: multi-class argmax, one-hot targets, a single probability column, shape errors."""
    scores = Tensor(np.array([[0.1, 2.0, 0.3], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 5.0, 0.0]]))
    assert Accuracy()(scores, np.array([1, 0, 0, 1])) == 0.75
    assert Accuracy()(scores, np.eye(3)[[1, 0, 2, 1]]) == 1.0
    probs = Variable(np.array([[0.9], [0.2], [0.6], [0.4]]))
    assert Accuracy()(probs, np.array([[1.0], [0.0], [0.0], [0.0]])) == 0.75
    assert isinstance(Accuracy()(probs, np.array([1, 0, 1, 0])), float)
    try:
        Accuracy()(scores, np.array([1, 0]))
    except ValueError as error:
        assert "(4, 3)" in str(error) and "(2,)" in str(error)
    else:
        raise AssertionError("4 predictions and 2 labels must be rejected")
    print("Accuracy: ok")


test_unit_accuracy()

# %% [markdown]
# ## 5. The Trainer
#
# `Trainer(model, optimizer, loss_fn, metrics=(), scheduler=None)` runs the training loop:
#
# - `fit(train_loader, epochs, val_loader=None, verbose=True)`: `epochs` passes over the loader; after
#   each, an evaluation on `val_loader` if given, a `scheduler.step()` if given, and one progress line
#   (`verbose=False`: silent; `verbose=k`: every k-th epoch and the last). It returns the **history**: a
#   dict of per-epoch lists, `{"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy": [...],
#   "time": [...]}`.
# - `evaluate(loader)`: the loss and metrics over a whole loader, without training: `{"loss": ..., ...}`.
#
# Details that matter:
#
# - **Inputs become Variables during training.** Layers are polymorphic: a plain `Tensor` in gives plain
#   values out and records nothing. Batches from the `DataLoader` are Tensors, so the trainer wraps them
#   as `Variable(x, requires_grad=False)`: the graph is recorded so gradients reach the parameters, but
#   no gradient is computed for the data itself.
# - **Evaluation records nothing.** `evaluate` passes plain Tensors, under `no_grad()` and in `eval()`
#   mode (Dropout off): no graph is built, so it is cheaper than a training pass.
# - **Epoch numbers are averages over examples**: each batch's loss is weighted by its size, so a short
#   last batch counts for what it is. Training metrics are measured on each batch before its update (the
#   model changes during the epoch); validation measures the model at the end of the epoch.
# - **A non-finite loss stops training** with the epoch and batch where it happened (usually a learning
#   rate that is too high): continuing would only turn every parameter into nan.

# %% nbgrader={"grade": false, "grade_id": "trainer", "locked": false, "schema_version": 3, "solution": true}
#| export
def _metric_name(metric):
    return getattr(metric, "name", None) or getattr(metric, "__name__", None) or type(metric).__name__


def _split_batch(batch):
    """(inputs, targets) from a DataLoader batch, with a clear error for anything else."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        kind = f"a batch of {len(batch)} item(s)" if isinstance(batch, (tuple, list)) else type(batch).__name__
        raise ValueError(f"Trainer expects batches (inputs, targets), e.g. from DataLoader(TensorDataset(X, y)); "
                         f"got {kind}")
    x, y = batch[0], batch[1]
    return (x if isinstance(x, Tensor) else Tensor(np.asarray(x))), y


class Trainer:
    """Train `model` with `optimizer` on `loss_fn`, reporting `metrics` (e.g. [Accuracy()]).

    fit(train_loader, epochs, val_loader=None, verbose=True) -> history dict of per-epoch lists;
    evaluate(loader) -> {"loss": ..., <metric>: ...}. scheduler: e.g. StepLR, stepped once per epoch.
    """

    def __init__(self, model, optimizer, loss_fn, metrics=(), scheduler=None):
        for what, obj, needs in (("model", model, ["__call__"]), ("optimizer", optimizer, ["step", "zero_grad"]),
                                 ("loss_fn", loss_fn, ["__call__"])):
            missing = [m for m in needs if not callable(getattr(obj, m, None))]
            if missing:
                raise TypeError(f"Trainer {what} must have {', '.join(missing)}, got {type(obj).__name__}")
        if scheduler is not None and not callable(getattr(scheduler, "step", None)):
            raise TypeError(f"Trainer scheduler must have step(), got {type(scheduler).__name__}")
        self.model, self.optimizer, self.loss_fn, self.scheduler = model, optimizer, loss_fn, scheduler
        self.metrics = list(metrics)
        names = ["loss"] + [_metric_name(m) for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"Trainer metric names must be distinct and not 'loss', got {names}")
        self.history = {}

    def _set_mode(self, training):
        method = getattr(self.model, "train" if training else "eval", None)
        if callable(method):
            method()

    def train_epoch(self, loader, epoch=1):
        """One pass over `loader` with an update per batch; returns {"loss": ..., <metric>: ...} averages."""
        ### BEGIN SOLUTION
        self._set_mode(True)
        totals, count = {}, 0
        for number, batch in enumerate(loader, start=1):
            x, y = _split_batch(batch)
            prediction = self.model(Variable(x.data, requires_grad=False))   # record the graph
            loss = self.loss_fn(prediction, y)
            if not (isinstance(loss, Variable) and loss.requires_grad):
                raise TypeError("the loss is not connected to any parameter (it needs no gradient): does the "
                                "model use its input and have parameters with requires_grad=True?")
            value = float(loss.data)
            if not np.isfinite(value):
                raise FloatingPointError(f"the loss became {value} at epoch {epoch}, batch {number}; "
                                         f"try a smaller learning rate (now {getattr(self.optimizer, 'lr', '?')})")
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            size = len(x)
            count += size
            totals["loss"] = totals.get("loss", 0.0) + value * size
            for metric in self.metrics:
                name = _metric_name(metric)
                totals[name] = totals.get(name, 0.0) + float(metric(prediction, y)) * size
        if count == 0:
            raise ValueError("the training loader produced no batches (empty dataset, or drop_last with "
                             "fewer examples than batch_size)")
        return {name: total / count for name, total in totals.items()}
        ### END SOLUTION

    def evaluate(self, loader):
        """Loss and metrics over a whole loader, averaged over examples; no graph, no updates, eval mode."""
        ### BEGIN SOLUTION
        self._set_mode(False)
        totals, count = {}, 0
        try:
            with no_grad():
                for batch in loader:
                    x, y = _split_batch(batch)
                    prediction = self.model(x)
                    size = len(x)
                    count += size
                    totals["loss"] = totals.get("loss", 0.0) + float(self.loss_fn(prediction, y).data) * size
                    for metric in self.metrics:
                        name = _metric_name(metric)
                        totals[name] = totals.get(name, 0.0) + float(metric(prediction, y)) * size
        finally:
            self._set_mode(True)
        if count == 0:
            raise ValueError("evaluate: the loader produced no batches")
        return {name: total / count for name, total in totals.items()}
        ### END SOLUTION

    def fit(self, train_loader, epochs, val_loader=None, verbose=True):
        """Train for `epochs` passes over train_loader; returns the history, a dict of per-epoch lists.

        verbose: True prints one line per epoch, False nothing, an int k every k-th epoch and the last.
        """
        ### BEGIN SOLUTION
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
            raise ValueError(f"Trainer.fit epochs must be a positive integer, got {epochs!r}")
        every = 0 if verbose is False else (1 if verbose is True else int(verbose))
        history = {}
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            results = self.train_epoch(train_loader, epoch)
            if val_loader is not None:
                results.update({f"val_{name}": value for name, value in self.evaluate(val_loader).items()})
            if self.scheduler is not None:
                self.scheduler.step()
            results["time"] = time.perf_counter() - start
            for name, value in results.items():
                history.setdefault(name, []).append(value)
            if every and (epoch % every == 0 or epoch == epochs):
                shown = "  ".join(f"{name} {value:.4f}" for name, value in results.items() if name != "time")
                width = len(str(epochs))
                print(f"epoch {epoch:>{width}}/{epochs}  {shown}  ({results['time']:.2f} s)", flush=True)
        self.history = history
        return history
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-trainer", "locked": true, "points": 10, "schema_version": 3, "solution": false}
class _TwoLayer(Module):
    """A small MLP for the tests: Dense -> ReLU -> Dense."""

    def __init__(self, sizes, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.hidden, self.act, self.out = Dense(sizes[0], sizes[1], seed=rng), ReLU(), Dense(sizes[1], sizes[2], seed=rng)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


def _blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[2.0, 2.0], [-2.0, 2.0], [0.0, -2.0]])
    y = rng.integers(0, 3, n)
    return (centers[y] + 0.6 * rng.standard_normal((n, 2))).astype(np.float32), y


def test_unit_trainer():
    """Trainer: learns three blobs, history keys and lengths, evaluate, verbose output, bad batches."""
    X, y = _blobs()
    train = DataLoader(TensorDataset(X[:240], y[:240]), batch_size=32, shuffle=True, seed=0)
    val = DataLoader(TensorDataset(X[240:], y[240:]), batch_size=64)
    model = _TwoLayer([2, 16, 3])
    trainer = Trainer(model, Adam(model.parameters(), lr=0.05), CrossEntropyLoss(), metrics=[Accuracy()])
    history = trainer.fit(train, epochs=8, val_loader=val, verbose=False)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "time"}
    assert all(len(values) == 8 for values in history.values())
    assert history["loss"][-1] < history["loss"][0] and history["val_accuracy"][-1] > 0.9
    result = trainer.evaluate(val)
    np.testing.assert_allclose(result["loss"], history["val_loss"][-1])
    # evaluate is the plain NumPy computation over the whole set
    with no_grad():
        logits = model(Tensor(X[240:])).data
    assert result["accuracy"] == np.mean(logits.argmax(axis=1) == y[240:])
    try:
        trainer.fit(DataLoader(TensorDataset(X), batch_size=8), epochs=1, verbose=False)
    except ValueError as error:
        assert "(inputs, targets)" in str(error)
    else:
        raise AssertionError("batches without targets must be rejected")
    print("Trainer: ok")


test_unit_trainer()

# %% [markdown]
# ### XOR, the classic test
#
# Four points that no straight line separates: a network needs a hidden layer. A 2-8-1 network with
# a Sigmoid output, BinaryCrossEntropyLoss and SGD with momentum learns it in a few hundred epochs.

# %% nbgrader={"grade": true, "grade_id": "test-trainer-xor", "locked": true, "points": 5, "schema_version": 3, "solution": false}
class _XorNet(Module):
    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(1)
        self.hidden, self.act = Dense(2, 8, seed=rng), ReLU()
        self.out, self.squash = Dense(8, 1, seed=rng), Sigmoid()

    def forward(self, x):
        return self.squash(self.out(self.act(self.hidden(x))))


def test_unit_trainer_xor():
    """The Trainer with BCE and SGD solves XOR: accuracy 1.0 on the four points."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    model = _XorNet()
    trainer = Trainer(model, SGD(model.parameters(), lr=0.5, momentum=0.9), BinaryCrossEntropyLoss(),
                      metrics=[Accuracy()])
    history = trainer.fit(DataLoader(TensorDataset(X, y), batch_size=4), epochs=300, verbose=False)
    assert history["accuracy"][-1] == 1.0 and history["loss"][-1] < 0.05, history["loss"][-1]
    print(f"Trainer on XOR: loss {history['loss'][-1]:.4f}, accuracy {history['accuracy'][-1]:.2f}")


test_unit_trainer_xor()

# %% [markdown]
# ## Systems Analysis
#
# 1. **Where a training step's time goes**: forward, loss, backward and optimizer step of a
#    64-128-64-10 MLP at batch 64 (the digits example), measured separately, medians of many repeats.
# 2. **Cross-entropy's stability** in numbers: the naive `log(softmax(z))` against log-sum-exp as the
#    logits grow.
# 3. **The cost of the loss itself** as the number of classes grows: O(N·C), and small beside the model.

# %% nbgrader={"grade": false, "grade_id": "training-analysis", "locked": false, "schema_version": 3, "solution": false}
class _DigitsMLP(Module):
    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.l1, self.l2, self.l3 = Dense(64, 128, seed=rng), Dense(128, 64, seed=rng), Dense(64, 10, seed=rng)
        self.relu = ReLU()

    def forward(self, x):
        return self.l3(self.relu(self.l2(self.relu(self.l1(x)))))


def analyze_step_breakdown():
    """Median time of each phase of one training step (64-128-64-10 MLP, batch 64, float32, Adam)."""
    rng = np.random.default_rng(0)
    x = Variable(rng.standard_normal((64, 64)).astype(np.float32), requires_grad=False)
    y = rng.integers(0, 10, 64)
    model, loss_fn = _DigitsMLP(), CrossEntropyLoss()
    opt = Adam(model.parameters(), lr=1e-3)
    state = {}

    def forward():
        state["pred"] = model(x)

    def loss():
        state["loss"] = loss_fn(state["pred"], y)

    def backward():
        opt.zero_grad()
        loss_fn(model(x), y).backward()

    phases = [("forward", forward), ("loss", lambda: (forward(), loss())),
              ("forward+loss+backward", backward), ("optimizer step (Adam)", opt.step)]
    times = {name: median_time(fn, repeats=50) for name, fn in phases}
    forward_t = times["forward"]
    loss_t = times["loss"] - forward_t
    backward_t = times["forward+loss+backward"] - times["loss"]
    step_t = times["optimizer step (Adam)"]
    total = forward_t + loss_t + backward_t + step_t
    print("phase                 time (us)   share")
    for name, seconds in [("forward", forward_t), ("loss", loss_t), ("backward", backward_t),
                          ("optimizer step", step_t)]:
        print(f"{name:20s}  {seconds * 1e6:9.1f}   {seconds / total:5.1%}")
    print(f"{'whole step':20s}  {total * 1e6:9.1f}")


def analyze_cross_entropy_stability():
    """Naive log(softmax) versus log-sum-exp for logits of growing magnitude (float32)."""
    print("logit scale   naive loss         log-sum-exp loss")
    rng = np.random.default_rng(0)
    base = rng.standard_normal((4, 10)).astype(np.float32)
    labels = np.array([0, 1, 2, 3])
    for scale in [1, 10, 100, 1000]:
        z = base * scale
        with np.errstate(all="ignore"):
            probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            naive = -np.mean(np.log(probs[np.arange(4), labels]))
        stable = float(CrossEntropyLoss()(Tensor(z), labels).data)
        print(f"{scale:11d}   {naive:16.4f}   {stable:16.4f}")


def analyze_loss_cost():
    """Time of cross-entropy forward+backward as the number of classes grows (batch 64, float32)."""
    rng = np.random.default_rng(0)
    print("classes   forward+backward (us)   ns per logit")
    for classes in [10, 100, 1000, 10000]:
        z = Variable(rng.standard_normal((64, classes)).astype(np.float32))
        y = rng.integers(0, classes, 64)
        seconds = median_time(lambda: CrossEntropyLoss()(z, y).backward(), repeats=20)
        print(f"{classes:7d}   {seconds * 1e6:21.1f}   {seconds / z.size * 1e9:12.2f}")


analyze_step_breakdown()
analyze_cross_entropy_stability()
analyze_loss_cost()

# %% [markdown]
# ### What the numbers say
#
# - The backward pass costs about as much as the forward pass or more (each matmul needs two matmuls
#   backward: for the input and for the weights); the loss and the optimizer step are small beside them.
#   At this small size, fixed Python overheads per operation are a visible share: larger batches
#   amortise them.
# - The naive `log(softmax)` overflows (`exp(1000) = inf`, then inf/inf = nan) or underflows
#   (`log(0) = -inf`) already at logit scales of 100; the log-sum-exp form stays exact at every scale.
# - With many classes cross-entropy costs a couple of nanoseconds per logit, linear in N·C; with 10
#   classes the fixed cost (a dozen NumPy calls and one graph node, some tens of microseconds) dominates.
#   Language models with 50,000-word vocabularies make it one of the biggest operations of a step.
#
# ## Summary
#
# You built the losses (`MeanSquaredError`, a stable `CrossEntropyLoss` with a fused backward,
# `BinaryCrossEntropyLoss` with clipping), the `Accuracy` metric and a `Trainer` with validation, progress
# lines and a history. The examples (`examples/xor_network`, `examples/digits_mlp`) train real networks
# with them.
