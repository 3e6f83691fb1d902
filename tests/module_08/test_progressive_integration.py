"""Module 08 (DataLoader) together with module 01 (Tensor): real batches through real Tensor arithmetic.

A broken Tensor (arithmetic, matmul, reductions, indexing, dtype rules) fails here even when the
loader's own tests pass.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.tensor import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # contract_*.py, also when run as a script
from contract_tensor import tensor_contract  # tests/support/


def make_data(n=103, features=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features)).astype(np.float32)
    y = rng.integers(0, 3, n)
    return X, y


def test_batched_linear_map_equals_the_full_matmul():
    """Batches @ W with Tensor matmul, concatenated in loader order, equal X[order] @ W."""
    X, y = make_data()
    W = Tensor(np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32))
    b = Tensor(np.arange(4, dtype=np.float32))
    outputs, labels = [], []
    for xb, yb in DataLoader(TensorDataset(Tensor(X), Tensor(y)), batch_size=16):
        out = xb @ W + b
        assert isinstance(out, Tensor) and out.shape == (xb.shape[0], 4)
        outputs.append(out.data)
        labels.append(yb.data)
    np.testing.assert_allclose(np.concatenate(outputs), X @ W.data + b.data, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.concatenate(labels), y)


def test_streaming_mean_over_shuffled_batches_matches_the_dataset_mean():
    """Per-batch Tensor sums over a shuffled epoch add up to the dataset's statistics."""
    X, _ = make_data(n=250)
    total = Tensor(np.zeros(5, dtype=np.float64))
    squares = Tensor(np.zeros(5, dtype=np.float64))
    count = 0
    for (xb,) in DataLoader(TensorDataset(X.astype(np.float64)), batch_size=32, shuffle=True, seed=7):
        total = total + xb.sum(axis=0)
        squares = squares + (xb * xb).sum(axis=0)
        count += len(xb)
    mean = total / count
    var = squares / count - mean ** 2
    assert count == 250
    np.testing.assert_allclose(mean.data, X.mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(var.data, X.astype(np.float64).var(axis=0), rtol=1e-6, atol=1e-6)


def test_per_class_counts_with_tensor_comparisons():
    """Tensor == on integer label batches counts every class exactly as np.bincount does."""
    _, y = make_data(n=500)
    counts = np.zeros(3, dtype=np.int64)
    for (yb,) in DataLoader(TensorDataset(y), batch_size=64, shuffle=True, seed=0):
        for c in range(3):
            counts[c] += (yb == c).sum().item()
    np.testing.assert_array_equal(counts, np.bincount(y, minlength=3))


def test_batches_keep_dtypes_for_float64_gradient_checks():
    X64 = np.random.default_rng(0).standard_normal((10, 2))
    xb, yb = next(iter(DataLoader(TensorDataset(X64, Tensor([1, 0] * 5)), batch_size=4)))
    assert xb.dtype == np.float64 and yb.dtype == np.int64
    assert (xb * 2.0).dtype == np.float64


def test_normalising_with_tensor_ops_before_loading():
    """A typical pipeline: standardise with Tensor reductions, then batch; the batches are standardised."""
    X, y = make_data(n=200)
    Xt = Tensor(X)
    Z = (Xt - Xt.mean(axis=0)) / ((Xt - Xt.mean(axis=0)) ** 2).mean(axis=0) ** 0.5
    stacked = np.concatenate([xb.data for xb, _ in DataLoader(TensorDataset(Z, y), batch_size=50)])
    np.testing.assert_allclose(stacked.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(stacked.std(axis=0), 1.0, atol=1e-4)


LOWER_CONTRACTS = [tensor_contract]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
