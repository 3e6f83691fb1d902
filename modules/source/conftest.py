"""Fixtures shared by the module test files."""

import numpy as np
import pytest


@pytest.fixture
def blas_buffers_allocated():
    """OpenBLAS allocates its work buffers (about 32 MB) on the first matrix product of a process.

    That is a one-time cost of the library, not of the code under test: memory-budget tests pay it here,
    before measuring (pytest-memray measures the test call, not its fixtures).
    """
    np.ones((64, 64), dtype=np.float32) @ np.ones((64, 64), dtype=np.float32)
    np.ones((64, 64)) @ np.ones((64, 64))
