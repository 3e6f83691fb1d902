# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 10: Embeddings
#
# Neural networks compute with vectors of real numbers; text is a sequence of symbols. This module builds
# the bridge a language model needs:
#
# 1. `CharTokenizer`: text -> integer ids and back, with a fixed, deterministic vocabulary.
# 2. `Embedding(num_embeddings, embedding_dim)`: a learned table that turns each id into a vector, whose
#    gradient touches only the rows that were used.
# 3. `PositionalEncoding(max_len, d_model)`: attention (module 07) treats its input as a *set*; adding a
#    position-dependent sinusoid to every vector tells the model where each token sits.
#
# It stands on `Tensor` (01), `Variable` and `record_op` (02) and `Module` (04). The **Systems Analysis**
# measures what an embedding table costs as the vocabulary grows, how sparse its gradient is, and what
# tokenizing and position encoding cost.

# %% nbgrader={"grade": false, "grade_id": "embeddings-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.embeddings
#| export
import math

import numpy as np

from tinytorch.core.tensor import Tensor, best_time
from tinytorch.core.autograd import Variable, record_op
from tinytorch.core.layers import Module

# %% nbgrader={"grade": false, "grade_id": "embeddings-test-imports", "locked": false, "schema_version": 3, "solution": false}
# Only the tests and analyses in this file use these; they are not part of the package.
import time

from tinytorch.core.autograd import check_gradients

# %% [markdown]
# ## 1. A character tokenizer
#
# The simplest tokenizer gives every distinct character its own id. Its vocabulary is tiny (about 65 ids
# for English text), so every word is several tokens long; subword tokenizers (BPE) trade a larger table for
# shorter sequences. The rules of ours:
#
# - **Deterministic vocabulary.** `fit(text)` collects the distinct characters and **sorts** them (by code
#   point), so the same text always gives the same ids, whatever order the characters first appear in.
# - **Special tokens first.** Id 0 is `<pad>` (filler that makes sequences of a batch the same length) and id
#   1 is `<unk>`; characters start at id 2.
# - **Unknown characters** (not seen by `fit`) encode to the `<unk>` id 1. `decode` writes `<pad>` ids as
#   nothing and `<unk>` ids as the text `"<unk>"`, so `decode(encode(s)) == s` whenever every character of
#   `s` is in the vocabulary.
#
# **Vectorized encoding.** A Python loop with a dict lookup per character is slow for a book-sized text.
# Instead: turn the string into an array of Unicode code points (`text.encode("utf-32-le")` is exactly
# that, 4 bytes per character), and since the vocabulary is sorted, find each code point with one
# `np.searchsorted` over the whole array. Cost: O(n log V) in compiled code for n characters and V
# vocabulary entries.

# %% nbgrader={"grade": false, "grade_id": "char-tokenizer", "locked": false, "schema_version": 3, "solution": true}
#| export
def _code_points(text):
    """The Unicode code points of `text` as a uint32 array (one per character), without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


class CharTokenizer:
    """Character-level tokenizer with a sorted, deterministic vocabulary.

    Ids: 0 = "<pad>", 1 = "<unk>", then the distinct characters of the fitted text in code-point order.
    encode(str) -> int64 array (len(text),); unknown characters -> 1. decode(ids) -> str, "<pad>" dropped.
    """

    pad_token, unk_token = "<pad>", "<unk>"
    pad_id, unk_id = 0, 1
    special_tokens = (pad_token, unk_token)

    def __init__(self, text=None):
        self.itos = list(self.special_tokens)          # id -> token
        self.stoi = {t: i for i, t in enumerate(self.itos)}  # token -> id
        self._codes = np.zeros(0, dtype=np.uint32)     # sorted code points of the fitted characters
        self._fitted = False
        if text is not None:
            self.fit(text)

    def fit(self, text):
        """Build the vocabulary from the distinct characters of `text`; returns self."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.fit needs a str, got {type(text).__name__}")
        ### BEGIN SOLUTION
        self._codes = np.unique(_code_points(text))    # sorted, distinct
        chars = [chr(c) for c in self._codes]          # one per vocabulary entry, not per character of text
        self.itos = list(self.special_tokens) + chars
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self._table = np.array(self.itos + [""], dtype=object)
        self._table[self.pad_id] = ""                  # decode drops padding
        self._fitted = True
        return self
        ### END SOLUTION

    @property
    def vocab_size(self):
        return len(self.itos)

    def _require_fit(self):
        if not self._fitted:
            raise ValueError("this CharTokenizer has no vocabulary yet: call fit(text) first")

    def encode(self, text):
        """str of length n -> int64 array of shape (n,); characters not seen by fit -> unk_id (1)."""
        self._require_fit()
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.encode needs a str, got {type(text).__name__}")
        ### BEGIN SOLUTION
        codes = _code_points(text)
        if self._codes.size == 0:
            return np.full(codes.shape, self.unk_id, dtype=np.int64)
        slot = np.searchsorted(self._codes, codes)         # where each code point would sit in the vocab
        slot = np.minimum(slot, self._codes.size - 1)      # past-the-end -> last entry (then not equal)
        known = self._codes[slot] == codes
        return np.where(known, slot + len(self.special_tokens), self.unk_id).astype(np.int64)
        ### END SOLUTION

    def decode(self, ids):
        """Integer ids (a 1-D array, list or Tensor) -> str; pad ids are dropped, unk ids become "<unk>"."""
        self._require_fit()
        ids = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
        if ids.size and ids.dtype.kind not in "iu":
            raise TypeError(f"CharTokenizer.decode needs integer ids, got dtype {ids.dtype}")
        if ids.ndim != 1 and ids.size:
            raise ValueError(f"CharTokenizer.decode needs a 1-D sequence of ids, got shape {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids.min() if ids.min() < 0 else ids.max()
            raise ValueError(f"token id {bad} is out of range: ids must be in [0, {self.vocab_size - 1}]")
        ### BEGIN SOLUTION
        return "".join(self._table[ids.astype(np.int64)])
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-char-tokenizer", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_char_tokenizer():
    """Sorted deterministic vocab, round trip, unknown characters, padding, errors."""
    tok = CharTokenizer().fit("hello world")
    assert tok.itos == ["<pad>", "<unk>", " ", "d", "e", "h", "l", "o", "r", "w"]
    assert tok.vocab_size == 10 and tok.stoi["h"] == 5
    assert CharTokenizer("dlrow olleh").itos == tok.itos, "the vocabulary must not depend on character order"
    ids = tok.encode("hello")
    assert ids.dtype == np.int64 and ids.tolist() == [5, 4, 6, 6, 7]
    assert tok.decode(ids) == "hello" and tok.decode(Tensor(ids)) == "hello"
    assert tok.encode("hex!").tolist() == [5, 4, 1, 1], "unseen characters map to <unk>"
    assert tok.decode([5, 1, 0, 0]) == "h<unk>"
    assert tok.encode("").shape == (0,) and tok.decode(np.zeros(0, dtype=np.int64)) == ""
    uni = CharTokenizer("naïve 東京 ok")
    assert uni.decode(uni.encode("東京 naïve")) == "東京 naïve"
    big = "the quick brown fox jumps over the lazy dog " * 50
    assert CharTokenizer(big).decode(CharTokenizer(big).encode(big)) == big
    for call, kind in [(lambda: CharTokenizer().encode("a"), ValueError), (lambda: tok.fit(3), TypeError),
                       (lambda: tok.decode([0, 10]), ValueError), (lambda: tok.decode([1.5]), TypeError)]:
        try:
            call()
        except kind:
            pass
        else:
            raise AssertionError(f"expected {kind.__name__}")
    print("✅ CharTokenizer: sorted vocabulary, vectorized encode, unknowns and padding handled")

test_unit_char_tokenizer()

# %% [markdown]
# ## 2. The embedding table
#
# A one-hot vector of length V multiplied by a (V, D) matrix just selects one row. An **embedding** does the
# selection directly: `weight[ids]`, an indexing operation, with no V-sized one-hot ever built.
#
# ```
# weight:  (num_embeddings, embedding_dim)      e.g. (65, 128) for characters
# ids:     (batch, seq)   integers in [0, num_embeddings)
# output:  (batch, seq, embedding_dim)          output[b, s] = weight[ids[b, s]]
# ```
#
# **Initialisation** follows PyTorch: every entry drawn from N(0, 1) (`seed=` makes it reproducible).
#
# **Backward.** `output[b, s]` is a copy of row `ids[b, s]`, so the gradient of that row is the sum of the
# output gradients of every position holding that id. A token that appears three times gets three
# contributions. `weight_grad[ids] += grad` would be wrong: with repeated indices NumPy's fancy assignment
# keeps only the last write. `np.add.at(weight_grad, ids, grad)` accumulates every occurrence, correctly
# but slowly: it is an unbuffered loop that handles one element at a time.
#
# **A faster sum: sort, then add runs.** Profiling the character transformer of module 16 (15_profiling's
# tools) found `np.add.at` taking about 0.9 ms of a 30 ms training step, for only 2,048 ids of 64 floats.
# Sorting the ids puts all occurrences of one id next to each other; `np.add.reduceat(rows, starts)` then
# sums each run of equal ids in one vectorized call, and the sums go to their rows with one fancy
# assignment (each id appears once there, so nothing is lost):
#
# ```
# ids (flattened)  [3, 1, 3, 0, 1, 3]       order = argsort(ids, kind="stable") = [3, 1, 4, 0, 2, 5]
# sorted ids       [0, 1, 1, 3, 3, 3]       runs start at [0, 1, 3]
# d_weight[[0, 1, 3]] = add.reduceat(grad[order], [0, 1, 3])   one sum per distinct id
# ```
#
# Measured on that batch (ids (32, 64) over 49 characters, 64 features): `np.add.at` 0.90 ms, sort +
# `reduceat` 0.13 ms, the same gradient to float32 round-off. The sort costs O(n log n) in the number of
# ids and nothing in the vocabulary size, so it also suits vocabularies of 50,000 words (a one-hot matrix
# product would be as fast here but cost V·n memory there).
#
# Most rows get **no** gradient in a given batch (only the ids that occur), which is why the gradient of an
# embedding is called sparse; we measure how sparse in the Systems Analysis.
#
# **Bad ids fail loudly.** Floating-point ids (`2.0`) or ids outside `[0, num_embeddings)` are bugs in the
# data pipeline; NumPy would silently wrap a negative index around to the end of the table. We raise an
# error that names the offending value and the valid range.

# %% nbgrader={"grade": false, "grade_id": "embedding", "locked": false, "schema_version": 3, "solution": true}
#| export
def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class Embedding(Module):
    """A learned lookup table: integer ids (any shape) -> vectors.

    Shapes: ids (*S) -> output (*S, embedding_dim). Parameter: weight (num_embeddings, embedding_dim),
    float32, initialised from N(0, 1). The output is a Variable connected to `weight`.
    """

    def __init__(self, num_embeddings, embedding_dim, seed=None):
        super().__init__()
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim")
        rng = np.random.default_rng(seed)
        self.weight = Variable(rng.standard_normal((self.num_embeddings, self.embedding_dim)).astype(np.float32),
                               requires_grad=True)

    def _ids(self, indices):
        """Validate `indices` and return them as an integer ndarray."""
        ids = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
        if ids.dtype.kind not in "iu":
            example = ids.reshape(-1)[0] if ids.size else None
            raise TypeError(f"Embedding needs integer ids, got dtype {ids.dtype}"
                            + (f" (e.g. {example!r})" if example is not None else "")
                            + "; convert with .astype(np.int64) if the values are whole numbers")
        if ids.size:
            low, high = ids.min(), ids.max()
            if low < 0 or high >= self.num_embeddings:
                bad = low if low < 0 else high
                raise ValueError(f"Embedding id {bad} is out of range: ids must be in [0, {self.num_embeddings - 1}] "
                                 f"(num_embeddings={self.num_embeddings})")
        return ids

    def forward(self, indices):
        ids = self._ids(indices)
        ### BEGIN SOLUTION
        weight = self.weight
        out = weight.data[ids]                              # (*ids.shape, embedding_dim): one row per id

        def backward(grad):
            d_weight = np.zeros_like(weight.data)
            flat = ids.reshape(-1)
            if flat.size == 0:
                return (d_weight,)
            # Sum the gradient rows of equal ids: sort the ids once (a stable sort keeps each id's rows in
            # order), then add every run of equal ids with one vectorized np.add.reduceat.
            order = np.argsort(flat, kind="stable")
            sorted_ids = flat[order]
            starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])   # where each run begins
            rows = grad.reshape(-1, weight.data.shape[1])[order]
            d_weight[sorted_ids[starts]] = np.add.reduceat(rows, starts, axis=0)
            return (d_weight,)

        return record_op(out, (weight,), backward, name="embedding")
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-embedding", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_embedding():
    """Lookup values, init statistics, any index shape, repeated-index gradients, errors."""
    emb = Embedding(10, 4, seed=0)
    assert emb.weight.shape == (10, 4) and emb.weight.dtype == np.float32 and emb.weight.requires_grad
    assert emb.parameters() == [emb.weight]
    assert np.array_equal(Embedding(10, 4, seed=0).weight.data, emb.weight.data), "seed= must be reproducible"
    big = Embedding(1000, 100, seed=1).weight.data
    assert abs(big.mean()) < 0.02 and abs(big.std() - 1) < 0.02, "PyTorch's init: N(0, 1)"

    ids = np.array([[1, 2, 1], [9, 0, 1]])
    out = emb(ids)
    assert isinstance(out, Variable) and out.shape == (2, 3, 4)
    assert np.array_equal(out.data[1, 0], emb.weight.data[9])
    assert emb(Tensor(np.array(3))).shape == (4,) and emb([4, 5]).shape == (2, 4)

    # repeated ids accumulate: id 1 appears three times
    out.backward(np.ones((2, 3, 4), dtype=np.float32))
    counts = np.bincount(ids.ravel(), minlength=10)
    assert np.allclose(emb.weight.grad.data, counts[:, None] * np.ones((1, 4)))
    emb.weight.zero_grad()

    emb.weight.data = emb.weight.data.astype(np.float64)
    check_gradients(lambda w: emb(ids) * emb(ids[::-1]), emb.weight)

    for bad, kind, text in [(np.array([1.0, 2.0]), TypeError, "float"), (np.array([3, 10]), ValueError, "10"),
                            (np.array([-1, 2]), ValueError, "-1"), (np.array([True]), TypeError, "bool")]:
        try:
            emb(bad)
        except kind as err:
            assert text in str(err) and (kind is TypeError or "[0, 9]" in str(err)), str(err)
        else:
            raise AssertionError(f"Embedding({bad!r}) should raise {kind.__name__}")
    print("✅ Embedding: lookups, N(0,1) init, accumulated gradients and clear errors")

test_unit_embedding()

# %% [markdown]
# ## 3. Sinusoidal positional encoding
#
# Attention computes the same result if you shuffle its input positions (together with their outputs):
# nothing in `softmax(QK^T)V` knows about order. "Attention is all you need" adds a fixed vector to each
# position's embedding:
#
# ```
# PE[pos, 2i]   = sin(pos / 10000^(2i / d_model))
# PE[pos, 2i+1] = cos(pos / 10000^(2i / d_model))
# ```
#
# Each pair of dimensions is a sine/cosine wave with its own wavelength, from 2π (fast) to 10000·2π (slow),
# like the hands of a clock. Because `PE[pos + k]` is a rotation of `PE[pos]` by an angle that depends only
# on k, the model can learn to attend by *relative* offset. The table has no parameters: it is computed once
# for `max_len` positions, (max_len, d_model), and a sequence of length L uses its first L rows.
#
# ```
# x:        (batch, seq, d_model)     token embeddings
# PE[:seq]: (seq, d_model)            broadcast over the batch
# output:   (batch, seq, d_model)     x + PE[:seq]; gradients pass straight through to x
# ```
#
# We compute `10000^(-2i/d)` as `exp(-2i · ln(10000) / d)` for the whole row of frequencies at once, and the
# table as one outer product `positions ⊗ frequencies`. For an odd d_model the last sine has no cosine partner.

# %% nbgrader={"grade": false, "grade_id": "positional-encoding", "locked": false, "schema_version": 3, "solution": true}
#| export
def sinusoidal_table(max_len, d_model):
    """The (max_len, d_model) float32 table of sinusoidal position encodings."""
    ### BEGIN SOLUTION
    positions = np.arange(max_len, dtype=np.float64)[:, None]                        # (max_len, 1)
    frequencies = np.exp(np.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (ceil(d/2),)
    angles = positions * frequencies                                                 # (max_len, ceil(d/2))
    table = np.zeros((max_len, d_model), dtype=np.float64)
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, : d_model // 2])
    return table.astype(np.float32)
    ### END SOLUTION


class PositionalEncoding(Module):
    """Adds fixed sinusoidal position encodings to a sequence of vectors.

    Shapes: x (..., seq, d_model) with seq <= max_len -> same shape. No parameters; the table
    (max_len, d_model) is in `encoding`.
    """

    def __init__(self, max_len, d_model):
        super().__init__()
        self.max_len = _positive_int(max_len, "max_len")
        self.d_model = _positive_int(d_model, "d_model")
        self.encoding = Tensor(sinusoidal_table(self.max_len, self.d_model))

    def forward(self, x):
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x))
        if x.ndim < 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"PositionalEncoding expected input of shape (..., seq, {self.d_model}), got shape {x.shape}")
        seq = x.shape[-2]
        if seq > self.max_len:
            raise ValueError(f"PositionalEncoding: sequence length {seq} (input shape {x.shape}) exceeds "
                             f"max_len={self.max_len}; create it with a larger max_len")
        ### BEGIN SOLUTION
        return x + Tensor(self.encoding.data[:seq])   # a constant: the gradient flows to x unchanged
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-positional-encoding", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_positional_encoding():
    """The formula entry by entry, shapes, odd d_model, gradient pass-through, errors."""
    pe = PositionalEncoding(50, 6)
    table = pe.encoding.data
    assert table.shape == (50, 6) and table.dtype == np.float32 and pe.parameters() == []
    pos, i = 7, 2                                   # dimension pair i: columns 4 (sin) and 5 (cos)
    angle = pos / 10000 ** (2 * i / 6)
    assert np.isclose(table[pos, 4], np.sin(angle)) and np.isclose(table[pos, 5], np.cos(angle))
    assert np.allclose(table[0, 0::2], 0) and np.allclose(table[0, 1::2], 1)
    assert sinusoidal_table(4, 5).shape == (4, 5)

    x = np.random.default_rng(5).normal(size=(2, 10, 6))
    y = pe(Tensor(x))
    assert type(y) is Tensor and np.allclose(y.data, x + table[:10])
    xv = Variable(x)
    check_gradients(lambda a: pe(a), xv)
    for bad in [np.zeros((2, 51, 6)), np.zeros((2, 10, 5))]:
        try:
            pe(Tensor(bad))
        except ValueError as err:
            assert str(bad.shape) in str(err)
        else:
            raise AssertionError(f"input {bad.shape} should raise ValueError")
    print("✅ PositionalEncoding: the sinusoid formula, broadcast over the batch, gradients pass through")

test_unit_positional_encoding()

# %% [markdown]
# ## Systems Analysis
#
# 1. **Memory vs vocabulary.** An embedding table holds `V · D` floats; training with Adam keeps two more
#    tables of the same size (first and second moments) plus the gradient. Character vocabularies are tiny,
#    word and subword vocabularies are where embeddings become a large share of a model.
# 2. **Sparse gradients.** A batch touches only the ids it contains. We count which fraction of the rows
#    receive a nonzero gradient, and compare the dense gradient we allocate with the rows that matter.
# 3. **Encoding cost.** Vectorized tokenizing against a per-character Python loop; the position table's
#    size and the cost of adding it.

# %% nbgrader={"grade": false, "grade_id": "embeddings-analysis", "locked": false, "schema_version": 3, "solution": false}
def analyze_embedding_memory():
    """Bytes of the table (measured) and of table + gradient + Adam moments, for growing vocabularies."""
    print("vocab   | dim | weight bytes | + grad + Adam (x4) | lookup of 32x64 ids, ms")
    ids_rng = np.random.default_rng(0)
    for vocab, name in [(65, "characters"), (1_000, "small words"), (10_000, "words"), (50_257, "GPT-2 BPE")]:
        emb = Embedding(vocab, 128, seed=0)
        ids = ids_rng.integers(0, vocab, size=(32, 64))
        seconds = best_time(lambda: emb(ids), repeats=5)
        nbytes = emb.weight.data.nbytes
        print(f"{vocab:7,d} | 128 | {nbytes:12,d} | {4 * nbytes:18,d} | {seconds * 1e3:6.3f}   ({name})")
    print("The table grows linearly with the vocabulary; the lookup cost depends only on the number of ids.")


def analyze_sparse_gradient():
    """Fraction of embedding rows with a nonzero gradient after one batch, for Zipf-distributed ids."""
    rng = np.random.default_rng(0)
    emb = Embedding(10_000, 64, seed=0)
    emb([0]).backward(np.ones((1, 64), dtype=np.float32))   # warm-up, so the first row is not an outlier
    emb.weight.zero_grad()
    print("batch x seq | distinct ids | rows with gradient | dense grad bytes | touched-row bytes | backward ms")
    for batch in (1, 8, 32, 128):
        ids = np.minimum(rng.zipf(1.3, size=(batch, 64)) - 1, 9_999)   # word frequencies are roughly Zipfian
        out = emb(ids)
        grad = np.ones(out.shape, dtype=np.float32)
        seconds = best_time(lambda: out.backward(grad), repeats=1)
        touched = np.any(emb.weight.grad.data != 0, axis=1).sum()
        emb.weight.zero_grad()
        print(f"{batch:5d} x 64  | {len(np.unique(ids)):12d} | {touched / 10_000:17.2%} | "
              f"{emb.weight.data.nbytes:16,d} | {touched * 64 * 4:17,d} | {seconds * 1e3:8.2f}")
    print("Even a large batch touches a small fraction of the rows: the dense gradient is mostly zeros.")


def analyze_encoding_cost():
    """Tokenizer throughput (vectorized vs a Python loop) and the positional table's size and add cost."""
    text = ("To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer " * 2_000)
    tok = CharTokenizer(text)
    t_vec = best_time(lambda: tok.encode(text), repeats=5)
    t_loop = best_time(lambda: np.array([tok.stoi.get(c, 1) for c in text], dtype=np.int64), repeats=1)
    assert np.array_equal(tok.encode(text), np.array([tok.stoi.get(c, 1) for c in text]))
    print(f"encode {len(text):,} characters: vectorized {t_vec * 1e3:.2f} ms ({len(text) / t_vec / 1e6:.0f} M chars/s), "
          f"Python loop {t_loop * 1e3:.2f} ms ({t_loop / t_vec:.0f}x slower)")
    for max_len, d_model in [(128, 64), (512, 128), (2048, 256)]:
        start = time.perf_counter()
        pe = PositionalEncoding(max_len, d_model)
        build = time.perf_counter() - start
        x = Tensor(np.zeros((8, max_len, d_model), dtype=np.float32))
        add = best_time(lambda: pe(x), repeats=2)
        print(f"PositionalEncoding({max_len}, {d_model}): table {pe.encoding.data.nbytes:,} bytes, "
              f"built in {build * 1e3:.2f} ms; adding it to a (8, {max_len}, {d_model}) batch: {add * 1e3:.2f} ms")


analyze_embedding_memory()
analyze_sparse_gradient()
analyze_encoding_cost()
