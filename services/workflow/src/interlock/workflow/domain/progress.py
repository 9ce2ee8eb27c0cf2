"""A task of a run as the run view shows it, from the scheduler's state of the task.

The scheduler holds every task's state as the truth; the run view asks it when the run
is read (``ListRunTasks``) instead of folding task events. What the view adds of its
own is why a scheduled attempt waits for a worker of its queue (``workflow.waiting``
with tasks), kept until that attempt leaves ``scheduled``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from interlock.common.statuses import TaskStatus

if TYPE_CHECKING:
    from interlock.common.scheduler_state import SchedulerTask

_SHOWN_AS = {TaskStatus.RETRYING: TaskStatus.FAILED}
"""The view shows a failed attempt that waits for its retry as ``failed`` (another
attempt may follow), as it always has; every other status as the scheduler holds it."""

_FAILURES = frozenset({TaskStatus.FAILED, TaskStatus.RETRYING, TaskStatus.DEAD_LETTERED})
_SETTLED = frozenset({TaskStatus.SKIPPED, TaskStatus.CANCELLED})
_ENDED = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.DEAD_LETTERED}) | _SETTLED


@dataclass(frozen=True, kw_only=True)
class TaskProgress:
    """What the run's view shows of one task.

    Attributes:
        status: Latest known status.
        attempts: Number of the latest attempt (0 before the first).
        scheduled_at: When the latest attempt was scheduled.
        started_at: When a worker started it.
        finished_at: When it succeeded, failed, was dead-lettered, skipped or cancelled.
        output: The successful attempt's output (JSON value).
        error: The failure: ``{"type", "message", "retryable"}`` and ``traceback`` when
            the worker sent one.
        reason: Why it was skipped or cancelled, or why it waits, scheduled (no worker
            takes tasks of its queue).
    """

    status: TaskStatus = TaskStatus.PENDING
    attempts: int = 0
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class WaitingTask:
    """Why one attempt of a task waits, scheduled (``workflow.waiting`` with tasks)."""

    attempt: int
    reason: str


def task_progress(task: SchedulerTask, waiting: WaitingTask | None = None) -> TaskProgress:
    """What the view shows of ``task`` as the scheduler holds it.

    Args:
        task: The task's latest attempt, from the scheduler.
        waiting: Why an attempt of the task waits for a worker, if the scheduler said:
            shown while that attempt is still scheduled.

    Returns:
        The task's progress: a skipped or cancelled task's reason comes from the
        scheduler, and its error fields are not shown as a failure.
    """
    status = _SHOWN_AS.get(task.status, task.status)
    reason = None
    if task.status in _SETTLED:
        reason = task.reason or task.error_message or None
    elif task.status is TaskStatus.SCHEDULED and waiting and waiting.attempt == task.attempt:
        reason = waiting.reason
    return TaskProgress(
        status=status,
        attempts=task.attempt,
        scheduled_at=task.scheduled_at,
        started_at=task.started_at,
        finished_at=task.ended_at if status in _ENDED else None,
        output=decode_output(task.output_json) if task.status is TaskStatus.SUCCEEDED else None,
        error=_error(task) if task.status in _FAILURES else None,
        reason=reason,
    )


def _error(task: SchedulerTask) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": task.error_type,
        "message": task.error_message,
        "retryable": task.error_retryable,
    }
    if task.error_traceback:
        error["traceback"] = task.error_traceback
    return error


def decode_output(data: bytes) -> Any:
    """A task's output as JSON bytes carry it: ``None`` when empty, text when not JSON."""
    if not data:
        return None
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return data.decode(errors="replace")
