"""Pure statistics of a benchmark: percentiles, lateness, rates, ratios, expectations.

No I/O here: the runner feeds measured numbers in and writes what comes out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile of ``values``, interpolated linearly between ranks.

    Same definition as NumPy's default (``method="linear"``).

    Args:
        values: Samples, in any order.
        q: Percentile in [0, 100].

    Returns:
        The percentile, or ``None`` when there are no samples.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside [0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_percentiles_ms(durations_s: Sequence[float]) -> dict[str, float | None]:
    """p50, p95 and p99 of durations given in seconds, in milliseconds.

    Returns:
        ``{"p50_ms", "p95_ms", "p99_ms"}`` (values ``None`` without samples).
    """
    return {f"p{q}_ms": _ms(percentile(durations_s, q)) for q in (50, 95, 99)}


def lateness_s(intended: datetime, actual: datetime) -> float:
    """How late a timer fired: actual fire time minus intended fire time, in seconds.

    Negative when it fired early. Both times must be timezone-aware.
    """
    return (actual - intended).total_seconds()


def lateness_percentiles_ms(lateness_values_s: Sequence[float]) -> dict[str, float | None]:
    """p50, p95 and p99 of timer lateness, in milliseconds.

    Returns:
        ``{"lateness_p50_ms", "lateness_p95_ms", "lateness_p99_ms"}``.
    """
    return {f"lateness_p{q}_ms": _ms(percentile(lateness_values_s, q)) for q in (50, 95, 99)}


def rate_per_s(count: float, elapsed_s: float) -> float | None:
    """``count`` per second over ``elapsed_s`` (``None`` when no time passed)."""
    if elapsed_s <= 0:
        return None
    return count / elapsed_s


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or ``None`` when either is missing or the divisor is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def cpu_s_per_1000_tasks(cpu_s: float, tasks: int) -> float | None:
    """CPU seconds spent per 1,000 tasks completed (``None`` without tasks)."""
    if tasks <= 0:
        return None
    return cpu_s / tasks * 1000


def dead_letter_probability(failure_rate: float, max_attempts: int) -> float:
    """Chance that a task failing independently with ``failure_rate`` fails every attempt."""
    if not 0 <= failure_rate <= 1:
        raise ValueError(f"failure rate {failure_rate} is outside [0, 1]")
    if max_attempts < 1:
        raise ValueError(f"max_attempts {max_attempts} is below 1")
    return failure_rate**max_attempts


def expected_dead_letters(flaky_runs: int, failure_rate: float, max_attempts: int) -> float:
    """Expected number of flaky runs whose task is dead-lettered (0.125 x runs for 0.5 and 3)."""
    return flaky_runs * dead_letter_probability(failure_rate, max_attempts)


def binomial_range(trials: int, probability: float, sigmas: float = 3.0) -> tuple[int, int]:
    """Counts within ``sigmas`` standard deviations of a binomial's mean, clipped to [0, n].

    Args:
        trials: Number of independent trials.
        probability: Chance of a success per trial.
        sigmas: Half-width of the range in standard deviations. Default: 3.

    Returns:
        ``(low, high)``, inclusive whole counts.
    """
    mean = trials * probability
    spread = sigmas * math.sqrt(trials * probability * (1 - probability))
    return max(0, math.floor(mean - spread)), min(trials, math.ceil(mean + spread))


def throughput_timeline(
    finish_offsets_s: Sequence[float], tasks_per_run: int, bin_s: float = 1.0
) -> list[tuple[float, float]]:
    """Tasks per second over time, from the moments runs finished.

    Args:
        finish_offsets_s: When each run finished, in seconds since the workload began.
        tasks_per_run: Tasks each finished run completed.
        bin_s: Width of each time bin in seconds. Default: 1.

    Returns:
        ``(bin start s, tasks/s)`` for every bin from 0 to the last finish, empty
        bins included.
    """
    if bin_s <= 0:
        raise ValueError(f"bin width {bin_s} must be positive")
    if not finish_offsets_s:
        return []
    bins = [0] * (math.floor(max(max(finish_offsets_s), 0.0) / bin_s) + 1)
    for offset in finish_offsets_s:
        bins[math.floor(max(offset, 0.0) / bin_s)] += 1
    return [(index * bin_s, count * tasks_per_run / bin_s) for index, count in enumerate(bins)]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
