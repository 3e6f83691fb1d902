"""Module 15 (profiling) with everything it stands on: real models from modules 04-11 counted, measured
and profiled. A lower module that changes a layer's shapes, parameters, gradients or memory behaviour
shows up here as a count or a measurement that no longer matches."""

import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.attention import LayerNorm, MultiHeadAttention
from tinytorch.core.autograd import Variable
from tinytorch.core.benchmarking import benchmark
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.embeddings import Embedding, PositionalEncoding
from tinytorch.core.layers import Dense
from tinytorch.core.networks import Sequential, create_mlp
from tinytorch.core.optimizers import Adam
from tinytorch.core.profiling import (
    count_flops,
    count_parameters,
    layer_flops,
    memory_footprint,
    profile_layers,
    profile_memory,
)
from tinytorch.core.spatial import Conv2D, Flatten, MaxPool2D
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import CrossEntropyLoss, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # contract_*.py, also when run as a script
from contract_activations import activations_contract  # tests/support/
from contract_attention import attention_contract  # tests/support/
from contract_autograd import autograd_contract  # tests/support/
from contract_benchmarking import benchmarking_contract  # tests/support/
from contract_dataloader import dataloader_contract  # tests/support/
from contract_embeddings import embeddings_contract  # tests/support/
from contract_layers import layers_contract  # tests/support/
from contract_networks import networks_contract  # tests/support/
from contract_optimizers import optimizers_contract  # tests/support/
from contract_spatial import spatial_contract  # tests/support/
from contract_tensor import tensor_contract  # tests/support/
from contract_training import training_contract  # tests/support/


def adam_step(model, x, y):
    opt = Adam(model.parameters(), lr=1e-3)
    CrossEntropyLoss()(model(Variable(x, requires_grad=False)), y).backward()
    opt.step()
    return opt


def test_an_adam_step_retains_at_least_gradients_and_two_moments():
    """Measured (tracemalloc) against predicted: after one step, gradients + m + v are still held."""
    model = create_mlp(64, [128, 64], 10, seed=0)
    x = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 10, 32)
    fp = memory_footprint(model, "adam", input_shape=x.shape)
    profile = profile_memory(adam_step, model, x, y)
    assert profile.current_bytes >= fp.gradients + fp.optimizer_state
    assert profile.peak_bytes >= fp.gradients + fp.optimizer_state + fp.activations_training // 2
    assert profile.result.state_bytes() == fp.optimizer_state


def test_cnn_profile_rows_add_up_to_the_model_count():
    cnn = Sequential([Conv2D(1, 4, 3, padding=1, seed=0), ReLU(), MaxPool2D(2), Flatten(), Dense(4 * 7 * 7, 10, seed=1)])
    x = Variable(np.random.default_rng(2).standard_normal((4, 1, 14, 14)).astype(np.float32), requires_grad=False)
    profile = profile_layers(cnn, x, repeats=2, min_time=0.0, verbose=False)
    assert len(profile.rows) == 5 and sum(r.flops for r in profile.rows) == count_flops(cnn, x.shape)
    assert sum(r.params for r in profile.rows) == count_parameters(cnn)
    assert profile.rows[-1].output_shape == cnn(Tensor(x.data)).shape == (4, 10)
    assert all(p.grad is None for p in cnn.parameters())
    assert abs(sum(r.share for r in profile.rows) - 1.0) < 1e-9


def test_profiling_a_trained_model_leaves_its_gradients_alone():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    y = (X.sum(axis=1) > 0).astype(np.int64)
    model = create_mlp(3, [8], 2, seed=0)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.05), CrossEntropyLoss())
    trainer.fit(DataLoader(TensorDataset(X, y), batch_size=10), epochs=2, verbose=False)
    grads = [p.grad.data.copy() for p in model.parameters()]
    profile_layers(model, Variable(X, requires_grad=False), repeats=2, min_time=0.0, verbose=False)
    assert all(np.array_equal(p.grad.data, g) for p, g in zip(model.parameters(), grads))


def test_language_model_pieces_shapes_and_counts():
    vocab, d, L = 30, 16, 12
    emb, pos = Embedding(vocab, d, seed=0), PositionalEncoding(64, d)
    block = Sequential([LayerNorm(d), MultiHeadAttention(d, 4, seed=1), Dense(d, vocab, seed=2)])
    ids = np.random.default_rng(4).integers(0, vocab, (2, L))
    _, shape = layer_flops(emb, ids.shape)
    flops, out_shape = layer_flops(block, layer_flops(pos, shape)[1])
    assert out_shape == block(pos(emb(ids))).shape == (2, L, vocab)
    assert count_parameters(emb) + count_parameters(block) == vocab * d + 2 * d + 4 * (d * d + d) + d * vocab + vocab
    assert flops > 2 * 2 * L * d * vocab


def test_benchmark_and_flops_give_an_achieved_rate():
    layer = Dense(128, 128, seed=0)
    x = Tensor(np.ones((64, 128), dtype=np.float32))
    r = benchmark(layer, x, repeats=3, min_time=0.001)
    rate = count_flops(layer, x.shape) / r.median
    assert np.isfinite(rate) and rate > 0


LOWER_CONTRACTS = [
    tensor_contract, autograd_contract, activations_contract, layers_contract, networks_contract,
    spatial_contract, attention_contract, dataloader_contract, optimizers_contract, embeddings_contract,
    training_contract, benchmarking_contract,
]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
