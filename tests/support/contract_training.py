"""The contract of module 11 (losses, Accuracy, Trainer)."""

import numpy as np

from tinytorch.core.autograd import Variable
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.layers import Dense
from tinytorch.core.optimizers import SGD
from tinytorch.core.training import Accuracy, BinaryCrossEntropyLoss, CrossEntropyLoss, MeanSquaredError, Trainer


def training_contract():
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    labels = np.array([0, 2])
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    want = -log_softmax[np.arange(2), labels].mean()
    x = Variable(logits)
    loss = CrossEntropyLoss()(x, labels)
    assert np.isclose(loss.item(), want)
    loss.backward()
    softmax = np.exp(log_softmax)
    assert np.allclose(x.grad.data, (softmax - np.eye(3)[labels]) / 2)
    assert np.isclose(MeanSquaredError()(Variable(np.array([1.0, 3.0])), np.array([0.0, 0.0])).item(), 5.0)
    p = np.array([0.9, 0.2])
    bce = -(np.log(0.9) + np.log(0.8)) / 2
    assert np.isclose(BinaryCrossEntropyLoss()(Variable(p), np.array([1.0, 0.0])).item(), bce)
    assert np.isclose(float(Accuracy()(Variable(logits), labels)), 1.0)
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((64, 3)).astype(np.float32)
    targets = (inputs @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32))
    model = Dense(3, 1, seed=0)
    history = Trainer(model, SGD(model.parameters(), lr=0.1), MeanSquaredError()).fit(
        DataLoader(TensorDataset(inputs, targets), batch_size=16), epochs=20, verbose=False)
    assert history["loss"][-1] < 0.05 * history["loss"][0], history["loss"]
