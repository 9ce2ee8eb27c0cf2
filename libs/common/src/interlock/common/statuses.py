"""The one vocabulary of run and task statuses, shared by every service.

The workflow service shows a run's status, the scheduler decides it and each task's,
metadata and notification report them: all use these names (the ``tasks.v1`` proto
enums carry the same values on the wire). Which moves between statuses are allowed is
the scheduler's domain (``interlock.scheduler.domain.states``) and the workflow
service's (``interlock.workflow.domain.runs``); the names live here.

Runs::

    pending ─▶ running ─▶ succeeded | failed | cancelled
                  ▲ │
                  │ ▼
                paused

Tasks::

    pending ─▶ scheduled ─▶ running ─▶ succeeded
       │                       │
       │                       └─▶ failed ─▶ retrying ─▶ scheduled …
       │                                  └─▶ dead_lettered
       └─▶ skipped | cancelled (from pending, scheduled, running or retrying)
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ENDED_RUN", "TERMINAL_TASK", "RunStatus", "TaskStatus"]


class RunStatus(StrEnum):
    """Where a run stands."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether the run has ended (succeeded, failed or cancelled)."""
        return self in ENDED_RUN


class TaskStatus(StrEnum):
    """Where one task of a run stands."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"
    DEAD_LETTERED = "dead_lettered"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


ENDED_RUN = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
"""Run statuses that published the run's outcome; only ``retry`` re-opens a failed run."""

TERMINAL_TASK = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.DEAD_LETTERED, TaskStatus.CANCELLED, TaskStatus.SKIPPED}
)
"""Task statuses nothing moves out of on its own."""
