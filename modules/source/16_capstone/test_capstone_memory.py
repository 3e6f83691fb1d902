"""Memory budget (pytest-memray) of one training step of the example's language model.

CharTransformer(vocab 50, d_model 64, 4 heads, 2 layers, d_ff 256): 106,546 parameters, 0.4 MB; with
gradients and Adam's two moments 1.7 MB. At batch 16 x seq 64 the graph keeps about 14 MB of activations
for the backward pass (the Systems Analysis breaks them down: ~3.3 MB per attention half-block, of which
1 MB is the (16, 4, 64, 64) attention weights, ~3 MB per feed-forward half-block); the backward pass adds
its gradients on top. Measured: 19.6 MiB at the high-water mark. The budget leaves room for NumPy's working space, and
catches a step that keeps, say, a second copy of the attention weights per layer or an FFN twice as wide
as it needs to be.
"""

import importlib.util

import numpy as np
import pytest

from tinytorch.core.capstone import CharTransformer, SequenceCrossEntropyLoss
from tinytorch.core.optimizers import Adam

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("pytest_memray") is None,
                       reason="pytest-memray is not installed (memray runs on Linux and macOS only)"),
    pytest.mark.usefixtures("blas_buffers_allocated"),
]


@pytest.mark.limit_memory("24 MB")
def test_one_training_step_stays_within_budget():
    model = CharTransformer(50, 64, 4, 2, 256, max_len=64, seed=0)
    optimizer = Adam(model.parameters(), lr=1e-3)
    ids = np.random.default_rng(0).integers(2, 50, size=(16, 65))
    loss = SequenceCrossEntropyLoss()(model(ids[:, :-1]), ids[:, 1:])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert np.isfinite(loss.item()) and all(p.grad is not None for p in model.parameters())


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
