"""PyTorch parity: the matmul kernels against torch.mm and the softmax kernels against torch.softmax, in
float64 and float32. Skipped where PyTorch is not installed."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinytorch.core.kernels import (  # noqa: E402
    matmul_blocked,
    matmul_naive,
    matmul_vectorized,
    softmax_fused,
    softmax_naive,
    softmax_unfused,
)

pytestmark = pytest.mark.torch
rng = np.random.default_rng(0)  # replaced before each test by that test's own stream (below)


@pytest.fixture(autouse=True)
def _per_test_rng(request):
    """Each test draws from its own stream (the root conftest's `rng`: TINYTORCH_TEST_SEED and the test id),
    so its data does not depend on which tests ran before it."""
    global rng
    rng = request.getfixturevalue("rng")


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("kernel", [matmul_naive, matmul_vectorized, matmul_blocked,
                                    lambda a, b: matmul_blocked(a, b, block=10)])
def test_matmul_matches_torch_mm(kernel, dtype, tol):
    a, b = rng.standard_normal((45, 37)).astype(dtype), rng.standard_normal((37, 29)).astype(dtype)
    np.testing.assert_allclose(kernel(a, b), torch.mm(torch.tensor(a), torch.tensor(b)).numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("kernel", [softmax_naive, softmax_unfused, softmax_fused,
                                    lambda x: softmax_fused(x, block_rows=4)])
def test_softmax_matches_torch(kernel, dtype, tol):
    x = (rng.standard_normal((3, 11, 40)) * 10).astype(dtype)
    np.testing.assert_allclose(kernel(x), torch.softmax(torch.tensor(x), dim=-1).numpy(), rtol=tol, atol=tol)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
