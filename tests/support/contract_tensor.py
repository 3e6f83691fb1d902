"""The contract of module 01 (Tensor) that every later module relies on, checked against NumPy.

Progressive tests of modules 02-16 run it, so a broken Tensor fails every module above it.
"""

import numpy as np

from tinytorch.core.tensor import Tensor


def tensor_contract():
    a = np.arange(6.0).reshape(2, 3)
    b = np.array([1.0, -2.0, 0.5])
    ta, tb = Tensor(a), Tensor(b)
    for got, want in [
        (ta + tb, a + b), (ta - tb, a - b), (ta * tb, a * b), (ta / tb, a / b), (ta ** 2, a ** 2),
        (-ta, -a), (2 + ta, 2 + a), (1 - ta, 1 - a), (ta @ Tensor(a.T), a @ a.T),
        (ta.sum(axis=0), a.sum(axis=0)), (ta.mean(), a.mean()), (ta.max(axis=1, keepdims=True), a.max(1, keepdims=True)),
        (ta.reshape(3, 2), a.reshape(3, 2)), (ta.transpose(), a.T), (ta.T, a.T), (ta[1, 1:], a[1, 1:]),
        (ta.exp(), np.exp(a)), ((ta + 1).log(), np.log(a + 1)), (ta > 2, a > 2),
    ]:
        assert isinstance(got, Tensor), f"a Tensor operation returned {type(got).__name__}"
        assert got.shape == np.shape(want), f"Tensor result shape {got.shape}, expected {np.shape(want)}"
        assert np.allclose(got.data, want), f"Tensor arithmetic disagrees with NumPy: {got.data} vs {want}"
    assert Tensor(1.5).dtype == np.float32 and Tensor([1, 2]).dtype == np.int64
    assert Tensor(np.ones(2)).dtype == np.float64  # NumPy arrays keep their dtype
    assert (ta.shape, ta.ndim, ta.size) == ((2, 3), 2, 6)
