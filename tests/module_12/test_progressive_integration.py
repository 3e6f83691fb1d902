"""Module 12 (compression) with everything it stands on: a model trained by the Trainer (11) with Adam
(09) on a DataLoader (08), pruned and fine-tuned through MaskedOptimizer and a StepLR schedule, saved and
loaded (05), quantized to int8; pruning of a convolutional network (06). A broken lower module (wrong
gradients, optimizers that replace parameter arrays instead of updating them in place, parameter
discovery that misses a layer) makes these fail.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Variable
from tinytorch.core.compression import (
    MaskedOptimizer,
    magnitude_prune,
    model_size_bytes,
    prunable_parameters,
    quantize_model,
    sparsity,
)
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.layers import Dense, Module
from tinytorch.core.networks import Sequential, create_mlp, load_parameters, save_parameters
from tinytorch.core.optimizers import Adam, StepLR
from tinytorch.core.spatial import Conv2D, MaxPool2D, flatten
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Accuracy, CrossEntropyLoss, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # contract_*.py, also when run as a script
from contract_activations import activations_contract  # tests/support/
from contract_autograd import autograd_contract  # tests/support/
from contract_dataloader import dataloader_contract  # tests/support/
from contract_layers import layers_contract  # tests/support/
from contract_networks import networks_contract  # tests/support/
from contract_optimizers import optimizers_contract  # tests/support/
from contract_spatial import spatial_contract  # tests/support/
from contract_tensor import tensor_contract  # tests/support/
from contract_training import training_contract  # tests/support/


def blobs(n=900, classes=4, dim=10, seed=0):
    rng = np.random.default_rng(seed)
    # Centres in random directions but always 4 * sqrt(2) apart (orthonormal rows, times 4): with unit noise two
    # classes overlap by Phi(-2.83) = 0.2%, so the best accuracy is about 99.3% for every draw. Drawn as
    # N(0, 1.5^2), two centres sometimes nearly met, and no model reached the 90% below (2 draws in 500).
    centers = 4.0 * np.linalg.qr(rng.standard_normal((dim, dim)))[0][:classes]
    y = rng.integers(0, classes, n)
    return (centers[y] + rng.standard_normal((n, dim))).astype(np.float32), y


def test_train_prune_finetune_quantize_pipeline(tmp_path):
    X, y = blobs()
    train = DataLoader(TensorDataset(X[:700], y[:700]), batch_size=50, shuffle=True, seed=0)
    test = DataLoader(TensorDataset(X[700:], y[700:]), batch_size=100)
    model = create_mlp(10, [64, 32], 4, seed=0)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.01), CrossEntropyLoss(), metrics=[Accuracy()])
    trainer.fit(train, 10, verbose=False)
    float_acc = trainer.evaluate(test)["accuracy"]
    assert float_acc > 0.9

    masks = magnitude_prune(model, 0.85, scope="global")
    optimizer = MaskedOptimizer(Adam(model.parameters(), lr=0.005), model, masks)
    tuner = Trainer(model, optimizer, CrossEntropyLoss(), metrics=[Accuracy()], scheduler=StepLR(optimizer.optimizer, 2, 0.5))
    tuner.fit(train, 4, verbose=False)
    assert optimizer.lr == 0.005 * 0.25                     # the schedule reached the wrapped optimizer
    pruned_acc = tuner.evaluate(test)["accuracy"]
    assert abs(sparsity(model) - 0.85) < 1e-3 and pruned_acc > float_acc - 0.05

    path = tmp_path / "pruned.npz"
    save_parameters(model, path)
    reloaded = create_mlp(10, [64, 32], 4, seed=1)
    load_parameters(reloaded, path)
    assert abs(sparsity(reloaded) - 0.85) < 1e-3

    small = quantize_model(reloaded, per_channel=True)
    assert Trainer(small, optimizer, CrossEntropyLoss(), metrics=[Accuracy()]).evaluate(test)["accuracy"] >= pruned_acc - 0.01
    assert model_size_bytes(reloaded, weights_only=True) / model_size_bytes(small, weights_only=True) > 3.5


class SmallCNN(Module):
    def __init__(self):
        super().__init__()
        self.conv = Conv2D(1, 4, 3, padding=1, seed=0)
        self.pool = MaxPool2D(2)
        self.fc = Dense(4 * 4 * 4, 3, seed=1)

    def forward(self, x):
        return self.fc(flatten(self.pool(ReLU()(self.conv(x)))))


def test_pruning_reaches_convolution_kernels_and_quantize_keeps_them():
    cnn = SmallCNN()
    names = [name for name, _ in prunable_parameters(cnn)]
    assert names == ["conv.weight", "fc.weights"]
    masks = magnitude_prune(cnn, 0.5, scope="layer")
    assert masks["conv.weight"].shape == (4, 1, 3, 3) and np.mean(cnn.conv.weight.data == 0) == 0.5
    x = Variable(np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32), requires_grad=False)
    optimizer = MaskedOptimizer(Adam(cnn.parameters(), lr=0.01), cnn, masks)
    for _ in range(3):
        optimizer.zero_grad()
        CrossEntropyLoss()(cnn(x), np.array([0, 2])).backward()
        optimizer.step()
    assert np.all(cnn.conv.weight.data[~masks["conv.weight"]] == 0)
    small = quantize_model(cnn)
    assert small.conv is cnn.conv and type(small.fc).__name__ == "QuantizedDense"
    out, ref = small(Tensor(x.data)).data, cnn(Tensor(x.data)).data
    np.testing.assert_allclose(out, ref, atol=0.02)


def test_sequential_of_dense_layers_shrinks_four_times():
    model = Sequential([Dense(256, 256, seed=0), ReLU(), Dense(256, 256, seed=1)])
    ratio = model_size_bytes(model, weights_only=True) / model_size_bytes(quantize_model(model, per_channel=False),
                                                                         weights_only=True)
    assert 3.99 < ratio <= 4.0


LOWER_CONTRACTS = [
    tensor_contract, autograd_contract, activations_contract, layers_contract, networks_contract,
    spatial_contract, dataloader_contract, optimizers_contract, training_contract,
]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
