"""Tests of tinytorch.core.training (the exported package): losses, Accuracy and the Trainer."""

import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Sigmoid
from tinytorch.core.autograd import Variable, check_gradients, no_grad
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.layers import Dense, Dropout, Module
from tinytorch.core.optimizers import SGD, Adam, StepLR
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Accuracy, BinaryCrossEntropyLoss, CrossEntropyLoss, MeanSquaredError, Trainer

rng = np.random.default_rng(0)  # replaced before each test by that test's own stream (below)


@pytest.fixture(autouse=True)
def _per_test_rng(request):
    """Each test draws from its own stream (the root conftest's `rng`: TINYTORCH_TEST_SEED and the test id),
    so its data does not depend on which tests ran before it."""
    global rng
    rng = request.getfixturevalue("rng")


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- MeanSquaredError ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(7,), (4, 3), (2, 3, 2), ()])
def test_mse_value_and_gradients(shape):
    p, t = rng.standard_normal(shape), rng.standard_normal(shape)
    np.testing.assert_allclose(MeanSquaredError()(Tensor(p), Tensor(t)).data, np.mean((p - t) ** 2))
    assert check_gradients(lambda a, b: MeanSquaredError()(a, b), Variable(p), Variable(t))


def test_mse_polymorphism_and_dtypes():
    p32 = rng.standard_normal((3, 2)).astype(np.float32)
    out = MeanSquaredError()(Tensor(p32), np.zeros((3, 2), dtype=np.int64))
    assert type(out) is Tensor and out.shape == () and out.dtype == np.float32
    v = Variable(p32)
    loss = MeanSquaredError()(v, np.zeros((3, 2)))
    assert isinstance(loss, Variable) and loss.requires_grad
    loss.backward()
    np.testing.assert_allclose(v.grad.data, 2 * p32 / 6, rtol=1e-6)
    assert v.grad.dtype == np.float32


@pytest.mark.parametrize("pred,target", [((4, 1), (4,)), ((4,), (4, 1)), ((3, 2), (2, 3))])
def test_mse_shape_mismatch_names_both_shapes(pred, target):
    with pytest.raises(ValueError, match=re_escape(f"{pred}") + ".*" + re_escape(f"{target}")):
        MeanSquaredError()(Tensor(np.zeros(pred)), np.zeros(target))


def re_escape(text):
    import re
    return re.escape(text)


def test_losses_reject_non_tensors_and_int_predictions():
    with pytest.raises(TypeError, match="list"):
        MeanSquaredError()([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(TypeError, match="int64"):
        MeanSquaredError()(Tensor([1, 2]), [1, 2])
    with pytest.raises(ValueError, match="empty"):
        MeanSquaredError()(Tensor(np.zeros((0, 3))), np.zeros((0, 3)))


# --- CrossEntropyLoss ---------------------------------------------------------------------------

@pytest.mark.parametrize("n,c", [(1, 2), (5, 3), (16, 10)])
def test_cross_entropy_value_and_gradient(n, c):
    z, y = rng.standard_normal((n, c)), rng.integers(0, c, n)
    expected = -np.mean(np.log(softmax(z)[np.arange(n), y]))
    np.testing.assert_allclose(CrossEntropyLoss()(Tensor(z), Tensor(y)).data, expected, rtol=1e-12)
    assert check_gradients(lambda a: CrossEntropyLoss()(a, y), Variable(z))


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    z, y = rng.standard_normal((4, 5)), np.array([0, 4, 2, 2])
    v = Variable(z)
    CrossEntropyLoss()(v, y).backward()
    np.testing.assert_allclose(v.grad.data, (softmax(z) - np.eye(5)[y]) / 4, rtol=1e-12)


def test_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1e4, 0.0, -1e4], [0.0, 5e3, 0.0]], dtype=np.float32)
    v = Variable(z)
    loss = CrossEntropyLoss()(v, np.array([1, 1]))
    np.testing.assert_allclose(loss.data, 1e4 / 2, rtol=1e-6)
    loss.backward()
    assert np.all(np.isfinite(v.grad.data)) and loss.dtype == np.float32
    np.testing.assert_allclose(v.grad.data, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)


def test_cross_entropy_labels_get_no_gradient_and_accept_uint():
    z = Variable(rng.standard_normal((3, 4)))
    loss = CrossEntropyLoss()(z, np.array([1, 2, 3], dtype=np.uint8))
    loss.backward()
    assert z.grad.shape == (3, 4)


@pytest.mark.parametrize("labels,error,fragment", [
    (np.array([0, 1, 3]), ValueError, "label 3 is out of range for 3 classes"),
    (np.array([0, -2, 1]), ValueError, "label -2"),
    (np.array([0.0, 1.0, 2.0]), TypeError, "integer class labels"),
    (np.array([[0], [1], [2]]), ValueError, r"\(3, 1\)"),
    (np.eye(3, dtype=np.int64), ValueError, "argmax"),
    (np.array([0, 1]), ValueError, r"\(2,\)"),
])
def test_cross_entropy_label_errors(labels, error, fragment):
    with pytest.raises(error, match=fragment):
        CrossEntropyLoss()(Tensor(np.zeros((3, 3))), labels)


def test_cross_entropy_needs_2d_logits():
    with pytest.raises(ValueError, match=r"\(batch, classes\).*\(5,\)"):
        CrossEntropyLoss()(Tensor(np.zeros(5)), np.zeros(5, dtype=np.int64))


# --- BinaryCrossEntropyLoss ---------------------------------------------------------------------

def test_bce_value_and_gradients():
    p, t = rng.uniform(0.02, 0.98, (6, 2)), rng.uniform(0.1, 0.9, (6, 2))
    expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    np.testing.assert_allclose(BinaryCrossEntropyLoss()(Tensor(p), Tensor(t)).data, expected, rtol=1e-12)
    assert check_gradients(lambda a, b: BinaryCrossEntropyLoss()(a, b), Variable(p), Variable(t))


def test_bce_clips_to_eps():
    eps = 1e-7
    p = Variable(np.array([0.0, 1.0, 0.0, 1.0]))
    loss = BinaryCrossEntropyLoss()(p, np.array([0.0, 1.0, 1.0, 0.0]))
    np.testing.assert_allclose(loss.data, (-2 * np.log(1 - eps) - 2 * np.log(eps)) / 4, rtol=1e-9)
    loss.backward()
    g = p.grad.data
    assert np.all(np.isfinite(g)) and g[2] < 0 < g[3]         # wrong and saturated: a strong push back
    assert BinaryCrossEntropyLoss(eps=1e-3).eps == 1e-3
    with pytest.raises(ValueError, match="eps"):
        BinaryCrossEntropyLoss(eps=0)


def test_bce_float32_saturated_sigmoid_is_finite():
    p = Variable(np.array([1.0, 0.0], dtype=np.float32))
    loss = BinaryCrossEntropyLoss()(p, np.array([0, 1]))
    loss.backward()
    assert np.isfinite(loss.data) and np.all(np.isfinite(p.grad.data)) and loss.dtype == np.float32


@pytest.mark.parametrize("p,t,fragment", [
    ([0.5, 1.5], [0.0, 1.0], "probabilities in \\[0, 1\\].*1.5.*Sigmoid"),
    ([-0.1, 0.5], [0.0, 1.0], "-0.1"),
    ([0.5, np.nan], [0.0, 1.0], "nan"),
    ([0.5, 0.5], [0.0, 2.0], "targets"),
])
def test_bce_range_errors(p, t, fragment):
    with pytest.raises(ValueError, match=fragment):
        BinaryCrossEntropyLoss()(Tensor(np.array(p)), np.array(t))


def test_bce_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\)"):
        BinaryCrossEntropyLoss()(Tensor(np.full((4, 1), 0.5)), np.zeros(4))


# --- Accuracy -----------------------------------------------------------------------------------

def test_accuracy_multiclass_against_numpy():
    z, y = rng.standard_normal((50, 4)), rng.integers(0, 4, 50)
    assert Accuracy()(Tensor(z), y) == np.mean(z.argmax(axis=1) == y)
    assert Accuracy()(Variable(z), Tensor(y)) == np.mean(z.argmax(axis=1) == y)
    assert Accuracy()(Tensor(z), np.eye(4)[y]) == np.mean(z.argmax(axis=1) == y)


def test_accuracy_binary_threshold():
    p = np.array([0.1, 0.5, 0.51, 0.9, 0.7])
    assert Accuracy()(Tensor(p), np.array([0, 0, 1, 1, 0])) == 0.8           # 0.5 is not above the threshold
    assert Accuracy()(Tensor(p[:, None]), np.array([[0], [0], [1], [1], [1]])) == 1.0
    assert Accuracy.name == "accuracy"


@pytest.mark.parametrize("pred,target", [((4, 3), (3,)), ((4,), (5,)), ((2, 2, 2), (2,))])
def test_accuracy_shape_errors(pred, target):
    with pytest.raises(ValueError):
        Accuracy()(Tensor(np.zeros(pred)), np.zeros(target, dtype=np.int64))


# --- Trainer ------------------------------------------------------------------------------------

class MLP(Module):
    def __init__(self, sizes, seed=0, dropout=0.0, final=None):
        super().__init__()
        g = np.random.default_rng(seed)
        self.layers = [Dense(a, b, seed=g) for a, b in zip(sizes[:-1], sizes[1:])]
        self.act, self.drop, self.final = ReLU(), Dropout(dropout, seed=1), final

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = self.drop(self.act(layer(x)))
        x = self.layers[-1](x)
        return self.final(x) if self.final else x


def blobs(n=240, seed=0):
    g = np.random.default_rng(seed)
    y = g.integers(0, 3, n)
    centers = np.array([[2.0, 2.0], [-2.0, 2.0], [0.0, -2.0]])
    return (centers[y] + 0.6 * g.standard_normal((n, 2))).astype(np.float32), y


def loaders(seed=0):
    X, y = blobs(seed=seed)
    train = DataLoader(TensorDataset(X[:200], y[:200]), batch_size=25, shuffle=True, seed=seed)
    val = DataLoader(TensorDataset(X[200:], y[200:]), batch_size=16)
    return train, val


def test_trainer_learns_and_records_history():
    train, val = loaders()
    model = MLP([2, 16, 3])
    trainer = Trainer(model, Adam(model.parameters(), lr=0.03), CrossEntropyLoss(), metrics=[Accuracy()])
    history = trainer.fit(train, epochs=6, val_loader=val, verbose=False)
    assert list(history) == ["loss", "accuracy", "val_loss", "val_accuracy", "time"]
    assert all(len(v) == 6 for v in history.values()) and trainer.history is history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["val_accuracy"][-1] >= 0.9
    assert all(t > 0 for t in history["time"])


def test_trainer_epoch_loss_is_the_example_weighted_mean():
    """With lr=0 nothing changes, so the epoch loss equals the full-dataset loss (a short last batch included)."""
    X, y = blobs(n=50)
    model = MLP([2, 8, 3])
    trainer = Trainer(model, SGD(model.parameters(), lr=0.0), CrossEntropyLoss(), metrics=[Accuracy()])
    history = trainer.fit(DataLoader(TensorDataset(X, y), batch_size=16), epochs=1, verbose=False)
    with no_grad():
        logits = model(Tensor(X))
    np.testing.assert_allclose(history["loss"][0], CrossEntropyLoss()(logits, y).data, rtol=1e-5)
    assert history["accuracy"][0] == pytest.approx(np.mean(logits.data.argmax(axis=1) == y))


def test_trainer_step_equals_a_manual_step():
    """One batch through the Trainer updates the parameters exactly like the hand-written loop."""
    X, y = blobs(n=32)
    a, b = MLP([2, 8, 3], seed=3), MLP([2, 8, 3], seed=3)
    Trainer(a, SGD(a.parameters(), lr=0.1, momentum=0.9), CrossEntropyLoss()).fit(
        DataLoader(TensorDataset(X, y), batch_size=32), epochs=2, verbose=False)
    opt = SGD(b.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        CrossEntropyLoss()(b(Variable(X, requires_grad=False)), y).backward()
        opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.data, pb.data)


def test_evaluate_uses_eval_mode_and_no_graph():
    """With Dropout, evaluate is deterministic (eval mode) and returns to training mode afterwards."""
    train, val = loaders()
    model = MLP([2, 32, 3], dropout=0.5)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.01), CrossEntropyLoss(), metrics=[Accuracy()])
    first, second = trainer.evaluate(val), trainer.evaluate(val)
    assert first == second
    assert model.training is True
    X, y = blobs()
    with no_grad():
        model.eval()
        expected = CrossEntropyLoss()(model(Tensor(X[200:])), y[200:]).data
        model.train()
    np.testing.assert_allclose(first["loss"], expected, rtol=1e-5)
    assert all(p.grad is None for p in model.parameters())        # evaluation computed no gradients


def test_fit_with_scheduler_and_bce_on_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    # 8 ReLUs left XOR unsolved (stuck at loss ln 2, every unit dead or useless) for 31 of 1000 initialisations;
    # 64 solved all 1000, with a final loss of at most 1e-4 (a unit is useless with probability about 0.65, so
    # all 64 with about 0.65**64 = 1e-12).
    model = MLP([2, 64, 1], seed=1, final=Sigmoid())
    opt = SGD(model.parameters(), lr=0.5, momentum=0.9)
    scheduler = StepLR(opt, step_size=100, gamma=0.5)
    trainer = Trainer(model, opt, BinaryCrossEntropyLoss(), metrics=[Accuracy()], scheduler=scheduler)
    history = trainer.fit(DataLoader(TensorDataset(X, y), batch_size=4), epochs=300, verbose=False)
    assert history["accuracy"][-1] == 1.0 and history["loss"][-1] < 0.05
    assert opt.lr == pytest.approx(0.5 * 0.5 ** 3)


def test_verbose_prints_one_line_per_epoch_and_quiet_prints_nothing(capsys):
    train, val = loaders()
    model = MLP([2, 8, 3])
    trainer = Trainer(model, Adam(model.parameters(), lr=0.01), CrossEntropyLoss(), metrics=[Accuracy()])
    trainer.fit(train, epochs=3, val_loader=val)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3")
    assert all(k in lines[-1] for k in ("loss", "accuracy", "val_loss", "val_accuracy", " s)"))
    trainer.fit(train, epochs=3, verbose=False)
    assert capsys.readouterr().out == ""
    trainer.fit(train, epochs=5, verbose=2)
    assert [line.split()[1] for line in capsys.readouterr().out.strip().splitlines()] == ["2/5", "4/5", "5/5"]


def test_function_metrics_use_their_name():
    def mean_prediction(pred, target):
        return float(pred.data.mean())

    train, _ = loaders()
    model = MLP([2, 4, 3])
    history = Trainer(model, SGD(model.parameters(), lr=0.01), CrossEntropyLoss(),
                      metrics=[mean_prediction]).fit(train, epochs=1, verbose=False)
    assert "mean_prediction" in history


def test_diverging_training_stops_with_a_clear_error():
    X, y = blobs(n=64)
    model = MLP([2, 16, 3])
    trainer = Trainer(model, SGD(model.parameters(), lr=1e6), MeanSquaredError())
    onehot = np.eye(3, dtype=np.float32)[y] * 1e3
    with pytest.raises(FloatingPointError, match="epoch .*batch .*learning rate"):
        with np.errstate(all="ignore"):
            trainer.fit(DataLoader(TensorDataset(X, onehot), batch_size=8), epochs=20, verbose=False)


@pytest.mark.parametrize("kwargs,error", [({"epochs": 0}, ValueError), ({"epochs": 1.5}, ValueError),
                                          ({"epochs": True}, ValueError)])
def test_fit_bad_epochs(kwargs, error):
    train, _ = loaders()
    model = MLP([2, 4, 3])
    with pytest.raises(error, match="epochs"):
        Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss()).fit(train, **kwargs)


def test_trainer_errors():
    model = MLP([2, 4, 3])
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="optimizer"):
        Trainer(model, "adam", CrossEntropyLoss())
    with pytest.raises(ValueError, match="distinct"):
        Trainer(model, opt, CrossEntropyLoss(), metrics=[Accuracy(), Accuracy()])
    X, y = blobs(n=10)
    trainer = Trainer(model, opt, CrossEntropyLoss())
    with pytest.raises(ValueError, match="no batches"):
        trainer.fit(DataLoader(TensorDataset(X, y), batch_size=16, drop_last=True), epochs=1, verbose=False)
    with pytest.raises(ValueError, match=r"\(inputs, targets\)"):
        trainer.fit(DataLoader(TensorDataset(X), batch_size=4), epochs=1, verbose=False)

    class Detached(Module):
        def forward(self, x):
            return Tensor(np.zeros((len(x), 3), dtype=np.float32))

    with pytest.raises(TypeError, match="not connected"):
        Trainer(Detached(), opt, CrossEntropyLoss()).fit(DataLoader(TensorDataset(X, y), batch_size=4), 1,
                                                         verbose=False)


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
