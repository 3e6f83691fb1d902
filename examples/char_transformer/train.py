"""A character-level transformer language model, trained end to end on a few kilobytes of text.

Data: corpus.txt beside this script (about 8 KB of plain English written for TinyTorch: it describes the
model itself). The last 10% is held out and never trained on.

Model (about 107k parameters): CharTransformer from module 16: Embedding + sinusoidal positions, two
pre-norm causal transformer blocks (4 heads, d_model 64, d_ff 256, dropout 0.2), LayerNorm, a Dense head
over the 49-character vocabulary. Trained with Adam on shuffled 64-character windows.

Success: the held-out cross-entropy per character must end at most 0.75x the unigram entropy of the
training text (the loss of the best model that ignores context). It reaches about 0.58x; the script
exits non-zero with a message if it does not reach the target. Then it writes a sample from a prompt.

The text is small, so the model starts to memorise it after a few hundred steps (training loss keeps
falling, held-out loss turns up); dropout and a 500-step budget stop before that.

Run: python examples/char_transformer/train.py   (about 20 seconds on one core)
"""

import os
import sys
import time
from pathlib import Path

# Small matrices (64 x 64): BLAS threads only add synchronisation; one thread is also reproducible bit for bit.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere in a checkout

from tinytorch.core.capstone import (
    CharTransformer,
    cross_entropy_per_char,
    generate,
    train_language_model,
    unigram_entropy,
)
from tinytorch.core.embeddings import CharTokenizer
from tinytorch.core.optimizers import Adam

CORPUS = Path(__file__).resolve().parent / "corpus.txt"
HELD_OUT = 0.10
D_MODEL, HEADS, LAYERS, D_FF, SEQ_LEN, DROPOUT = 64, 4, 2, 256, 64, 0.2
BATCH, STEPS, LR, EVAL_EVERY = 32, 500, 3e-3, 100
TARGET_RATIO = 0.75          # held-out nats per character <= 0.75 x unigram entropy
PROMPT = "The model"
# TINYTORCH_SEED sets the initial weights, dropout, windows (tests/seed_sweep.py --examples varies it)
SEED = int(os.environ.get("TINYTORCH_SEED", "0"))


def main():
    start = time.perf_counter()
    text = CORPUS.read_text(encoding="utf-8")
    tokenizer = CharTokenizer(text)
    ids = tokenizer.encode(text)
    split = int(len(ids) * (1 - HELD_OUT))
    train_ids, held_out_ids = ids[:split], ids[split:]
    baseline = unigram_entropy(train_ids)
    target = TARGET_RATIO * baseline
    print(f"corpus: {len(text):,} characters, vocabulary {tokenizer.vocab_size} ids "
          f"({tokenizer.vocab_size - 2} characters + <pad>, <unk>); {len(train_ids):,} train / "
          f"{len(held_out_ids):,} held out")
    print(f"baselines: uniform ln V = {np.log(tokenizer.vocab_size):.3f} nats, unigram entropy = {baseline:.3f} nats; "
          f"target: held-out <= {target:.3f} nats ({TARGET_RATIO}x unigram)")

    model = CharTransformer(tokenizer.vocab_size, D_MODEL, HEADS, LAYERS, D_FF, max_len=SEQ_LEN,
                            dropout=DROPOUT, seed=SEED)
    params = model.parameters()
    print(f"model: {sum(p.data.size for p in params):,} parameters; held-out loss before training "
          f"{cross_entropy_per_char(model, held_out_ids):.3f} nats")
    history = train_language_model(model, train_ids, SEQ_LEN, STEPS, batch_size=BATCH,
                                   optimizer=Adam(params, lr=LR), val_ids=held_out_ids,
                                   eval_every=EVAL_EVERY, log_every=50, seed=SEED)

    final = history["val_loss"][-1]
    print(f"held-out cross-entropy {final:.3f} nats/char = {final / baseline:.2f}x the unigram entropy "
          f"(perplexity {np.exp(final):.1f} against {np.exp(baseline):.1f}); train loss (last 50 steps) "
          f"{np.mean(history['loss'][-50:]):.3f}")
    print(f"{history['tokens']:,} tokens in {history['seconds']:.1f} s of training: "
          f"{history['tokens_per_second']:,.0f} tokens/s")
    print(f"sample (temperature 0.8, seed 0): {generate(model, tokenizer, PROMPT, 240, temperature=0.8, seed=0)!r}")
    print(f"greedy: {generate(model, tokenizer, PROMPT, 120, temperature=0)!r}")
    print(f"total {time.perf_counter() - start:.1f} s")
    if not final <= target:
        print(f"FAILED: held-out cross-entropy {final:.3f} nats is above the target {target:.3f} "
              f"({TARGET_RATIO}x the unigram entropy {baseline:.3f})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
