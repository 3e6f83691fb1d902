"""Module 01 (Tensor) in realistic small pipelines: the computations later modules build from it.

Module 01 stands on nothing but NumPy, so these tests combine its own operations the way layers,
activations, losses and attention will, and compare the results with plain NumPy.
"""

import numpy as np
import pytest

from tinytorch.core.tensor import Tensor

RNG = np.random.default_rng(1)  # replaced before each test by that test's own stream (below)


@pytest.fixture(autouse=True)
def _per_test_rng(rng):
    """Each test draws from its own stream (the root conftest's `rng`: TINYTORCH_TEST_SEED and the test id),
    so its data does not depend on which tests ran before it."""
    global RNG
    RNG = rng


def numpy_softmax(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def tensor_softmax(x, axis=-1):
    """Softmax written with Tensor operations only: max/exp/sum with keepdims and broadcasting."""
    shifted = x - x.max(axis=axis, keepdims=True)
    e = shifted.exp()
    return e / e.sum(axis=axis, keepdims=True)


def test_mlp_forward_pass_matches_numpy():
    """x @ W1 + b1 -> ReLU -> @ W2 + b2 -> softmax, batch of 8, all float32."""
    x = RNG.standard_normal((8, 4)).astype(np.float32)
    w1, b1 = RNG.standard_normal((4, 16)).astype(np.float32), np.zeros(16, dtype=np.float32)
    w2, b2 = RNG.standard_normal((16, 3)).astype(np.float32), np.full(3, 0.1, dtype=np.float32)

    h = Tensor(x) @ Tensor(w1) + Tensor(b1)
    h = h * (h > 0)                                # ReLU through a bool mask
    probs = tensor_softmax(h @ Tensor(w2) + Tensor(b2))

    expected = numpy_softmax(np.maximum(x @ w1 + b1, 0) @ w2 + b2)
    assert probs.shape == (8, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.data, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1).data, np.ones(8), rtol=1e-5)


def test_cross_entropy_and_accuracy_from_tensor_ops():
    """Pick the probability of each label with fancy indexing; mean of -log; accuracy via comparisons."""
    logits = Tensor(RNG.standard_normal((6, 5)))
    labels = np.array([0, 4, 2, 2, 1, 3])
    probs = tensor_softmax(logits)
    picked = probs[Tensor(np.arange(6)), Tensor(labels)]
    loss = (-picked.log()).mean()

    expected_probs = numpy_softmax(logits.data)
    expected_loss = -np.log(expected_probs[np.arange(6), labels]).mean()
    assert loss.shape == ()
    np.testing.assert_allclose(loss.item(), expected_loss)

    best = probs == probs.max(axis=1, keepdims=True)
    accuracy = best[Tensor(np.arange(6)), Tensor(labels)].mean().item()
    assert accuracy == np.mean(expected_probs.argmax(axis=1) == labels)


def test_batched_attention_scores():
    """softmax(Q K^T / sqrt(d)) V over (batch, seq, d) with transpose(0, 2, 1) and batched matmul."""
    q, k, v = (RNG.standard_normal((2, 5, 8)) for _ in range(3))
    Q, K, V = Tensor(q), Tensor(k), Tensor(v)
    scores = Q @ K.transpose(0, 2, 1) / np.sqrt(8)
    weights = tensor_softmax(scores)
    out = weights @ V

    expected = numpy_softmax(q @ k.transpose(0, 2, 1) / np.sqrt(8)) @ v
    assert out.shape == (2, 5, 8)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10)


def test_layer_norm_with_keepdims():
    """(x - mean) / sqrt(var + eps) over the last axis, with keepdims broadcasting back."""
    x = Tensor(RNG.standard_normal((4, 3, 10)))
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / (var + 1e-5) ** 0.5

    expected = (x.data - x.data.mean(-1, keepdims=True)) / np.sqrt(x.data.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y.data, expected, rtol=1e-10)
    np.testing.assert_allclose(y.mean(axis=-1).data, 0.0, atol=1e-12)


def test_flatten_images_and_linear_layer():
    """NCHW images -> reshape to (batch, features) -> a linear map; the shapes later modules use."""
    images = Tensor(RNG.standard_normal((3, 2, 4, 4)).astype(np.float32))
    flat = images.reshape(3, -1)
    weights = Tensor(RNG.standard_normal((32, 10)).astype(np.float32))
    out = flat @ weights
    assert flat.shape == (3, 32) and out.shape == (3, 10)
    np.testing.assert_allclose(out.data, images.data.reshape(3, 32) @ weights.data, rtol=1e-5)


def test_mixing_numpy_python_and_tensors_keeps_tensor_type_and_dtype():
    t = Tensor(np.ones((2, 3), dtype=np.float32))
    result = 2.0 * (np.ones(3, dtype=np.float32) + t) - 1
    assert isinstance(result, Tensor) and result.dtype == np.float32
    np.testing.assert_array_equal(result.data, np.full((2, 3), 3.0))


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
