"""The run projection: the scheduler's run-level events → the runs table.

A run's status, end, waiting reason and output follow ``workflow.running``,
``workflow.waiting`` and the outcome events. Its tasks are not projected:
``GET /api/v1/runs/{id}`` reads them from the scheduler (:mod:`interlock.workflow.service`),
so no task event passes through this service. The one task-level word kept is why a
scheduled attempt waits for a worker of its queue (``workflow.waiting`` listing tasks),
which the scheduler does not store. One transaction per consumed batch: claim the event
ids (inbox), lock the batch's runs, fold the events with the domain, write back what
changed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from interlock.common import inbox, topics
from interlock.common.events import Event, is_type
from interlock.workflow import store
from interlock.workflow.domain import (
    RunStatus,
    WaitingTask,
    after_outcome_event,
    after_running,
    after_waiting,
    decode_output,
)

CONSUMER = "workflow.projection"
"""Consumer group and inbox name of the projection."""

EVENT_TYPES: tuple[topics.EventType, ...] = (
    topics.WORKFLOW_RUNNING,
    topics.WORKFLOW_WAITING,
    topics.WORKFLOW_COMPLETED,
    topics.WORKFLOW_FAILED,
    topics.WORKFLOW_CANCELLED,
)
"""The events the projection applies: run-level ones only."""

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
    waits: dict[tuple[uuid.UUID, str], WaitingTask] = {}
    for event, run_id in keyed:
        state = states.get(run_id)
        if state is None:
            continue
        outcome = _OUTCOMES.get(event.type)
        if outcome is not None:
            states[run_id] = after_outcome_event(state, outcome, event.time)
            if states[run_id] != state and is_type(event, topics.WORKFLOW_COMPLETED):
                outputs[run_id] = decode_output(event.payload.output_json)
        elif is_type(event, topics.WORKFLOW_RUNNING):
            states[run_id] = after_running(state, event.time)
        elif is_type(event, topics.WORKFLOW_WAITING) and event.payload.tasks:
            for task in event.payload.tasks:
                known = waits.get((run_id, task.task_id))
                if known is None or known.attempt <= task.attempt:
                    waits[run_id, task.task_id] = WaitingTask(
                        attempt=task.attempt, reason=task.reason
                    )
        elif is_type(event, topics.WORKFLOW_WAITING):
            states[run_id] = after_waiting(state, event.payload.reason, event.time)
    await store.save_runs(
        conn,
        {run_id: value for run_id, value in states.items() if value != runs[run_id]},
        outputs,
    )
    await store.save_task_waits(conn, [(r, t, wait) for (r, t), wait in waits.items()])


def _uuid(run_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(run_id)
    except ValueError:
        _log.warning("ignoring an event whose run id is not a UUID", extra={"run_id": run_id})
        return None
