"""Prometheus metrics of the workflow service (served on ``/metrics`` with the others)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["CONTROL_ACTIONS", "IDEMPOTENT_REPLAYS", "RUNS_STARTED"]

RUNS_STARTED = Counter(
    "interlock_workflow_runs_started_total",
    "Runs created by a start request (single or batch).",
)
IDEMPOTENT_REPLAYS = Counter(
    "interlock_workflow_idempotent_replays_total",
    "Start requests answered with the run an earlier request of the same Idempotency-Key created.",
)
CONTROL_ACTIONS = Counter(
    "interlock_workflow_control_actions_total",
    "Control requests applied to runs, by action (cancel, pause, resume, retry).",
    ["action"],
)
