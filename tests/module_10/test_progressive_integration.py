"""Module 10 (embeddings) together with 01-09: a tiny character-level language model, end to end.

Text -> CharTokenizer -> windows in a TensorDataset/DataLoader (08) -> Embedding + PositionalEncoding ->
causal MultiHeadAttention + LayerNorm (07) -> Dense (04) -> Softmax (03) cross-entropy -> Adam/SGD (09).
Every piece is the real lower module, so a broken one fails here.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Softmax
from tinytorch.core.attention import LayerNorm, MultiHeadAttention, create_causal_mask
from tinytorch.core.autograd import check_gradients, no_grad
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.embeddings import CharTokenizer, Embedding, PositionalEncoding
from tinytorch.core.layers import Dense, Module
from tinytorch.core.networks import Sequential
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.tensor import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # contract_*.py, also when run as a script
from contract_activations import activations_contract  # tests/support/
from contract_attention import attention_contract  # tests/support/
from contract_autograd import autograd_contract  # tests/support/
from contract_dataloader import dataloader_contract  # tests/support/
from contract_layers import layers_contract  # tests/support/
from contract_networks import networks_contract  # tests/support/
from contract_optimizers import optimizers_contract  # tests/support/
from contract_tensor import tensor_contract  # tests/support/

TEXT = "the cat sat on the mat. the dog sat on the log. " * 8


class TinyCharLM(Module):
    """Embedding + positions -> one causal pre-norm attention block -> logits over the vocabulary."""

    def __init__(self, vocab, d_model=32, heads=4, max_len=16, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.embed = Embedding(vocab, d_model, seed=rng)
        self.position = PositionalEncoding(max_len, d_model)
        self.norm1 = LayerNorm(d_model)
        self.attention = MultiHeadAttention(d_model, heads, seed=rng)
        self.norm2 = LayerNorm(d_model)
        self.ffn = Sequential([Dense(d_model, 2 * d_model, seed=rng), ReLU(), Dense(2 * d_model, d_model, seed=rng)])
        self.head = Dense(d_model, vocab, seed=rng)

    def forward(self, ids, mask=None):
        ids = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
        seq = ids.shape[-1]
        if mask is None:
            mask = create_causal_mask(seq)
        x = self.position(self.embed(ids) * 0.1)       # small embeddings: positions stay visible
        x = x + self.attention(self.norm1(x), mask=mask)
        x = x + self.ffn(self.norm2(x))
        return self.head(x)


def cross_entropy(logits, targets):
    """Mean next-token cross-entropy from (B, L, V) logits, built from Softmax (03), indexing and log."""
    b, l, v = logits.shape
    probs = Softmax()(logits.reshape(b * l, v))
    picked = probs[np.arange(b * l), targets.reshape(-1)]
    return -(picked.log()).mean()


def windows(ids, length):
    """All (input, next-token target) windows of `length` from a 1-D id array, as (N, length) arrays."""
    starts = np.arange(len(ids) - length)
    index = starts[:, None] + np.arange(length)[None, :]
    return ids[index], ids[index + 1]


def test_tokenizer_windows_through_dataloader():
    tok = CharTokenizer(TEXT)
    ids = tok.encode(TEXT)
    x, y = windows(ids, 12)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, seed=0)
    xb, yb = next(iter(loader))
    assert xb.shape == (32, 12) and xb.dtype == np.int64
    np.testing.assert_array_equal(xb.data[:, 1:], yb.data[:, :-1])
    assert tok.decode(xb.data[0]) in TEXT


def test_char_language_model_learns_with_adam():
    tok = CharTokenizer(TEXT)
    x, y = windows(tok.encode(TEXT), 12)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, seed=1)
    model = TinyCharLM(tok.vocab_size, seed=0)
    optimizer = Adam(model.parameters(), lr=0.01)
    with no_grad():
        first = cross_entropy(model(x), y).item()
    for _ in range(4):
        for xb, yb in loader:
            loss = cross_entropy(model(xb), yb.data)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with no_grad():
        logits = model(x)
        final = cross_entropy(logits, y).item()
    accuracy = (logits.data.argmax(-1) == y).mean()
    assert final < 0.35 * first, f"loss {first:.3f} -> {final:.3f}"
    assert accuracy > 0.6, f"next-character accuracy {accuracy:.2%}"
    assert abs(first - np.log(tok.vocab_size)) < 1.5, "an untrained model should be near uniform"


def test_gradients_through_embedding_attention_and_norm(away_from_kinks):
    tok = CharTokenizer("abcdefg")
    model = TinyCharLM(tok.vocab_size, d_model=8, heads=2, max_len=6, seed=2)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    ids = tok.encode("abcaba").reshape(2, 3)                 # repeated ids in one batch
    away_from_kinks(lambda *params: model(ids), *model.parameters())  # ReLU's kink: see the conftest
    check_gradients(lambda *params: model(ids), *model.parameters())


def test_causal_model_ignores_future_tokens():
    tok = CharTokenizer(TEXT)
    model = TinyCharLM(tok.vocab_size, seed=3)
    a = tok.encode("the cat sat").reshape(1, -1)
    b = tok.encode("the cat ran").reshape(1, -1)
    out_a, out_b = model(a).data, model(b).data
    np.testing.assert_allclose(out_a[:, :8], out_b[:, :8], atol=1e-5)
    assert not np.allclose(out_a[:, 8:], out_b[:, 8:])


def test_padding_mask_from_tokenizer_pad_id():
    tok = CharTokenizer(TEXT)
    ids = np.stack([tok.encode("the mat"), np.concatenate([tok.encode("the"), np.full(4, tok.pad_id)])])
    keep = create_causal_mask(7).data[None] & (ids != tok.pad_id)[:, None, :]   # (B, Lq, Lk)
    model = TinyCharLM(tok.vocab_size, seed=4)
    base = model(ids, mask=keep).data
    other = ids.copy()
    other[1, 3:] = tok.stoi["x"] if "x" in tok.stoi else 2                        # change the padding
    keep_other = create_causal_mask(7).data[None] & (ids != tok.pad_id)[:, None, :]
    np.testing.assert_allclose(model(other, mask=keep_other).data[1, :3], base[1, :3], atol=1e-5)


def test_sgd_step_moves_only_the_embedding_rows_that_were_used():
    emb = Embedding(20, 4, seed=5)
    before = emb.weight.data.copy()
    optimizer = SGD(emb.parameters(), lr=0.5)
    out = emb(np.array([[3, 7, 3]]))
    (out * out).sum().backward()
    optimizer.step()
    changed = np.any(emb.weight.data != before, axis=1)
    assert np.flatnonzero(changed).tolist() == [3, 7]
    np.testing.assert_allclose(emb.weight.data[3], before[3] - 0.5 * 2 * 2 * before[3], rtol=1e-6)


LOWER_CONTRACTS = [
    tensor_contract, autograd_contract, activations_contract, layers_contract, networks_contract,
    attention_contract, dataloader_contract, optimizers_contract,
]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
