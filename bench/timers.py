"""Workload (c2): many timers pending at once, sized and summarized the same way on both sides.

Every run waits on one timer, and every timer is set before the first one fires: the
delay is the base delay (5 s) plus room for all the starts, from the start rate the
same invocation measured for that system, so all the timers are pending together
and fall due at the pace their starts came in. Lateness is, as in (c), each timer's
actual fire time minus its intended one (the time it was set + the delay).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench import stats
from bench.measure import summarize_timers

START_ROOM = 1.5
"""Room left for the starts, as a multiple of the time the measured start rate needs."""
FALLBACK_STARTS_PER_S = 100.0
"""The start rate assumed when the invocation measured none (a slow start, on purpose)."""


def concurrent_delay_s(base_s: float, timers: int, starts_per_s: float | None) -> float:
    """The delay of workload (c2): ``base_s`` plus room to start every timer, whole seconds.

    Args:
        base_s: The delay of workload (c) (``BenchConfig.timer_delay_s``).
        timers: How many runs (c2) starts.
        starts_per_s: The system's start rate measured in the same invocation (``None``
            when none was: :data:`FALLBACK_STARTS_PER_S` then).
    """
    rate = starts_per_s if starts_per_s and starts_per_s > 0 else FALLBACK_STARTS_PER_S
    return float(math.ceil(base_s + START_ROOM * timers / rate))


@dataclass(frozen=True, kw_only=True)
class TimerTimes:
    """One timer as its system recorded it."""

    set_at: datetime
    due_at: datetime
    """When it should fire: ``set_at`` + the delay."""
    fired_at: datetime


def summarize_concurrent_timers(
    times: Sequence[TimerTimes], *, runs: int, delay_s: float, cpu_s: float | None
) -> dict[str, Any]:
    """Lateness percentiles of (c2), and whether every timer was set before the first fired.

    ``set_per_s`` is how fast the timers were set, so also how fast they fell due;
    ``fired_per_s`` is how fast they fired, from the first one due to the last fire. When
    the second is below the first the system could not keep up, and the lateness grows
    along the timers by the difference: that, not a late start, sets the median.
    """
    lateness = [stats.lateness_s(timer.due_at, timer.fired_at) for timer in times]
    figures = summarize_timers(lateness, runs=runs, delay_s=delay_s, cpu_s=cpu_s)
    if not times:
        return {
            **figures,
            "set_span_s": None,
            "set_per_s": None,
            "fired_per_s": None,
            "all_set_before_first_fire": None,
        }
    first_set = min(timer.set_at for timer in times)
    last_set = max(timer.set_at for timer in times)
    set_span_s = (last_set - first_set).total_seconds()
    rate = stats.rate_per_s(len(times), set_span_s)
    fire_span_s = (
        max(timer.fired_at for timer in times) - min(timer.due_at for timer in times)
    ).total_seconds()
    fire_rate = stats.rate_per_s(len(times), fire_span_s)
    return {
        **figures,
        "set_span_s": round(set_span_s, 3),
        "set_per_s": None if rate is None else round(rate, 1),
        "fired_per_s": None if fire_rate is None else round(fire_rate, 1),
        "all_set_before_first_fire": last_set < min(timer.fired_at for timer in times),
    }
