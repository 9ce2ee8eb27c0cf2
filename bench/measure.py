"""How a workload is driven and summarized, the same way for both systems.

Throughput workloads are a closed loop: ``window`` lanes each start a run, wait for
it to finish and start the next, until the time is up. Latency is start to finish as
each system's server recorded it (so both are measured by the same kind of clock).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from bench import stats

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One finished run, with its server-side timestamps."""

    run_id: str
    started_at: datetime
    """When the server accepted the start."""
    finished_at: datetime | None
    """When it reached a final status (``None`` if it never did)."""
    status: str
    """Final status, ``succeeded`` when it completed."""


async def closed_loop(
    one_run: Callable[[], Awaitable[RunRecord]],
    *,
    window: int,
    duration_s: float,
    max_runs: int,
    on_finished: Callable[[], None],
) -> list[RunRecord]:
    """Keep ``window`` runs in flight for ``duration_s``, then let the last ones finish.

    Args:
        one_run: Starts one run and returns once it finished.
        window: Runs in flight.
        duration_s: How long new runs are started.
        max_runs: Most runs started in all.
        on_finished: Called after each run finished (progress display).

    Returns:
        Every run, in the order they finished.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration_s
    records: list[RunRecord] = []
    started = 0

    async def lane() -> None:
        nonlocal started
        while loop.time() < deadline and started < max_runs:
            started += 1
            records.append(await one_run())
            on_finished()

    await asyncio.gather(*(lane() for _ in range(window)))
    return records


async def bounded_map(
    items: Iterable[T], call: Callable[[T], Awaitable[R]], *, concurrency: int
) -> list[R]:
    """``call`` on each item with at most ``concurrency`` in flight; results in item order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> R:
        async with gate:
            return await call(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


@dataclass(frozen=True, kw_only=True)
class ThroughputSummary:
    """A throughput workload's figures and its timeline for the plot."""

    figures: dict[str, Any]
    """``runs_per_s``, ``tasks_per_s``, ``p50_ms``, ``p95_ms``, ``p99_ms``,
    ``cpu_s_per_1000_tasks`` and the workload's size."""
    timeline: list[tuple[float, float]]
    """``(seconds since the first start, tasks/s)``, one point per second."""


def summarize_throughput(
    records: Sequence[RunRecord], *, tasks_per_run: int, cpu_s: float | None, window: int
) -> ThroughputSummary:
    """Throughput, latency percentiles and CPU cost of the runs that succeeded.

    Throughput is succeeded runs over the time from the first start to the last
    finish.
    """
    done = [r for r in records if r.status == "succeeded" and r.finished_at is not None]
    figures: dict[str, Any] = {
        "runs": len(done),
        "not_succeeded": len(records) - len(done),
        "tasks_per_run": tasks_per_run,
        "window": window,
    }
    if not done:
        empty = dict.fromkeys(("runs_per_s", "tasks_per_s", "cpu_s_per_1000_tasks"))
        return ThroughputSummary(
            figures={**figures, **empty, **stats.latency_percentiles_ms([])}, timeline=[]
        )
    first = min(r.started_at for r in done)
    finishes = [r.finished_at for r in done if r.finished_at is not None]
    elapsed = (max(finishes) - first).total_seconds()
    runs_per_s = stats.rate_per_s(len(done), elapsed)
    tasks = len(done) * tasks_per_run
    durations = [
        (end - r.started_at).total_seconds() for r, end in zip(done, finishes, strict=True)
    ]
    figures.update(
        {
            "duration_s": round(elapsed, 3),
            "runs_per_s": _round(runs_per_s),
            "tasks_per_s": _round(None if runs_per_s is None else runs_per_s * tasks_per_run),
            **stats.latency_percentiles_ms(durations),
            "cpu_s": _round(cpu_s),
            "cpu_s_per_1000_tasks": _round(
                None if cpu_s is None else stats.cpu_s_per_1000_tasks(cpu_s, tasks)
            ),
        }
    )
    timeline = stats.throughput_timeline(
        [(end - first).total_seconds() for end in finishes], tasks_per_run
    )
    return ThroughputSummary(figures=figures, timeline=timeline)


def summarize_timers(
    lateness_values_s: Sequence[float], *, runs: int, delay_s: float, cpu_s: float | None
) -> dict[str, Any]:
    """Timer lateness percentiles, with how many of ``runs`` fired at all."""
    return {
        "runs": runs,
        "fired": len(lateness_values_s),
        "delay_s": delay_s,
        **stats.lateness_percentiles_ms(lateness_values_s),
        "cpu_s": _round(cpu_s),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
