"""Module 16 (capstone) against the exported package: the transformer block and model, the data windows,
the sequence loss, the training loop, generation and the evaluation numbers."""

import numpy as np
import pytest

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
from tinytorch.core.embeddings import CharTokenizer
from tinytorch.core.tensor import Tensor


def to_float64(module):
    for p in module.parameters():
        p.data = p.data.astype(np.float64)


def fake_clock(step=1.0):
    ticks = iter(range(10**9))
    return lambda: step * next(ticks)


@pytest.fixture(scope="module")
def hello():
    """A model that memorised "hello world " (trained once for the module's tests)."""
    text = "hello world " * 20
    tok = CharTokenizer(text)
    model = CharTransformer(tok.vocab_size, 32, 2, 1, 64, max_len=12, seed=0)
    history = train_language_model(model, tok.encode(text), seq_len=12, steps=150, batch_size=16, lr=0.01,
                                   seed=0, clock=fake_clock())
    return model, tok, text, history


# ---- TransformerBlock ----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 5, 8), (5, 8), (2, 3, 4, 8)])
def test_block_keeps_the_shape_and_type(shape):
    block = TransformerBlock(8, 2, 32, seed=0)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    y = block(Tensor(x))
    assert type(y) is Tensor and y.shape == shape and y.dtype == np.float32
    v = block(Variable(x, requires_grad=False))
    assert isinstance(v, Variable) and v.requires_grad and np.allclose(v.data, y.data)


def test_block_parameter_count():
    d, f = 12, 40
    block = TransformerBlock(d, 3, f, seed=0)
    assert sum(p.data.size for p in block.parameters()) == 4 * (d * d + d) + 4 * d + 2 * d * f + f + d


def test_block_output_at_i_ignores_every_later_position():
    rng = np.random.default_rng(1)
    block = TransformerBlock(8, 2, 16, seed=0)
    x = rng.normal(size=(2, 7, 8))
    to_float64(block)
    base = block(Tensor(x)).data
    for i in range(6):
        perturbed = x.copy()
        perturbed[:, i + 1:] += rng.normal(size=perturbed[:, i + 1:].shape) * 10
        out = block(Tensor(perturbed)).data
        np.testing.assert_allclose(out[:, :i + 1], base[:, :i + 1], rtol=1e-12, atol=1e-12)
        assert not np.allclose(out[:, i + 1:], base[:, i + 1:])


def test_block_accepts_an_explicit_mask():
    rng = np.random.default_rng(2)
    block = TransformerBlock(8, 2, 16, seed=0)
    x = Tensor(rng.normal(size=(2, 5, 8)).astype(np.float32))
    np.testing.assert_allclose(block(x, mask=create_causal_mask(5)).data, block(x).data)
    full = block(x, mask=np.ones((5, 5), dtype=bool)).data          # bidirectional: the past now sees the future
    assert not np.allclose(full[:, 0], block(x).data[:, 0])


def test_block_gradients_float64(away_from_kinks):
    rng = np.random.default_rng(3)
    block = TransformerBlock(6, 2, 10, seed=1)
    to_float64(block)
    for p in block.parameters():                     # move LayerNorm off its identity initialisation
        p.data = p.data + rng.normal(size=p.shape) * 0.1
    x = Variable(rng.normal(size=(2, 4, 6)))
    away_from_kinks(lambda a, *params: block(a), x, *block.parameters())  # ReLU's kink: see the conftest
    check_gradients(lambda a, *params: block(a), x, *block.parameters())


def test_block_dropout_train_and_eval():
    x = Tensor(np.random.default_rng(4).normal(size=(2, 6, 8)).astype(np.float32))
    plain = TransformerBlock(8, 2, 16, seed=0)
    noisy = TransformerBlock(8, 2, 16, dropout=0.3, seed=0)
    assert not np.allclose(noisy(x).data, plain(x).data)
    noisy.eval()
    np.testing.assert_allclose(noisy(x).data, plain(x).data, atol=1e-6)


@pytest.mark.parametrize("args, kind", [((8, 3, 16), ValueError), ((8, 2, 0), ValueError),
                                        ((8, 2, 16.0), TypeError), ((8, 2, 16, 1.0), ValueError)])
def test_block_rejects_bad_settings(args, kind):
    with pytest.raises(kind):
        TransformerBlock(*args)


def test_block_rejects_a_wrong_width():
    with pytest.raises(ValueError, match=r"\(2, 4, 6\)"):
        TransformerBlock(8, 2, 16)(Tensor(np.ones((2, 4, 6), dtype=np.float32)))


# ---- CharTransformer -----------------------------------------------------------------------------

def test_model_logits_shape_and_parameter_count():
    V, d, f, n = 13, 16, 48, 3
    model = CharTransformer(V, d, 4, n, f, max_len=20, seed=0)
    block = 4 * (d * d + d) + 4 * d + 2 * d * f + f + d
    assert sum(p.data.size for p in model.parameters()) == V * d + n * block + 2 * d + d * V + V
    assert len(model.blocks) == n and len(model.parameters()) == 1 + 16 * n + 2 + 2
    logits = model(np.random.default_rng(0).integers(0, V, size=(4, 20)))
    assert isinstance(logits, Variable) and logits.shape == (4, 20, V)


def test_model_is_causal_for_every_cut():
    V = 9
    model = CharTransformer(V, 16, 2, 2, 32, max_len=10, seed=0)
    to_float64(model)
    rng = np.random.default_rng(5)
    ids = rng.integers(0, V, size=(3, 10))
    base = model(ids).data
    for i in range(9):
        changed = ids.copy()
        changed[:, i + 1:] = (changed[:, i + 1:] + rng.integers(1, V, size=changed[:, i + 1:].shape)) % V
        out = model(changed).data
        np.testing.assert_allclose(out[:, :i + 1], base[:, :i + 1], rtol=1e-12, atol=1e-12)


def test_model_is_seeded_and_shorter_sequences_match_the_prefix():
    a = CharTransformer(10, 16, 2, 1, 32, max_len=8, seed=3)
    b = CharTransformer(10, 16, 2, 1, 32, max_len=8, seed=3)
    assert all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))
    ids = np.random.default_rng(0).integers(0, 10, size=(2, 8))
    with no_grad():
        np.testing.assert_allclose(a(ids[:, :5]).data, a(ids).data[:, :5], atol=1e-5)


def test_model_gradients_float64_including_the_embedding(away_from_kinks):
    model = CharTransformer(7, 6, 2, 1, 8, max_len=5, seed=2)
    to_float64(model)
    ids = np.random.default_rng(6).integers(0, 7, size=(2, 5))
    away_from_kinks(lambda *params: model(ids), *model.parameters())  # ReLU's kink: see the conftest
    check_gradients(lambda *params: model(ids), *model.parameters())


def test_model_errors_name_the_problem():
    model = CharTransformer(10, 8, 2, 1, 16, max_len=6, seed=0)
    with pytest.raises(ValueError, match=r"max_len=6"):
        model(np.zeros((2, 7), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\(3, 0\)"):
        model(np.zeros((3, 0), dtype=np.int64))
    with pytest.raises(TypeError, match="float"):
        model(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="10"):
        model(np.array([[1, 10]]))
    with pytest.raises(ValueError):
        CharTransformer(10, 8, 3, 1, 16, max_len=6)          # 8 is not divisible by 3 heads
    with pytest.raises(TypeError):
        CharTransformer(10, 8, 2, 1.5, 16, max_len=6)


# ---- LanguageModelDataset and the loss -----------------------------------------------------------

def test_dataset_windows_are_shifted_text():
    text = "the cat sat on the mat"
    tok = CharTokenizer(text)
    ds = LanguageModelDataset(tok.encode(text), seq_len=6, stride=2)
    assert len(ds) == (len(text) - 7) // 2 + 1
    for k in range(len(ds)):
        x, y = ds[k]
        assert tok.decode(x) == text[2 * k:2 * k + 6] and tok.decode(y) == text[2 * k + 1:2 * k + 7]
    bx, by = ds[np.arange(len(ds))]
    assert bx.shape == by.shape == (len(ds), 6) and bx.dtype == np.int64
    np.testing.assert_array_equal(bx.data[:, 1:], by.data[:, :-1])


def test_dataset_accepts_tensors_lists_and_rejects_bad_input():
    assert len(LanguageModelDataset(Tensor(np.arange(10)), 4)) == 6
    assert len(LanguageModelDataset(list(range(5)), 4)) == 1
    with pytest.raises(ValueError, match="only 4"):
        LanguageModelDataset(np.arange(4), 4)
    with pytest.raises(IndexError):
        LanguageModelDataset(np.arange(10), 4)[np.array([0, 6])]
    with pytest.raises(TypeError):
        LanguageModelDataset(np.arange(10), 4)[np.array([0.0])]
    with pytest.raises(ValueError):
        LanguageModelDataset(np.arange(10), 0)


def test_sequence_loss_matches_the_flattened_cross_entropy_and_its_gradient():
    rng = np.random.default_rng(7)
    z, t = rng.normal(size=(3, 4, 6)), rng.integers(0, 6, size=(3, 4))
    zv = Variable(z)
    loss = SequenceCrossEntropyLoss()(zv, t)
    shifted = z - z.max(axis=-1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    expected = -np.mean(np.log(np.take_along_axis(p, t[..., None], axis=-1)))
    assert np.isclose(loss.item(), expected)
    loss.backward()
    onehot = np.eye(6)[t]
    np.testing.assert_allclose(zv.grad.data, (p - onehot) / t.size, atol=1e-12)
    check_gradients(lambda a: SequenceCrossEntropyLoss()(a, t), Variable(z))


def test_sequence_loss_errors():
    loss = SequenceCrossEntropyLoss()
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        loss(Tensor(np.zeros((2, 4, 5))), np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(TypeError):
        loss(np.zeros((2, 4, 5)), np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="label 5"):
        loss(Tensor(np.zeros((1, 2, 5))), np.array([[0, 5]]))


# ---- training, generation, evaluation ------------------------------------------------------------

def test_training_memorises_a_tiny_repeated_string(hello):
    model, tok, text, history = hello
    assert history["loss"][0] > 1.5
    assert np.mean(history["loss"][-10:]) < 0.15
    # on a text aligned like the training data, every position after the first two is predicted with certainty
    assert cross_entropy_per_char(model, tok.encode(text[:13]), seq_len=12) < 0.2


def test_training_history_with_a_fake_clock():
    text = "abcdefgh" * 10
    tok = CharTokenizer(text)
    ids = tok.encode(text)
    model = CharTransformer(tok.vocab_size, 8, 2, 1, 16, max_len=8, seed=0)
    history = train_language_model(model, ids[:60], seq_len=8, steps=7, batch_size=4, lr=0.01, val_ids=ids[60:],
                                   eval_every=3, seed=0, clock=fake_clock(0.25))
    assert len(history["loss"]) == 7 and history["val_step"] == [3, 6, 7] and len(history["val_loss"]) == 3
    assert history["tokens"] == 7 * 4 * 8
    assert history["seconds"] == 7 * 0.25 and history["tokens_per_second"] == 4 * 8 / 0.25
    assert np.isclose(history["val_loss"][-1], cross_entropy_per_char(model, ids[60:], seq_len=8))


def test_training_is_deterministic_with_a_seed():
    text = "to be or not to be " * 6
    tok = CharTokenizer(text)

    def run():
        model = CharTransformer(tok.vocab_size, 16, 2, 1, 32, max_len=10, dropout=0.1, seed=4)
        return train_language_model(model, tok.encode(text), seq_len=10, steps=12, batch_size=8, seed=9)["loss"]
    assert run() == run()


def test_training_rejects_bad_arguments():
    model = CharTransformer(5, 8, 2, 1, 16, max_len=4, seed=0)
    ids = np.arange(2, 5).repeat(5)
    with pytest.raises(ValueError, match="max_len=4"):
        train_language_model(model, ids, seq_len=5, steps=1)
    with pytest.raises(ValueError):
        train_language_model(model, ids, seq_len=4, steps=0)
    with pytest.raises(TypeError):
        train_language_model(model, ids.astype(float), seq_len=4, steps=1)


def test_greedy_generation_reproduces_the_memorised_text(hello):
    model, tok, text, _ = hello
    assert generate(model, tok, "hello w", 17, temperature=0) == text[:24]
    greedy = generate(model, tok, "wo", 22, temperature=0)
    assert greedy == "wo" + (text * 2)[text.index("wo") + 2:][:22]


def test_sampling_is_reproducible_with_a_seed_and_a_generator(hello):
    model, tok, text, _ = hello
    a = generate(model, tok, "he", 50, temperature=2.0, seed=11)
    assert a == generate(model, tok, "he", 50, temperature=2.0, seed=11)
    assert a == generate(model, tok, "he", 50, temperature=2.0, seed=np.random.default_rng(11))
    assert len({generate(model, tok, "he", 50, temperature=2.0, seed=s) for s in range(5)}) > 1
    assert set(a) <= set(text)


def test_low_temperature_sampling_approaches_greedy(hello):
    model, tok, _, _ = hello
    greedy = generate(model, tok, "hello", 30, temperature=0)
    assert generate(model, tok, "hello", 30, temperature=1e-3, seed=0) == greedy


def test_generation_never_produces_special_tokens_and_reads_unknown_characters(hello):
    model, tok, _, _ = hello
    model.head.bias.data[tok.unk_id] += 100.0            # the model now prefers <unk> above everything
    model.head.bias.data[tok.pad_id] += 100.0
    try:
        out = generate(model, tok, "hello ZZZ", 20, temperature=1.0, seed=0)
    finally:
        model.head.bias.data[tok.unk_id] -= 100.0
        model.head.bias.data[tok.pad_id] -= 100.0
    assert out.startswith("hello ZZZ") and len(out) == 29
    assert "<unk>" not in out[9:] and set(out[9:]) <= set("helo wrd")


def test_generation_crops_the_context_to_max_len(hello):
    model, tok, text, _ = hello
    long_prompt = text[:100]                             # far longer than max_len = 12
    assert generate(model, tok, long_prompt, 6, temperature=0) == (text * 2)[:106]


def test_generation_errors(hello):
    model, tok, _, _ = hello
    with pytest.raises(ValueError):
        generate(model, tok, "", 5)
    with pytest.raises(ValueError):
        generate(model, tok, "he", 5, temperature=-1)
    with pytest.raises(TypeError):
        generate(model, tok, "he", 2.5)
    with pytest.raises(ValueError, match=str(model.vocab_size)):
        generate(model, CharTokenizer("xyz"), "xy", 3)


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    model = CharTransformer(11, 8, 2, 1, 16, max_len=6, seed=0)
    model.head.weights.data[...] = 0
    model.head.bias.data[...] = 0
    ids = np.random.default_rng(8).integers(0, 11, size=50)
    assert np.isclose(perplexity(model, ids), 11.0)
    assert np.isclose(cross_entropy_per_char(model, ids, seq_len=4, batch_size=3), np.log(11))


def test_cross_entropy_per_char_does_not_depend_on_batching():
    model = CharTransformer(9, 16, 2, 1, 32, max_len=8, seed=1)
    ids = np.random.default_rng(9).integers(0, 9, size=61)
    values = [cross_entropy_per_char(model, ids, seq_len=8, batch_size=b) for b in (1, 2, 5, 100)]
    np.testing.assert_allclose(values, values[0], rtol=1e-6)


def test_unigram_entropy():
    assert np.isclose(unigram_entropy(np.array([3, 4, 5, 6])), np.log(4))
    assert unigram_entropy(np.array([7])) == 0.0
    text = "abracadabra"
    counts = np.array([5, 2, 1, 1, 2]) / 11
    assert np.isclose(unigram_entropy(CharTokenizer(text).encode(text)), -(counts * np.log(counts)).sum())
    with pytest.raises(TypeError):
        unigram_entropy(np.array([0.5, 1.0]))


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
