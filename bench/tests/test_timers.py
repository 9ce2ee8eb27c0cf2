"""Workload (c2)'s delay and summary, on hand-made times (no servers)."""

from datetime import UTC, datetime, timedelta

import pytest

from bench.timers import (
    FALLBACK_STARTS_PER_S,
    TimerTimes,
    concurrent_delay_s,
    summarize_concurrent_timers,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _timer(set_s: float, fired_s: float, delay_s: float = 10.0) -> TimerTimes:
    set_at = T0 + timedelta(seconds=set_s)
    return TimerTimes(
        set_at=set_at,
        due_at=set_at + timedelta(seconds=delay_s),
        fired_at=T0 + timedelta(seconds=fired_s),
    )


def test_the_delay_leaves_room_for_every_start_at_the_measured_rate() -> None:
    assert concurrent_delay_s(5.0, 10_000, 5_000.0) == 8.0  # 5 + 1.5 x 2 s
    assert concurrent_delay_s(5.0, 10_000, 300.0) == 55.0  # 5 + 50 s, rounded up


def test_without_a_measured_rate_the_delay_assumes_a_slow_start() -> None:
    expected = 5.0 + 1.5 * 1_000 / FALLBACK_STARTS_PER_S
    assert concurrent_delay_s(5.0, 1_000, None) == expected
    assert concurrent_delay_s(5.0, 1_000, 0.0) == expected


def test_summary_measures_lateness_against_each_timers_own_due_time() -> None:
    times = [_timer(0.0, 10.002), _timer(1.0, 11.004), _timer(2.0, 12.010)]
    figures = summarize_concurrent_timers(times, runs=4, delay_s=10.0, cpu_s=None)
    assert figures["runs"] == 4 and figures["fired"] == 3
    assert figures["lateness_p50_ms"] == pytest.approx(4.0)
    assert figures["set_span_s"] == 2.0
    assert figures["set_per_s"] == 1.5
    assert figures["all_set_before_first_fire"] is True


def test_summary_tells_how_fast_the_timers_fired_from_the_first_due() -> None:
    # Due every 0.25 s but fired every 0.5 s: each one later than the one before.
    times = [_timer(0.25 * index, 10.0 + 0.5 * index) for index in range(5)]
    figures = summarize_concurrent_timers(times, runs=5, delay_s=10.0, cpu_s=None)
    assert figures["set_per_s"] == 5.0
    assert figures["fired_per_s"] == 2.5
    assert figures["lateness_p50_ms"] == pytest.approx(500.0)


def test_summary_tells_when_a_timer_fired_before_the_last_was_set() -> None:
    times = [_timer(0.0, 10.0), _timer(11.0, 21.0)]
    figures = summarize_concurrent_timers(times, runs=2, delay_s=10.0, cpu_s=1.0)
    assert figures["all_set_before_first_fire"] is False


def test_summary_of_no_timers_has_no_figures() -> None:
    figures = summarize_concurrent_timers([], runs=5, delay_s=10.0, cpu_s=None)
    assert figures["fired"] == 0
    assert figures["lateness_p99_ms"] is None
    assert figures["fired_per_s"] is None
    assert figures["all_set_before_first_fire"] is None
