"""PyTorch parity of module 10: Embedding values and gradients, positional encodings."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinytorch.core.embeddings import Embedding, PositionalEncoding
from tinytorch.core.tensor import Tensor


def test_embedding_matches_torch_values_and_grads():
    rng = np.random.default_rng(0)
    emb = Embedding(12, 5, seed=0)
    ref = torch.nn.Embedding(12, 5)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(emb.weight.data))
    ids = rng.integers(0, 12, size=(4, 9))
    ids[0, :4] = 3                                  # plenty of repeats
    projection = rng.normal(size=(4, 9, 5)).astype(np.float32)

    out = emb(ids)
    (out * Tensor(projection)).sum().backward()
    t_out = ref(torch.tensor(ids))
    (t_out * torch.tensor(projection)).sum().backward()

    np.testing.assert_array_equal(out.data, t_out.detach().numpy())
    np.testing.assert_allclose(emb.weight.grad.data, ref.weight.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_embedding_init_distribution_matches_torch():
    ours = Embedding(4000, 64, seed=0).weight.data
    theirs = torch.nn.Embedding(4000, 64).weight.detach().numpy()   # torch: seeded per test by the conftest
    assert ours.dtype == theirs.dtype == np.float32
    # n = 256,000 N(0, 1) draws each: the difference of the means has sd sqrt(2 / n) = 0.0028 and of the stds
    # sd sqrt(1 / n) = 0.002, so 0.02 is 7 and 10 sd (normal tails < 1e-11; the former 0.01 was 3.6 sd)
    assert abs(ours.mean() - theirs.mean()) < 0.02 and abs(ours.std() - theirs.std()) < 0.02


def test_embedding_out_of_range_rejected_like_torch():
    with pytest.raises(IndexError):
        torch.nn.Embedding(5, 2)(torch.tensor([5]))
    with pytest.raises(ValueError):
        Embedding(5, 2)(np.array([5]))


def torch_sinusoidal(max_len, d_model):
    """The encoding as commonly written in PyTorch (The Annotated Transformer), in float64."""
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * -(math.log(10000.0) / d_model))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term[: d_model // 2])
    return pe


@pytest.mark.parametrize("max_len, d_model", [(64, 32), (200, 7)])
def test_positional_encoding_matches_torch_formula(max_len, d_model):
    pe = PositionalEncoding(max_len, d_model)
    np.testing.assert_allclose(pe.encoding.data, torch_sinusoidal(max_len, d_model).numpy(), atol=1e-6)
    x = np.random.default_rng(1).normal(size=(2, 10, d_model)).astype(np.float32)
    expected = torch.tensor(x) + torch_sinusoidal(max_len, d_model)[:10].float()
    np.testing.assert_allclose(pe(Tensor(x)).data, expected.numpy(), atol=1e-6)


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
