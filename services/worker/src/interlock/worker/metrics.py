"""Prometheus metrics of the worker (served on ``/metrics`` with the others)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "DRAINS",
    "DRAIN_ABORTED",
    "HEARTBEATS_SENT",
    "PUBLISH_BATCH",
    "QUEUE_WAIT",
    "REPLAYED_OUTCOMES",
    "SLOTS_FREE",
    "TASKS_FINISHED",
    "TASKS_RUNNING",
    "TASK_DURATION",
]

TASKS_RUNNING = Gauge(
    "interlock_worker_tasks_running",
    'Tasks running now, by type and queue (the default queue is "default").',
    ["type", "queue"],
)
TASKS_FINISHED = Counter(
    "interlock_worker_tasks_total",
    "Attempts finished, by type and outcome (completed, failed, cancelled, shutdown).",
    ["type", "outcome"],
)
TASK_DURATION = Histogram(
    "interlock_worker_task_duration_seconds",
    "Time from an attempt's start to its outcome, by type and outcome.",
    ["type", "outcome"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0),
)
PUBLISH_BATCH = Histogram(
    "interlock_worker_publish_batch_events",
    "Events per publish call of the worker's reporter.",
    buckets=(1, 2, 5, 10, 50, 100, 250, 500, 1000),
)
QUEUE_WAIT = Histogram(
    "interlock_worker_queue_wait_seconds",
    "Time from an attempt's task.scheduled event to its start on this worker, by type.",
    ["type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0, 600.0),
)
SLOTS_FREE = Gauge(
    "interlock_worker_slots_free",
    "Tasks this process could start now (its workers' max_in_flight less those running).",
)
HEARTBEATS_SENT = Counter(
    "interlock_worker_heartbeats_total", "Heartbeats sent for running attempts."
)
DRAINS = Counter(
    "interlock_worker_drains_total", "Times a worker drained: stopped fetching and shut down."
)
DRAIN_ABORTED = Counter(
    "interlock_worker_drain_aborted_total",
    "Attempts still running when a drain's timeout ran out (aborted, retried elsewhere).",
)
REPLAYED_OUTCOMES = Counter(
    "interlock_worker_replayed_outcomes_total",
    "Copies of recently finished attempts answered with their outcome instead of a second run.",
)
