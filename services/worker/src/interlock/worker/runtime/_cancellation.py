"""Cancellation: a per-instance consumer that aborts the tasks the platform stopped.

Two events stop work: ``workflow.cancelled`` (a user cancelled the run: all its tasks)
and ``task.settled`` naming a task ``cancelled`` (the scheduler cancelled that attempt,
e.g. its run passed its ``timeout``, while the run itself may go on running cleanup
tasks). The same consumer hands on ``task.log_missing`` (log lines the metadata service
lacks), which every instance must read too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from interlock.common import topics
from interlock.common.events import Event, is_type
from interlock.common.kafka import EventConsumer
from interlock.common.statuses import TaskStatus
from interlock.events.v1 import task_pb2
from interlock.worker.settings import WorkerSettings

_FETCH_WAIT_MS = 100

AttemptKey = tuple[str, str, int]
"""An attempt: run id, task id, attempt number."""


class Cancellations:
    """Remembers cancelled runs and attempts for a while and aborts them.

    Each worker instance reads every ``workflow.cancelled`` and ``task.settled`` (a
    group of its own), from ``cancellation_memory_s`` before it started; fetched
    attempts of a run or an attempt it knows cancelled fail at once instead of running.

    Args:
        settings: The worker's settings.
        client_id: The Kafka client id.
        abort_run: Aborts the running attempts of a run, given the reason.
        abort_attempt: Aborts one running attempt (if it runs here), given the reason.
        log_missing: Given each ``task.log_missing``. Default: ignored.
    """

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        client_id: str,
        abort_run: Callable[[str, str], None],
        abort_attempt: Callable[[AttemptKey, str], None],
        log_missing: Callable[[Event[task_pb2.TaskLogMissing]], None] | None = None,
    ) -> None:
        self._memory = timedelta(seconds=settings.cancellation_memory_s)
        self._log_missing = log_missing
        self._abort_run = abort_run
        self._abort_attempt = abort_attempt
        self._runs: dict[str, tuple[datetime, str]] = {}
        self._attempts: dict[AttemptKey, tuple[datetime, str]] = {}
        self.started_at = datetime.now(UTC)
        # Cancellations are rare and not on the hot path: a longer fetch wait keeps this
        # consumer's idle polling cheap.
        self.consumer = EventConsumer(
            settings,
            group_id=f"{settings.worker_group_id}.cancellations.{settings.worker_id}",
            event_types=[topics.WORKFLOW_CANCELLED, topics.TASK_SETTLED, topics.TASK_LOG_MISSING],
            handler=self.on_cancelled,
            client_id=client_id,
            fetch_max_wait_ms=_FETCH_WAIT_MS,
        )

    def cancellation(self, attempt: AttemptKey) -> str | None:
        """Why ``attempt`` was cancelled (its run or itself), or ``None`` if it was not."""
        known = self._runs.get(attempt[0]) or self._attempts.get(attempt)
        return None if known is None else known[1]

    async def on_cancelled(self, events: Sequence[Event]) -> None:
        """The consumer's handler: remember what was cancelled, abort what runs of it."""
        horizon = self.started_at - self._memory
        for event in events:
            if is_type(event, topics.TASK_LOG_MISSING):
                if self._log_missing is not None:
                    self._log_missing(event)
                continue
            if event.time < horizon:
                continue
            if is_type(event, topics.WORKFLOW_CANCELLED):
                reason = event.payload.reason or "the run was cancelled"
                self._runs[event.run_id] = (event.time, reason)
                self._abort_run(event.run_id, reason)
            elif is_type(event, topics.TASK_SETTLED):
                for settled in event.payload.tasks:
                    if settled.status != TaskStatus.CANCELLED.value or settled.attempt == 0:
                        continue
                    key = (event.run_id, settled.task_id, settled.attempt)
                    self._attempts[key] = (event.time, settled.reason)
                    self._abort_attempt(key, settled.reason)
        forget_before = datetime.now(UTC) - self._memory
        _forget(self._runs, forget_before)
        _forget(self._attempts, forget_before)


def _forget(memory: dict[Any, tuple[datetime, str]], before: datetime) -> None:
    for key, (cancelled_at, _) in list(memory.items()):
        if cancelled_at < before:
            del memory[key]
