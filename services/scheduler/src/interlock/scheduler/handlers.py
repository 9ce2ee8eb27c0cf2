"""The Kafka side: hand each consumed batch to the service, minus the scheduler's own events."""

from __future__ import annotations

from collections.abc import Sequence

from interlock.common import topics
from interlock.common.events import Event
from interlock.scheduler.domain.run import SOURCE
from interlock.scheduler.service import CONSUMER, SchedulerService

__all__ = ["CONSUMED", "CONSUMER", "BatchHandler"]

CONSUMED = (
    topics.WORKFLOW_STARTED,
    topics.WORKFLOW_CONTROL,
    topics.TASK_STARTED,
    topics.TASK_COMPLETED,
    topics.TASK_FAILED,
    topics.TASK_HEARTBEAT,
)
"""Event types the scheduler consumes."""


class BatchHandler:
    """The consumer's handler: applies each batch in one transaction (see the service).

    Args:
        service: The scheduler's use cases.
    """

    def __init__(self, service: SchedulerService) -> None:
        self._service = service

    async def __call__(self, events: Sequence[Event]) -> None:
        """Apply ``events`` (the consumer's handler)."""
        # Its own events (a fired delay's task.completed) tell the scheduler nothing:
        # skipping them spares a claim and a run lock each.
        events = [event for event in events if event.source != SOURCE]
        if events:
            await self._service.apply_events(events)
