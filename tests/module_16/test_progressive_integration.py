"""Module 16 (capstone) together with everything it stands on: the tokenizer, embeddings and positions
(10), attention and LayerNorm (07), Dense/Dropout/Sequential (04, 05), DataLoader (08), Adam/SGD/StepLR
(09), the losses and the Trainer (11), autograd (02). Small, real language-model pipelines with the real
classes; a broken lower module (a wrong gradient, a loader that skips windows, a leaky mask) fails here.
"""

import codecs
import contextlib
import io
import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.activations import Softmax
from tinytorch.core.attention import create_causal_mask
from tinytorch.core.autograd import Variable, check_gradients, no_grad
from tinytorch.core.capstone import (
    CharTransformer,
    LanguageModelDataset,
    SequenceCrossEntropyLoss,
    TransformerBlock,
    cross_entropy_per_char,
    generate,
    perplexity,
    train_language_model,
    unigram_entropy,
)
from tinytorch.core.dataloader import DataLoader
from tinytorch.core.embeddings import CharTokenizer, Embedding, PositionalEncoding
from tinytorch.core.layers import Dense
from tinytorch.core.networks import Sequential, load_parameters, save_parameters
from tinytorch.core.optimizers import SGD, Adam, StepLR
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import CrossEntropyLoss, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # contract_*.py, also when run as a script
from contract_activations import activations_contract  # tests/support/
from contract_attention import attention_contract  # tests/support/
from contract_autograd import autograd_contract  # tests/support/
from contract_dataloader import dataloader_contract  # tests/support/
from contract_embeddings import embeddings_contract  # tests/support/
from contract_layers import layers_contract  # tests/support/
from contract_networks import networks_contract  # tests/support/
from contract_optimizers import optimizers_contract  # tests/support/
from contract_tensor import tensor_contract  # tests/support/
from contract_training import training_contract  # tests/support/


def zen():
    """The Zen of Python (ships with Python as the `this` module, stored in rot13)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    return codecs.decode(this.s, "rot13")


def test_trainer_with_dataloader_windows_and_a_scheduler():
    text = zen()
    tok = CharTokenizer(text)
    ids = tok.encode(text)
    split = int(len(ids) * 0.9)
    train = DataLoader(LanguageModelDataset(ids[:split], seq_len=24, stride=4), batch_size=16, shuffle=True, seed=0)
    val = DataLoader(LanguageModelDataset(ids[split:], seq_len=24, stride=24), batch_size=16)
    model = CharTransformer(tok.vocab_size, 32, 4, 1, 64, max_len=24, seed=0)
    optimizer = Adam(model.parameters(), lr=5e-3)
    trainer = Trainer(model, optimizer, SequenceCrossEntropyLoss(), scheduler=StepLR(optimizer, 4, 0.5))
    history = trainer.fit(train, epochs=8, val_loader=val, verbose=False)
    assert history["loss"][-1] < unigram_entropy(ids[:split]) < history["loss"][0]
    assert optimizer.lr == pytest.approx(5e-3 * 0.25)
    # the Trainer's evaluate and cross_entropy_per_char agree on the same windows (eval mode, no graph)
    assert np.isclose(trainer.evaluate(val)["loss"],
                      cross_entropy_per_char(model, ids[split:split + 1 + 24 * len(val.dataset)], seq_len=24),
                      rtol=1e-5)


def test_model_equals_its_parts_assembled_by_hand():
    """CharTransformer == Embedding -> PositionalEncoding -> Sequential(blocks) -> LayerNorm -> Dense."""
    model = CharTransformer(20, 16, 4, 3, 32, max_len=10, seed=1)
    ids = np.random.default_rng(0).integers(0, 20, size=(4, 10))
    stack = Sequential(model.blocks)                   # a block's default mask is causal: one argument suffices
    with no_grad():
        by_hand = model.head(model.norm(stack(model.position(model.token_embedding(ids)))))
        np.testing.assert_allclose(model(ids).data, by_hand.data, rtol=1e-6)
        probs = Softmax()(Tensor(model(ids).data))
    np.testing.assert_allclose(probs.data.sum(axis=-1), 1.0, rtol=1e-5)


def test_gradients_through_embedding_positions_block_and_loss(away_from_kinks):
    rng = np.random.default_rng(2)
    emb, pos = Embedding(9, 8, seed=0), PositionalEncoding(6, 8)
    block, head = TransformerBlock(8, 2, 12, seed=0), Dense(8, 9, seed=0)
    params = emb.parameters() + block.parameters() + head.parameters()
    for p in params:
        p.data = p.data.astype(np.float64)
    ids = rng.integers(0, 9, size=(2, 6))
    targets = rng.integers(0, 9, size=(2, 6))

    def loss(*_):
        return SequenceCrossEntropyLoss()(head(block(pos(emb(ids)))), targets)
    away_from_kinks(loss, *params)  # ReLU's kink: see the conftest
    check_gradients(loss, *params)


def test_causal_mask_holds_through_training():
    """After real training steps (Adam), position i still ignores everything after it."""
    text = "abcabcabdabcabcabd" * 4
    tok = CharTokenizer(text)
    model = CharTransformer(tok.vocab_size, 16, 2, 2, 32, max_len=9, seed=0)
    train_language_model(model, tok.encode(text), seq_len=9, steps=30, batch_size=8, lr=1e-2, seed=0)
    ids = tok.encode(text[:9])[None, :]
    other = ids.copy()
    other[0, 5:] = tok.encode("cccc")
    with no_grad():
        np.testing.assert_allclose(model(other).data[:, :5], model(ids).data[:, :5], atol=1e-5)


def test_learns_the_zen_well_below_the_unigram_baseline_and_writes_from_it():
    text = zen()
    tok = CharTokenizer(text)
    ids = tok.encode(text)
    model = CharTransformer(tok.vocab_size, 32, 4, 1, 128, max_len=32, seed=0)
    start = cross_entropy_per_char(model, ids)
    history = train_language_model(model, ids, seq_len=32, steps=150, batch_size=16, lr=5e-3, seed=0)
    final = cross_entropy_per_char(model, ids)
    assert final < 0.6 * unigram_entropy(ids) < start, (start, final)
    assert perplexity(model, ids) < tok.vocab_size / 4
    assert np.mean(history["loss"][-10:]) < np.mean(history["loss"][:10])
    sample = generate(model, tok, "Beautiful is", 80, temperature=0.7, seed=0)
    assert sample == generate(model, tok, "Beautiful is", 80, temperature=0.7, seed=0)
    assert set(sample) <= set(text) and " " in sample[12:]


def test_save_and_load_reproduce_the_same_generation(tmp_path):
    text = "one two three four " * 8
    tok = CharTokenizer(text)
    model = CharTransformer(tok.vocab_size, 16, 2, 1, 32, max_len=16, dropout=0.1, seed=0)
    train_language_model(model, tok.encode(text), seq_len=16, steps=40, batch_size=8, lr=1e-2, seed=0)
    save_parameters(model, tmp_path / "lm.npz")
    fresh = CharTransformer(tok.vocab_size, 16, 2, 1, 32, max_len=16, dropout=0.1, seed=123)
    load_parameters(fresh, tmp_path / "lm.npz")
    for temperature in (0, 0.9):
        assert (generate(model, tok, "one t", 40, temperature=temperature, seed=5)
                == generate(fresh, tok, "one t", 40, temperature=temperature, seed=5))


def test_sgd_with_momentum_also_trains_the_model():
    text = "the cat sat on the mat. " * 6
    tok = CharTokenizer(text)
    ids = tok.encode(text)
    model = CharTransformer(tok.vocab_size, 16, 2, 1, 32, max_len=12, seed=0)
    before = cross_entropy_per_char(model, ids)
    train_language_model(model, ids, seq_len=12, steps=60, batch_size=16,
                         optimizer=SGD(model.parameters(), lr=0.1, momentum=0.9), seed=0)
    assert cross_entropy_per_char(model, ids) < 0.7 * before


def test_sequence_loss_equals_the_lower_cross_entropy_on_flattened_rows():
    rng = np.random.default_rng(4)
    logits = Variable(rng.normal(size=(3, 5, 7)))
    targets = rng.integers(0, 7, size=(3, 5))
    ours = SequenceCrossEntropyLoss()(logits, targets)
    flat = CrossEntropyLoss()(Variable(logits.data.reshape(15, 7)), targets.reshape(15))
    assert np.isclose(ours.item(), flat.item())
    ours.backward()
    assert logits.grad.shape == (3, 5, 7) and np.allclose(logits.grad.data.sum(axis=-1), 0)


def test_attention_inside_the_model_is_causal():
    model = CharTransformer(12, 16, 4, 1, 32, max_len=8, seed=0)
    with no_grad():
        model(np.random.default_rng(5).integers(0, 12, size=(2, 8)))
    weights = model.blocks[0].attention.last_weights.data            # (2, 4, 8, 8)
    assert weights.shape == (2, 4, 8, 8)
    assert np.all(weights[..., ~create_causal_mask(8).data] == 0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)


LOWER_CONTRACTS = [
    tensor_contract, autograd_contract, activations_contract, layers_contract, networks_contract,
    attention_contract, dataloader_contract, optimizers_contract, embeddings_contract, training_contract,
]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
