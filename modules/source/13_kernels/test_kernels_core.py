"""Tests of tinytorch.core.kernels (the exported package): every matmul and softmax kernel against NumPy
on odd shapes in float64 and float32, shape and argument errors, and time_kernel with a fake clock."""

import numpy as np
import pytest

from tinytorch.core.kernels import (
    KernelTiming,
    matmul_blocked,
    matmul_naive,
    matmul_vectorized,
    softmax_fused,
    softmax_naive,
    softmax_unfused,
    time_kernel,
)
from tinytorch.core.tensor import Tensor

rng = np.random.default_rng(0)  # replaced before each test by that test's own stream (below)


@pytest.fixture(autouse=True)
def _per_test_rng(request):
    """Each test draws from its own stream (the root conftest's `rng`: TINYTORCH_TEST_SEED and the test id),
    so its data does not depend on which tests ran before it."""
    global rng
    rng = request.getfixturevalue("rng")
TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-5)}

MATMULS = [matmul_naive, matmul_vectorized, matmul_blocked,
           lambda a, b: matmul_blocked(a, b, block=7), lambda a, b: matmul_blocked(a, b, block=1)]
SHAPES = [(1, 1, 1), (2, 3, 4), (17, 9, 23), (65, 33, 1), (1, 70, 66), (31, 64, 65)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("kernel", MATMULS, ids=["naive", "vectorized", "blocked64", "blocked7", "blocked1"])
def test_matmul_equals_numpy(kernel, m, k, n, dtype):
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c = kernel(a, b)
    assert c.shape == (m, n) and c.dtype == dtype and isinstance(c, np.ndarray)
    np.testing.assert_allclose(c, a @ b, **TOL[dtype])


@pytest.mark.parametrize("block", [1, 5, 16, 64, 100, 129, 1000])
def test_blocked_on_shapes_that_are_not_multiples_of_the_block(block):
    a, b = rng.standard_normal((130, 97)), rng.standard_normal((97, 71))
    np.testing.assert_allclose(matmul_blocked(a, b, block=block), a @ b, rtol=1e-12, atol=1e-12)


def test_larger_float32_products_match_blas():
    a = rng.standard_normal((300, 200)).astype(np.float32)
    b = rng.standard_normal((200, 150)).astype(np.float32)
    ref = a @ b
    for c in (matmul_vectorized(a, b), matmul_blocked(a, b), matmul_blocked(a, b, block=48)):
        np.testing.assert_allclose(c, ref, rtol=1e-4, atol=1e-4)


def test_mixed_dtypes_integers_tensors_and_empty_shapes():
    a32, b64 = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((3, 5))
    for kernel in (matmul_naive, matmul_vectorized, matmul_blocked):
        assert kernel(a32, b64).dtype == np.float64
        ints = kernel(np.arange(6).reshape(2, 3), np.arange(6).reshape(3, 2))
        assert ints.dtype == np.float64
        np.testing.assert_array_equal(ints, np.arange(6).reshape(2, 3) @ np.arange(6).reshape(3, 2))
        np.testing.assert_allclose(kernel(Tensor(a32), Tensor(b64)), a32 @ b64, rtol=1e-6)
        assert kernel(np.ones((0, 3)), np.ones((3, 4))).shape == (0, 4)
        np.testing.assert_array_equal(kernel(np.ones((2, 0)), np.ones((0, 3))), np.zeros((2, 3)))


@pytest.mark.parametrize("kernel", [matmul_naive, matmul_vectorized, matmul_blocked])
def test_matmul_shape_errors_name_both_shapes(kernel):
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 2\)"):
        kernel(np.ones((3, 4)), np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"2-D.*\(4,\)"):
        kernel(np.ones(4), np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"\(2, 2, 2\)"):
        kernel(np.ones((2, 2)), np.ones((2, 2, 2)))
    with pytest.raises(TypeError, match="dtype"):
        kernel(np.array([["a"]]), np.ones((1, 1)))


@pytest.mark.parametrize("block", [0, -1, 2.0, True, None])
def test_blocked_rejects_bad_blocks(block):
    with pytest.raises(ValueError, match="block"):
        matmul_blocked(np.ones((2, 2)), np.ones((2, 2)), block=block)


def test_naive_refuses_large_products_unless_allowed():
    with pytest.raises(ValueError, match="max_ops"):
        matmul_naive(np.ones((200, 200)), np.ones((200, 200)))
    assert matmul_naive(np.ones((2, 3)), np.ones((3, 2)), max_ops=12).shape == (2, 2)


# --- softmax ------------------------------------------------------------------------------------------

def reference_softmax(x):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


SOFTMAXES = [softmax_naive, softmax_unfused, softmax_fused, lambda x: softmax_fused(x, block_rows=1),
             lambda x: softmax_fused(x, block_rows=3)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1,), (7,), (1, 1), (5, 3), (13, 129), (2, 3, 17), (0, 4)])
@pytest.mark.parametrize("kernel", SOFTMAXES, ids=["naive", "unfused", "fused", "fused1", "fused3"])
def test_softmax_equals_definition(kernel, shape, dtype):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    y = kernel(x)
    assert y.shape == x.shape and y.dtype == dtype
    np.testing.assert_allclose(y, reference_softmax(x), **({"rtol": 1e-12, "atol": 1e-15} if dtype == np.float64
                                                          else {"rtol": 1e-5, "atol": 1e-7}))


def test_softmax_fused_large_input_many_blocks_and_stability():
    x = (rng.standard_normal((3000, 70)) * 300).astype(np.float32)     # default blocks: several, last one short
    y = softmax_fused(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, softmax_unfused(x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)
    assert softmax_fused(x) is not x and np.shares_memory(softmax_fused(x), x) is False


def test_softmax_input_is_not_modified():
    x = rng.standard_normal((10, 6))
    before = x.copy()
    for kernel in (softmax_naive, softmax_unfused, softmax_fused):
        kernel(x)
        np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("kernel", [softmax_naive, softmax_unfused, softmax_fused])
def test_softmax_errors(kernel):
    with pytest.raises(TypeError, match="int64"):
        kernel(np.arange(6).reshape(2, 3))
    with pytest.raises(ValueError, match="scalar"):
        kernel(np.float64(2.0))
    with pytest.raises(ValueError, match="block_rows"):
        softmax_fused(np.ones((2, 2)), block_rows=0)
    with pytest.raises(ValueError, match="max_size"):
        softmax_naive(np.ones((1000, 1000)))


# --- time_kernel ----------------------------------------------------------------------------------------

class FakeClock:
    """Returns the given readings in order; counts how often it was read."""

    def __init__(self, readings):
        self.readings, self.reads = list(readings), 0

    def __call__(self):
        value = self.readings[self.reads]
        self.reads += 1
        return value


def durations_clock(durations):
    readings, now = [], 100.0
    for d in durations:
        readings += [now, now + d]
        now += d + 1.0
    return FakeClock(readings)


def test_time_kernel_statistics_from_a_fake_clock():
    clock = durations_clock([5.0, 1.0, 3.0, 2.0, 4.0])
    calls = []
    timing = time_kernel(lambda *a: calls.append(a), 1, 2, repeats=5, warmup=3, clock=clock)
    assert isinstance(timing, KernelTiming)
    assert calls == [(1, 2)] * 8 and clock.reads == 10           # warmup calls are not timed
    assert timing.times == (5.0, 1.0, 3.0, 2.0, 4.0)
    assert timing.median == 3.0 and timing.best == 1.0
    assert timing.spread == 4.0 - 2.0                           # percentiles 75 and 25 of 1..5


def test_time_kernel_median_and_spread_of_even_counts_and_outliers():
    timing = time_kernel(lambda: None, repeats=4, warmup=0, clock=durations_clock([1.0, 2.0, 3.0, 1000.0]))
    assert timing.median == 2.5                                 # the mean would be 251.5
    assert timing.spread == pytest.approx(np.percentile([1, 2, 3, 1000], 75) - np.percentile([1, 2, 3, 1000], 25))
    single = time_kernel(lambda: None, repeats=1, warmup=0, clock=durations_clock([0.5]))
    assert single.median == single.best == 0.5 and single.spread == 0.0


def test_time_kernel_with_the_real_clock_and_errors():
    timing = time_kernel(matmul_vectorized, np.ones((8, 8)), np.ones((8, 8)), repeats=3)
    assert len(timing.times) == 3 and all(t >= 0 for t in timing.times) and timing.best <= timing.median
    with pytest.raises(TypeError, match="callable"):
        time_kernel(42)
    for bad in ({"repeats": 0}, {"repeats": 1.5}, {"warmup": -1}, {"warmup": True}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            time_kernel(lambda: None, **bad)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
