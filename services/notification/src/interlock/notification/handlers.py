"""The event consumer: run and task events → deliveries, one transaction per batch.

It claims the batch's event ids in the inbox and writes the deliveries they cause in
the same transaction, so an event redelivered by the broker causes nothing twice, and
one that was never committed is consumed again. What each event says is read here;
what it leads to is decided by :meth:`NotificationService.fan_out`.

Events carry what a message needs except the run's start (time, labels), which comes
from the run's own ``workflow.started`` (kept in the ``runs`` table), and, for
``task.dead_lettered``, the workflow's name (same source). A ``workflow.failed``
carries the task whose failure ended the run with its error: that is the message's
``failed_tasks``. (The other failures of a run are on the run's page, linked from the
message: asking the scheduler for them would make every failure notification wait on
one more service, and its task-state gRPC answers users, not services.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from interlock.common import inbox, topics
from interlock.common.events import Event, is_type
from interlock.events.v1 import workflow_pb2
from interlock.notification.domain import EventName, FailedTask, RunFacts
from interlock.notification.service import Notice, NotificationService, StartedRun

CONSUMER = "notification.deliveries"
"""Consumer group and inbox name of the consumer."""

EVENT_TYPES: tuple[topics.EventType, ...] = (
    topics.WORKFLOW_STARTED,
    topics.WORKFLOW_COMPLETED,
    topics.WORKFLOW_FAILED,
    topics.WORKFLOW_CANCELLED,
    topics.TASK_DEAD_LETTERED,
)
"""The events subscriptions can be told about."""


class DeliveryFanOut:
    """Turns batches of events into deliveries, idempotently.

    Args:
        pool: Returns the service's open ``asyncpg.Pool``.
        service: Decides which deliveries an event causes.
    """

    def __init__(self, pool: Callable[[], asyncpg.Pool], service: NotificationService) -> None:
        self._pool = pool
        self._service = service

    async def handle(self, events: Sequence[Event]) -> None:
        """Apply one batch in one transaction (an ``EventHandler``)."""
        async with self._pool().acquire() as conn, conn.transaction():
            fresh = await inbox.claim_events(conn, CONSUMER, events)
            started = [run for event in fresh if (run := started_run(event)) is not None]
            notices = [notice for event in fresh if (notice := notice_of(event)) is not None]
            created = await self._service.fan_out(conn, started, notices)
        if created:
            self._service.deliveries_committed()


def started_run(event: Event) -> StartedRun | None:
    """What a ``workflow.started`` tells that later events will not; ``None`` for others."""
    if not is_type(event, topics.WORKFLOW_STARTED):
        return None
    started = event.payload
    return StartedRun(
        tenant=event.tenant,
        run_id=event.run_id,
        workflow=started.workflow_name,
        version=started.workflow_version,
        labels=dict(started.definition.labels),
        started_at=event.time,
    )


def notice_of(event: Event) -> Notice | None:
    """The notice an event is, or ``None`` for events nobody is told about."""
    facts: RunFacts
    if is_type(event, topics.WORKFLOW_STARTED):
        name = EventName.RUN_STARTED
        started = event.payload
        facts = RunFacts(
            run_id=event.run_id,
            workflow=started.workflow_name,
            version=started.workflow_version,
            status="running",
            started_at=event.time,
        )
    elif is_type(event, topics.WORKFLOW_COMPLETED):
        name = EventName.RUN_SUCCEEDED
        completed = event.payload
        facts = RunFacts(
            run_id=event.run_id,
            workflow=completed.workflow_name,
            version=completed.workflow_version,
            status="succeeded",
            finished_at=event.time,
        )
    elif is_type(event, topics.WORKFLOW_FAILED):
        name = EventName.RUN_FAILED
        failed = event.payload
        facts = RunFacts(
            run_id=event.run_id,
            workflow=failed.workflow_name,
            version=failed.workflow_version,
            status="failed",
            finished_at=event.time,
            failed_tasks=(_failed_task(failed.failed_task_id, failed.error),)
            if failed.failed_task_id
            else (),
        )
    elif is_type(event, topics.WORKFLOW_CANCELLED):
        name = EventName.RUN_CANCELLED
        cancelled = event.payload
        facts = RunFacts(
            run_id=event.run_id,
            workflow=cancelled.workflow_name,
            version=cancelled.workflow_version,
            status="cancelled",
            finished_at=event.time,
            reason=cancelled.reason,
        )
    elif is_type(event, topics.TASK_DEAD_LETTERED):
        name = EventName.TASK_DEAD_LETTERED
        dead = event.payload
        facts = RunFacts(
            run_id=event.run_id,
            workflow="",
            version=0,
            status="running",
            failed_tasks=(_failed_task(dead.task_id, dead.last_error, attempts=dead.attempts),),
        )
    else:
        return None
    return Notice(event_id=event.id, tenant=event.tenant, event=name, time=event.time, facts=facts)


def _failed_task(
    task_id: str, error: workflow_pb2.TaskError, *, attempts: int | None = None
) -> FailedTask:
    return FailedTask(
        task_id=task_id, error_type=error.type, message=error.message, attempts=attempts
    )
