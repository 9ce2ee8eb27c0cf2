"""The benchmark's statistics, on numbers worked out by hand (no servers)."""

from datetime import UTC, datetime, timedelta

import pytest

from bench import stats


def test_percentile_interpolates_between_ranks_like_numpy_linear() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # sorted: 1 2 3 4
    assert stats.percentile(values, 0) == 1.0
    assert stats.percentile(values, 100) == 4.0
    assert stats.percentile(values, 50) == pytest.approx(2.5)
    assert stats.percentile(values, 95) == pytest.approx(3.85)


def test_percentile_of_one_sample_is_that_sample_and_of_none_is_none() -> None:
    assert stats.percentile([7.0], 99) == 7.0
    assert stats.percentile([], 50) is None


def test_percentile_refuses_out_of_range() -> None:
    with pytest.raises(ValueError, match="outside"):
        stats.percentile([1.0], 101)


def test_latency_percentiles_are_in_milliseconds() -> None:
    durations = [i / 1000 for i in range(1, 101)]  # 1 ms .. 100 ms
    summary = stats.latency_percentiles_ms(durations)
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p95_ms"] == pytest.approx(95.05)
    assert summary["p99_ms"] == pytest.approx(99.01)
    assert stats.latency_percentiles_ms([]) == {"p50_ms": None, "p95_ms": None, "p99_ms": None}


def test_lateness_is_actual_minus_intended() -> None:
    scheduled = datetime(2026, 1, 1, 9, 0, 0, tzinfo=UTC)
    intended = scheduled + timedelta(seconds=5)
    assert stats.lateness_s(intended, intended + timedelta(milliseconds=250)) == 0.25
    assert stats.lateness_s(intended, intended - timedelta(milliseconds=10)) == -0.01


def test_lateness_percentiles_name_their_keys() -> None:
    summary = stats.lateness_percentiles_ms([0.1, 0.2, 0.3])
    assert summary == {
        "lateness_p50_ms": 200.0,
        "lateness_p95_ms": pytest.approx(290.0),
        "lateness_p99_ms": pytest.approx(298.0),
    }


def test_rate_and_ratio_handle_missing_and_zero() -> None:
    assert stats.rate_per_s(300, 2.0) == 150.0
    assert stats.rate_per_s(300, 0.0) is None
    assert stats.ratio(1500.0, 45.0) == pytest.approx(33.333, rel=1e-3)
    assert stats.ratio(None, 45.0) is None
    assert stats.ratio(10.0, 0.0) is None
    assert stats.ratio(10.0, None) is None


def test_cpu_per_thousand_tasks() -> None:
    assert stats.cpu_s_per_1000_tasks(12.0, 6000) == pytest.approx(2.0)
    assert stats.cpu_s_per_1000_tasks(1.0, 0) is None


def test_expected_dead_letters_is_failure_rate_to_the_attempts() -> None:
    assert stats.dead_letter_probability(0.5, 3) == 0.125
    assert stats.expected_dead_letters(200, 0.5, 3) == 25.0
    assert stats.expected_dead_letters(200, 0.0, 3) == 0.0
    with pytest.raises(ValueError, match="max_attempts"):
        stats.dead_letter_probability(0.5, 0)
    with pytest.raises(ValueError, match="failure rate"):
        stats.dead_letter_probability(1.5, 3)


def test_binomial_range_is_three_sigmas_clipped() -> None:
    # 200 flaky runs, p = 0.125: mean 25, sigma sqrt(21.875) = 4.677 -> 25 +/- 14.03
    assert stats.binomial_range(200, 0.125) == (10, 40)
    assert stats.binomial_range(4, 0.5) == (0, 4)
    assert stats.binomial_range(0, 0.125) == (0, 0)


def test_throughput_timeline_bins_finishes_into_tasks_per_second() -> None:
    timeline = stats.throughput_timeline([0.1, 0.5, 1.2, 3.9], tasks_per_run=3)
    assert timeline == [(0.0, 6.0), (1.0, 3.0), (2.0, 0.0), (3.0, 3.0)]
    assert stats.throughput_timeline([], tasks_per_run=3) == []
    assert stats.throughput_timeline([0.2, 0.3], 12, bin_s=0.5) == [(0.0, 48.0)]
