"""Prometheus metrics of the metadata service (served on ``/metrics`` with the others)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import Counter, Histogram

from interlock.common.events import Event

__all__ = ["DOCUMENTS_WRITTEN", "EVENTS_APPLIED", "LOG_LINES", "WRITE_LAG", "observe_written"]

EVENTS_APPLIED = Counter(
    "interlock_metadata_events_total", "Events folded into execution documents."
)
DOCUMENTS_WRITTEN = Counter(
    "interlock_metadata_documents_written_total", "Execution documents written (bulk writes)."
)
LOG_LINES = Counter("interlock_metadata_log_lines_total", "Task log lines stored.")
WRITE_LAG = Histogram(
    "interlock_metadata_write_lag_seconds",
    "Time from the oldest event of a batch to its write, by store (executions, logs).",
    ["store"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)


def observe_written(store: str, events: Sequence[Event]) -> None:
    """Observe the write lag of a batch of ``events`` just written to ``store``."""
    if events:
        oldest = min(event.time for event in events)
        WRITE_LAG.labels(store).observe(max((datetime.now(UTC) - oldest).total_seconds(), 0.0))
