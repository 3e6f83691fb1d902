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
# # Module 16: Capstone — a character-level transformer language model
#
# Fifteen modules built the parts; this one assembles them into the model behind today's language
# models, small enough to train on a laptop CPU in a minute: a **decoder-only transformer** that reads
# text one character at a time and learns to predict the next one.
#
# ```
# "the cat sa"  --tokenizer-->  ids (batch, seq)
#               --Embedding + PositionalEncoding-->      (batch, seq, d_model)
#               --TransformerBlock x num_layers-->        (batch, seq, d_model)   causal: no peeking ahead
#               --LayerNorm, Dense-->                      logits (batch, seq, vocab)
# position i predicts character i + 1:   "t"->"h", "th"->"e", ..., "the cat sa"->"t"
# ```
#
# What you will build, in order:
#
# 1. `TransformerBlock`: pre-norm attention and feed-forward, each wrapped in a residual connection.
# 2. `CharTransformer`: embeddings, a stack of blocks and an output head: ids in, logits out.
# 3. `LanguageModelDataset`: every window of the text as an (input, next-character target) pair, cut
#    without copying the text once per window.
# 4. `SequenceCrossEntropyLoss`: cross-entropy over every position of every sequence.
# 5. `train_language_model`: the training loop, with held-out evaluation and a tokens-per-second count.
# 6. `generate`: sampling text one character at a time, with a temperature (0 = greedy).
# 7. `cross_entropy_per_char`, `perplexity` and `unigram_entropy`: how good is the model, and compared
#    with what?
#
# It stands on everything before it: `Tensor` (01), `Variable` and `no_grad` (02), `ReLU` (03), `Module`,
# `Dense`, `Dropout` (04), `Sequential` (05), `MultiHeadAttention`, `LayerNorm`, `create_causal_mask` (07),
# `Dataset`, `DataLoader` (08), `Adam` (09), `CharTokenizer`, `Embedding`, `PositionalEncoding` (10) and
# `CrossEntropyLoss` (11). The **Systems Analysis** measures where the parameters and the memory go, how a
# training step's time grows with the sequence length (the attention L² term), tokens per second, where a
# step's time goes (with module 15's `profile_layers`, and how that profile made the lower modules
# faster), and the loss curve against the baseline that ignores context altogether. `examples/char_transformer/train.py`
# trains the model on a few kilobytes of text and checks it on text it never saw.

# %% nbgrader={"grade": false, "grade_id": "capstone-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.capstone
#| export
import math
import numbers
import time

import numpy as np

from tinytorch.core.tensor import Tensor, median_time
from tinytorch.core.autograd import no_grad
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Module, Dense, Dropout
from tinytorch.core.networks import Sequential
from tinytorch.core.attention import LayerNorm, MultiHeadAttention, create_causal_mask
from tinytorch.core.dataloader import Dataset, DataLoader
from tinytorch.core.optimizers import Adam
from tinytorch.core.embeddings import Embedding, PositionalEncoding
from tinytorch.core.training import Loss, CrossEntropyLoss

# %% nbgrader={"grade": false, "grade_id": "capstone-test-imports", "locked": false, "schema_version": 3, "solution": false}
# Only the tests and the analysis in this file use these; they are not part of the package.
import codecs
import contextlib
import io
import tracemalloc

with contextlib.redirect_stdout(io.StringIO()):
    import this  # the Zen of Python ships with Python; importing it prints it, so we import it quietly

from tinytorch.core.autograd import Variable, check_gradients
from tinytorch.core.embeddings import CharTokenizer
from tinytorch.core.profiling import profile_layers
from tinytorch.core.training import Trainer

# %% [markdown]
# ## 1. The transformer block
#
# A block refines every position's vector in two steps, each added back onto its input (a **residual**
# connection):
#
# ```
# x: (batch, seq, d_model)
# x = x + Dropout(MultiHeadAttention(LayerNorm(x), causal mask))     positions exchange information
# x = x + Dropout(FFN(LayerNorm(x)))                                 each position thinks on its own
# FFN = Dense(d_model, d_ff) -> ReLU -> Dense(d_ff, d_model)          usually d_ff = 4 * d_model
# ```
#
# **Why residuals?** The block computes a *correction* to x instead of a replacement. The gradient of
# `x + f(x)` with respect to x is `1 + f'(x)`: the identity path carries the gradient from the loss down
# to the first layer unchanged, however many blocks are stacked.
#
# **Why pre-norm?** The original transformer normalised *after* the addition (`LN(x + f(x))`); GPT-2 and
# nearly every model since normalise the branch input instead (`x + f(LN(x))`). The residual stream is then
# never rescaled, and deep stacks train without the careful learning-rate warm-up that post-norm needs.
#
# **Why causal?** A language model is trained on all positions at once: position i must predict character
# i + 1 from characters 0..i. If it could attend to position i + 1, it would simply copy the answer and
# learn nothing useful. The lower-triangular mask of module 07 makes the output at position i a function
# of inputs 0..i only; we test exactly that by perturbing the future and checking the past stays put.
#
# **Dropout** (off by default) zeroes a random part of each branch's output while training, the place
# GPT-2 puts it; in eval mode it is the identity.
#
# Parameters of one block: attention `4 (d² + d)`, two LayerNorms `2 · 2d`, FFN `d·d_ff + d_ff + d_ff·d + d`;
# for d = 64, d_ff = 256 that is 16,640 + 256 + 33,088 = 49,984. Work per token: `4d² + 2·d·d_ff`
# multiply-adds for the projections and the FFN, plus `2·L·d` for attention: the only term that grows with
# the sequence length L.

# %% nbgrader={"grade": false, "grade_id": "transformer-block", "locked": false, "schema_version": 3, "solution": true}
#| export
def _check_int(value, name, who, minimum=1):
    """value as an int; TypeError for non-integers (bools included), ValueError below `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{who} {name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{who} {name} must be at least {minimum}, got {value}")
    return int(value)


class TransformerBlock(Module):
    """Pre-norm decoder block: x + MHA(LN(x), causal mask), then x + FFN(LN(x)).

    Shapes: x (..., seq, d_model) -> (..., seq, d_model). FFN: Dense(d_model, d_ff) -> ReLU ->
    Dense(d_ff, d_model). dropout: probability on each branch output (training mode only).
    forward(x, mask=None): mask None means causal (position i sees positions 0..i); any other mask is
    passed to MultiHeadAttention as is (bool, True = allowed). A Tensor in gives a Tensor out; a Variable
    in gives a Variable connected to every parameter. seed: None, an int or an np.random.Generator.
    """

    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, seed=None):
        super().__init__()
        self.d_model = _check_int(d_model, "d_model", "TransformerBlock")
        self.d_ff = _check_int(d_ff, "d_ff", "TransformerBlock")
        rng = np.random.default_rng(seed)   # one stream for every layer of the block
        ### BEGIN SOLUTION
        self.norm1 = LayerNorm(self.d_model)
        self.attention = MultiHeadAttention(self.d_model, num_heads, seed=rng)
        self.dropout1 = Dropout(dropout, seed=rng)
        self.norm2 = LayerNorm(self.d_model)
        self.ffn = Sequential([Dense(self.d_model, self.d_ff, seed=rng), ReLU(), Dense(self.d_ff, self.d_model, seed=rng)])
        self.dropout2 = Dropout(dropout, seed=rng)
        ### END SOLUTION

    def extra_repr(self):
        return f"d_model={self.d_model}, num_heads={self.attention.num_heads}, d_ff={self.d_ff}, dropout={self.dropout1.p}"

    def forward(self, x, mask=None):
        if not isinstance(x, Tensor):
            raise TypeError(f"TransformerBlock expects a Tensor or Variable, got {type(x).__name__}")
        if x.ndim < 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"TransformerBlock expected input of shape (..., seq, {self.d_model}), got shape {x.shape}")
        if mask is None:
            mask = create_causal_mask(x.shape[-2])
        ### BEGIN SOLUTION
        x = x + self.dropout1(self.attention(self.norm1(x), mask=mask))
        return x + self.dropout2(self.ffn(self.norm2(x)))
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-transformer-block", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def _to_float64(module):
    """Gradient checks run in float64: replace every parameter's data with a float64 copy."""
    for p in module.parameters():
        p.data = p.data.astype(np.float64)


def test_unit_transformer_block():
    """Shapes, the pre-norm residual wiring, causality, dropout modes, float64 gradients, errors."""
    rng = np.random.default_rng(0)
    block = TransformerBlock(8, 2, 16, seed=0)
    assert len(block.parameters()) == 8 + 4 + 4, "attention (8), two LayerNorms (4), FFN (4)"
    assert sum(p.data.size for p in block.parameters()) == 4 * (64 + 8) + 4 * 8 + (8 * 16 + 16 + 16 * 8 + 8)
    x = rng.normal(size=(3, 5, 8)).astype(np.float32)
    y = block(Tensor(x))
    assert type(y) is Tensor and y.shape == (3, 5, 8) and y.dtype == np.float32

    # the wiring: pre-norm, residual, causal mask by default, checked with the block's own sub-layers
    mask = create_causal_mask(5)
    h = Tensor(x) + block.attention(block.norm1(Tensor(x)), mask=mask)
    expected = h + block.ffn(block.norm2(h))
    np.testing.assert_allclose(y.data, expected.data, atol=1e-6)

    # causality: changing positions 3 and 4 leaves outputs 0..2 exactly as they were
    future = x.copy()
    future[:, 3:] = rng.normal(size=(3, 2, 8))
    y2 = block(Tensor(future))
    np.testing.assert_allclose(y2.data[:, :3], y.data[:, :3], atol=1e-6)
    assert not np.allclose(y2.data[:, 3:], y.data[:, 3:])

    # dropout: random while training, the identity in eval mode (then equal to the same block without it)
    noisy = TransformerBlock(8, 2, 16, dropout=0.5, seed=0)
    assert not np.allclose(noisy(Tensor(x)).data, noisy(Tensor(x)).data)
    noisy.eval()
    np.testing.assert_allclose(noisy(Tensor(x)).data, y.data, atol=1e-6)

    # gradients of the output w.r.t. the input and all 16 parameters, against central differences
    _to_float64(block)
    xv = Variable(rng.normal(size=(2, 4, 8)))
    check_gradients(lambda a, *params: block(a), xv, *block.parameters())

    for bad, kind in [(np.ones((2, 4, 8)), TypeError), (Tensor(np.ones((2, 4, 6))), ValueError)]:
        try:
            block(bad)
        except kind as err:
            assert kind is TypeError or "(2, 4, 6)" in str(err), str(err)
        else:
            raise AssertionError(f"TransformerBlock should raise {kind.__name__}")
    print("✅ TransformerBlock: pre-norm residual wiring, causal, dropout modes, gradients")

test_unit_transformer_block()

# %% [markdown]
# ## 2. The whole model: ids in, logits out
#
# ```
# ids              (batch, seq)              integers in [0, vocab)
# token_embedding  (batch, seq, d_model)     Embedding(vocab, d_model): one learned row per character
# + position       (batch, seq, d_model)     PositionalEncoding(max_len, d_model): where each one sits
# blocks           (batch, seq, d_model)     num_layers TransformerBlocks, one causal mask shared by all
# norm             (batch, seq, d_model)     a last LayerNorm (pre-norm blocks leave the stream unnormalised)
# head             (batch, seq, vocab)       Dense(d_model, vocab): a score for every possible next character
# ```
#
# The model works for any sequence length up to `max_len`, the size of the position table: a longer input
# is an error that names both numbers (generation handles long texts by keeping only the last `max_len`
# characters as context).
#
# **Tensor or Variable out?** The input is integer ids, which carry no gradient. Like the `Embedding` it
# starts with (module 10), the model returns a `Variable` connected to every parameter, ready for
# `backward()`. For inference, wrap the call in `with no_grad():` so that no graph is recorded.
#
# Parameters: `V·d` (embedding) + `num_layers` blocks + `2d` (final norm) + `d·V + V` (head). The
# sinusoidal position table has none.

# %% nbgrader={"grade": false, "grade_id": "char-transformer", "locked": false, "schema_version": 3, "solution": true}
#| export
class CharTransformer(Module):
    """A decoder-only transformer language model over characters.

    CharTransformer(vocab_size, d_model, num_heads, num_layers, d_ff, max_len, dropout=0.0, seed=None).
    forward(ids): integer ids (..., seq) with 1 <= seq <= max_len -> logits (..., seq, vocab_size), a
    Variable connected to every parameter; logits[..., i, :] scores the character that follows position i
    and depends only on ids[..., :i + 1].
    """

    def __init__(self, vocab_size, d_model, num_heads, num_layers, d_ff, max_len, dropout=0.0, seed=None):
        super().__init__()
        self.vocab_size = _check_int(vocab_size, "vocab_size", "CharTransformer")
        self.d_model = _check_int(d_model, "d_model", "CharTransformer")
        self.num_layers = _check_int(num_layers, "num_layers", "CharTransformer")
        self.max_len = _check_int(max_len, "max_len", "CharTransformer")
        rng = np.random.default_rng(seed)
        ### BEGIN SOLUTION
        self.token_embedding = Embedding(self.vocab_size, self.d_model, seed=rng)
        self.position = PositionalEncoding(self.max_len, self.d_model)
        self.blocks = [TransformerBlock(self.d_model, num_heads, d_ff, dropout=dropout, seed=rng)
                       for _ in range(self.num_layers)]
        self.norm = LayerNorm(self.d_model)
        self.head = Dense(self.d_model, self.vocab_size, seed=rng)
        ### END SOLUTION

    def extra_repr(self):
        return (f"vocab_size={self.vocab_size}, d_model={self.d_model}, num_layers={self.num_layers}, "
                f"max_len={self.max_len}")

    def forward(self, ids):
        ids = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
        if ids.ndim < 1 or ids.shape[-1] == 0:
            raise ValueError(f"CharTransformer expects ids of shape (batch, seq) with seq >= 1, got shape {ids.shape}")
        seq = ids.shape[-1]
        if seq > self.max_len:
            raise ValueError(f"CharTransformer: sequence length {seq} (ids of shape {ids.shape}) exceeds "
                             f"max_len={self.max_len}; feed at most the last {self.max_len} ids")
        ### BEGIN SOLUTION
        mask = create_causal_mask(seq)                        # (seq, seq), broadcast over batch and heads
        x = self.position(self.token_embedding(ids))          # (..., seq, d_model)
        for block in self.blocks:
            x = block(x, mask=mask)
        return self.head(self.norm(x))                         # (..., seq, vocab_size)
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-char-transformer", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_char_transformer():
    """Logit shapes, parameter count, causality through the whole stack, gradients, max_len errors."""
    V, d, f = 11, 16, 32
    model = CharTransformer(V, d, 2, 2, f, max_len=12, seed=0)
    block_params = 4 * (d * d + d) + 4 * d + (d * f + f + f * d + d)
    assert sum(p.data.size for p in model.parameters()) == V * d + 2 * block_params + 2 * d + d * V + V
    rng = np.random.default_rng(1)
    ids = rng.integers(0, V, size=(3, 9))
    logits = model(ids)
    assert isinstance(logits, Variable) and logits.shape == (3, 9, V) and logits.dtype == np.float32
    assert model(Tensor(ids[0])).shape == (9, V), "a single unbatched sequence works too"

    # causality: logits 0..4 depend only on ids 0..4
    changed = ids.copy()
    changed[:, 5:] = (changed[:, 5:] + 1 + rng.integers(0, V - 1, size=(3, 4))) % V   # every later id differs
    later = model(changed)
    np.testing.assert_allclose(later.data[:, :5], logits.data[:, :5], atol=1e-5)
    assert not np.allclose(later.data[:, 5:], logits.data[:, 5:])

    # the same model under no_grad records nothing
    with no_grad():
        quiet = model(ids)
    assert not quiet.requires_grad and np.allclose(quiet.data, logits.data)

    # a gradient reaches every parameter
    (logits * Tensor(rng.normal(size=logits.shape).astype(np.float32))).sum().backward()
    assert all(p.grad is not None and np.any(p.grad.data != 0) for p in model.parameters())

    for bad, kind, text in [(np.zeros((2, 13), dtype=np.int64), ValueError, "max_len=12"),
                            (np.zeros((2, 0), dtype=np.int64), ValueError, "(2, 0)"),
                            (np.zeros((2, 4)), TypeError, "float64"),
                            (np.full((1, 3), V), ValueError, str(V))]:
        try:
            model(bad)
        except kind as err:
            assert text in str(err), str(err)
        else:
            raise AssertionError(f"ids {bad.shape} {bad.dtype} should raise {kind.__name__}")
    print("✅ CharTransformer: logits (batch, seq, vocab), causal end to end, gradients everywhere")

test_unit_char_transformer()

# %% [markdown]
# ## 3. Training data: windows of text
#
# The tokenizer turns the whole text into one long array of ids. A training example is a **window** of
# `seq_len + 1` consecutive ids: the first `seq_len` are the input, the last `seq_len` (shifted by one)
# the targets.
#
# ```
# text      t h e _ c a t _ s a t
# window    t h e _ c a         (seq_len = 5, starting at 0)
# input     t h e _ c
# target      h e _ c a         target[i] = the character after input[i]
# ```
#
# One window gives `seq_len` predictions at once, each with a different amount of context: that is what
# the causal mask buys. With `stride = 1` every position of the text starts a window: `N - seq_len`
# windows from N ids.
#
# **No copies up front.** Materialising every window would store the text `seq_len + 1` times (for 100 KB
# of text and seq_len 128, 100 MB of int64). Instead the dataset keeps the ids once and cuts a batch when
# asked, with one fancy-indexing call: `starts[:, None] + arange(seq_len + 1)` is a (batch, seq_len + 1)
# array of positions, and `ids[positions]` the batch. It sets `supports_batch_indexing`, so module 08's
# `DataLoader` fetches a whole shuffled batch in that single call.

# %% nbgrader={"grade": false, "grade_id": "lm-dataset", "locked": false, "schema_version": 3, "solution": true}
#| export
def _as_ids(ids, who):
    """A 1-D int64 array of token ids from an array, list or Tensor."""
    ids = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{who} needs integer token ids, got dtype {ids.dtype}; encode text with a CharTokenizer")
    if ids.ndim != 1:
        raise ValueError(f"{who} needs a 1-D array of token ids (the whole text), got shape {ids.shape}")
    return ids.astype(np.int64, copy=False)


class LanguageModelDataset(Dataset):
    """Every window of a token stream as (input, target) with target = input shifted by one.

    LanguageModelDataset(ids, seq_len, stride=1): ids 1-D int (N,), N >= seq_len + 1. Example k is
    (ids[s : s + seq_len], ids[s + 1 : s + seq_len + 1]) with s = k * stride, two Tensors of shape
    (seq_len,). An int array or slice of k gives a batch: two Tensors of shape (B, seq_len), in one call.
    """

    supports_batch_indexing = True

    def __init__(self, ids, seq_len, stride=1):
        self.ids = _as_ids(ids, "LanguageModelDataset")
        self.seq_len = _check_int(seq_len, "seq_len", "LanguageModelDataset")
        self.stride = _check_int(stride, "stride", "LanguageModelDataset")
        if len(self.ids) < self.seq_len + 1:
            raise ValueError(f"LanguageModelDataset: a window needs seq_len + 1 = {self.seq_len + 1} ids, "
                             f"but the text has only {len(self.ids)}; use a shorter seq_len or more text")
        self._offsets = np.arange(self.seq_len + 1)         # positions inside one window

    def __len__(self):
        return (len(self.ids) - self.seq_len - 1) // self.stride + 1

    def _indices(self, index):
        """index (int, slice, int array or Tensor) -> window numbers in [0, len), negatives counted from the end."""
        n = len(self)
        if isinstance(index, slice):
            return np.arange(n)[index]
        index = index.data if isinstance(index, Tensor) else index
        k = np.asarray(index)
        if k.dtype.kind not in "iu":                        # bools and floats are bugs, not window numbers
            raise TypeError(f"LanguageModelDataset indices must be integers, got {index!r}")
        if k.size and (k.min() < -n or k.max() >= n):
            bad = k.min() if k.min() < -n else k.max()
            raise IndexError(f"window {bad} is out of range for a LanguageModelDataset of {n} windows")
        return k % n

    def __getitem__(self, index):
        k = self._indices(index)
        ### BEGIN SOLUTION
        windows = self.ids[(k * self.stride)[..., None] + self._offsets]   # (..., seq_len + 1), one gather
        return Tensor(windows[..., :-1]), Tensor(windows[..., 1:])
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-lm-dataset", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_lm_dataset():
    """Window count, input/target shift, strides, batch indexing with a DataLoader, errors."""
    ids = np.arange(100, 120)                                # 20 ids: the value shows the position
    ds = LanguageModelDataset(ids, seq_len=5)
    assert len(ds) == 15
    x, y = ds[0]
    assert x.data.tolist() == [100, 101, 102, 103, 104] and y.data.tolist() == [101, 102, 103, 104, 105]
    last_x, last_y = ds[-1]
    assert last_x.data[0] == 114 and last_y.data[-1] == 119, "the last window ends at the last id"
    bx, by = ds[np.array([3, 0, 7])]
    assert bx.shape == (3, 5) and np.array_equal(by.data, bx.data + 1) and bx.data[:, 0].tolist() == [103, 100, 107]
    assert ds[2:4][0].shape == (2, 5)
    strided = LanguageModelDataset(ids, seq_len=5, stride=5)
    assert len(strided) == 3 and strided[2][0].data[0] == 110

    # module 08's DataLoader takes whole batches from it; every window is seen once per epoch
    starts = np.concatenate([xb.data[:, 0] for xb, _ in DataLoader(ds, batch_size=4, shuffle=True, seed=0)])
    assert sorted(starts.tolist()) == list(range(100, 115))

    for call, kind, text in [(lambda: LanguageModelDataset(ids[:5], 5), ValueError, "only 5"),
                             (lambda: LanguageModelDataset(ids.astype(float), 5), TypeError, "float64"),
                             (lambda: LanguageModelDataset(ids.reshape(4, 5), 2), ValueError, "(4, 5)"),
                             (lambda: ds[15], IndexError, "15"), (lambda: ds[1.5], TypeError, "1.5")]:
        try:
            call()
        except kind as err:
            assert text in str(err), str(err)
        else:
            raise AssertionError(f"expected {kind.__name__} ({text})")
    print("✅ LanguageModelDataset: shifted windows, strides, batches in one gather")

test_unit_lm_dataset()

# %% [markdown]
# ## 4. A loss over every position
#
# Module 11's `CrossEntropyLoss` takes 2-D logits (N, C) and labels (N,). A language model produces
# logits (batch, seq, vocab) and targets (batch, seq): every position of every sequence is one
# classification problem. Flattening the two leading axes turns them into exactly that:
#
# ```
# logits  (B, L, V)  --reshape-->  (B·L, V)
# targets (B, L)     --reshape-->  (B·L,)
# loss = CrossEntropyLoss(...)     the mean over all B·L predictions, in nats per character
# ```
#
# `reshape` of a Variable is recorded (module 02), so the gradient flows back into the (B, L, V) logits.
# Being a `Loss` (module 11), it also plugs into the `Trainer`.
#
# **What the number means.** A model that knows nothing and spreads its bets evenly over V characters has
# loss `ln V` (about 3.9 nats for 50 characters). One that knows only how frequent each character is
# reaches the **unigram entropy** (section 7). Everything below that comes from reading the context.

# %% nbgrader={"grade": false, "grade_id": "sequence-loss", "locked": false, "schema_version": 3, "solution": true}
#| export
class SequenceCrossEntropyLoss(Loss):
    """Cross-entropy over every position: logits (..., V) and integer targets (...) -> a scalar.

    The leading axes are flattened (B, L, V) -> (B·L, V) and passed to CrossEntropyLoss: the mean over all
    positions, as torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1)).
    """

    def __init__(self):
        self._cross_entropy = CrossEntropyLoss()

    def forward(self, logits, targets):
        if not isinstance(logits, Tensor):
            raise TypeError(f"SequenceCrossEntropyLoss expects logits as a Tensor or Variable, got {type(logits).__name__}")
        targets = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
        if logits.ndim < 2 or targets.shape != logits.shape[:-1]:
            raise ValueError(f"SequenceCrossEntropyLoss: logits of shape (..., vocab) need targets of their leading "
                             f"shape; got logits {logits.shape} and targets {targets.shape}")
        ### BEGIN SOLUTION
        vocab = logits.shape[-1]
        return self._cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-sequence-loss", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_sequence_loss():
    """Value against a per-position NumPy computation, gradients (float64), Trainer compatibility, errors."""
    rng = np.random.default_rng(2)
    z, t = rng.normal(size=(2, 3, 5)), rng.integers(0, 5, size=(2, 3))
    loss = SequenceCrossEntropyLoss()(Tensor(z), t)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(loss.data, -np.mean(np.take_along_axis(log_probs, t[..., None], axis=-1)))
    assert type(loss) is Tensor and loss.shape == ()
    check_gradients(lambda a: SequenceCrossEntropyLoss()(a, Tensor(t)), Variable(z))

    # the Trainer of module 11 trains a language model with it (a Variable of ids is fine: ints need no grad)
    model = CharTransformer(6, 8, 2, 1, 16, max_len=4, seed=0)
    data = LanguageModelDataset(np.tile(np.arange(2, 6), 10), seq_len=4)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.02), SequenceCrossEntropyLoss())
    history = trainer.fit(DataLoader(data, batch_size=8, shuffle=True, seed=0), epochs=3, verbose=False)
    assert history["loss"][-1] < history["loss"][0]

    for logits, targets in [(z, t[:, :2]), (z[0, 0], t[0, 0])]:
        try:
            SequenceCrossEntropyLoss()(Tensor(logits), targets)
        except ValueError as err:
            assert str(np.shape(targets)) in str(err), str(err)
        else:
            raise AssertionError(f"logits {np.shape(logits)} with targets {np.shape(targets)} should raise")
    print("✅ SequenceCrossEntropyLoss: every position counts, gradients flow, works with the Trainer")

test_unit_sequence_loss()

# %% [markdown]
# ## 5. The training loop
#
# The loop of module 11, specialised to language models:
#
# ```
# for each step:
#     inputs, targets = next batch of windows          (B, L) each, shuffled, every window once per epoch
#     logits = model(inputs)                          (B, L, V), records the graph
#     loss = SequenceCrossEntropyLoss(logits, targets)
#     optimizer.zero_grad(); loss.backward(); optimizer.step()
# ```
#
# It counts **steps** rather than epochs: with overlapping windows an "epoch" over a small text is an
# arbitrary unit, and step counts are what language-model papers report. Every `eval_every` steps (and
# at the end) it measures the per-character cross-entropy on held-out ids, with the model in eval mode
# and no graph.
#
# It also measures **throughput**: tokens (predicted characters) per second of training, B·L per step.
# Only the training steps are timed, not the evaluations. The clock is a parameter (`clock=`), so a test
# can pass a fake one and check the arithmetic exactly, without ever asserting on wall-clock time.

# %% nbgrader={"grade": false, "grade_id": "train-language-model", "locked": false, "schema_version": 3, "solution": true}
#| export
def train_language_model(model, train_ids, seq_len, steps, batch_size=32, lr=3e-3, optimizer=None,
                         val_ids=None, eval_every=None, log_every=0, seed=0, clock=time.perf_counter):
    """Train `model` (a CharTransformer) to predict the next id of `train_ids`; returns a history dict.

    train_ids: 1-D int ids. Batches: `batch_size` windows of `seq_len` (fewer if the text has fewer
    windows), shuffled with `seed`. optimizer: defaults to Adam(model.parameters(), lr=lr).
    val_ids: held-out ids, evaluated every `eval_every` steps (default: only at the end) and at the end.
    log_every: print a progress line every k steps (0 = silent). clock: a function returning seconds.
    History: "loss" (one float per step), "val_step" and "val_loss" (per evaluation), "tokens",
    "seconds" (training time, evaluations excluded) and "tokens_per_second".
    """
    train_ids = _as_ids(train_ids, "train_language_model")
    steps = _check_int(steps, "steps", "train_language_model")
    batch_size = _check_int(batch_size, "batch_size", "train_language_model")
    seq_len = _check_int(seq_len, "seq_len", "train_language_model")
    if seq_len > model.max_len:
        raise ValueError(f"train_language_model: seq_len={seq_len} exceeds the model's max_len={model.max_len}")
    if eval_every is not None:
        eval_every = _check_int(eval_every, "eval_every", "train_language_model")
    dataset = LanguageModelDataset(train_ids, seq_len)
    loader = DataLoader(dataset, batch_size=min(batch_size, len(dataset)), shuffle=True, drop_last=True, seed=seed)
    if optimizer is None:
        optimizer = Adam(model.parameters(), lr=lr)
    loss_fn = SequenceCrossEntropyLoss()
    history = {"loss": [], "val_step": [], "val_loss": [], "tokens": 0, "seconds": 0.0}
    ### BEGIN SOLUTION
    step = 0
    model.train()
    while step < steps:
        for inputs, targets in loader:                      # one epoch; the loop restarts until `steps`
            start = clock()
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history["seconds"] += clock() - start
            value = float(loss.data)
            if not np.isfinite(value):
                raise FloatingPointError(f"the loss became {value} at step {step + 1}; try a smaller learning "
                                         f"rate (now {getattr(optimizer, 'lr', '?')})")
            step += 1
            history["loss"].append(value)
            history["tokens"] += inputs.size
            last = step == steps
            if val_ids is not None and (last or (eval_every and step % eval_every == 0)):
                history["val_step"].append(step)
                history["val_loss"].append(cross_entropy_per_char(model, val_ids, seq_len))
                model.train()
            if log_every and (step % log_every == 0 or last):
                shown = f"step {step:>{len(str(steps))}}/{steps}  loss {value:.4f}"
                if history["val_step"] and history["val_step"][-1] == step:
                    shown += f"  held-out {history['val_loss'][-1]:.4f}"
                print(shown, flush=True)
            if last:
                break
    seconds = history["seconds"]
    history["tokens_per_second"] = history["tokens"] / seconds if seconds > 0 else float("inf")
    return history
    ### END SOLUTION

# %% [markdown]
# ## 6. Measuring a language model
#
# **Cross-entropy per character** on held-out text is the number that matters: the average of
# `-ln p(correct next character)` over every character the model predicts, in nats. **Perplexity** is its
# exponential, `exp(loss)`: "the model is as unsure as if it chose uniformly among this many characters".
# A model that predicts uniformly over V ids has perplexity exactly V.
#
# To score a long text we cut it into windows of `seq_len + 1` that overlap by one id, so every character
# after the first is predicted exactly once. A last, partial window is taken from the end of the text and
# only its new positions are counted. The model runs in eval mode under `no_grad`, in batches, and the
# log-softmax is computed in NumPy (stable: subtract each row's maximum first).
#
# **The baseline.** A model that ignores context can still learn how frequent each character is; the best
# it can do is the **unigram entropy** `H = -Σ p(c) ln p(c)` over the character frequencies p. A model only
# earns its attention layers if it gets clearly below H.

# %% nbgrader={"grade": false, "grade_id": "evaluate", "locked": false, "schema_version": 3, "solution": true}
#| export
def _eval_windows(n_ids, seq_len):
    """(starts, weights) scoring every target 1..n_ids-1 once: windows of seq_len + 1 ids, stride seq_len.

    starts: (W,) window starts; weights: (W, seq_len) with 1 where a window's prediction is counted.
    """
    targets = n_ids - 1
    starts = np.arange(0, targets - seq_len + 1, seq_len)
    weights = np.ones((len(starts), seq_len))
    covered = starts[-1] + seq_len                         # targets 1..covered are scored
    if covered < targets:                                  # a last window, flush with the end of the text
        starts = np.append(starts, targets - seq_len)
        tail = np.zeros((1, seq_len))
        tail[0, seq_len - (targets - covered):] = 1.0      # only the positions not scored yet
        weights = np.vstack([weights, tail])
    return starts, weights


def cross_entropy_per_char(model, ids, seq_len=None, batch_size=32):
    """Mean -ln p(next id) over ids[1:], in nats: the model's held-out loss (eval mode, no graph).

    ids: 1-D int, at least 2. seq_len: context window (default model.max_len; shorter texts use one window).
    """
    ids = _as_ids(ids, "cross_entropy_per_char")
    if len(ids) < 2:
        raise ValueError(f"cross_entropy_per_char needs at least 2 ids (one prediction), got {len(ids)}")
    seq_len = model.max_len if seq_len is None else _check_int(seq_len, "seq_len", "cross_entropy_per_char")
    seq_len = min(seq_len, len(ids) - 1)
    batch_size = _check_int(batch_size, "batch_size", "cross_entropy_per_char")
    starts, weights = _eval_windows(len(ids), seq_len)
    windows = ids[starts[:, None] + np.arange(seq_len + 1)]            # (W, seq_len + 1)
    ### BEGIN SOLUTION
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        with no_grad():
            for first in range(0, len(windows), batch_size):             # a loop over batches, not items
                batch = windows[first:first + batch_size]
                z = model(batch[:, :-1]).data.astype(np.float64)         # (b, seq_len, V)
                z = z - z.max(axis=-1, keepdims=True)
                log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
                picked = np.take_along_axis(log_probs, batch[:, 1:, None], axis=-1)[..., 0]   # (b, seq_len)
                total -= float((picked * weights[first:first + batch_size]).sum())
    finally:
        model.train(was_training)
    return total / (len(ids) - 1)
    ### END SOLUTION


def perplexity(model, ids, seq_len=None, batch_size=32):
    """exp(cross_entropy_per_char): the effective number of equally likely next characters."""
    return math.exp(cross_entropy_per_char(model, ids, seq_len, batch_size))


def unigram_entropy(ids):
    """Entropy in nats of the id frequencies in `ids`: the loss of the best model that ignores context."""
    ids = _as_ids(ids, "unigram_entropy")
    if len(ids) == 0:
        raise ValueError("unigram_entropy needs at least one id, got an empty array")
    ### BEGIN SOLUTION
    counts = np.bincount(ids)
    p = counts[counts > 0] / len(ids)
    return float(-(p * np.log(p)).sum())
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-evaluate", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_evaluate():
    """Every character scored once, against a direct computation; uniform model = vocab; unigram entropy."""
    rng = np.random.default_rng(3)
    model = CharTransformer(7, 8, 2, 1, 16, max_len=5, seed=0)
    ids = rng.integers(0, 7, size=23)                   # 22 targets: 5 + 5 + 5 + 5 full, then 2 in a tail
    starts, weights = _eval_windows(23, 5)
    assert weights.sum() == 22 and starts.tolist() == [0, 5, 10, 15, 17]

    # the same number computed position by position, each with its window's context
    with no_grad():
        log_probs = []
        for start, w in zip(starts, weights):
            z = model(ids[start:start + 5]).data.astype(np.float64)
            lp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
            log_probs += [lp[i, ids[start + i + 1]] for i in range(5) if w[i]]
    expected = -np.mean(log_probs)
    for batch_size in (1, 2, 32):
        assert np.isclose(cross_entropy_per_char(model, ids, batch_size=batch_size), expected, rtol=1e-6)
    assert np.isclose(perplexity(model, ids), np.exp(expected))
    assert np.isclose(cross_entropy_per_char(model, ids[:3]), -np.mean(log_probs[:2]), rtol=1e-6), "short text"
    assert model.training, "evaluation restores training mode"

    # a model whose head outputs all zeros predicts uniformly: perplexity = vocab size
    model.head.weights.data[...] = 0.0
    model.head.bias.data[...] = 0.0
    assert np.isclose(perplexity(model, ids), 7.0)

    assert np.isclose(unigram_entropy(np.array([2, 2, 3, 3])), np.log(2))
    assert unigram_entropy(np.array([4, 4, 4])) == 0.0
    p = np.array([0.5, 0.25, 0.25])
    assert np.isclose(unigram_entropy(np.array([1, 1, 5, 9])), -(p * np.log(p)).sum())
    for call in (lambda: cross_entropy_per_char(model, ids[:1]), lambda: unigram_entropy(np.zeros(0, dtype=int))):
        try:
            call()
        except ValueError:
            pass
        else:
            raise AssertionError("too few ids must raise ValueError")
    print("✅ cross_entropy_per_char, perplexity, unigram_entropy: every character scored exactly once")

test_unit_evaluate()

# %% [markdown]
# ### Training a tiny model to memorise a string
#
# The classic first check of a training loop: a model with enough capacity must drive the training loss of
# a tiny text towards zero. We use "hello world " repeated. One character of context is not enough ("l" is
# followed by "l", "o" or "d"; "o" by " " or "r"): the model has to attend to earlier characters. Only the
# first position of a window, which sees a single character, stays ambiguous, so the loss ends near, not
# at, zero. The fake clock adds exactly one second per call, so `seconds` must equal the number of steps.

# %% nbgrader={"grade": true, "grade_id": "test-train-language-model", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def _fake_clock():
    """A clock that advances exactly one second per call."""
    ticks = iter(range(10**9))
    return lambda: float(next(ticks))


_HELLO = "hello world " * 20


def _train_hello(steps=150):
    """A small model trained on `_HELLO` (also used by the generation tests); returns (model, tokenizer, history)."""
    tok = CharTokenizer(_HELLO)
    ids = tok.encode(_HELLO)
    model = CharTransformer(tok.vocab_size, 32, 2, 1, 64, max_len=12, seed=0)
    history = train_language_model(model, ids[:180], seq_len=12, steps=steps, batch_size=16, lr=0.01,
                                   val_ids=ids[180:], eval_every=50, seed=0, clock=_fake_clock())
    return model, tok, history


def test_unit_train_language_model():
    """The loop memorises a repeated string; history, held-out evaluation and throughput with a fake clock."""
    model, tok, history = _train_hello()
    losses = history["loss"]
    assert len(losses) == 150 and losses[0] > 1.5, losses[0]
    assert np.mean(losses[-10:]) < 0.15, f"the training loss should approach zero, got {np.mean(losses[-10:]):.3f}"
    assert history["val_step"] == [50, 100, 150] and history["val_loss"][-1] < 0.15, history["val_loss"]
    assert history["tokens"] == 150 * 16 * 12 and history["seconds"] == 150.0
    assert history["tokens_per_second"] == 16 * 12
    assert model.training

    try:
        train_language_model(model, tok.encode(_HELLO), seq_len=13, steps=1)
    except ValueError as err:
        assert "max_len=12" in str(err)
    else:
        raise AssertionError("seq_len > max_len must raise ValueError")
    print(f"✅ train_language_model: 'hello world' memorised, loss {losses[0]:.2f} -> {np.mean(losses[-10:]):.3f}")

test_unit_train_language_model()

# %% [markdown]
# ## 7. Generating text
#
# The model gives, for the last position of its input, a score for every possible next character. To
# write text we turn those scores into a choice, append it, and run the model again on the longer text:
#
# ```
# ids = encode(prompt)
# repeat length times:
#     context = the last max_len ids                     (1, <= max_len)
#     z = model(context)[0, -1]                          (V,) logits of the next character
#     temperature 0:  next = argmax(z)                   greedy: always the most likely character
#     temperature T:  next ~ softmax(z / T)              T < 1 sharper (safer), T > 1 flatter (wilder)
#     ids.append(next)
# ```
#
# - **The prompt** may contain characters the tokenizer never saw: they encode to `<unk>` (id 1, as
#   `CharTokenizer` documents) and the model reads them like any other id. The returned text starts with
#   the prompt exactly as given.
# - **Special ids are never produced**: `<pad>` and `<unk>` are not characters, so their logits are set to
#   -inf before choosing.
# - **Reproducible**: sampling draws from `np.random.default_rng(seed)`, so the same seed gives the same
#   text. Greedy decoding draws nothing.
#
# **Cost.** Every new character reruns the model on its whole context, so generating n characters with a
# context of L costs n full forward passes of length L. Real systems keep the keys and values of earlier
# positions (a *KV cache*) and compute only the new position; that is the next optimisation to make.

# %% nbgrader={"grade": false, "grade_id": "generate", "locked": false, "schema_version": 3, "solution": true}
#| export
def generate(model, tokenizer, prompt, length, temperature=1.0, seed=None):
    """Continue `prompt` by `length` characters sampled from `model`; returns prompt + continuation.

    temperature: 0 means greedy (argmax); T > 0 samples from softmax(logits / T). seed: None, an int or an
    np.random.Generator, for reproducible sampling. The context is the last model.max_len ids. Characters
    of the prompt unknown to the tokenizer are read as <unk>; the special ids are never generated.
    """
    if not isinstance(prompt, str) or not prompt:
        raise ValueError(f"generate needs a non-empty prompt string, got {prompt!r}")
    length = _check_int(length, "length", "generate", minimum=0)
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature >= 0:
        raise ValueError(f"generate temperature must be a number >= 0 (0 = greedy), got {temperature!r}")
    if tokenizer.vocab_size != model.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} ids but the model's vocab_size is "
                         f"{model.vocab_size}: use the tokenizer the model was trained with")
    rng = np.random.default_rng(seed)
    prompt_ids = tokenizer.encode(prompt)
    ids = np.concatenate([prompt_ids, np.zeros(length, dtype=np.int64)])
    banned = [i for i in (getattr(tokenizer, "pad_id", None), getattr(tokenizer, "unk_id", None)) if i is not None]
    ### BEGIN SOLUTION
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for n in range(len(prompt_ids), len(ids)):        # one new character per pass (autoregressive)
                context = ids[max(0, n - model.max_len):n]
                logits = model(context[None, :]).data[0, -1].astype(np.float64)    # (V,)
                logits[banned] = -np.inf
                if temperature == 0:
                    ids[n] = int(np.argmax(logits))
                else:
                    z = logits / temperature
                    p = np.exp(z - z.max())
                    ids[n] = rng.choice(len(p), p=p / p.sum())
    finally:
        model.train(was_training)
    return prompt + tokenizer.decode(ids[len(prompt_ids):])
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-generate", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_generate():
    """Greedy continues the memorised string; seeds reproduce samples; unknown prompt characters; errors."""
    model, tok, _ = _train_hello()
    assert generate(model, tok, "hello w", 16, temperature=0) == "hello world hello world"
    assert generate(model, tok, "hel", 30, temperature=0) == _HELLO[:33]
    assert model.training, "generate restores training mode"

    a = generate(model, tok, "wor", 40, temperature=1.5, seed=7)
    assert a == generate(model, tok, "wor", 40, temperature=1.5, seed=7), "same seed, same text"
    assert len(a) == 43 and a.startswith("wor") and "<unk>" not in a and "<pad>" not in a
    assert set(a) <= set(_HELLO)
    samples = {generate(model, tok, "wor", 40, temperature=1.5, seed=s) for s in range(4)}
    assert len(samples) > 1, "different seeds should give different samples at a high temperature"

    # an unknown character in the prompt is read as <unk> and kept in the returned text
    odd = generate(model, tok, "hello Wor", 5, temperature=0)
    assert odd.startswith("hello Wor") and len(odd) == 14 and set(odd[9:]) <= set(_HELLO)
    assert generate(model, tok, "hello", 0) == "hello"
    long_prompt = _HELLO[:40]                                 # longer than max_len = 12: the last 12 are used
    assert generate(model, tok, long_prompt, 4, temperature=0) == _HELLO[:44]

    for kwargs in ({"prompt": ""}, {"length": -1}, {"temperature": -0.5}):
        args = {"prompt": "he", "length": 3, "temperature": 1.0, **kwargs}
        try:
            generate(model, tok, args["prompt"], args["length"], temperature=args["temperature"])
        except (ValueError, TypeError):
            pass
        else:
            raise AssertionError(f"generate with {kwargs} should raise")
    try:
        generate(model, CharTokenizer("abc"), "ab", 3)
    except ValueError as err:
        assert str(model.vocab_size) in str(err)
    else:
        raise AssertionError("a tokenizer of another vocabulary size must be rejected")
    print(f"✅ generate: greedy and seeded sampling, e.g. {a!r}")

test_unit_generate()

# %% [markdown]
# ## Systems Analysis
#
# 1. **Where the parameters and the memory go**, component by component, for the model of the example
#    (d_model 64, 4 heads, 2 layers, d_ff 256, max_len 64): parameters, and what training costs on top of
#    them (gradients and Adam's two moments: 4 copies in all), then the activations one training step keeps
#    for its backward pass, against the attention weights' share of them.
# 2. **Training step time against the sequence length** at a fixed number of tokens per batch (B·L = 1024):
#    the projections and the FFN cost the same per token at any L; attention costs more per token as L
#    grows (the L² term). Tokens per second, and generation speed.
# 3. **Where a training step's time goes**: module 15's `profile_layers` on the example's model, layer by
#    layer, and on the pieces of one block.
# 4. **The loss curve against the unigram baseline**: a small model trained for a moment on the Zen of
#    Python (which ships with Python as the `this` module).

# %% nbgrader={"grade": false, "grade_id": "capstone-analysis", "locked": false, "schema_version": 3, "solution": false}
def _training_step(model, batch, seq_len, optimizer=None, seed=0):
    """A closure running one full training step (forward, loss, backward, Adam) on random ids."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, model.vocab_size, size=(batch, seq_len + 1))
    optimizer = optimizer or Adam(model.parameters(), lr=1e-3)
    loss_fn = SequenceCrossEntropyLoss()

    def step():
        loss = loss_fn(model(ids[:, :-1]), ids[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def analyze_parameter_memory(vocab=50, d=64, heads=4, layers=2, d_ff=256, max_len=64):
    """Parameters by component, and x4 for training with Adam (parameters, gradients, two moments)."""
    model = CharTransformer(vocab, d, heads, layers, d_ff, max_len, seed=0)
    parts = [("token embedding", model.token_embedding)]
    for i, block in enumerate(model.blocks):
        parts += [(f"block {i} attention", block.attention), (f"block {i} layer norms", [block.norm1, block.norm2]),
                  (f"block {i} feed-forward", block.ffn)]
    parts += [("final layer norm", model.norm), ("output head", model.head)]
    total = sum(p.data.size for p in model.parameters())
    print(f"CharTransformer(vocab={vocab}, d_model={d}, heads={heads}, layers={layers}, d_ff={d_ff}, max_len={max_len})")
    print("component              parameters   share   float32 KiB   + grad + Adam (x4) KiB")
    for name, part in parts:
        modules = part if isinstance(part, list) else [part]
        count = sum(p.data.size for m in modules for p in m.parameters())
        print(f"{name:22s} {count:10,d}   {count / total:5.1%}   {count * 4 / 1024:11.1f}   {count * 16 / 1024:22.1f}")
    print(f"{'total':22s} {total:10,d}   100.0%   {total * 4 / 1024:11.1f}   {total * 16 / 1024:22.1f}")
    print(f"(the sinusoidal position table, {max_len} x {d} float32 = {max_len * d * 4 / 1024:.0f} KiB, is not a parameter)")



def analyze_activation_memory(vocab=50, d=64, heads=4, layers=2, d_ff=256, seq_len=64, batch=32):
    """Bytes the recorded graph keeps for backward, component by component (tracemalloc), and the step peak."""
    model = CharTransformer(vocab, d, heads, layers, d_ff, seq_len, seed=0)
    rng = np.random.default_rng(0)
    ids = rng.integers(2, vocab, size=(batch, seq_len + 1))
    mask = create_causal_mask(seq_len)
    rows = []
    tracemalloc.start()

    def record(name):   # memory still allocated now = what the graph holds on to for the backward pass
        rows.append((name, tracemalloc.get_traced_memory()[0]))

    record("start")
    x = model.position(model.token_embedding(ids[:, :-1]))           # the same steps as CharTransformer.forward
    record("embedding + positions")
    for i, block in enumerate(model.blocks):
        x = x + block.attention(block.norm1(x), mask=mask)
        record(f"block {i} norm + attention")
        x = x + block.ffn(block.norm2(x))
        record(f"block {i} norm + feed-forward")
    loss = SequenceCrossEntropyLoss()(model.head(model.norm(x)), ids[:, 1:])
    record("final norm + head + loss")
    loss.backward()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    kept = rows[-1][1] - rows[0][1]
    print(f"activations kept for backward, batch {batch} x seq {seq_len} (float32):")
    print("component                      KiB kept   share")
    for (name, now), (_, before) in zip(rows[1:], rows[:-1]):
        print(f"{name:28s} {(now - before) / 1024:10,.0f}   {(now - before) / kept:5.1%}")
    print(f"{'total':28s} {kept / 1024:10,.0f}   ({kept / (sum(p.data.size for p in model.parameters()) * 4):.0f}x the "
          f"parameters' bytes)")
    attention_bytes = batch * heads * seq_len * seq_len * 4
    print(f"  of which attention weights: {layers} x ({batch}, {heads}, {seq_len}, {seq_len}) float32 = "
          f"{layers * attention_bytes / 2**10:,.0f} KiB; one (batch, seq, d_model) array = {batch * seq_len * d * 4 / 2**10:,.0f} KiB")
    print(f"peak during forward + backward: {(peak - rows[0][1]) / 2**20:.1f} MiB")


def analyze_step_time_vs_seq_len(tokens_per_batch=1024, vocab=50, d=64, heads=4, layers=2, d_ff=256):
    """Training step time and tokens/s at a fixed B*L as L grows; the attention share grows with L."""
    print(f"fixed {tokens_per_batch} tokens per batch, d_model={d}, {layers} layers, {heads} heads")
    print("seq_len  batch   step ms   tokens/s   attn weights MiB   attn MACs share")
    model = CharTransformer(vocab, d, heads, layers, d_ff, max_len=512, seed=0)
    optimizer = Adam(model.parameters(), lr=1e-3)
    for seq_len in (16, 64, 256, 512):
        batch = tokens_per_batch // seq_len
        seconds = median_time(_training_step(model, batch, seq_len, optimizer), repeats=2, warmup=1)
        weights_mib = layers * batch * heads * seq_len * seq_len * 4 / 2**20
        dense_macs = 4 * d * d + 2 * d * d_ff                       # per token per layer
        attn_macs = 2 * seq_len * d                                 # scores + weighted sum (full L x L)
        print(f"{seq_len:7d}  {batch:5d}  {seconds * 1e3:8.1f}  {tokens_per_batch / seconds:9,.0f}   "
              f"{weights_mib:16.2f}   {attn_macs / (attn_macs + dense_macs):15.0%}")

    small = CharTransformer(vocab, d, heads, layers, d_ff, max_len=64, seed=0)
    tok = CharTokenizer("".join(chr(c) for c in range(97, 97 + vocab - 2)))
    start = time.perf_counter()
    generate(small, tok, "a" * 64, 20, temperature=1.0, seed=0)
    seconds = time.perf_counter() - start
    print(f"generation with a full 64-character context: {20 / seconds:,.0f} characters/s "
          f"({seconds / 20 * 1e3:.1f} ms each: one forward pass over 64 positions per new character)")


def analyze_step_profile(vocab=50, d=64, heads=4, layers=2, d_ff=256, seq_len=64, batch=32, dropout=0.2):
    """Where the example's training step spends its time: module 15's profile_layers, on the model and in a block."""
    model = CharTransformer(vocab, d, heads, layers, d_ff, seq_len, dropout=dropout, seed=0)
    rng = np.random.default_rng(0)
    ids = rng.integers(2, vocab, size=(batch, seq_len + 1))
    print(f"the example's model at batch {batch} x {seq_len}, each layer timed on its own (forward, and backward "
          f"from its output):")
    whole = Sequential([model.token_embedding, model.position, *model.blocks, model.norm, model.head])
    profile_layers(whole, Variable(ids[:, :-1], requires_grad=False), repeats=3)
    block = model.blocks[0]
    print("one block's pieces in the order they run (the attention without its causal mask, the residual adds "
          "left out):")
    x = Variable(rng.standard_normal((batch, seq_len, d)).astype(np.float32), requires_grad=False)
    profile_layers(Sequential([block.norm1, block.attention, block.dropout1, block.norm2, *block.ffn, block.dropout2]),
                   x, repeats=3)


def analyze_loss_curve(steps=120):
    """Training loss on the Zen of Python against its unigram entropy and the uniform ln(V)."""
    text = codecs.decode(this.s, "rot13")               # the `this` module stores the Zen in rot13
    tok = CharTokenizer(text)
    ids = tok.encode(text)
    baseline = unigram_entropy(ids)
    model = CharTransformer(tok.vocab_size, 32, 4, 1, 128, max_len=32, seed=0)
    history = train_language_model(model, ids, seq_len=32, steps=steps, batch_size=16, lr=5e-3, seed=0)
    losses = history["loss"]
    print(f"The Zen of Python: {len(text)} characters, {tok.vocab_size} ids; uniform ln V = {np.log(tok.vocab_size):.3f}, "
          f"unigram entropy = {baseline:.3f} nats")
    print("  step   train loss (mean of 10)   vs unigram")
    for end in range(10, steps + 1, 20 if steps > 40 else 10):
        mean = float(np.mean(losses[end - 10:end]))
        print(f"  {end:4d}   {mean:23.3f}   {mean / baseline:9.2f}x")
    print(f"  {history['tokens_per_second']:,.0f} tokens/s while training "
          f"({history['seconds'] / steps * 1e3:.1f} ms per step of 16 x 32 tokens)")
    print(f"  sample: {generate(model, tok, 'Beautiful is', 60, temperature=0.8, seed=0)!r}")


analyze_parameter_memory()
analyze_activation_memory()
analyze_step_time_vs_seq_len()
analyze_step_profile()
analyze_loss_curve()

# %% [markdown]
# ### What the numbers say
#
# (Numbers from one run on a 2-core machine with one BLAS thread; yours will differ, the proportions less so.)
#
# - **Parameters.** The example's model has 106,546 parameters, 416 KiB in float32. The two blocks hold 94%
#   of them, and each block's feed-forward has twice the parameters of its attention (2·d·4d = 33k against
#   4·d² = 17k). A character vocabulary makes the embedding and the head tiny (3% each); with a 50,000-token
#   subword vocabulary they would dominate instead. Training with Adam holds four copies of every parameter:
#   1.6 MiB.
# - **Activations dominate memory.** One training step at batch 32 x 64 characters keeps about 28 MiB for
#   the backward pass, some 70 times the parameters' bytes and 17 times parameters + gradients + Adam. Each
#   half-block keeps 6-7 MiB: a dozen (batch, seq, d_model) arrays of 0.5 MiB (normalised inputs, Q, K, V,
#   merged heads, outputs) plus, for attention, the (32, 4, 64, 64) weights (2 MiB per layer), and for the
#   feed-forward the 4x wider hidden arrays (2 MiB each). The attention weights are only 14% here, but they
#   are the one term quadratic in the sequence length. The peak, with the gradients of the backward pass
#   added, is about 33 MiB.
# - **The L² term.** At a fixed 1,024 tokens per batch, the projections and the feed-forward cost the same
#   per token at any length, and the step time stays near 14-17 ms (60-75k tokens/s) from L = 16 to 64.
#   Attention's work per token grows with L: at L = 256 the step takes about 1.5x as long and at 512 about
#   2x (30k tokens/s), while the attention weights grow from 0.5 to 16 MiB at the same token count. This is
#   why long-context models need memory-efficient attention.
# - **Generation** runs at about 1,300-1,500 characters/s with a 64-character context: each character
#   reruns the model over all 64 positions. A KV cache would do one position's work instead.
# - **Where a step's time goes.** The two blocks take 96% of it. Inside a block, multi-head attention is
#   about half (its four 64 x 64 projections about 2 ms of its 6, the attention core and the reshapes
#   between heads the rest) and the feed-forward's two Dense layers about 37%, at 95 GFLOP/s: as fast as
#   BLAS multiplies on one core here.
#   LayerNorm, ReLU and Dropout take 2-4% each. Timed one by one, the layers add up to about 27 ms; the
#   whole step (with the loss, the engine's bookkeeping and Adam) takes about 28 ms of CPU time.
# - **How this step got faster.** The same profile, with a per-operation breakdown of the full step, is
#   how the lower modules were tuned. CPU time per step of the example's training step (batch 32 x 64),
#   before and after:
#
#   | the profile showed | module | what changed | ms per step |
#   |---|---|---|---|
#   | attention: ten 2 MiB temporaries per layer, sums along the short last axis, two recorded nodes | 07 | in-place softmax, row sums as one BLAS call, one node from the output to Q, K, V | 8 → 6 |
#   | LayerNorm: NumPy's row-by-row means, eight temporaries | 07 | means as a matrix-vector product, `einsum`, in place | 3.6 → 2.5 |
#   | the embedding's backward: `np.add.at`, one element at a time | 10 | sort the ids, `np.add.reduceat` | 0.9 → 0.3 |
#   | Dense: a second output-sized array for `+ bias`, 9 MiB per step | 04 | `out += bias` | 29.7 → 27.8 (whole step) |
#   | **the whole step** | | | **32.3 → 27.8** |
#
#   Two ideas measured no gain and were left out: an Adam that reuses one scratch array per parameter
#   (bit-for-bit the same updates, 0.32 ms per step either way: the 37 per-parameter Python calls cost
#   more than the arithmetic on 106k numbers), and flattening Dense's leading axes into one batch before
#   the product (no measurable difference: NumPy's matmul is as fast on (32, 64, 64) as on (2048, 64)).
#   About half of what remains is the matrix products of the Dense layers, which PyTorch computes no
#   faster: `benchmarks/framework.py` times this same step beside the same model in PyTorch (one
#   thread), where TinyTorch now takes about 0.9-1.0x PyTorch's time.
# - **The loss curve** starts near ln V (uniform guessing), crosses the unigram entropy (the best a model
#   ignoring context can do) within about 20 steps and reaches half of it after about 110: below the
#   baseline, the model is reading the context. On 856 characters most of that is memorisation; the
#   example checks the real test, text the model never saw (held-out loss 0.58x the unigram entropy).
#
# ## Summary
#
# You assembled every module into a working language model: a tokenizer, embeddings and positions, a stack
# of causal pre-norm transformer blocks, a sequence loss, a training loop with held-out evaluation and
# throughput, text generation with temperature, and the numbers that judge it (cross-entropy per character,
# perplexity, the unigram baseline). `examples/char_transformer/train.py` trains it on a few kilobytes of
# text and checks that held-out text is predicted far better than by character frequencies alone.
