"""What one ``make bench`` measures and how big: read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""Where ``latest.json`` and ``throughput.png`` go (git-ignored)."""


SYSTEMS = ("interlock", "temporal", "metadata", "logs", "notifications", "artifacts", "tracing")
"""Everything ``make bench`` can measure, in the order it measures them."""


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    """Sizes and knobs of every workload.

    ``BENCH_SCALE`` multiplies the sizes; the default of 1 finishes in under 10
    minutes on a 2-core machine.
    """

    scale: float = 1.0
    """``BENCH_SCALE``. Default: 1."""
    window: int = 100
    """``BENCH_WINDOW``: runs kept in flight by the throughput workloads (a closed loop:
    a new run starts when one finishes). Default: 100."""
    throughput_s: float = 20.0
    """How long each throughput workload keeps starting runs: 20 s x scale (at least 3 s)."""
    max_runs: int = 100_000
    """Most runs a throughput workload starts, whatever the time. Default: 100,000."""
    timer_runs: int = 1000
    """Runs of the timer workload, each waiting on one delay: 1,000 x scale (at least 10)."""
    timer_delay_s: float = 5.0
    """The delay each timer run waits. Default: 5 s."""
    concurrent_timers: int = 10_000
    """``BENCH_CONCURRENT_TIMERS``: runs of workload (c2), each one timer, all set before
    the first fires (bench/timers.py): 10,000 x scale (at least 100); 0 skips (c2)."""
    start_runs: int = 3000
    """Run starts of the start-rate workload: 3,000 x scale (at least 100)."""
    start_duration_s: float = 15.0
    """Longest the start-rate workload keeps starting: 15 s x scale (at least 3 s)."""
    start_concurrency: int = 64
    """``BENCH_START_CONCURRENCY``: requests in flight when starting runs. Default: 64."""
    lone_runs: int = 100
    """Runs of the lone-run workload, one at a time: 100 x scale (at least 20)."""
    failure_runs: int = 500
    """Runs of the failure mix: 500 x scale (at least 50)."""
    flaky_share: float = 0.2
    """Share of failure-mix runs using the flaky task. Default: 0.2."""
    flaky_failure_rate: float = 0.5
    """Chance each flaky attempt fails. Default: 0.5."""
    flaky_max_attempts: int = 3
    """Attempts of a flaky task before it is dead-lettered. Default: 3."""
    backlog_runs: int = 1000
    """``BENCH_BACKLOG_RUNS``: runs of the backlog workload, all started at once; each is
    two 3 s sleeps. Default: 1,000 x scale (at least 100); issue 22's goal is 10,000."""
    backlog_sleep_s: float = 3.0
    """Each backlog task's sleep. Default: 3 s."""
    worker_slots: int = 100
    """``BENCH_WORKER_SLOTS``: tasks the stack's workers run at once (the ideal backlog
    drain is runs x 2 x sleep / slots). Default: 100, one worker's ``max_in_flight``."""
    drain_timeout_s: float = 120.0
    """How long a workload waits for its last runs before counting them lost. Default: 120 s."""
    systems: tuple[str, ...] = SYSTEMS
    """``BENCH_SYSTEMS`` (comma-separated): what to measure, from :data:`SYSTEMS`: Interlock
    and Temporal end to end, and each service's own benchmark (``metadata``: lag and
    search, bench/metadata.py; ``logs``: live tail, bench/logs.py; ``notifications``:
    deliveries, bench/notifications.py; ``artifacts``: transfers, bench/artifacts.py;
    ``tracing``: fan-out with tracing off and on, bench/tracing.py).
    Default: all of them."""
    temporal_setups: tuple[str, ...] = ("tuned", "default")
    """``BENCH_TEMPORAL_SETUPS`` (comma-separated names from ``bench.temporal_side.SETUPS``):
    the configurations of Temporal measured, each on a fresh dev server; ratios are against
    the best of them. Default: ``tuned,default``."""
    interlock_gateway: str | None = None
    """``BENCH_INTERLOCK_GATEWAY``: measure this running stack instead of starting fresh
    ones (then the broker is not fresh per workload). Default: start our own."""
    interlock_data_dir: str | None = None
    """``BENCH_INTERLOCK_DATA_DIR``: data folder of that running stack, to find its
    processes for CPU figures. Default: none (no CPU figure)."""
    artifact_large_mb: int = 1024
    """``BENCH_ARTIFACT_LARGE_MB``: the upload bench/artifacts.py watches the artifact
    service's memory during (issue 16's figure is for 1,024). Default: 1,024 x scale (at
    most 1,024, at least 64); at scale 1 it adds about a minute."""
    results_dir: Path = RESULTS_DIR
    """Where results are written. Default: ``bench/results``."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> BenchConfig:
        """The configuration the ``BENCH_*`` variables select."""
        scale = float(environ.get("BENCH_SCALE") or "1")
        if scale <= 0:
            raise ValueError(f"BENCH_SCALE={scale} must be positive")
        systems = tuple(
            name.strip()
            for name in (environ.get("BENCH_SYSTEMS") or ",".join(SYSTEMS)).split(",")
            if name.strip()
        )
        unknown = set(systems) - set(SYSTEMS)
        if unknown:
            raise ValueError(f"BENCH_SYSTEMS names unknown systems: {', '.join(sorted(unknown))}")
        setups = tuple(
            name.strip()
            for name in (environ.get("BENCH_TEMPORAL_SETUPS") or "tuned,default").split(",")
            if name.strip()
        )
        return cls(
            scale=scale,
            window=int(environ.get("BENCH_WINDOW") or "100"),
            throughput_s=max(3.0, 20.0 * scale),
            timer_runs=max(10, round(1000 * scale)),
            concurrent_timers=int(
                environ.get("BENCH_CONCURRENT_TIMERS") or max(100, round(10_000 * scale))
            ),
            start_runs=max(100, round(3000 * scale)),
            start_duration_s=max(3.0, 15.0 * scale),
            start_concurrency=int(environ.get("BENCH_START_CONCURRENCY") or "64"),
            lone_runs=max(20, round(100 * scale)),
            failure_runs=max(50, round(500 * scale)),
            backlog_runs=int(environ.get("BENCH_BACKLOG_RUNS") or max(100, round(1000 * scale))),
            worker_slots=int(environ.get("BENCH_WORKER_SLOTS") or "100"),
            systems=systems,
            temporal_setups=setups,
            interlock_gateway=environ.get("BENCH_INTERLOCK_GATEWAY") or None,
            interlock_data_dir=environ.get("BENCH_INTERLOCK_DATA_DIR") or None,
            artifact_large_mb=int(
                environ.get("BENCH_ARTIFACT_LARGE_MB") or max(64, round(1024 * min(scale, 1.0)))
            ),
        )
