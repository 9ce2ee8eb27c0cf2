"""Consumed events mapped onto the run engine, after checking they belong to the run."""

from __future__ import annotations

from datetime import UTC, datetime

from interlock.common import topics
from interlock.common.events import Event, is_type
from interlock.scheduler.domain.control import apply_control
from interlock.scheduler.domain.errors import ForeignEventError
from interlock.scheduler.domain.run import RunState


def check_tenant(run: RunState, event: Event) -> None:
    """Raise unless ``event`` comes from ``run``'s tenant.

    Run ids are not secrets (they travel in events, logs and URLs), so an event that
    names a run proves nothing by itself: one of another tenant must not move the run.

    Raises:
        ForeignEventError: The event claims another tenant than the run's.
    """
    if event.tenant != run.tenant:
        raise ForeignEventError(event.tenant, run.tenant)


def apply_event(run: RunState, event: Event, now: datetime) -> None:
    """Apply a task event or a control request to ``run`` (other event types: nothing).

    Raises:
        ForeignEventError: The event claims another tenant than the run's (nothing
            changed).
    """
    check_tenant(run, event)
    if is_type(event, topics.TASK_STARTED):
        run.task_started(event.payload.task_id, event.payload.attempt, event.payload.worker_id, now)
    elif is_type(event, topics.TASK_COMPLETED):
        done = event.payload
        started = done.started_at.ToDatetime(UTC) if done.HasField("started_at") else None
        run.task_completed(
            done.task_id, done.attempt, done.output_json, now, started, done.worker_id
        )
    elif is_type(event, topics.TASK_FAILED):
        failed = event.payload
        started = failed.started_at.ToDatetime(UTC) if failed.HasField("started_at") else None
        run.task_failed(
            failed.task_id, failed.attempt, failed.error, now, started, failed.worker_id
        )
    elif is_type(event, topics.TASK_HEARTBEAT):
        run.task_heartbeat(event.payload.task_id, event.payload.attempt, now)
    elif is_type(event, topics.WORKFLOW_CONTROL):
        apply_control(run, event.payload, now)
