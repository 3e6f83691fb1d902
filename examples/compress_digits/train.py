"""Compress the digits classifier: train it, prune 80% of its weights, fine-tune, quantize to int8.

    python examples/compress_digits/train.py

The 64-128-64-10 MLP of examples/digits_mlp is trained the same way (scikit-learn's 8x8 digits, nothing is
downloaded; Adam, StepLR, 30 epochs). Then:

1. magnitude pruning with one global threshold removes 80% of the weights; a short fine-tune through
   MaskedOptimizer (the pruned weights stay exactly zero) recovers the accuracy;
2. the pruned model is quantized to int8 with one scale per weight matrix (and, for comparison, one
   scale per output channel).

Targets (the script exits with status 1 and says which one it missed): float test accuracy >= 95%; the
pruned and fine-tuned model within 2 points of it; the int8 model within 1 point of the model it
quantized; the int8 weights (values and scales) at least 3.9x smaller than the float32 weights.
"""

import copy
import os
import sys
import time

# Matrices this small gain nothing from BLAS threads (see examples/digits_mlp): one thread unless chosen.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402  (after the thread settings, which NumPy reads when it loads)

from tinytorch.core.autograd import no_grad  # noqa: E402
from tinytorch.core.compression import (  # noqa: E402
    MaskedOptimizer,
    magnitude_prune,
    model_size_bytes,
    prunable_parameters,
    quantize_model,
    sparsity,
)
from tinytorch.core.dataloader import DataLoader, TensorDataset  # noqa: E402
from tinytorch.core.networks import create_mlp  # noqa: E402
from tinytorch.core.optimizers import Adam, StepLR  # noqa: E402
from tinytorch.core.tensor import Tensor  # noqa: E402
from tinytorch.core.training import Accuracy, CrossEntropyLoss, Trainer  # noqa: E402

FLOAT_TARGET = 0.95
PRUNED_MAX_DROP = 0.02
INT8_MAX_DROP = 0.01
MIN_WEIGHT_RATIO = 3.9
SPARSITY = 0.8
EPOCHS, FINETUNE_EPOCHS, BATCH_SIZE = 30, 10, 64
# TINYTORCH_SEED sets the split, initial weights, shuffling (tests/seed_sweep.py --examples varies it)
SEED = int(os.environ.get("TINYTORCH_SEED", "0"))


def load_digits_split(test_fraction=0.2, seed=0):
    """(X_train, y_train, X_test, y_test): float32 standardised features, int64 labels (as digits_mlp)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("this example needs scikit-learn for the digits data: pip install scikit-learn "
                 "(or pip install -e .[examples])")
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(test_fraction * len(X)))
    test, train = order[:n_test], order[n_test:]
    mean = X[train].mean(axis=0)
    std = X[train].std(axis=0) + 1e-6
    X = (X - mean) / std
    return X[train], y[train], X[test], y[test]


def main():
    X_train, y_train, X_test, y_test = load_digits_split(seed=SEED)
    train_loader = DataLoader(TensorDataset(X_train, y_train), batch_size=BATCH_SIZE, shuffle=True, seed=SEED)
    test_loader = DataLoader(TensorDataset(X_test, y_test), batch_size=256)   # validation lines only
    print(f"digits: {len(X_train)} training and {len(X_test)} test images")

    def accuracy(model):
        with no_grad():
            return Accuracy()(model(Tensor(X_test)), y_test)

    # 1. the float32 model, trained as in examples/digits_mlp
    start = time.perf_counter()
    model = create_mlp(64, [128, 64], 10, seed=SEED)
    optimizer = Adam(model.parameters(), lr=0.002, weight_decay=1e-3)   # as examples/digits_mlp: see there
    Trainer(model, optimizer, CrossEntropyLoss(), metrics=[Accuracy()],
            scheduler=StepLR(optimizer, step_size=10, gamma=0.5)).fit(train_loader, EPOCHS, val_loader=test_loader,
                                                                      verbose=10)
    float_acc = accuracy(model)
    print(f"float32: test accuracy {float_acc:.4f} ({time.perf_counter() - start:.1f} s)")

    # 2. prune 80% with a global threshold, then fine-tune with the masks re-applied after every step
    pruned = copy.deepcopy(model)
    masks = magnitude_prune(pruned, SPARSITY, scope="global")
    pruned_acc_before = accuracy(pruned)
    per_layer = ", ".join(f"{name} {np.mean(p.data == 0):.0%}" for name, p in prunable_parameters(pruned))
    print(f"pruned to {sparsity(pruned):.0%} zeros ({per_layer}): test accuracy {pruned_acc_before:.4f} "
          f"before fine-tuning")
    masked = MaskedOptimizer(Adam(pruned.parameters(), lr=0.001), pruned, masks)
    Trainer(pruned, masked, CrossEntropyLoss(), metrics=[Accuracy()]).fit(train_loader, FINETUNE_EPOCHS,
                                                                         val_loader=test_loader, verbose=5)
    pruned_acc = accuracy(pruned)
    print(f"pruned + fine-tuned: test accuracy {pruned_acc:.4f}, sparsity still {sparsity(pruned):.3f}")

    # 3. int8: one scale per weight matrix (asserted) and per output channel (for comparison)
    int8 = quantize_model(pruned, per_channel=False)
    int8_channel = quantize_model(pruned, per_channel=True)
    int8_acc, int8_channel_acc = accuracy(int8), accuracy(int8_channel)

    float_weights = model_size_bytes(model, weights_only=True)
    rows = [("float32", model, float_acc), (f"{SPARSITY:.0%} pruned + fine-tuned (dense float32)", pruned, pruned_acc),
            ("pruned + int8, scale per tensor", int8, int8_acc),
            ("pruned + int8, scale per channel", int8_channel, int8_channel_acc)]
    print(f"\n{'model':44s} {'weights (B)':>12s} {'total (B)':>10s} {'smaller':>8s} {'accuracy':>9s}")
    for label, m, acc in rows:
        weights = model_size_bytes(m, weights_only=True)
        print(f"{label:44s} {weights:12,d} {model_size_bytes(m):10,d} {float_weights / weights:7.2f}x {acc:9.4f}")
    ratio = float_weights / model_size_bytes(int8, weights_only=True)
    print("(the pruned model's zeros still take 4 bytes each: dense storage does not shrink with sparsity)")

    failures = []
    if float_acc < FLOAT_TARGET:
        failures.append(f"float test accuracy {float_acc:.4f} is below {FLOAT_TARGET}")
    if pruned_acc < float_acc - PRUNED_MAX_DROP:
        failures.append(f"pruned accuracy {pruned_acc:.4f} is more than {PRUNED_MAX_DROP * 100:.0f} points below {float_acc:.4f}")
    if abs(int8_acc - pruned_acc) > INT8_MAX_DROP:
        failures.append(f"int8 accuracy {int8_acc:.4f} differs from {pruned_acc:.4f} by more than {INT8_MAX_DROP * 100:.0f} point")
    if ratio < MIN_WEIGHT_RATIO:
        failures.append(f"int8 weights are only {ratio:.2f}x smaller, below {MIN_WEIGHT_RATIO}x")
    if failures:
        print("FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    print(f"OK: float {float_acc:.4f} >= {FLOAT_TARGET}; pruned {pruned_acc:.4f} within {PRUNED_MAX_DROP * 100:.0f} points; "
          f"int8 {int8_acc:.4f} within {INT8_MAX_DROP * 100:.0f} point; int8 weights {ratio:.2f}x smaller")
    return 0


if __name__ == "__main__":
    sys.exit(main())
