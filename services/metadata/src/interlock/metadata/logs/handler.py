"""The ``task.log`` consumer: stores each batch of lines (consumer group ``metadata-logs``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from interlock.common import topics
from interlock.common.events import Event
from interlock.events.v1 import task_pb2
from interlock.metadata.logs.domain import LEVELS, IncomingLog, LogLine
from interlock.metadata.logs.service import LogService
from interlock.metadata.metrics import LOG_LINES, observe_written

__all__ = ["CONSUMER", "EVENT_TYPES", "LogHandler", "incoming_log"]

CONSUMER = "metadata-logs"
"""The consumer group: its own, so logs never hold back execution documents."""
EVENT_TYPES = (topics.TASK_LOG,)


class LogHandler:
    """Applies batches of ``task.log`` events.

    Args:
        service: Stores the lines.
    """

    def __init__(self, service: LogService) -> None:
        self._service = service

    async def handle(self, batch: Sequence[Event]) -> None:
        """Store the batch's lines; raising leaves the batch uncommitted (redelivered)."""
        incoming = [
            incoming_log(event.payload, tenant=event.tenant, run_id=event.run_id)
            for event in batch
            if isinstance(event.payload, task_pb2.TaskLog)
        ]
        await self._service.ingest(incoming)
        LOG_LINES.inc(sum(len(log.lines) for log in incoming))
        observe_written("logs", batch)


def incoming_log(payload: task_pb2.TaskLog, *, tenant: str, run_id: str) -> IncomingLog:
    """The lines of one ``task.log`` event (an unknown level reads as ``INFO``)."""
    return IncomingLog(
        tenant=tenant,
        attempt=(run_id, payload.task_id, payload.attempt),
        lines=[
            LogLine(
                seq=line.seq,
                time=line.time.ToDatetime(tzinfo=UTC),
                level=line.level.upper() if line.level.upper() in LEVELS else "INFO",
                message=line.message,
            )
            for line in payload.lines
        ],
        last_seq=payload.last_seq,
        worker_id=payload.worker_id,
    )
