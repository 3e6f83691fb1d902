"""The contract of module 14 (the benchmark harness), with a fake clock: no wall-clock assertions."""

import numpy as np

from tinytorch.core.benchmarking import benchmark, compare


class FakeClock:
    """Every call advances time by `step` seconds."""

    def __init__(self, step):
        self.now, self.step = 0.0, step

    def __call__(self):
        self.now += self.step
        return self.now


def benchmarking_contract():
    result = benchmark(lambda: None, repeats=5, warmup=0, inner_loops=1, timer=FakeClock(0.001))
    assert np.isclose(result.median, 0.001) and len(result.samples) == 5
    slow = benchmark(lambda: None, repeats=5, warmup=0, inner_loops=1, timer=FakeClock(0.004))
    assert "faster" in compare(slow, result).verdict
