"""The run projection: task and run outcome events → the runs and run_tasks tables.

``GET /api/v1/runs/{id}`` reads this projection instead of asking the scheduler, so a
read never waits on another service. One transaction per consumed batch: claim the
event ids (inbox), lock the batch's runs, fold the events into task progress and run
status with the domain, write back what changed in one statement.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
from google.protobuf.message import Message

from interlock.common import inbox, topics
from interlock.common.events import Event, is_type
from interlock.events.v1 import workflow_pb2
from interlock.workflow import store
from interlock.workflow.domain import (
    RunStatus,
    TaskProgress,
    TaskStatus,
    TaskUpdate,
    advance,
    after_outcome,
    after_task_activity,
    decode_output,
)

CONSUMER = "workflow.projection"
"""Consumer group and inbox name of the projection."""

EVENT_TYPES: tuple[topics.EventType, ...] = (
    topics.TASK_SCHEDULED,
    topics.TASK_STARTED,
    topics.TASK_COMPLETED,
    topics.TASK_FAILED,
    topics.TASK_DEAD_LETTERED,
    topics.WORKFLOW_COMPLETED,
    topics.WORKFLOW_FAILED,
    topics.WORKFLOW_CANCELLED,
    topics.TASK_SETTLED,
    topics.WORKFLOW_WAITING,
)
"""The events the projection applies."""

_OUTCOMES = {
    topics.WORKFLOW_COMPLETED: RunStatus.SUCCEEDED,
    topics.WORKFLOW_FAILED: RunStatus.FAILED,
    topics.WORKFLOW_CANCELLED: RunStatus.CANCELLED,
}

_log = logging.getLogger(__name__)


class RunProjection:
    """Applies batches of events to the projection, idempotently.

    Args:
        pool: A callable returning the service's open ``asyncpg.Pool``.
    """

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def handle(self, events: Sequence[Event]) -> None:
        """Apply one batch in one transaction (an ``EventHandler``)."""
        async with self._pool().acquire() as conn, conn.transaction():
            await apply_events(conn, await inbox.claim_events(conn, CONSUMER, events))


async def apply_events(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Fold ``events`` into the projection (inside the caller's transaction).

    Events about runs this service does not hold for that tenant are ignored.
    """
    keyed = [(event, run_id) for event in events if (run_id := _uuid(event.run_id)) is not None]
    if not keyed:
        return
    runs = await store.lock_runs(conn, sorted({(e.tenant, r) for e, r in keyed}, key=str))
    states = dict(runs)
    outputs: dict[uuid.UUID, Any] = {}
    updates: list[tuple[tuple[uuid.UUID, str], TaskUpdate]] = []
    for event, run_id in keyed:
        if run_id not in runs:
            continue
        state = states[run_id]
        outcome = _OUTCOMES.get(event.type)
        if outcome is not None:
            after = after_outcome(state.status, outcome)
            if after is not state.status:
                states[run_id] = store.RunState(after, event.time)
                if is_type(event, topics.WORKFLOW_COMPLETED):
                    outputs[run_id] = decode_output(event.payload.output_json)
            continue
        if is_type(event, topics.WORKFLOW_WAITING) and not event.payload.tasks:
            # A new run, or a retried one, waits for a concurrency slot.
            if state.status in (RunStatus.PENDING, RunStatus.RUNNING):
                states[run_id] = replace(state, status_reason=event.payload.reason)
            continue
        task_updates = _task_updates(event)
        for task_id, update in task_updates:
            updates.append(((run_id, task_id), update))
        if task_updates:
            after = after_task_activity(state.status)
            if after is not state.status or state.status_reason is not None:
                states[run_id] = store.RunState(after, state.finished_at)
    await store.save_progress(
        conn,
        await _advanced_tasks(conn, updates),
        {run_id: value for run_id, value in states.items() if value != runs[run_id]},
        outputs,
    )


async def _advanced_tasks(
    conn: asyncpg.Connection, updates: Sequence[tuple[tuple[uuid.UUID, str], TaskUpdate]]
) -> dict[tuple[uuid.UUID, str], TaskProgress]:
    """The progress of the tasks ``updates`` changed (a late or repeated event may not)."""
    if not updates:
        return {}
    stored = await store.tasks_progress(conn, [key for key, _ in updates])
    progress = dict(stored)
    for key, update in updates:
        progress[key] = advance(progress.get(key, TaskProgress()), update)
    return {key: value for key, value in progress.items() if stored.get(key) != value}


def _task_updates(event: Event) -> list[tuple[str, TaskUpdate]]:
    """The tasks an event is about and what it says of each (none for other events)."""
    if is_type(event, topics.TASK_SETTLED):
        return [
            (
                settled.task_id,
                TaskUpdate(
                    status=TaskStatus(settled.status),
                    attempt=settled.attempt,
                    time=event.time,
                    reason=settled.reason,
                ),
            )
            for settled in event.payload.tasks
        ]
    if is_type(event, topics.WORKFLOW_WAITING):
        return [
            (
                waiting.task_id,
                TaskUpdate(
                    status=TaskStatus.SCHEDULED,
                    attempt=waiting.attempt,
                    time=event.time,
                    reason=waiting.reason,
                ),
            )
            for waiting in event.payload.tasks
        ]
    update = _task_update(event)
    return [] if update is None else [update]


def _task_update(event: Event) -> tuple[str, TaskUpdate] | None:
    """The task an event is about and what it says, or ``None`` for other events."""
    if is_type(event, topics.TASK_SCHEDULED):
        scheduled = event.payload
        return scheduled.task_id, TaskUpdate(
            status=TaskStatus.SCHEDULED, attempt=scheduled.attempt, time=event.time
        )
    if is_type(event, topics.TASK_STARTED):
        started = event.payload
        return started.task_id, TaskUpdate(
            status=TaskStatus.RUNNING, attempt=started.attempt, time=event.time
        )
    if is_type(event, topics.TASK_COMPLETED):
        completed = event.payload
        return completed.task_id, TaskUpdate(
            status=TaskStatus.SUCCEEDED,
            attempt=completed.attempt,
            time=event.time,
            started_at=_time(completed, "started_at"),
            scheduled_at=_time(completed, "scheduled_at"),
            output=decode_output(completed.output_json),
        )
    if is_type(event, topics.TASK_FAILED):
        failed = event.payload
        return failed.task_id, TaskUpdate(
            status=TaskStatus.FAILED,
            attempt=failed.attempt,
            time=event.time,
            started_at=_time(failed, "started_at"),
            error=_error(failed.error),
        )
    if is_type(event, topics.TASK_DEAD_LETTERED):
        dead = event.payload
        return dead.task_id, TaskUpdate(
            status=TaskStatus.DEAD_LETTERED,
            attempt=dead.attempts,
            time=event.time,
            error=_error(dead.last_error),
        )
    return None


def _time(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp: datetime = getattr(message, field).ToDatetime(tzinfo=UTC)
    return stamp


def _error(error: workflow_pb2.TaskError) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": error.type,
        "message": error.message,
        "retryable": error.retryable,
    }
    if error.traceback_excerpt:
        view["traceback"] = error.traceback_excerpt
    return view


def _uuid(run_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(run_id)
    except ValueError:
        _log.warning("ignoring an event whose run id is not a UUID", extra={"run_id": run_id})
        return None
