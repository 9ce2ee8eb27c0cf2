"""Prometheus metrics of the scheduler (served on ``/metrics`` with the others)."""

from __future__ import annotations

from prometheus_client import Gauge

__all__ = ["LANE_IDLE", "TASKS_WAITING"]

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
