"""Parity with PyTorch's benchmark utilities: the same raw timings give the same statistics.

torch.utils.benchmark.Measurement summarises `raw_times` (seconds per block of `number_per_run` calls)
with the median, mean and interquartile range; ours must agree on identical samples.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.utils.benchmark.utils.common import Measurement, TaskSpec  # noqa: E402

from tinytorch.core.benchmarking import benchmark, summarize  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.mark.parametrize("seed, n, loops", [(0, 20, 1), (1, 57, 100), (2, 8, 1000)])
def test_statistics_match_torch_measurement(seed, n, loops):
    per_call = np.random.default_rng(seed).lognormal(-11, 0.3, n)      # ~15 us with a right tail
    ours = summarize(per_call, inner_loops=loops)
    theirs = Measurement(number_per_run=loops, raw_times=list(per_call * loops), task_spec=TaskSpec("f()", ""))
    assert ours.median == pytest.approx(theirs.median, rel=1e-12)
    assert ours.mean == pytest.approx(theirs.mean, rel=1e-12)
    assert ours.iqr == pytest.approx(theirs.iqr, rel=1e-9)


def test_benchmark_samples_summarised_by_torch_agree():
    """A real benchmark's samples (whatever they are) give torch the same median and IQR as ours."""
    x = np.ones((32, 32))
    ours = benchmark(np.dot, x, x, repeats=10, warmup=1, min_time=0.0005)
    theirs = Measurement(ours.inner_loops, list(ours.samples * ours.inner_loops), TaskSpec("np.dot(x, x)", ""))
    assert ours.median == pytest.approx(theirs.median, rel=1e-9)
    assert ours.iqr == pytest.approx(theirs.iqr, rel=1e-6, abs=1e-15)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
