# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 14: Benchmarking
#
# "Is my change faster?" is a question about **distributions**, not about one number. Run the same
# function twenty times and you get twenty different times: the operating system interrupts, another
# process takes the core, a cache was cold, the CPU changed its clock. A single `time.perf_counter()`
# difference mixes the code's cost with all of that, and for a function that takes 50 ns it mostly
# measures the timer itself.
#
# This module builds a small, honest benchmark harness, the tool modules 13, 15 and 16 use to make
# claims about speed:
#
# 1. **Statistics of a sample** (`summarize`): median, interquartile range, mean, standard deviation,
#    min, max, and an outlier count by the IQR rule.
# 2. **A confidence interval for the median** (`bootstrap_median_ci`), by bootstrap with a fixed seed.
# 3. **Timing a call** (`calibrate`, `benchmark`): warmup, an inner loop sized automatically so that tiny
#    functions are timed over many calls, and repeated samples.
# 4. **Comparing two results** (`compare`): the ratio of medians with an interval and a plain verdict,
#    "b is 2.10x faster than a (1.90x-2.30x)" or "no significant difference".
# 5. **A suite** (`BenchmarkSuite`) that runs named cases **interleaved**, round-robin, so that drift of
#    the machine hits every case alike, and prints a table.
#
# The clock is a parameter (`timer=time.perf_counter`), so the tests drive the harness with a fake clock:
# every statistic, the calibration, the interleaving and the verdicts are tested exactly, and no test
# ever asserts anything about real elapsed time. Real times appear in the Systems Analysis, where we
# measure TinyTorch itself.
#
# The harness needs only NumPy and the standard library; the analysis uses the layers, losses and
# optimizers of modules 04-11.

# %% nbgrader={"grade": false, "grade_id": "benchmarking-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.benchmarking
#| export
import math
import numbers
import time

import numpy as np

# %% nbgrader={"grade": false, "grade_id": "benchmarking-test-imports", "locked": false, "schema_version": 3, "solution": false}
# Only the Systems Analysis uses these: the harness times any Python callable.
from tinytorch.core.tensor import Tensor
from tinytorch.core.autograd import Variable
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dense
from tinytorch.core.networks import Sequential
from tinytorch.core.optimizers import Adam
from tinytorch.core.training import CrossEntropyLoss

# %% [markdown]
# ## 0. Helpers: readable durations and argument checks
#
# Times span nine orders of magnitude (a 30 ns call, a 3 s epoch), so every table prints them with a
# unit chosen per value: `format_seconds(2.5e-7) == "250.0 ns"`. This helper is given.

# %% nbgrader={"grade": false, "grade_id": "helpers", "locked": false, "schema_version": 3, "solution": false}
#| export
def format_seconds(seconds):
    """A duration with a readable unit: 1.23 s, 45.6 ms, 789.0 us, 12.3 ns (4 significant digits at most)."""
    seconds = float(seconds)
    if not math.isfinite(seconds):
        return str(seconds)
    magnitude = abs(seconds)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if magnitude >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


def _check_int(value, name, minimum, who):
    """An int >= minimum, or a TypeError/ValueError naming the argument and the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{who} {name} must be an int >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{who} {name} must be >= {minimum}, got {value}")
    return int(value)


def _check_seconds(value, name, who):
    """A finite number of seconds >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{who} {name} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _check_confidence(confidence, who):
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise ValueError(f"{who} confidence must be a number in (0, 1), e.g. 0.95, got {confidence!r}")
    return float(confidence)


def _as_samples(samples, who, minimum=2):
    """A 1-D float64 array of at least `minimum` finite, non-negative durations."""
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim != 1 or values.size < minimum:
        raise ValueError(f"{who} needs a 1-D sequence of at least {minimum} timings, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or values.min() < 0:
        raise ValueError(f"{who} needs finite timings >= 0, got values from {values.min()} to {values.max()}")
    return values

# %% [markdown]
# ## 1. A confidence interval for the median, by bootstrap
#
# Timings are **not** normally distributed. They have a hard floor (the code cannot run faster than its
# instructions allow) and a long right tail (interrupts, page faults, another process). A typical sample
# looks like `[101, 100, 102, 100, 101, 180, 100, 103]` µs. So we summarise with the **median**: one
# 180 µs hiccup moves the mean by 10 µs but the median not at all.
#
# How sure are we of a median measured from n samples? Two classic answers:
#
# - a **t-interval for the mean**, `mean ± t(n-1) · s / sqrt(n)`, which assumes roughly normal data and is
#   dragged by exactly the outliers we want to ignore;
# - a **bootstrap interval for the median**, which assumes nothing about the shape: treat the sample as
#   the best picture of the distribution, draw `B` new samples of size n from it **with replacement**,
#   take the median of each, and read the interval off the percentiles of those `B` medians (the 2.5th and
#   97.5th for 95%).
#
# We pick the bootstrap for the median: robust, distribution-free, and simple. It is random, so it uses a
# **fixed seed**: the same samples always give the same interval (tests and reports are reproducible).
#
# Vectorised, it is one fancy-indexing operation: `idx = rng.integers(0, n, size=(B, n))` gives B
# resamples at once, `np.median(samples[idx], axis=1)` their B medians. Cost: O(B · n) time and memory;
# with B = 2000 and n = 50 that is 100,000 numbers (0.8 MB), a few milliseconds.

# %% nbgrader={"grade": false, "grade_id": "bootstrap", "locked": false, "schema_version": 3, "solution": true}
#| export
def bootstrap_median_ci(samples, confidence=0.95, resamples=2000, seed=0):
    """Percentile-bootstrap interval (low, high) for the median of `samples` (1-D, at least 2 values).

    Draws `resamples` resamples of the same size with replacement from a generator seeded with `seed`
    (so the interval is reproducible) and returns the (1-c)/2 and (1+c)/2 percentiles of their medians.
    """
    values = _as_samples(samples, "bootstrap_median_ci")
    confidence = _check_confidence(confidence, "bootstrap_median_ci")
    resamples = _check_int(resamples, "resamples", 100, "bootstrap_median_ci")
    ### BEGIN SOLUTION
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(resamples, values.size))   # every resample at once
    medians = np.median(values[idx], axis=1)                             # (resamples,)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(medians, [tail, 100.0 - tail])
    return float(low), float(high)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-bootstrap", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_bootstrap_median_ci():
    """Bootstrap CI: reproducible, brackets the median, zero width for constant data, narrows with n, covers."""
    rng = np.random.default_rng(0)
    samples = 100 + rng.exponential(5.0, 40)                     # skewed, like real timings
    low, high = bootstrap_median_ci(samples)
    assert (low, high) == bootstrap_median_ci(samples)           # fixed seed: the same interval
    assert low <= np.median(samples) <= high and low < high
    assert bootstrap_median_ci(np.full(10, 3.0)) == (3.0, 3.0)
    # more samples from the same distribution: a narrower interval
    big = 100 + rng.exponential(5.0, 400)
    big_low, big_high = bootstrap_median_ci(big)
    assert big_high - big_low < (high - low)
    # a 99% interval contains the 90% one
    l90, h90 = bootstrap_median_ci(samples, confidence=0.90)
    l99, h99 = bootstrap_median_ci(samples, confidence=0.99)
    assert l99 <= l90 and h90 <= h99
    # coverage: 95% intervals of 60 samples of 40 contain the true median (100 + 5 ln 2) most of the time
    true_median = 100 + 5.0 * np.log(2.0)
    hits = sum(lo <= true_median <= hi for lo, hi in
               (bootstrap_median_ci(100 + rng.exponential(5.0, 40), seed=k) for k in range(60)))
    assert hits >= 50, hits
    for bad, error in [([1.0], ValueError), (np.ones((3, 3)), ValueError), ([1.0, np.nan], ValueError)]:
        try:
            bootstrap_median_ci(bad)
        except error:
            pass
        else:
            raise AssertionError(f"{bad!r} must be rejected")
    print(f"bootstrap_median_ci: ok (n=40: {low:.2f}-{high:.2f}, n=400: {big_low:.2f}-{big_high:.2f})")


test_unit_bootstrap_median_ci()

# %% [markdown]
# ## 2. Summarising a sample: `BenchmarkResult`
#
# `summarize(samples, inner_loops=1, name="")` turns raw timings (seconds **per call**) into a
# `BenchmarkResult` holding:
#
# | field | meaning |
# |---|---|
# | `samples` | the timings, float64, in the order they were taken |
# | `median`, `mean`, `min`, `max` | as usual; `std` is the sample standard deviation (ddof=1) |
# | `q1`, `q3`, `iqr` | 25th and 75th percentiles (NumPy's linear interpolation) and `iqr = q3 - q1` |
# | `ci_low`, `ci_high` | the bootstrap interval for the median (`confidence`, default 0.95) |
# | `outliers` | how many samples lie outside `[q1 - 1.5 iqr, q3 + 1.5 iqr]` (Tukey's rule) |
# | `inner_loops` | how many calls each sample averaged over |
#
# The IQR is the spread of the middle half of the data: like the median, a few wild samples do not move
# it. The **outlier count** is a health check: a handful means the machine was busy now and then (the
# median copes); a third of the samples means the measurement is not trustworthy.

# %% nbgrader={"grade": false, "grade_id": "result", "locked": false, "schema_version": 3, "solution": true}
#| export
class BenchmarkResult:
    """Statistics of repeated timings (seconds per call) of one benchmark; built by `summarize`."""

    def __init__(self, name, samples, inner_loops, median, mean, std, minimum, maximum, q1, q3,
                 ci_low, ci_high, confidence, outliers):
        self.name, self.samples, self.inner_loops = name, samples, inner_loops
        self.median, self.mean, self.std = median, mean, std
        self.min, self.max, self.q1, self.q3 = minimum, maximum, q1, q3
        self.iqr = q3 - q1
        self.ci_low, self.ci_high, self.confidence = ci_low, ci_high, confidence
        self.outliers = outliers

    @property
    def repeats(self):
        """Number of samples."""
        return len(self.samples)

    def __str__(self):
        return (f"{self.name or 'benchmark'}: median {format_seconds(self.median)} "
                f"({self.confidence:.0%} CI {format_seconds(self.ci_low)}-{format_seconds(self.ci_high)}), "
                f"IQR {format_seconds(self.iqr)}, {self.repeats} runs x {self.inner_loops} calls, "
                f"{self.outliers} outlier{'s' if self.outliers != 1 else ''}")

    def __repr__(self):
        return f"BenchmarkResult({self})"


def summarize(samples, inner_loops=1, name="", confidence=0.95, resamples=2000, seed=0):
    """Statistics of timings in seconds per call (1-D, at least 2): a BenchmarkResult.

    Median, mean, std (ddof=1), min, max, quartiles and IQR, a bootstrap CI for the median, and the
    number of outliers outside [q1 - 1.5 iqr, q3 + 1.5 iqr].
    """
    values = _as_samples(samples, "summarize")
    inner_loops = _check_int(inner_loops, "inner_loops", 1, "summarize")
    confidence = _check_confidence(confidence, "summarize")
    ### BEGIN SOLUTION
    q1, median, q3 = (float(q) for q in np.percentile(values, [25, 50, 75]))
    iqr = q3 - q1
    outliers = int(np.count_nonzero((values < q1 - 1.5 * iqr) | (values > q3 + 1.5 * iqr)))
    ci_low, ci_high = bootstrap_median_ci(values, confidence, resamples, seed)
    return BenchmarkResult(name, values, inner_loops, median, float(values.mean()), float(values.std(ddof=1)),
                           float(values.min()), float(values.max()), q1, q3, ci_low, ci_high, confidence,
                           outliers)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-summarize", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_summarize():
    """summarize: every statistic against its definition on a sample with one wild value."""
    samples = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 100.0]
    r = summarize(samples, inner_loops=10, name="demo")
    assert r.median == 5.5 and r.min == 1.0 and r.max == 100.0 and r.mean == 14.5
    # linear interpolation: position 0.25 * 9 = 2.25 -> 3.25, position 6.75 -> 7.75
    assert (r.q1, r.q3, r.iqr) == (3.25, 7.75, 4.5)
    assert abs(r.std - np.sqrt(np.sum((np.array(samples) - 14.5) ** 2) / 9)) < 1e-12
    assert r.outliers == 1                        # only 100 lies beyond q3 + 1.5 iqr = 14.5
    assert r.ci_low <= r.median <= r.ci_high and r.ci_high < 100.0
    assert r.repeats == 10 and r.inner_loops == 10 and r.name == "demo"
    assert r.samples.dtype == np.float64
    assert summarize(np.full(5, 2e-6)).outliers == 0          # IQR 0: nothing is an outlier
    text = str(r)
    assert "demo" in text and "1 outlier" in text and "10 runs x 10 calls" in text
    print(r)


test_unit_summarize()

# %% [markdown]
# ## 3. Timing a call: warmup, calibration, repeats
#
# `time.perf_counter()` has a resolution of tens of nanoseconds on Linux, and reading it costs about as
# much. Timing one call of a 200 ns function would measure the clock as much as the function. The fix
# (`timeit`'s, and PyTorch's `blocked_autorange`'s) is an **inner loop**: time `loops` calls back to back
# and divide by `loops`.
#
# **Calibration** picks `loops`: try 1, 2, 5, 10, 20, 50, 100, ... calls until one batch takes at least
# `min_time` seconds. A 1 ms function gets 1 call per sample; a 100 ns function with `min_time=1e-3` gets
# 10,000. The search costs about twice `min_time` (a geometric series). If the clock never advances (a
# coarse clock, or a fake one in a test) it stops at `max_loops` instead of looping forever.
#
# **Warmup** runs the function a few times untimed first. First calls pay one-time costs the steady state
# does not: imports, caches filled, memory pages touched for the first time, BLAS buffers allocated, and
# Python 3.11's interpreter specialising its bytecode after a few executions.
#
# Then `benchmark(fn, *args, repeats=20, warmup=2, min_time=0.002, timer=time.perf_counter)` takes
# `repeats` samples, each the average of `loops` calls, and summarises them. Each sample is
# `(timer() after - timer() before) / loops`: only two clock readings per sample, whatever `loops` is.
#
# The inner loop is a plain Python `for` over **calls** (not over elements): its own overhead, about
# 20-40 ns per iteration, is part of what we measure, and negligible for anything a network does.

# %% nbgrader={"grade": false, "grade_id": "benchmark", "locked": false, "schema_version": 3, "solution": true}
#| export
def _loop_counts(max_loops):
    """1, 2, 5, 10, 20, 50, ... up to max_loops (always ending with max_loops itself)."""
    base = 1
    while True:
        for step in (1, 2, 5):
            if step * base >= max_loops:
                yield max_loops
                return
            yield step * base
        base *= 10


def time_calls(fn, args, loops, timer=time.perf_counter):
    """Seconds that `loops` back-to-back calls fn(*args) take by `timer` (two clock readings)."""
    ### BEGIN SOLUTION
    start = timer()
    for _ in range(loops):
        fn(*args)
    return timer() - start
    ### END SOLUTION


def calibrate(fn, args=(), min_time=0.002, timer=time.perf_counter, max_loops=1_000_000):
    """The number of calls per sample: the first of 1, 2, 5, 10, 20, ... whose batch takes >= min_time.

    Returns max_loops if even that many calls stay under min_time (e.g. a clock that does not advance).
    """
    min_time = _check_seconds(min_time, "min_time", "calibrate")
    max_loops = _check_int(max_loops, "max_loops", 1, "calibrate")
    ### BEGIN SOLUTION
    for loops in _loop_counts(max_loops):
        if time_calls(fn, args, loops, timer) >= min_time:
            return loops
    return max_loops
    ### END SOLUTION


def benchmark(fn, *args, repeats=20, warmup=2, min_time=0.002, timer=time.perf_counter, inner_loops=None,
              name=None, confidence=0.95, seed=0):
    """Time fn(*args): `warmup` untimed calls, calibration (unless inner_loops is given), then `repeats`
    samples of seconds per call, summarised in a BenchmarkResult (median, IQR, CI, outliers, ...).
    """
    if not callable(fn):
        raise TypeError(f"benchmark expects a callable to time, got {type(fn).__name__}")
    repeats = _check_int(repeats, "repeats", 2, "benchmark")
    warmup = _check_int(warmup, "warmup", 0, "benchmark")
    min_time = _check_seconds(min_time, "min_time", "benchmark")
    if inner_loops is not None:
        inner_loops = _check_int(inner_loops, "inner_loops", 1, "benchmark")
    name = name if name is not None else getattr(fn, "__name__", type(fn).__name__)
    ### BEGIN SOLUTION
    for _ in range(warmup):
        fn(*args)
    loops = inner_loops if inner_loops is not None else calibrate(fn, args, min_time, timer)
    samples = [time_calls(fn, args, loops, timer) / loops for _ in range(repeats)]
    return summarize(samples, loops, name, confidence=confidence, seed=seed)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-benchmark", "locked": true, "points": 10, "schema_version": 3, "solution": false}
class FakeClock:
    """A clock for tests: it only moves when told to. `clock()` reads it; `clock.advance(dt)` moves it."""

    def __init__(self):
        self.now = 0.0
        self.readings = 0

    def __call__(self):
        self.readings += 1
        return self.now

    def advance(self, seconds):
        self.now += seconds


def test_unit_benchmark():
    """benchmark with a fake clock: warmup calls, calibration, per-call samples, statistics, errors."""
    clock = FakeClock()
    calls = []

    def work(cost):                   # a "function" that takes `cost` fake seconds per call
        calls.append(cost)
        clock.advance(cost)

    assert time_calls(work, (3.0,), 4, clock) == 12.0 and len(calls) == 4
    # 1 unit per call, min_time 100 units: tries 1, 2, 5, 10, 20, 50 (too short), 100 (enough)
    calls.clear()
    assert calibrate(work, (1.0,), min_time=100.0, timer=clock) == 100
    assert len(calls) == 1 + 2 + 5 + 10 + 20 + 50 + 100
    assert calibrate(work, (250.0,), min_time=100.0, timer=clock) == 1          # slow: one call is enough
    assert calibrate(lambda: None, min_time=1.0, timer=clock, max_loops=300) == 300   # frozen clock
    calls.clear()
    r = benchmark(work, 1.0, repeats=5, warmup=3, min_time=10.0, timer=clock)
    assert r.inner_loops == 10 and r.repeats == 5
    assert len(calls) == 3 + (1 + 2 + 5 + 10) + 5 * 10        # warmup, calibration, samples
    assert np.all(r.samples == 1.0) and r.median == 1.0 and r.iqr == 0.0 and r.name == "work"
    # inner_loops given: no calibration; each sample averages its calls
    costs = iter([2.0] * 4 + [6.0] * 4 + [4.0] * 4)
    r = benchmark(lambda: clock.advance(next(costs)), repeats=3, warmup=0, inner_loops=4, timer=clock, name="x")
    assert list(r.samples) == [2.0, 6.0, 4.0] and r.median == 4.0 and r.name == "x"
    for kwargs, error in [({"repeats": 1}, ValueError), ({"warmup": -1}, ValueError),
                          ({"min_time": -1.0}, ValueError), ({"repeats": 2.5}, TypeError)]:
        try:
            benchmark(work, 1.0, timer=clock, **kwargs)
        except error as caught:
            assert str(next(iter(kwargs))) in str(caught)
        else:
            raise AssertionError(f"{kwargs} must be rejected")
    try:
        benchmark("not a function")
    except TypeError as caught:
        assert "str" in str(caught)
    else:
        raise AssertionError("a non-callable must be rejected")
    print("benchmark: ok")


test_unit_benchmark()

# %% [markdown]
# ## 4. Comparing two benchmarks
#
# Two medians, 120 µs and 100 µs: is the second really faster, or did we catch the machine in a
# different mood? `compare(a, b)` answers with the **ratio of medians** `median(a) / median(b)` (how
# many times faster b is) and a bootstrap interval for that ratio: resample a and b independently, take
# the ratio of the two resampled medians, B times, and read off the percentiles (seed fixed again).
#
# - The interval lies entirely above 1: **b is faster**, "b is 1.20x faster than a (1.15x-1.26x)".
# - Entirely below 1: **b is slower**, reported the other way round as a factor > 1.
# - It contains 1: **no significant difference**: the data cannot tell the two apart.
#
# The result is a `Comparison` (`ratio`, `low`, `high`, `significant`, `verdict`); `str()` of it is the
# verdict. It accepts `BenchmarkResult`s (their names appear in the verdict) or raw sample arrays.

# %% nbgrader={"grade": false, "grade_id": "compare", "locked": false, "schema_version": 3, "solution": true}
#| export
class Comparison:
    """Outcome of compare(a, b): ratio = median(a) / median(b) (> 1: b is faster), its interval, a verdict."""

    def __init__(self, a_name, b_name, ratio, low, high, confidence, significant, verdict):
        self.a_name, self.b_name = a_name, b_name
        self.ratio, self.low, self.high, self.confidence = ratio, low, high, confidence
        self.significant, self.verdict = significant, verdict

    def __str__(self):
        return self.verdict

    def __repr__(self):
        return f"Comparison({self.verdict!r})"


def _samples_and_name(result, default):
    if isinstance(result, BenchmarkResult):
        return result.samples, (result.name or default)
    return _as_samples(result, "compare"), default


def compare(a, b, confidence=0.95, resamples=2000, seed=0):
    """How much faster b is than a: ratio of medians median(a)/median(b) with a bootstrap interval.

    a, b: BenchmarkResults or 1-D arrays of timings. Returns a Comparison whose verdict reads
    "<b> is 2.10x faster than <a> (1.90x-2.30x)", "... slower ...", or "no significant difference ...".
    """
    a_samples, a_name = _samples_and_name(a, "a")
    b_samples, b_name = _samples_and_name(b, "b")
    confidence = _check_confidence(confidence, "compare")
    resamples = _check_int(resamples, "resamples", 100, "compare")
    if np.median(b_samples) <= 0 or np.median(a_samples) <= 0:
        raise ValueError(f"compare needs positive median timings, got {np.median(a_samples)} for {a_name} "
                         f"and {np.median(b_samples)} for {b_name}")
    ### BEGIN SOLUTION
    rng = np.random.default_rng(seed)
    a_meds = np.median(a_samples[rng.integers(0, a_samples.size, (resamples, a_samples.size))], axis=1)
    b_meds = np.median(b_samples[rng.integers(0, b_samples.size, (resamples, b_samples.size))], axis=1)
    with np.errstate(divide="ignore"):                  # a resampled median of 0 gives an infinite ratio
        ratios = a_meds / b_meds
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = (float(q) for q in np.percentile(ratios, [tail, 100.0 - tail]))
    ratio = float(np.median(a_samples) / np.median(b_samples))
    if low > 1.0:
        verdict = f"{b_name} is {ratio:.2f}x faster than {a_name} ({low:.2f}x-{high:.2f}x)"
    elif high < 1.0:
        verdict = f"{b_name} is {1 / ratio:.2f}x slower than {a_name} ({1 / high:.2f}x-{1 / low:.2f}x)"
    else:
        verdict = (f"no significant difference between {a_name} and {b_name} "
                   f"(ratio {ratio:.2f}x, {confidence:.0%} CI {low:.2f}x-{high:.2f}x)")
    return Comparison(a_name, b_name, ratio, low, high, confidence, not low <= 1.0 <= high, verdict)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-compare", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_compare():
    """compare: faster, slower and indistinguishable cases, on samples with known medians."""
    rng = np.random.default_rng(3)
    slow = summarize(2.0 + rng.uniform(0, 0.1, 30), name="loops")
    fast = summarize(1.0 + rng.uniform(0, 0.05, 30), name="vectorized")
    c = compare(slow, fast)
    assert c.significant and 1.0 < c.low <= c.ratio <= c.high
    assert abs(c.ratio - slow.median / fast.median) < 1e-12
    assert str(c) == f"vectorized is {c.ratio:.2f}x faster than loops ({c.low:.2f}x-{c.high:.2f}x)"
    back = compare(fast, slow)
    assert back.significant and back.high < 1.0 and abs(back.ratio * c.ratio - 1) < 1e-12
    assert str(back).startswith(f"loops is {1 / back.ratio:.2f}x slower than vectorized (")
    same = compare(1.0 + rng.uniform(0, 0.1, 30), 1.0 + rng.uniform(0, 0.1, 30))
    assert not same.significant and same.low <= 1.0 <= same.high
    assert str(same).startswith("no significant difference between a and b")
    assert compare(slow, fast).verdict == c.verdict                # fixed seed: reproducible
    print(c)
    print(same)


test_unit_compare()

# %% [markdown]
# ## 5. A suite of interleaved benchmarks
#
# Benchmark A for ten seconds, then B for ten seconds, and any slow change of the machine (a CPU
# heating up and throttling, a neighbour's job starting, the laptop switching to battery) lands on B
# alone and looks like a property of the code. **Interleaving** removes that bias: the suite takes one
# sample of A, one of B, one of C, then the next round, and so on, so drift is spread evenly over every
# case (it widens the intervals instead of shifting one median).
#
# `BenchmarkSuite(repeats=20, warmup=2, min_time=0.002, timer=...)`:
#
# - `add(name, fn, *args)` registers a case (names are unique);
# - `run()` warms up every case, calibrates each one's inner loop, then takes `repeats` rounds of one
#   sample per case, in order; it returns `{name: BenchmarkResult}` and records the order of the samples
#   in `suite.order` (so a test can check the round-robin);
# - `table(baseline=None)` formats the results, with every case compared against the baseline (the
#   first case unless named).

# %% nbgrader={"grade": false, "grade_id": "suite", "locked": false, "schema_version": 3, "solution": true}
#| export
class BenchmarkSuite:
    """Named benchmarks run interleaved (round-robin), so machine drift affects every case alike."""

    def __init__(self, repeats=20, warmup=2, min_time=0.002, timer=time.perf_counter, confidence=0.95, seed=0):
        self.repeats = _check_int(repeats, "repeats", 2, "BenchmarkSuite")
        self.warmup = _check_int(warmup, "warmup", 0, "BenchmarkSuite")
        self.min_time = _check_seconds(min_time, "min_time", "BenchmarkSuite")
        self.timer, self.confidence, self.seed = timer, _check_confidence(confidence, "BenchmarkSuite"), seed
        self.cases = {}        # name -> (fn, args), in the order added
        self.results = {}
        self.order = []

    def add(self, name, fn, *args):
        """Register fn(*args) under `name`; returns the suite (so calls chain)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"BenchmarkSuite case names must be non-empty strings, got {name!r}")
        if name in self.cases:
            raise ValueError(f"BenchmarkSuite already has a case named {name!r}; names must be unique")
        if not callable(fn):
            raise TypeError(f"BenchmarkSuite case {name!r} must be callable, got {type(fn).__name__}")
        self.cases[name] = (fn, args)
        return self

    def run(self, verbose=False):
        """Warm up and calibrate every case, then `repeats` round-robin rounds; returns {name: result}."""
        if not self.cases:
            raise ValueError("BenchmarkSuite.run: no cases; add some with suite.add(name, fn, *args)")
        ### BEGIN SOLUTION
        loops = {}
        for name, (fn, args) in self.cases.items():
            for _ in range(self.warmup):
                fn(*args)
            loops[name] = calibrate(fn, args, self.min_time, self.timer)
        samples = {name: [] for name in self.cases}
        self.order = []
        for _ in range(self.repeats):
            for name, (fn, args) in self.cases.items():          # one sample of each case per round
                samples[name].append(time_calls(fn, args, loops[name], self.timer) / loops[name])
                self.order.append(name)
        self.results = {name: summarize(samples[name], loops[name], name, self.confidence, seed=self.seed)
                        for name in self.cases}
        ### END SOLUTION
        if verbose:
            print(self.table())
        return self.results

    def table(self, baseline=None):
        """The results as a text table; the last column compares each case with `baseline` (default: first)."""
        if not self.results:
            raise ValueError("BenchmarkSuite.table: nothing to show yet; call run() first")
        baseline = next(iter(self.results)) if baseline is None else baseline
        if baseline not in self.results:
            raise ValueError(f"BenchmarkSuite.table: no case named {baseline!r}; cases: {list(self.results)}")
        base = self.results[baseline]
        width = max(4, *(len(name) for name in self.results))
        lines = [f"{'case':<{width}}  {'median':>10}  {'95% CI of the median':>23}  {'IQR':>10}  "
                 f"{'outliers':>8}  {'runs x calls':>13}  vs {baseline}"]
        for name, r in self.results.items():
            if name == baseline:
                versus = "baseline"
            else:
                c = compare(base, r, confidence=self.confidence, seed=self.seed)
                versus = (f"{c.ratio:.2f}x faster" if c.ratio >= 1 else f"{1 / c.ratio:.2f}x slower")
                versus += "" if c.significant else " (not significant)"
            ci = f"{format_seconds(r.ci_low)}-{format_seconds(r.ci_high)}"
            lines.append(f"{name:<{width}}  {format_seconds(r.median):>10}  {ci:>23}  {format_seconds(r.iqr):>10}  "
                         f"{r.outliers:>8}  {f'{r.repeats} x {r.inner_loops}':>13}  {versus}")
        return "\n".join(lines)

# %% nbgrader={"grade": true, "grade_id": "test-suite", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_suite():
    """BenchmarkSuite with a fake clock: round-robin order, per-case loops, results, drift, the table."""
    clock = FakeClock()
    log = []

    def case(name, cost):
        def fn():
            log.append(name)
            clock.advance(cost)
        return fn

    suite = BenchmarkSuite(repeats=4, warmup=1, min_time=4.0, timer=clock)
    suite.add("slow", case("slow", 4.0)).add("fast", case("fast", 1.0))
    results = suite.run()
    assert suite.order == ["slow", "fast"] * 4                   # interleaved, round after round
    assert results["slow"].inner_loops == 1 and results["fast"].inner_loops == 5
    assert results["slow"].median == 4.0 and results["fast"].median == 1.0
    # the timed part of the log: rounds of 1 slow call then 5 fast calls
    assert log[-24:] == (["slow"] + ["fast"] * 5) * 4
    # drift: the machine slows down over time (each call costs 0.1% more per elapsed unit). Interleaved,
    # two identical cases get the same median; run one after the other, the second looks slower.
    clock2 = FakeClock()

    def drifting():
        clock2.advance(2.0 * (1 + 0.001 * clock2.now))

    drift = BenchmarkSuite(repeats=10, warmup=0, min_time=0.0, timer=clock2)
    res = drift.add("a", drifting).add("b", drifting).run()
    assert abs(res["b"].median / res["a"].median - 1) < 0.005
    first = benchmark(drifting, repeats=10, warmup=0, min_time=0.0, timer=clock2)
    second = benchmark(drifting, repeats=10, warmup=0, min_time=0.0, timer=clock2)
    assert second.median / first.median - 1 > 0.01
    table = suite.table()
    assert table.count("\n") == 2 and "baseline" in table and "4.00x faster" in table
    for bad, error in [(lambda: suite.add("slow", case("x", 1.0)), ValueError),
                       (lambda: BenchmarkSuite().run(), ValueError),
                       (lambda: suite.table(baseline="nope"), ValueError)]:
        try:
            bad()
        except error:
            pass
        else:
            raise AssertionError("must be rejected")
    print(table)


test_unit_suite()

# %% [markdown]
# ## Systems Analysis
#
# Now the harness measures TinyTorch itself (real clock, single BLAS thread as in every task):
#
# 1. **Dense forward at several batch sizes**: where the fixed cost per call stops dominating.
# 2. **The digits MLP training step**, TinyTorch against the same step written by hand in NumPy: what
#    the autograd engine and the Module machinery cost.
# 3. **Warmup and noise**: the first calls against the steady state, the timer's own cost, and an A/A test
#    (a function against itself: any "difference" is noise).
# 4. **How many repeats a stable median needs**: the width of the 95% interval as samples accumulate.

# %% nbgrader={"grade": false, "grade_id": "benchmarking-analysis", "locked": false, "schema_version": 3, "solution": false}
def analyze_dense_batch_sizes():
    """Dense(64, 128) forward on plain Tensors at batch 1 to 1024: time, time per example, GFLOP/s."""
    layer = Dense(64, 128, seed=0)
    rng = np.random.default_rng(0)
    suite = BenchmarkSuite(repeats=15, warmup=2, min_time=0.002)
    batches = [1, 8, 64, 256, 1024]
    for batch in batches:
        suite.add(f"batch {batch}", layer, Tensor(rng.standard_normal((batch, 64)).astype(np.float32)))
    results = suite.run()
    print("Dense(64, 128) forward, Tensor in (no graph), interleaved, medians:")
    print(" batch   median     95% CI of the median      per example   GFLOP/s")
    for batch in batches:
        r = results[f"batch {batch}"]
        flops = 2 * batch * 64 * 128 + batch * 128
        print(f"{batch:6d}  {format_seconds(r.median):>9}  {format_seconds(r.ci_low):>10} - {format_seconds(r.ci_high):<10}"
              f"  {format_seconds(r.median / batch):>11}   {flops / r.median / 1e9:7.2f}")


def _numpy_mlp_step(params, moments, x, y, step, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    """One training step of the 64-128-64-10 ReLU MLP written by hand: forward, cross-entropy, backward, Adam."""
    W1, b1, W2, b2, W3, b3 = params
    h1 = x @ W1 + b1
    a1 = np.maximum(h1, 0)
    h2 = a1 @ W2 + b2
    a2 = np.maximum(h2, 0)
    z = a2 @ W3 + b3
    e = np.exp(z - z.max(axis=1, keepdims=True))
    g = e / e.sum(axis=1, keepdims=True)                       # softmax
    g[np.arange(len(y)), y] -= 1.0
    g /= len(y)                                                # dL/dz of the mean cross-entropy
    ga2 = (g @ W3.T) * (h2 > 0)
    ga1 = (ga2 @ W2.T) * (h1 > 0)
    grads = [x.T @ ga1, ga1.sum(0), a1.T @ ga2, ga2.sum(0), a2.T @ g, g.sum(0)]
    for p, grad, (m, v) in zip(params, grads, moments):        # Adam, as torch.optim.Adam
        m *= betas[0]
        m += (1 - betas[0]) * grad
        v *= betas[1]
        v += (1 - betas[1]) * grad * grad
        denom = np.sqrt(v) / math.sqrt(1 - betas[1] ** step) + eps
        p -= (lr / (1 - betas[0] ** step)) * (m / denom)


def analyze_training_step():
    """The digits MLP training step at batch 64: TinyTorch (autograd + Adam) against NumPy by hand."""
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((64, 64)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    model = Sequential([Dense(64, 128, seed=1), ReLU(), Dense(128, 64, seed=2), ReLU(), Dense(64, 10, seed=3)])
    params = [p.data.copy() for p in model.parameters()]      # the hand-written step starts from the same weights
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    opt, loss_fn, x = Adam(model.parameters(), lr=1e-3), CrossEntropyLoss(), Variable(x_np, requires_grad=False)
    state = {"t": 0}

    def tinytorch_step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    def numpy_step():
        state["t"] += 1
        _numpy_mlp_step(params, moments, x_np, y, state["t"])

    tinytorch_step()
    numpy_step()
    same = all(np.allclose(p.data, q, atol=1e-5) for p, q in zip(model.parameters(), params))
    print(f"after one step from the same weights, TinyTorch and NumPy-by-hand parameters agree: {same}")
    suite = BenchmarkSuite(repeats=20, warmup=3, min_time=0.003)
    results = suite.add("NumPy by hand", numpy_step).add("TinyTorch", tinytorch_step).run()
    print(suite.table())
    print(compare(results["TinyTorch"], results["NumPy by hand"]))


def analyze_noise_and_warmup():
    """First calls against the steady state; the timer's cost; an A/A comparison of a function with itself."""
    rng = np.random.default_rng(1)
    layer = Dense(64, 128, seed=5)
    x = Tensor(rng.standard_normal((64, 64)).astype(np.float32))
    cold = benchmark(layer, x, repeats=30, warmup=0, inner_loops=1, name="no warmup, 1 call per sample")
    print("Dense(64, 128) forward at batch 64, one call per sample, no warmup:")
    print("  first five samples: " + ", ".join(format_seconds(s) for s in cold.samples[:5])
          + f"; median of 30: {format_seconds(cold.median)}; max {format_seconds(cold.max)}; "
          f"{cold.outliers} outliers")
    # The clock itself: an empty function timed one call at a time, then with a calibrated inner loop.
    def nothing():
        return None

    single = benchmark(nothing, repeats=50, warmup=5, inner_loops=1, name="1 call")
    looped = benchmark(nothing, repeats=20, warmup=5, min_time=0.002, name="calibrated")
    print(f"an empty function: {format_seconds(single.median)} per call timed alone (clock resolution "
          f"{format_seconds(time.get_clock_info('perf_counter').resolution)}), {format_seconds(looped.median)} "
          f"per call over {looped.inner_loops:,} calls per sample")
    # A/A: the same layer twice, interleaved; any verdict other than "no significant difference" is noise.
    suite = BenchmarkSuite(repeats=20, warmup=2, min_time=0.002)
    results = suite.add("A", layer, x).add("A again", layer, x).run()
    print("A/A test (the same call twice):", compare(results["A"], results["A again"]))


def analyze_repeats_needed():
    """Width of the 95% interval of the median, relative to it, after n samples (one run of 160 samples)."""
    layer = Dense(128, 128, seed=0)
    x = Tensor(np.random.default_rng(2).standard_normal((32, 128)).astype(np.float32))
    full = benchmark(layer, x, repeats=160, warmup=3, min_time=0.001, name="Dense(128,128) batch 32")
    print(f"{full.name}: {full.repeats} samples x {full.inner_loops} calls; final median {format_seconds(full.median)}")
    print("   n   median of the first n   95% CI width (% of median)   off the final median")
    for n in [5, 10, 20, 40, 80, 160]:
        first = full.samples[:n]
        median = float(np.median(first))
        low, high = bootstrap_median_ci(first)
        print(f"{n:4d}   {format_seconds(median):>21}   {100 * (high - low) / median:26.2f}   "
              f"{100 * abs(median - full.median) / full.median:18.2f}%")


analyze_dense_batch_sizes()
analyze_training_step()
analyze_noise_and_warmup()
analyze_repeats_needed()

# %% [markdown]
# ### What the numbers say
#
# Numbers from one run on the project's 2-core machine (yours will differ; the shape of the story should not):
#
# - **Fixed cost per call.** Dense(64, 128) took about 3 µs at batch 1 and 15 µs at batch 64, but 185 µs
#   at batch 1024: per example, 3 µs falls to 0.19 µs, and the achieved rate climbs from ~6 to ~90
#   GFLOP/s. Below a batch of about 64 the call is dominated by Python and NumPy overheads (argument
#   checks, creating the output Tensor, dispatch), not by arithmetic: batching is how a framework written
#   in Python gets close to the speed of BLAS.
# - **What the framework costs.** The digits training step took ~225 µs in TinyTorch against ~160 µs
#   for the same arithmetic written by hand (parameters agree after a step): about 1.4x, the price of the
#   recorded graph, the per-operation checks, the optimizer loop and the Module machinery. The interval
#   says how sure that ratio is; the README's benchmark reports the same order (1.34x).
# - **Warmup.** Without warmup the first call took 57 µs against a steady 17 µs (3x), and the next two
#   were still slow: cold caches and the interpreter specialising its bytecode. Those first samples
#   also show up as outliers. Two or three warmup calls remove them.
# - **The clock.** An empty function "takes" 140 ns when timed one call at a time and 36 ns per call in a
#   calibrated loop of 50,000: the difference is the cost of reading `perf_counter` twice. Anything under
#   a few microseconds must be timed with an inner loop.
# - **Noise.** The A/A test found no significant difference between a function and itself (ratio 1.02x,
#   interval 0.99x-1.06x): a 2% "speed-up" is within this machine's noise, so never trust one without
#   its interval.
# - **How many repeats.** The 95% interval of the median was 8% of the median wide after 5 samples, about
#   3% after 20 and 1.5% after 160: the width shrinks roughly like 1/sqrt(n). Twenty interleaved repeats are
#   enough to resolve differences of a few percent; resolving 1% needs hundreds, and a quieter machine.
#
# ## Summary
#
# You built a benchmark harness: robust statistics (median, IQR, Tukey outliers), a bootstrap interval
# for the median with a fixed seed, automatic inner-loop calibration, a comparison with an interval and a
# plain verdict, and an interleaved suite. Module 15 uses `benchmark` to time every layer of a model, and
# every claim about speed from here on comes with its interval.
