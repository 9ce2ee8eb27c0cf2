"""Prometheus metrics of the scheduler (served on ``/metrics`` with the others)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from interlock.common import topics
from interlock.common.events import Event, is_type
from interlock.scheduler.domain.run import RunState

__all__ = [
    "DEAD_LETTERS",
    "LANE_IDLE",
    "RUNS_FINISHED",
    "RUNS_STARTED",
    "RUN_DURATION",
    "TASKS_WAITING",
    "TASK_TRANSITIONS",
    "TIMERS_DUE",
    "TIMERS_FIRED",
    "TIMER_LATENESS",
    "TIMER_OVERDUE",
    "observe_emitted",
    "observe_fired",
]

TASKS_WAITING = Gauge(
    "interlock_scheduler_tasks_waiting",
    "Tasks dispatched and not yet picked up by a worker, by lane (the task topic: queue "
    "and priority band).",
    ["lane"],
)
LANE_IDLE = Gauge(
    "interlock_scheduler_lane_idle_seconds",
    "For lanes with waiting tasks: seconds since a worker last took or ran a task of the "
    "lane (as this instance saw); growing while tasks wait means no worker serves it.",
    ["lane"],
)
RUNS_STARTED = Counter("interlock_scheduler_runs_started_total", "Runs the scheduler started.")
RUNS_FINISHED = Counter(
    "interlock_scheduler_runs_finished_total",
    "Runs that ended, by status (succeeded, failed, cancelled).",
    ["status"],
)
RUN_DURATION = Histogram(
    "interlock_scheduler_run_duration_seconds",
    "Time from a run's request to its end, by status.",
    ["status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)
TASK_TRANSITIONS = Counter(
    "interlock_scheduler_task_transitions_total",
    "Task events the scheduler emitted: scheduled (first attempt), retried, republished "
    "(the reconciler's, for a task.scheduled that seemed lost), dead_lettered, settled "
    "(skipped or cancelled).",
    ["transition"],
)
TIMERS_FIRED = Counter(
    "interlock_scheduler_timers_fired_total", "Durable timers fired, by kind.", ["kind"]
)
TIMER_LATENESS = Histogram(
    "interlock_scheduler_timer_lateness_seconds",
    "Time from a timer's due time to its firing, by kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
TIMERS_DUE = Gauge(
    "interlock_scheduler_timers_due",
    "Timers due and not fired yet (counted up to a bound), at the reconciler's last pass.",
)
TIMER_OVERDUE = Gauge(
    "interlock_scheduler_timer_overdue_seconds",
    "How long the earliest timer has been due, at the timer loop's last pass (0: none due).",
)
DEAD_LETTERS = Gauge(
    "interlock_scheduler_dead_letters",
    "Dead letters kept (counted up to a bound), at the reconciler's last pass.",
)

_RUN_ENDS = {
    topics.WORKFLOW_COMPLETED.name: "succeeded",
    topics.WORKFLOW_FAILED.name: "failed",
    topics.WORKFLOW_CANCELLED.name: "cancelled",
}


def observe_emitted(runs: Iterable[RunState], now: datetime, *, republished: bool = False) -> None:
    """Count what the events ``runs`` are about to commit say: ended runs, task moves.

    Args:
        runs: The runs being saved, with their new events.
        now: The time of the change.
        republished: The reconciler re-publishes lost ``task.scheduled`` events.
    """
    for run in runs:
        for event in run.events:
            _observe_event(run, event, now, republished)


def _observe_event(run: RunState, event: Event, now: datetime, republished: bool) -> None:
    name = event.type.name
    status = _RUN_ENDS.get(name)
    if status is not None:
        RUNS_FINISHED.labels(status).inc()
        requested_at = run.requested_at or run.created_at
        if requested_at is not None:
            RUN_DURATION.labels(status).observe(max((now - requested_at).total_seconds(), 0.0))
    elif is_type(event, topics.TASK_SCHEDULED):
        if republished:
            TASK_TRANSITIONS.labels("republished").inc()
        else:
            TASK_TRANSITIONS.labels("scheduled" if event.payload.attempt <= 1 else "retried").inc()
    elif name == topics.TASK_DEAD_LETTERED.name:
        TASK_TRANSITIONS.labels("dead_lettered").inc()
    elif name == topics.TASK_SETTLED.name:
        TASK_TRANSITIONS.labels("settled").inc()


def observe_fired(due: Sequence[tuple[str, datetime]], now: datetime) -> None:
    """Count timers fired at ``now``, given each one's ``(kind, due_at)``."""
    for kind, due_at in due:
        TIMERS_FIRED.labels(kind).inc()
        TIMER_LATENESS.labels(kind).observe(max((now - due_at).total_seconds(), 0.0))
