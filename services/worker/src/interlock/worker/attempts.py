"""One attempt as the worker tracks it, and the events it reports about it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from aiokafka import TopicPartition
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from interlock.common import topics
from interlock.common.events import Event
from interlock.events.v1 import task_pb2, workflow_pb2
from interlock.worker.context import TaskContext
from interlock.worker.domain.failures import Failure
from interlock.worker.domain.redaction import Redactor
from interlock.worker.errors import TaskAborted

__all__ = ["Attempt", "AttemptEvents", "AttemptKey"]

P = TypeVar("P", bound=Message)

AttemptKey = tuple[str, str, int]
"""``(run id, task id, attempt)``: one attempt, however often it is delivered."""


@dataclass(eq=False, slots=True)
class Attempt:
    """A fetched attempt, from waiting to reported.

    Attributes:
        event: The ``task.scheduled`` event.
        offsets: The records that delivered it (a redelivery adds one); all are done
            once its outcome is published.
        context: What its executor sees; set when it starts.
        task: The asyncio task running it.
        abort: Why the worker stopped it, if it did.
        started_at: When it started (or was skipped).
        heartbeat_interval_s: Time between its heartbeats.
        next_heartbeat: ``time.monotonic()`` of its next heartbeat.
        stepped: Whether its task has taken its first step (then ``task.started`` is
            due if it is still running).
        log_fields: Run, task and attempt, for the worker's own log records.
        redactor: Hides the secret values filled into its params from every event
            about it; ``None`` when it uses no secret.
        traceparent: Its executor span's W3C ``traceparent``, which the events about
            it carry once it ran (``None``: they carry the scheduled event's).
    """

    event: Event[task_pb2.TaskScheduled]
    offsets: list[tuple[TopicPartition, int]]
    context: TaskContext | None = None
    task: asyncio.Task[None] | None = None
    abort: TaskAborted | None = None
    started_at: datetime | None = None
    heartbeat_interval_s: float = 1.0
    next_heartbeat: float = 0.0
    stepped: bool = False
    log_fields: dict[str, Any] = field(default_factory=dict)
    redactor: Redactor | None = None
    traceparent: str | None = None

    @property
    def scheduled(self) -> task_pb2.TaskScheduled:
        """The ``TaskScheduled`` payload."""
        return self.event.payload

    @property
    def key(self) -> AttemptKey:
        """``(run id, task id, attempt)``."""
        return (self.event.run_id, self.scheduled.task_id, self.scheduled.attempt)


class AttemptEvents:
    """Builds the events a worker publishes about attempts.

    Each event carries the scheduled event's tenant, run id and trace context, so a
    run's events stay on its partition and in its trace. Secret values an attempt used
    are replaced in its outputs, errors, heartbeat details and log lines.

    Args:
        source: The emitting service, e.g. ``"worker"``.
        worker_id: This worker's id.
        keep_log: Given every ``task.log`` built, to send its lines again if the
            broker loses them. Default: none.
    """

    def __init__(
        self,
        *,
        source: str,
        worker_id: str,
        keep_log: Callable[[AttemptKey, Event[task_pb2.TaskLog]], None] | None = None,
    ) -> None:
        self._source = source
        self._worker_id = worker_id
        self._keep_log = keep_log

    def started(self, attempt: Attempt) -> Event:
        """``task.started``."""
        return self._event(
            attempt,
            topics.TASK_STARTED,
            task_pb2.TaskStarted(
                task_id=attempt.scheduled.task_id,
                attempt=attempt.scheduled.attempt,
                worker_id=self._worker_id,
            ),
        )

    def completed(self, attempt: Attempt, output_json: bytes) -> Event:
        """``task.completed`` with the encoded output."""
        return self._event(
            attempt,
            topics.TASK_COMPLETED,
            task_pb2.TaskCompleted(
                task_id=attempt.scheduled.task_id,
                attempt=attempt.scheduled.attempt,
                worker_id=self._worker_id,
                output_json=_json(attempt, output_json),
                started_at=_timestamp(attempt.started_at),
            ),
        )

    def failed(self, attempt: Attempt, failure: Failure) -> Event:
        """``task.failed`` with the classified error."""
        return self._event(
            attempt,
            topics.TASK_FAILED,
            task_pb2.TaskFailed(
                task_id=attempt.scheduled.task_id,
                attempt=attempt.scheduled.attempt,
                worker_id=self._worker_id,
                error=workflow_pb2.TaskError(
                    type=failure.type,
                    message=_text(attempt, failure.message),
                    retryable=failure.retryable,
                    traceback_excerpt=_text(attempt, failure.traceback_excerpt),
                ),
                started_at=_timestamp(attempt.started_at),
            ),
        )

    def heartbeat(self, attempt: Attempt) -> Event:
        """``task.heartbeat`` with the details the task last gave."""
        details = attempt.context.heartbeat_details if attempt.context is not None else b""
        return self._event(
            attempt,
            topics.TASK_HEARTBEAT,
            task_pb2.TaskHeartbeat(
                task_id=attempt.scheduled.task_id,
                attempt=attempt.scheduled.attempt,
                worker_id=self._worker_id,
                details_json=_json(attempt, details),
            ),
        )

    def log(self, attempt: Attempt, *, last: bool = False) -> Event | None:
        """``task.log`` with the lines logged since the last call, or ``None``.

        Args:
            attempt: The attempt.
            last: The attempt ended: the event says how many lines it wrote in all
                (``last_seq``), and is sent even without new lines if it wrote any.
        """
        if attempt.context is None:
            return None
        logger = attempt.context.logger
        lines = logger.drain()
        last_seq = logger.last_seq if last else 0
        if not lines and not last_seq:
            return None
        event = self._event(
            attempt,
            topics.TASK_LOG,
            task_pb2.TaskLog(
                task_id=attempt.scheduled.task_id,
                attempt=attempt.scheduled.attempt,
                worker_id=self._worker_id,
                lines=[
                    task_pb2.TaskLog.Line(
                        time=_timestamp(line.time),
                        level=line.level,
                        message=_text(attempt, line.message),
                        seq=line.seq,
                    )
                    for line in lines
                ],
                last_seq=last_seq,
            ),
        )
        if self._keep_log is not None:
            self._keep_log(attempt.key, event)
        return event

    def _event(self, attempt: Attempt, event_type: topics.EventType[P], payload: P) -> Event[P]:
        scheduled = attempt.event
        return Event(
            type=event_type,
            payload=payload,
            tenant=scheduled.tenant,
            run_id=scheduled.run_id,
            source=self._source,
            traceparent=attempt.traceparent or scheduled.traceparent,
            tracestate=scheduled.tracestate,
        )


def _text(attempt: Attempt, text: str) -> str:
    return text if attempt.redactor is None else attempt.redactor.text(text)


def _json(attempt: Attempt, document: bytes) -> bytes:
    return document if attempt.redactor is None else attempt.redactor.json(document)


def _timestamp(moment: datetime | None) -> Timestamp:
    stamp = Timestamp()
    if moment is not None:
        stamp.FromDatetime(moment)
    return stamp
