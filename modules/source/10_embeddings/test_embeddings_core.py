"""Unit tests of module 10 (embeddings) against the exported package tinytorch.core.embeddings."""

import math

import numpy as np
import pytest

from tinytorch.core.autograd import Variable, check_gradients, no_grad
from tinytorch.core.embeddings import CharTokenizer, Embedding, PositionalEncoding
from tinytorch.core.tensor import Tensor


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---- CharTokenizer ----------------------------------------------------------------------------

def test_tokenizer_vocab_sorted_with_specials_first():
    tok = CharTokenizer().fit("banana bread")
    assert tok.itos[:2] == ["<pad>", "<unk>"] and tok.pad_id == 0 and tok.unk_id == 1
    assert tok.itos[2:] == sorted(set("banana bread"))
    assert tok.vocab_size == 2 + len(set("banana bread"))
    assert all(tok.stoi[t] == i for i, t in enumerate(tok.itos))


def test_tokenizer_is_deterministic():
    text = "the quick brown fox"
    shuffled = "".join(np.random.default_rng(1).permutation(list(text)))
    assert CharTokenizer(text).itos == CharTokenizer(shuffled).itos
    np.testing.assert_array_equal(CharTokenizer(text).encode(text), CharTokenizer(shuffled).encode(text))


def test_tokenizer_encode_decode_round_trip():
    text = "To be, or not to be: that is the question.\nÀ bientôt, 東京!"
    tok = CharTokenizer(text)
    ids = tok.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert ids.tolist() == [tok.stoi[c] for c in text]
    assert tok.decode(ids) == text
    assert tok.decode(Tensor(ids)) == text
    assert tok.decode(ids.tolist()) == text


def test_tokenizer_unknown_and_padding():
    tok = CharTokenizer("abc")
    ids = tok.encode("abzca~")
    assert ids.tolist() == [tok.stoi["a"], tok.stoi["b"], 1, tok.stoi["c"], tok.stoi["a"], 1]
    assert tok.decode(ids) == "ab<unk>ca<unk>"
    padded = np.concatenate([tok.encode("cab"), np.zeros(3, dtype=np.int64)])
    assert tok.decode(padded) == "cab", "pad ids decode to nothing"
    # characters beyond the largest and below the smallest code point in the vocabulary
    assert CharTokenizer("m").encode("a m z").tolist() == [1, 1, 2, 1, 1]


def test_tokenizer_empty_inputs():
    tok = CharTokenizer("")
    assert tok.vocab_size == 2 and tok.encode("xy").tolist() == [1, 1]
    tok = CharTokenizer("ab")
    assert tok.encode("").shape == (0,) and tok.encode("").dtype == np.int64
    assert tok.decode([]) == ""


def test_tokenizer_refit_replaces_vocabulary():
    tok = CharTokenizer("abc")
    tok.fit("xy")
    assert tok.itos == ["<pad>", "<unk>", "x", "y"] and tok.encode("a").tolist() == [1]


def test_tokenizer_errors():
    with pytest.raises(ValueError, match="fit"):
        CharTokenizer().encode("a")
    with pytest.raises(ValueError, match="fit"):
        CharTokenizer().decode([0])
    tok = CharTokenizer("abc")
    with pytest.raises(TypeError):
        tok.fit(["a", "b"])
    with pytest.raises(TypeError):
        tok.encode(123)
    with pytest.raises(ValueError, match=r"5.*\[0, 4\]"):
        tok.decode([2, 5])
    with pytest.raises(ValueError, match="-1"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="float"):
        tok.decode(np.array([2.0]))
    with pytest.raises(ValueError, match="1-D"):
        tok.decode(np.zeros((2, 2), dtype=np.int64))


# ---- Embedding --------------------------------------------------------------------------------

def test_embedding_parameter_and_init():
    emb = Embedding(20, 6, seed=0)
    assert isinstance(emb.weight, Variable) and emb.weight.requires_grad
    assert emb.weight.shape == (20, 6) and emb.weight.dtype == np.float32
    assert emb.parameters() == [emb.weight]
    np.testing.assert_array_equal(Embedding(20, 6, seed=0).weight.data, emb.weight.data)
    assert not np.array_equal(Embedding(20, 6, seed=1).weight.data, emb.weight.data)
    big = Embedding(2000, 50, seed=3).weight.data
    # N(0, 1), as torch.nn.Embedding. Over n = 100,000 draws the mean has sd 1 / sqrt(n) = 0.0032 and the std
    # sd 1 / sqrt(2n) = 0.0022: 0.025 is 7.9 and 11 sd (the former 0.01 was 3.2 sd: 1 run in 600 failed).
    assert abs(big.mean()) < 0.025 and abs(big.std() - 1.0) < 0.025


@pytest.mark.parametrize("ids", [np.array(3), np.array([1, 4, 4]), np.array([[0, 19], [5, 5]]),
                                 np.arange(24).reshape(2, 3, 4) % 20])
def test_embedding_lookup_any_shape(ids):
    emb = Embedding(20, 6, seed=0)
    out = emb(ids)
    assert isinstance(out, Variable) and out.requires_grad
    assert out.shape == ids.shape + (6,) and out.dtype == np.float32
    np.testing.assert_array_equal(out.data, emb.weight.data[ids])


def test_embedding_accepts_tensors_lists_and_unsigned():
    emb = Embedding(10, 3, seed=0)
    expected = emb.weight.data[[2, 7]]
    for ids in (Tensor(np.array([2, 7])), [2, 7], np.array([2, 7], dtype=np.uint8), np.array([2, 7], dtype=np.int32)):
        np.testing.assert_array_equal(emb(ids).data, expected)


def test_embedding_gradient_accumulates_repeated_ids(rng):
    emb = Embedding(6, 3, seed=0)
    ids = np.array([[1, 1, 4], [1, 0, 4]])
    grad = rng.normal(size=(2, 3, 3)).astype(np.float32)
    emb(ids).backward(grad)
    expected, magnitude = np.zeros((6, 3)), np.zeros((6, 3))
    for (b, s), i in np.ndenumerate(ids):      # the slow, obviously right way (in float64)
        expected[i] += grad[b, s]
        magnitude[i] += np.abs(grad[b, s])
    # A float32 sum of n terms, in any order, is within (n - 1) * eps32 / 2 * sum |terms| of the exact sum: a
    # bound for every draw. (rtol=1e-6 alone failed where the terms cancelled, about 1 draw in 100.)
    tolerance = 2 * np.finfo(np.float32).eps * magnitude
    assert np.all(np.abs(emb.weight.grad.data - expected) <= tolerance)
    assert emb.weight.grad.dtype == np.float32
    assert np.all(emb.weight.grad.data[[2, 3, 5]] == 0), "unused rows get no gradient"
    emb(ids).backward(grad)
    assert np.all(np.abs(emb.weight.grad.data - 2 * expected) <= 2 * tolerance)


def test_embedding_check_gradients(rng):
    emb = Embedding(7, 4, seed=1)
    emb.weight.data = emb.weight.data.astype(np.float64)
    ids = np.array([[3, 3, 0], [6, 3, 1]])
    check_gradients(lambda w: emb(ids), emb.weight)
    # a nonlinear use of repeated rows: the same row appears in both factors
    check_gradients(lambda w: (emb(ids) * emb(ids[:, ::-1])).sum(axis=-1), emb.weight)


def test_embedding_no_grad():
    emb = Embedding(5, 2)
    with no_grad():
        out = emb([1, 2])
    assert isinstance(out, Variable) and not out.requires_grad


@pytest.mark.parametrize("ids, kind, words", [
    (np.array([1.0, 2.0]), TypeError, ["float64", "integer"]),
    (Tensor(np.array([0.5])), TypeError, ["float", "0.5"]),
    (np.array([True, False]), TypeError, ["bool"]),
    (np.array([3, 10]), ValueError, ["10", "[0, 9]"]),
    (np.array([[-1, 2]]), ValueError, ["-1", "[0, 9]"]),
    (np.array([2**40]), ValueError, [str(2**40)]),
])
def test_embedding_bad_ids(ids, kind, words):
    with pytest.raises(kind) as info:
        Embedding(10, 3)(ids)
    for word in words:
        assert word in str(info.value), str(info.value)


@pytest.mark.parametrize("args", [(0, 3), (5, 0), (2.5, 3), (True, 3)])
def test_embedding_bad_sizes(args):
    with pytest.raises(ValueError):
        Embedding(*args)


# ---- PositionalEncoding -----------------------------------------------------------------------

def formula(pos, dim, d_model):
    """The paper's definition, one entry at a time."""
    i = dim // 2
    angle = pos / 10000 ** (2 * i / d_model)
    return math.sin(angle) if dim % 2 == 0 else math.cos(angle)


@pytest.mark.parametrize("max_len, d_model", [(30, 8), (12, 5), (3, 1)])
def test_positional_table_matches_formula(max_len, d_model):
    pe = PositionalEncoding(max_len, d_model)
    table = pe.encoding.data
    assert table.shape == (max_len, d_model) and table.dtype == np.float32
    expected = np.array([[formula(p, j, d_model) for j in range(d_model)] for p in range(max_len)])
    np.testing.assert_allclose(table, expected, atol=1e-6)
    assert pe.parameters() == []


def test_positional_encoding_relative_offset_is_a_rotation():
    table = PositionalEncoding(100, 16).encoding.data.astype(np.float64)
    k, i = 7, 3                                   # offset and frequency pair
    w = 1 / 10000 ** (2 * i / 16)
    rotation = np.array([[math.cos(k * w), -math.sin(k * w)], [math.sin(k * w), math.cos(k * w)]])
    pairs = table[:, 2 * i:2 * i + 2]              # (sin, cos) of pos * w; row @ rotation adds k * w
    np.testing.assert_allclose(pairs[:-k] @ rotation, pairs[k:], atol=1e-5)


def test_positional_encoding_adds_to_batches(rng):
    pe = PositionalEncoding(20, 4)
    x = rng.normal(size=(3, 9, 4)).astype(np.float32)
    y = pe(Tensor(x))
    assert type(y) is Tensor and y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y.data, x + pe.encoding.data[:9])
    np.testing.assert_allclose(pe(Tensor(x[0])).data, y.data[0])          # (seq, d_model) works too
    assert pe(Tensor(rng.normal(size=(2, 20, 4)))).shape == (2, 20, 4)    # exactly max_len is fine


def test_positional_encoding_gradient_passes_through(rng):
    pe = PositionalEncoding(10, 6)
    x = Variable(rng.normal(size=(2, 5, 6)))
    check_gradients(lambda a: pe(a) * pe(a), x)
    out = pe(x)
    out.backward(np.ones(out.shape))
    np.testing.assert_array_equal(x.grad.data, np.ones(x.shape))


def test_positional_encoding_errors():
    pe = PositionalEncoding(8, 4)
    with pytest.raises(ValueError, match=r"9.*max_len=8"):
        pe(Tensor(np.zeros((2, 9, 4))))
    with pytest.raises(ValueError, match=r"\(2, 3, 5\)"):
        pe(Tensor(np.zeros((2, 3, 5))))
    with pytest.raises(ValueError):
        pe(Tensor(np.zeros(4)))
    with pytest.raises(ValueError):
        PositionalEncoding(0, 4)


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
