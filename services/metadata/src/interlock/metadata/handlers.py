"""The execution projection: every run and task event → facts → execution documents.

One consumer group (:data:`CONSUMER`) reads every run, task and control event. Each
consumed batch becomes one bulk write (``ExecutionService.apply``); the consumer commits
its offsets only after the write returned, so MongoDB being down stops the commits and
the batch is delivered again once it is back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from interlock.common import topics
from interlock.common.events import Event, is_type
from interlock.common.statuses import RunStatus
from interlock.events.v1 import workflow_pb2
from interlock.metadata.domain import (
    AttemptFinished,
    AttemptHeartbeat,
    AttemptScheduled,
    AttemptStarted,
    Fact,
    RunControlled,
    RunEnded,
    RunStarted,
    TaskDeadLettered,
    millis,
)
from interlock.metadata.metrics import DOCUMENTS_WRITTEN, EVENTS_APPLIED, observe_written
from interlock.metadata.service import ExecutionService

CONSUMER = "metadata-executions"
"""Consumer group of the projection."""

EVENT_TYPES: tuple[topics.EventType, ...] = (
    topics.WORKFLOW_STARTED,
    topics.WORKFLOW_COMPLETED,
    topics.WORKFLOW_FAILED,
    topics.WORKFLOW_CANCELLED,
    topics.WORKFLOW_CONTROL,
    topics.TASK_SCHEDULED,
    topics.TASK_STARTED,
    topics.TASK_COMPLETED,
    topics.TASK_FAILED,
    topics.TASK_HEARTBEAT,
    topics.TASK_DEAD_LETTERED,
)
"""Every event about a run except its log lines."""


_CONTROL_ACTIONS = {
    workflow_pb2.RunControl.ACTION_PAUSE: "pause",
    workflow_pb2.RunControl.ACTION_RESUME: "resume",
    workflow_pb2.RunControl.ACTION_RETRY: "retry",
    workflow_pb2.RunControl.ACTION_CANCEL: "cancel",
}


class ExecutionProjection:
    """Applies batches of events to the execution documents (an ``EventHandler``).

    Args:
        service: Writes the documents.
    """

    def __init__(self, service: ExecutionService) -> None:
        self._service = service

    async def handle(self, events: Sequence[Event]) -> None:
        """Turn ``events`` into facts and write them in one bulk write."""
        facts = [fact for event in events if (fact := fact_of(event)) is not None]
        if facts:
            DOCUMENTS_WRITTEN.inc(await self._service.apply(facts))
            observe_written("executions", events)
        EVENTS_APPLIED.inc(len(events))


def fact_of(event: Event) -> Fact | None:
    """What ``event`` says about its run, or ``None`` for an event that says nothing."""
    base: dict[str, Any] = {
        "event_id": event.id,
        "tenant": event.tenant,
        "run_id": event.run_id,
        "time": millis(event.time),
    }
    if is_type(event, topics.WORKFLOW_STARTED):
        started = event.payload
        return RunStarted(
            **base,
            workflow=started.workflow_name,
            version=started.workflow_version,
            labels=dict(started.definition.labels),
            input_json=started.input_json.decode(errors="replace"),
            task_types={task.id: task.type for task in started.definition.tasks},
        )
    if is_type(event, topics.WORKFLOW_COMPLETED):
        completed = event.payload
        return RunEnded(
            **base,
            status=RunStatus.SUCCEEDED,
            workflow=completed.workflow_name,
            version=completed.workflow_version,
        )
    if is_type(event, topics.WORKFLOW_FAILED):
        failed = event.payload
        return RunEnded(
            **base,
            status=RunStatus.FAILED,
            workflow=failed.workflow_name,
            version=failed.workflow_version,
            failed_task_id=failed.failed_task_id,
            error=_error(failed.error) if failed.HasField("error") else None,
        )
    if is_type(event, topics.WORKFLOW_CANCELLED):
        cancelled = event.payload
        return RunEnded(
            **base,
            status=RunStatus.CANCELLED,
            workflow=cancelled.workflow_name,
            version=cancelled.workflow_version,
        )
    if is_type(event, topics.WORKFLOW_CONTROL):
        action = _CONTROL_ACTIONS.get(event.payload.action)
        return RunControlled(**base, action=action) if action else None
    return _task_fact(event, base)


def _task_fact(event: Event, base: dict[str, Any]) -> Fact | None:
    if is_type(event, topics.TASK_SCHEDULED):
        scheduled = event.payload
        return AttemptScheduled(
            **base, task_id=scheduled.task_id, attempt=scheduled.attempt, task_type=scheduled.type
        )
    if is_type(event, topics.TASK_STARTED):
        started = event.payload
        return AttemptStarted(
            **base, task_id=started.task_id, attempt=started.attempt, worker_id=started.worker_id
        )
    if is_type(event, topics.TASK_HEARTBEAT):
        beat = event.payload
        return AttemptHeartbeat(
            **base, task_id=beat.task_id, attempt=beat.attempt, worker_id=beat.worker_id
        )
    if is_type(event, topics.TASK_COMPLETED):
        completed = event.payload
        return AttemptFinished(
            **base,
            task_id=completed.task_id,
            attempt=completed.attempt,
            worker_id=completed.worker_id,
            started_at=_time(completed, "started_at"),
            scheduled_at=_time(completed, "scheduled_at"),
            output_bytes=len(completed.output_json),
        )
    if is_type(event, topics.TASK_FAILED):
        failed = event.payload
        return AttemptFinished(
            **base,
            task_id=failed.task_id,
            attempt=failed.attempt,
            worker_id=failed.worker_id,
            started_at=_time(failed, "started_at"),
            error=_error(failed.error),
        )
    if is_type(event, topics.TASK_DEAD_LETTERED):
        dead = event.payload
        return TaskDeadLettered(
            **base,
            task_id=dead.task_id,
            attempts=dead.attempts,
            error=_error(dead.last_error) if dead.HasField("last_error") else None,
        )
    return None


def _time(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    return millis(getattr(message, field).ToDatetime(tzinfo=UTC))


def _error(error: workflow_pb2.TaskError) -> dict[str, Any]:
    return {"type": error.type, "message": error.message, "retryable": error.retryable}
