"""Tests of tinytorch.core.benchmarking (the exported package).

Every timing here comes from a fake clock that moves only when the code under test says so: the
statistics, the calibration, the interleaving and the verdicts are checked exactly, never against real
elapsed time.
"""

import numpy as np
import pytest

from tinytorch.core.benchmarking import (
    BenchmarkResult,
    BenchmarkSuite,
    Comparison,
    benchmark,
    bootstrap_median_ci,
    calibrate,
    compare,
    format_seconds,
    summarize,
    time_calls,
)


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.readings = 0

    def __call__(self):
        self.readings += 1
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.mark.parametrize("seconds, text", [(1.5, "1.5 s"), (0.0123, "12.3 ms"), (4.56e-5, "45.6 us"),
                                           (7.5e-8, "75 ns"), (0.0, "0 ns"), (120.0, "120 s")])
def test_format_seconds_picks_a_unit_per_value(seconds, text):
    assert format_seconds(seconds) == text


def test_summarize_matches_the_definitions_on_random_data():
    rng = np.random.default_rng(0)
    samples = rng.lognormal(0.0, 0.5, 56)
    # ... and one outlier whatever the draw: q3 + 1.5 IQR <= 2.5 max < 10 max (57 draws alone have none in
    # about 1 run out of 10)
    samples = np.append(samples, 10 * samples.max())
    r = summarize(samples, inner_loops=3, name="x")
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    assert (r.q1, r.median, r.q3) == (q1, med, q3) and r.iqr == q3 - q1
    assert r.mean == pytest.approx(samples.mean()) and r.std == pytest.approx(samples.std(ddof=1))
    assert (r.min, r.max) == (samples.min(), samples.max())
    fences = (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1))
    assert r.outliers == sum(1 for s in samples if s < fences[0] or s > fences[1])
    assert r.outliers > 0
    assert (r.ci_low, r.ci_high) == bootstrap_median_ci(samples)
    assert isinstance(r, BenchmarkResult) and r.repeats == 57 and r.confidence == 0.95
    np.testing.assert_array_equal(r.samples, samples)


def test_summarize_keeps_the_sample_order_and_copies_to_float64():
    r = summarize([3, 1, 2])
    assert list(r.samples) == [3.0, 1.0, 2.0] and r.samples.dtype == np.float64


@pytest.mark.parametrize("bad", [[1.0], [], [[1.0, 2.0]], [1.0, -1.0], [1.0, np.inf]])
def test_summarize_rejects_bad_samples_naming_them(bad):
    with pytest.raises(ValueError, match="timings"):
        summarize(bad)


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1, True])
def test_confidence_must_be_in_the_open_unit_interval(confidence):
    with pytest.raises(ValueError, match="confidence"):
        summarize([1.0, 2.0, 3.0], confidence=confidence)


def test_bootstrap_interval_depends_on_the_seed_only_through_resampling():
    samples = np.random.default_rng(1).exponential(1.0, 30)
    assert bootstrap_median_ci(samples, seed=1) == bootstrap_median_ci(samples, seed=1)
    # Different seeds resample differently, yet two of them can give the same interval: its ends are order
    # statistics of the resampled medians (with 2000 resamples 43% of pairs of seeds agree). With 100
    # resamples no interval came up for more than 3% of 200 seeds (on each of 100 data sets), so ten seeds
    # all agree with probability below 0.05**9 = 2e-12.
    assert len({bootstrap_median_ci(samples, resamples=100, seed=s) for s in range(1, 11)}) > 1
    low, high = bootstrap_median_ci(samples)
    assert samples.min() <= low <= np.median(samples) <= high <= samples.max()


def test_bootstrap_interval_of_a_shifted_sample_is_shifted():
    samples = np.random.default_rng(2).exponential(1.0, 25)
    low, high = bootstrap_median_ci(samples)
    low2, high2 = bootstrap_median_ci(samples + 10.0)
    assert low2 == pytest.approx(low + 10.0) and high2 == pytest.approx(high + 10.0)


def test_time_calls_reads_the_clock_twice_and_calls_fn_loops_times():
    clock, seen = FakeClock(), []

    def fn(a, b):
        seen.append((a, b))
        clock.advance(0.5)

    assert time_calls(fn, (1, 2), 6, clock) == 3.0
    assert seen == [(1, 2)] * 6 and clock.readings == 2


def test_calibrate_tries_one_two_five_and_stops_at_max_loops():
    clock, tried = FakeClock(), []
    counter = {"calls": 0}

    def fn():
        counter["calls"] += 1
        clock.advance(1.0)

    for max_loops in (30, 1):
        counter["calls"] = 0
        loops = calibrate(fn, min_time=1e9, timer=clock, max_loops=max_loops)
        tried.append((loops, counter["calls"]))
    assert tried == [(30, 1 + 2 + 5 + 10 + 20 + 30), (1, 1)]
    assert calibrate(fn, min_time=0.0, timer=clock) == 1
    assert calibrate(fn, min_time=7.0, timer=clock) == 10


def test_benchmark_uses_two_clock_readings_per_sample():
    clock = FakeClock()
    r = benchmark(lambda: clock.advance(2.0), repeats=7, warmup=0, inner_loops=3, timer=clock)
    assert clock.readings == 14 and np.all(r.samples == 2.0) and r.inner_loops == 3


def test_benchmark_passes_arguments_and_names_the_result():
    clock, seen = FakeClock(), []

    def step(x, scale):
        seen.append(x * scale)
        clock.advance(1.0)

    r = benchmark(step, 2, 3, repeats=2, warmup=1, min_time=0.0, timer=clock)
    assert set(seen) == {6} and r.name == "step"
    assert benchmark(step, 1, 1, repeats=2, timer=clock, name="custom").name == "custom"


def test_benchmark_of_a_tiny_function_calibrates_many_calls():
    clock = FakeClock()
    r = benchmark(lambda: clock.advance(1e-7), repeats=3, warmup=0, min_time=1e-3, timer=clock)
    assert r.inner_loops == 10_000 and r.median == pytest.approx(1e-7)


@pytest.mark.parametrize("kwargs, error, fragment", [
    ({"repeats": 0}, ValueError, "repeats"), ({"repeats": "5"}, TypeError, "repeats"),
    ({"warmup": -2}, ValueError, "warmup"), ({"min_time": float("nan")}, ValueError, "min_time"),
    ({"inner_loops": 0}, ValueError, "inner_loops"),
])
def test_benchmark_rejects_bad_settings(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        benchmark(lambda: None, **kwargs)


def test_compare_accepts_arrays_and_results_alike():
    rng = np.random.default_rng(4)
    a, b = 3.0 + rng.uniform(0, 0.1, 25), 1.0 + rng.uniform(0, 0.1, 25)
    from_arrays = compare(a, b)
    from_results = compare(summarize(a, name="a"), summarize(b, name="b"))
    assert isinstance(from_arrays, Comparison)
    assert from_arrays.verdict == from_results.verdict
    assert from_arrays.ratio == pytest.approx(np.median(a) / np.median(b))
    assert from_arrays.low <= from_arrays.ratio <= from_arrays.high


def test_compare_verdicts_in_plain_language():
    rng = np.random.default_rng(5)
    base = summarize(2.0 + rng.uniform(0, 0.02, 20), name="naive")
    quick = summarize(1.0 + rng.uniform(0, 0.01, 20), name="fast")
    c = compare(base, quick)
    assert str(c) == f"fast is {c.ratio:.2f}x faster than naive ({c.low:.2f}x-{c.high:.2f}x)"
    s = compare(quick, base)
    assert str(s) == f"naive is {1 / s.ratio:.2f}x slower than fast ({1 / s.high:.2f}x-{1 / s.low:.2f}x)"
    # The same noisy timings in another order: the medians are equal and, by symmetry, each resampled ratio
    # is as likely below 1 as above, so the 95% interval misses 1 only if fewer than 2.5% of 2000 fall on one
    # side: probability < 2 exp(-2 * 2000 * 0.475**2) = 1e-392 (Hoeffding). (Two independent samples of one
    # distribution would be called different about 1 time in 20: that is what a 95% interval means.)
    noisy_a = rng.uniform(1, 2, 15)
    n = compare(noisy_a, rng.permutation(noisy_a))
    assert not n.significant and str(n).startswith("no significant difference")


def test_compare_needs_positive_medians():
    with pytest.raises(ValueError, match="positive median"):
        compare([0.0, 0.0, 1.0], [1.0, 1.0, 1.0])


def test_suite_interleaves_three_cases_round_robin():
    clock, log = FakeClock(), []

    def case(name, cost):
        def fn():
            log.append(name)
            clock.advance(cost)
        return fn

    suite = BenchmarkSuite(repeats=3, warmup=2, min_time=0.0, timer=clock)
    for name, cost in [("a", 1.0), ("b", 2.0), ("c", 3.0)]:
        suite.add(name, case(name, cost))
    results = suite.run()
    assert suite.order == ["a", "b", "c"] * 3
    # per case: warmup (2 calls) then calibration (1 call), case after case; then the rounds
    assert log == ["a"] * 3 + ["b"] * 3 + ["c"] * 3 + ["a", "b", "c"] * 3
    assert [results[n].median for n in "abc"] == [1.0, 2.0, 3.0]
    table = suite.table(baseline="c")
    assert "vs c" in table and "3.00x faster" in table and "1.50x faster" in table


def test_suite_table_marks_insignificant_differences():
    rng = np.random.default_rng(6)
    # Both cases take the same 12 durations, in different orders (after one call to calibrate): equal medians,
    # and by symmetry each resampled ratio is as likely below 1 as above, so the 95% interval misses 1 with
    # probability below 2 exp(-2 * 2000 * 0.475**2) (Hoeffding). Independent draws of one distribution, as
    # before, were called different 9 times in 181 seeds: that is what a 95% interval does.
    durations = rng.uniform(1.0, 2.0, 12)
    x_noise, y_noise = iter([1.5, *durations]), iter([1.5, *rng.permutation(durations)])
    clock = FakeClock()
    suite = BenchmarkSuite(repeats=12, warmup=0, min_time=0.0, timer=clock)
    suite.add("x", lambda: clock.advance(next(x_noise))).add("y", lambda: clock.advance(next(y_noise)))
    suite.run()
    assert "(not significant)" in suite.table()


def test_suite_errors_name_the_problem():
    suite = BenchmarkSuite()
    with pytest.raises(ValueError, match="no cases"):
        suite.run()
    with pytest.raises(ValueError, match="call run"):
        suite.table()
    suite.add("one", lambda: None)
    with pytest.raises(ValueError, match="'one'"):
        suite.add("one", lambda: None)
    with pytest.raises(TypeError, match="int"):
        suite.add("two", 42)
    with pytest.raises(TypeError, match="names"):
        suite.add("", lambda: None)


def test_suite_verbose_run_prints_the_table(capsys):
    clock = FakeClock()
    BenchmarkSuite(repeats=2, warmup=0, min_time=0.0, timer=clock).add("only", lambda: clock.advance(1.0)).run(
        verbose=True)
    out = capsys.readouterr().out
    assert "only" in out and "baseline" in out


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
