"""The contract of module 13 (matmul and softmax kernels)."""

import numpy as np

from tinytorch.core.kernels import matmul_blocked, matmul_naive, matmul_vectorized, softmax_fused


def kernels_contract():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((7, 5)), rng.standard_normal((5, 9))
    for kernel in (matmul_naive, matmul_vectorized, lambda p, q: matmul_blocked(p, q, block=4)):
        assert np.allclose(kernel(a, b), a @ b)
    x = rng.standard_normal((4, 6))
    assert np.allclose(softmax_fused(x), np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True))
