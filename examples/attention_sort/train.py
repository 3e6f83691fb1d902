"""A small attention model learns to sort digit sequences.

Task: a sequence of 6 to 8 digits (0-9), padded to length 8, goes in; the same digits in ascending order
come out, one prediction per position (an encoder, no autoregression):

    input   3 9 1 4 1 7 _ _        (_ = padding, hidden from attention by a mask)
    target  1 1 3 4 7 9 _ _

Output position i must find the i-th smallest digit, which depends on *every* input digit: exactly
what attention provides (each position averages over all others) and what a per-position MLP cannot.

Model (about 70k parameters): Embedding + PositionalEncoding, two pre-norm transformer blocks
(LayerNorm -> MultiHeadAttention -> residual, LayerNorm -> Dense-ReLU-Dense -> residual), LayerNorm,
Dense to 10 logits per position. Trained with Adam and cross-entropy over the real positions on a fixed
training set; evaluated on held-out sequences that never occur in training. Exits non-zero if per-token accuracy stays below 95%.

Run: python examples/attention_sort/train.py   (about a minute on one core)
"""

import os
import sys
import time
from pathlib import Path

# The matrices here are tiny (64 x 64): BLAS threads only add synchronisation, and on a busy machine they
# make training several times slower. One thread also makes the run reproducible bit for bit.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere in a checkout

from tinytorch.core.activations import ReLU
from tinytorch.core.attention import LayerNorm, MultiHeadAttention
from tinytorch.core.autograd import no_grad
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.embeddings import Embedding, PositionalEncoding
from tinytorch.core.layers import Dense, Module
from tinytorch.core.optimizers import Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import CrossEntropyLoss

MAX_LEN, MIN_LEN, DIGITS = 8, 6, 10
PAD = DIGITS                      # token id 10 pads short sequences
D_MODEL, HEADS, LAYERS, FFN = 64, 4, 2, 128
TRAIN_SIZE, TEST_SIZE, BATCH, EPOCHS, LR = 20_000, 2_000, 64, 6, 3e-3
TARGET = 0.95
# TINYTORCH_SEED sets the data, initial weights, shuffling (tests/seed_sweep.py --examples varies it)
SEED = int(os.environ.get("TINYTORCH_SEED", "0"))


# ---- data ---------------------------------------------------------------------------------------

def make_sequences(n, rng):
    """n random digit sequences of length MIN_LEN..MAX_LEN, padded: (inputs, targets, valid), each (n, MAX_LEN)."""
    digits = rng.integers(0, DIGITS, size=(n, MAX_LEN))
    lengths = rng.integers(MIN_LEN, MAX_LEN + 1, size=n)
    valid = np.arange(MAX_LEN)[None, :] < lengths[:, None]
    inputs = np.where(valid, digits, PAD)
    targets = np.sort(inputs, axis=1)           # PAD (10) sorts after every digit, so pads stay at the end
    return inputs.astype(np.int64), targets.astype(np.int64), valid


def held_out_sequences(n, train_inputs, rng):
    """n test sequences, none of which occurs in the training set."""
    seen = {row.tobytes() for row in train_inputs}
    inputs, targets, valid = make_sequences(2 * n, rng)
    fresh = np.array([row.tobytes() not in seen for row in inputs])
    keep = np.flatnonzero(fresh)[:n]
    return inputs[keep], targets[keep], valid[keep]


# ---- model --------------------------------------------------------------------------------------

class Block(Module):
    """Pre-norm transformer encoder block: x + MHA(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, rng):
        super().__init__()
        self.norm1 = LayerNorm(D_MODEL)
        self.attention = MultiHeadAttention(D_MODEL, HEADS, seed=rng)
        self.norm2 = LayerNorm(D_MODEL)
        self.ffn_in = Dense(D_MODEL, FFN, seed=rng)
        self.relu = ReLU()
        self.ffn_out = Dense(FFN, D_MODEL, seed=rng)

    def forward(self, x, mask):
        x = x + self.attention(self.norm1(x), mask=mask)
        return x + self.ffn_out(self.relu(self.ffn_in(self.norm2(x))))


class Sorter(Module):
    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.embed = Embedding(DIGITS + 1, D_MODEL, seed=rng)
        self.position = PositionalEncoding(MAX_LEN, D_MODEL)
        self.blocks = [Block(rng) for _ in range(LAYERS)]
        self.norm = LayerNorm(D_MODEL)
        self.head = Dense(D_MODEL, DIGITS, seed=rng)

    def forward(self, ids):
        """ids (B, L) int -> logits (B, L, 10). Padding keys are masked out of every attention."""
        ids = ids.data if isinstance(ids, Tensor) else ids
        key_is_real = (ids != PAD)[:, None, :]          # (B, 1, Lk): broadcast over queries (and heads)
        x = self.position(self.embed(ids))              # (B, L, D_MODEL)
        for block in self.blocks:
            x = block(x, key_is_real)
        return self.head(self.norm(x))


# ---- loss ---------------------------------------------------------------------------------------

LOSS = CrossEntropyLoss()


def masked_loss(logits, targets, valid, loss_fn=LOSS):
    """Mean cross-entropy over the real positions: logits (B, L, 10) -> the (N_real, 10) rows of real tokens."""
    return loss_fn(logits[valid], targets[valid])     # boolean indexing is differentiable (scatter back)


def accuracy(model, inputs, targets, valid):
    """Per-token accuracy over the real (non-pad) positions, and the fraction of fully sorted sequences."""
    with no_grad():
        predictions = model(inputs).data.argmax(axis=-1)
    correct = (predictions == targets) | ~valid          # pad positions do not count against a sequence
    token_accuracy = ((predictions == targets) & valid).sum() / valid.sum()
    return token_accuracy, correct.all(axis=1).mean()


def main():
    start = time.perf_counter()
    rng = np.random.default_rng(SEED)
    train = make_sequences(TRAIN_SIZE, rng)
    test = held_out_sequences(TEST_SIZE, train[0], np.random.default_rng(SEED + 1))
    loader = DataLoader(TensorDataset(*train), batch_size=BATCH, shuffle=True, seed=SEED)

    model = Sorter(seed=SEED)
    params = model.parameters()
    optimizer = Adam(params, lr=LR)
    print(f"sorting {MIN_LEN}-{MAX_LEN} digits: {sum(p.data.size for p in params):,} parameters, "
          f"{TRAIN_SIZE:,} training / {len(test[0]):,} held-out sequences")
    short = int(np.argmin(train[2].sum(axis=1)))          # show a padded one
    print(f"example (pad = {PAD}): {train[0][short].tolist()} -> {train[1][short].tolist()}")

    step = 0
    for epoch in range(1, EPOCHS + 1):
        losses = []
        for ids, targets, valid in loader:
            loss = masked_loss(model(ids), targets.data, valid.data)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
        token_acc, seq_acc = accuracy(model, *test)
        print(f"epoch {epoch}: loss {np.mean(losses):.4f}  held-out token accuracy {token_acc:.2%}  "
              f"fully sorted {seq_acc:.2%}  ({time.perf_counter() - start:.0f} s)")
        if token_acc >= 0.99:
            break

    token_acc, seq_acc = accuracy(model, *test)
    with no_grad():
        predictions = model(test[0][:3]).data.argmax(-1)
    for inputs, prediction, target, valid in zip(test[0][:3], predictions, test[1][:3], test[2][:3]):
        print(f"held-out: {inputs[valid].tolist()} -> {prediction[valid].tolist()} (target {target[valid].tolist()})")
    print(f"final held-out per-token accuracy {token_acc:.2%} (target {TARGET:.0%}), {step} steps, "
          f"{time.perf_counter() - start:.1f} s")
    if token_acc < TARGET:
        print(f"FAILED: accuracy {token_acc:.2%} is below {TARGET:.0%}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
