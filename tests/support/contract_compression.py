"""The contract of module 12 (pruning, int8 quantization)."""

import numpy as np

from tinytorch.core.compression import dequantize, magnitude_prune, quantize_int8, sparsity
from tinytorch.core.networks import create_mlp


def compression_contract():
    x = np.random.default_rng(0).standard_normal((8, 5)).astype(np.float32)
    q, scale = quantize_int8(x)
    assert q.dtype == np.int8
    assert np.all(np.abs(dequantize(q, scale) - x) <= np.asarray(scale) / 2 + 1e-7)
    model = create_mlp(6, [10], 3, seed=0)
    magnitude_prune(model, 0.5)
    assert abs(sparsity(model) - 0.5) < 0.05
