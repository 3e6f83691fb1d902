"""Module 13 (kernels) with the modules below: the kernels reproduce what the real layers compute
(Dense, the Softmax activation, attention weights, a trained MLP's forward pass), so a kernel and a layer
that disagree, or a lower module that changes its arithmetic, fail here."""

import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Softmax
from tinytorch.core.attention import scaled_dot_product_attention
from tinytorch.core.autograd import Variable
from tinytorch.core.kernels import matmul_blocked, matmul_vectorized, softmax_fused, softmax_unfused, time_kernel
from tinytorch.core.layers import Dense
from tinytorch.core.networks import create_mlp
from tinytorch.core.optimizers import Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import CrossEntropyLoss

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # contract_*.py, also when run as a script
from contract_activations import activations_contract  # tests/support/
from contract_attention import attention_contract  # tests/support/
from contract_autograd import autograd_contract  # tests/support/
from contract_dataloader import dataloader_contract  # tests/support/
from contract_layers import layers_contract  # tests/support/
from contract_networks import networks_contract  # tests/support/
from contract_optimizers import optimizers_contract  # tests/support/
from contract_tensor import tensor_contract  # tests/support/
from contract_training import training_contract  # tests/support/

rng = np.random.default_rng(0)  # replaced before each test by that test's own stream (below)


@pytest.fixture(autouse=True)
def _per_test_rng(request):
    """Each test draws from its own stream (the root conftest's `rng`: TINYTORCH_TEST_SEED and the test id),
    so its data does not depend on which tests ran before it."""
    global rng
    rng = request.getfixturevalue("rng")


def test_dense_forward_through_each_matmul_kernel():
    layer = Dense(37, 19, seed=0)
    x = rng.standard_normal((53, 37)).astype(np.float32)
    ref = layer(Tensor(x)).data
    for kernel in (matmul_vectorized, lambda a, b: matmul_blocked(a, b, block=16)):
        np.testing.assert_allclose(kernel(x, layer.weights) + layer.bias.data, ref, rtol=1e-5, atol=1e-5)


def test_softmax_kernels_match_the_activation_and_attention_weights():
    x = rng.standard_normal((4, 6, 33))
    expected = Softmax()(Tensor(x)).data
    np.testing.assert_allclose(softmax_fused(x, block_rows=5), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(softmax_unfused(Tensor(x)), expected, rtol=1e-12, atol=1e-15)
    q, k, v = (rng.standard_normal((2, 5, 8)) for _ in range(3))
    _, weights = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v))
    scores = np.stack([matmul_blocked(q[i], k[i].T, block=3) for i in range(2)]) / np.sqrt(8)
    np.testing.assert_allclose(softmax_fused(scores), weights.data, rtol=1e-10, atol=1e-12)


def test_a_trained_mlp_forward_pass_rebuilt_from_kernels():
    model = create_mlp(10, [32], 3, seed=0)
    X = rng.standard_normal((64, 10)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    opt = Adam(model.parameters(), lr=0.01)
    for _ in range(20):
        opt.zero_grad()
        CrossEntropyLoss()(model(Variable(X, requires_grad=False)), y).backward()
        opt.step()
    first, last = model[0], model[2]
    hidden = np.maximum(matmul_blocked(X, first.weights.data, block=8) + first.bias.data, 0)
    logits = matmul_vectorized(hidden, last.weights.data) + last.bias.data
    probs = softmax_fused(logits)
    np.testing.assert_allclose(probs, Softmax()(model(Tensor(X))).data, rtol=1e-4, atol=1e-6)
    assert isinstance(model[1], ReLU)
    timing = time_kernel(matmul_blocked, X, first.weights.data, repeats=2, warmup=0)
    assert len(timing.times) == 2


LOWER_CONTRACTS = [
    tensor_contract, autograd_contract, activations_contract, layers_contract, networks_contract,
    attention_contract, dataloader_contract, optimizers_contract, training_contract,
]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
