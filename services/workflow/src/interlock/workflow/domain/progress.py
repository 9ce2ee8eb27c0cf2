"""A task's progress in a run, folded from task events that may arrive out of order.

Task events travel on separate topics, so ``task.started`` can arrive after the
``task.completed`` of the same attempt. Progress only moves forward: by attempt
number first, then by stage (scheduled < running < succeeded | failed < dead-lettered).
An older event only fills in a timestamp still missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from interlock.common.statuses import TaskStatus

# The run view shows these task statuses (of the shared vocabulary), from the task events.
_STAGE = {
    TaskStatus.PENDING: 0,
    TaskStatus.SCHEDULED: 1,
    TaskStatus.RUNNING: 2,
    TaskStatus.SUCCEEDED: 3,
    TaskStatus.FAILED: 3,
    TaskStatus.DEAD_LETTERED: 4,
    # The scheduler settled the task (task.settled): nothing of that attempt overrides it.
    TaskStatus.SKIPPED: 5,
    TaskStatus.CANCELLED: 5,
}


@dataclass(frozen=True, kw_only=True)
class TaskProgress:
    """What the run's view shows of one task.

    Attributes:
        status: Latest known status.
        attempts: Number of the latest attempt seen (0 before the first).
        scheduled_at: When the latest attempt was scheduled.
        started_at: When a worker started it.
        finished_at: When it succeeded, failed or was dead-lettered.
        output: The successful attempt's output (JSON value).
        error: The failure: ``{"type", "message", "retryable"}``.
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
class TaskUpdate:
    """One task event, reduced to what progress needs.

    Attributes:
        status: The status it reports (scheduled, running, succeeded, failed,
            dead_lettered).
        attempt: The attempt it is about (for dead-lettering, the attempts made).
        time: When it happened.
        started_at: When the attempt started, if the event says (completion, failure).
        scheduled_at: When the attempt was scheduled, if the event says (the
            completion of a delay, which the scheduler runs without task.scheduled).
        output: Output of a success.
        error: Error of a failure.
        reason: Why the scheduler skipped or cancelled the task, or why it waits.
    """

    status: TaskStatus
    attempt: int
    time: datetime
    started_at: datetime | None = None
    scheduled_at: datetime | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    reason: str | None = None


def advance(progress: TaskProgress, update: TaskUpdate) -> TaskProgress:
    """Fold one task event into a task's progress.

    Args:
        progress: Progress so far (``TaskProgress()`` for a task with no event yet).
        update: The event.

    Returns:
        The new progress: ``update`` wins when it is ahead (later attempt, or same
        attempt and later stage); otherwise it only fills in missing timestamps.
    """
    ahead = (update.attempt, _STAGE[update.status]) > (progress.attempts, _STAGE[progress.status])
    if not ahead:
        if update.attempt != progress.attempts:
            return progress
        return replace(
            progress,
            scheduled_at=progress.scheduled_at or _scheduled(update),
            started_at=progress.started_at or _started(update),
            reason=_waiting_reason(progress, update),
        )
    same_attempt = update.attempt == progress.attempts
    base = progress if same_attempt else TaskProgress(attempts=update.attempt)
    finished = update.status in (
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.DEAD_LETTERED,
        TaskStatus.SKIPPED,
        TaskStatus.CANCELLED,
    )
    return replace(
        base,
        status=update.status,
        attempts=update.attempt,
        scheduled_at=update.time
        if update.status is TaskStatus.SCHEDULED
        else base.scheduled_at or update.scheduled_at,
        started_at=base.started_at or _started(update),
        finished_at=update.time if finished else None,
        output=update.output if update.status is TaskStatus.SUCCEEDED else None,
        error=update.error
        if update.status in (TaskStatus.FAILED, TaskStatus.DEAD_LETTERED)
        else None,
        reason=update.reason,
    )


def _waiting_reason(progress: TaskProgress, update: TaskUpdate) -> str | None:
    """Why a scheduled attempt waits, if the scheduler said.

    A later word on the same attempt replaces it, a copy of its ``task.scheduled``
    keeps it, and ``task.started`` (a later stage) clears it.
    """
    if progress.status is TaskStatus.SCHEDULED is update.status and update.reason:
        return update.reason
    return progress.reason


def _scheduled(update: TaskUpdate) -> datetime | None:
    if update.status is TaskStatus.SCHEDULED:
        return update.time
    return update.scheduled_at


def _started(update: TaskUpdate) -> datetime | None:
    if update.status is TaskStatus.RUNNING:
        return update.time
    return update.started_at


def decode_output(data: bytes) -> Any:
    """A task's output as JSON bytes carry it: ``None`` when empty, text when not JSON."""
    if not data:
        return None
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return data.decode(errors="replace")
