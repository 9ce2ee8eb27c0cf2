"""Dispatching: start waiting attempts as slots free up, run them, report, abort."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from interlock.common.events import Event
from interlock.worker.attempts import Attempt
from interlock.worker.context import ArtifactStoreFactory, TaskContext, TaskLogger
from interlock.worker.domain.slots import Slots
from interlock.worker.errors import TaskAborted, TaskCancelled
from interlock.worker.executors import Executor
from interlock.worker.metrics import SLOTS_FREE
from interlock.worker.runtime._backlog import Backlog
from interlock.worker.runtime._execution import execute
from interlock.worker.runtime._metrics import MetricsByType
from interlock.worker.runtime._reports import AttemptReports
from interlock.worker.runtime._tracing import attempt_spans
from interlock.worker.secrets import SecretResolver

_log = logging.getLogger(__name__)

MIN_HEARTBEAT_S = 0.05
"""Shortest time between two heartbeats of an attempt."""


class Dispatcher:
    """Starts waiting attempts in round-robin order across partitions while slots are free.

    Args:
        backlog: The attempts held.
        slots: Free slots, overall and per task type.
        executors: Executors by task type.
        reports: Where attempts' events go.
        metrics: Per task type series.
        cancellation: Why an attempt (run id, task id, attempt) was cancelled, or
            ``None``: a cancelled attempt fails at once instead of running.
        on_room: Called whenever attempts started or ended (the fetcher may fetch).
        worker_id: This worker's id in task contexts.
        heartbeat_interval_ms: Default time between heartbeats of an attempt.
        artifacts: Gives each attempt its artifact store. Default: none.
    """

    def __init__(
        self,
        backlog: Backlog,
        slots: Slots,
        executors: Mapping[str, Executor],
        secrets: SecretResolver,
        reports: AttemptReports,
        metrics: MetricsByType,
        *,
        cancellation: Callable[[tuple[str, str, int]], str | None],
        on_room: Callable[[], None],
        worker_id: str,
        heartbeat_interval_ms: int,
        artifacts: ArtifactStoreFactory | None = None,
    ) -> None:
        self._backlog = backlog
        self._slots = slots
        self._executors = executors
        self._secrets = secrets
        self._reports = reports
        self._metrics = metrics
        self._cancellation = cancellation
        self._on_room = on_room
        self._worker_id = worker_id
        self._heartbeat_interval_ms = float(heartbeat_interval_ms)
        self._artifacts = artifacts
        self._stopping = False

    def stop(self) -> None:
        """Start no more attempts."""
        self._stopping = True

    def dispatch(self) -> None:
        """Start waiting attempts while slots are free."""
        if self._stopping:
            return
        backlog, slots = self._backlog, self._slots
        while backlog.waiting and not slots.full:
            attempt = backlog.take_next(slots.can_start)
            if attempt is None:
                break
            self.start(attempt)
        self._on_room()

    def start(self, attempt: Attempt) -> None:
        """Start ``attempt`` in a task of its own (or fail it at once if it was cancelled)."""
        scheduled = attempt.scheduled
        event = attempt.event
        attempt.started_at = datetime.now(UTC)
        cancelled = self._cancellation((event.run_id, scheduled.task_id, scheduled.attempt))
        if cancelled is not None:
            attempt.abort = TaskCancelled(cancelled)
            self._report(attempt, self._reports.failed(attempt, attempt.abort))
            return
        self._slots.acquire(scheduled.type)
        self._metrics.running(scheduled.type, scheduled.queue).inc()
        self._metrics.of(scheduled.type).queue_wait.observe(
            max((attempt.started_at - event.time).total_seconds(), 0)
        )
        SLOTS_FREE.dec()
        attempt.log_fields = {
            "run_id": event.run_id,
            "task_id": scheduled.task_id,
            "attempt": scheduled.attempt,
        }
        attempt.context = TaskContext(
            tenant=event.tenant,
            run_id=event.run_id,
            task_id=scheduled.task_id,
            attempt=scheduled.attempt,
            task_type=scheduled.type,
            idempotency_key=scheduled.idempotency_key,
            worker_id=self._worker_id,
            logger=TaskLogger(attempt.log_fields),
        )
        if self._artifacts is not None:
            attempt.context.artifacts = self._artifacts(attempt.context)
        interval_ms = self._heartbeat_interval_ms
        if scheduled.heartbeat_timeout_ms > 0:
            interval_ms = min(interval_ms, scheduled.heartbeat_timeout_ms / 3)
        attempt.heartbeat_interval_s = max(MIN_HEARTBEAT_S, interval_ms / 1000)
        attempt.next_heartbeat = time.monotonic() + attempt.heartbeat_interval_s
        self._backlog.running.add(attempt)
        self._backlog.by_run.setdefault(event.run_id, set()).add(attempt)
        # Unnamed: a name per task is a measurable share of an instant task's cost.
        attempt.task = asyncio.create_task(self._run(attempt))
        self._reports.announce_when_stepped(attempt)

    async def _run(self, attempt: Attempt) -> None:
        attempt.stepped = True
        context = attempt.context
        assert context is not None
        token = context.activate()
        try:
            if attempt.abort is not None:
                raise attempt.abort
            with attempt_spans(attempt):
                output_json = await execute(self._executors, self._secrets, attempt, context)
            outcome = self._reports.completed(attempt, output_json)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if attempt.abort is None or task is None:
                self._release(attempt)
                raise
            task.uncancel()
            outcome = self._reports.failed(attempt, attempt.abort)
        except Exception as error:
            outcome = self._reports.failed(attempt, error)
        finally:
            _reset(token)
        self._release(attempt)
        self._report(attempt, outcome)

    def _release(self, attempt: Attempt) -> None:
        """Give the attempt's slot back and send its remaining log lines."""
        backlog = self._backlog
        if attempt not in backlog.running:
            return
        backlog.running.discard(attempt)
        runs = backlog.by_run.get(attempt.event.run_id)
        if runs is not None:
            runs.discard(attempt)
            if not runs:
                del backlog.by_run[attempt.event.run_id]
        self._slots.release(attempt.scheduled.type)
        self._metrics.running(attempt.scheduled.type, attempt.scheduled.queue).dec()
        SLOTS_FREE.inc()
        self._reports.logs(attempt)
        self.dispatch()

    def _report(self, attempt: Attempt, outcome: Event) -> None:
        self._backlog.active.pop(attempt.key, None)
        self._reports.outcome(attempt, outcome)

    def abort(self, attempt: Attempt, reason: TaskAborted) -> None:
        """Stop a running attempt; it reports ``reason`` as its failure."""
        if attempt.abort is not None or attempt.task is None or attempt.task.done():
            return
        attempt.abort = reason
        if attempt.context is not None:
            attempt.context.abort()
        if attempt.stepped:
            # Cancelled before its first step, a coroutine would not run at all: no
            # outcome, no slot back. Not yet stepped, it sees the abort and stops.
            attempt.task.cancel()

    def abort_run(self, run_id: str, reason: str) -> None:
        """Abort every running attempt of ``run_id``, cancelled for ``reason``."""
        for attempt in list(self._backlog.by_run.get(run_id, ())):
            _log.info("aborting a task of a cancelled run", extra=attempt.log_fields)
            self.abort(attempt, TaskCancelled(reason))

    def abort_attempt(self, key: tuple[str, str, int], reason: str) -> None:
        """Abort the attempt ``key`` (run id, task id, attempt) if it runs here."""
        run_id, task_id, number = key
        for attempt in list(self._backlog.by_run.get(run_id, ())):
            if (attempt.scheduled.task_id, attempt.scheduled.attempt) == (task_id, number):
                _log.info("aborting a cancelled task", extra=attempt.log_fields)
                self.abort(attempt, TaskCancelled(reason))

    def abort_all(self, reason: TaskAborted) -> None:
        """Abort every running attempt."""
        for attempt in list(self._backlog.running):
            self.abort(attempt, reason)


def _reset(token: Any) -> None:
    with contextlib.suppress(ValueError):
        token.var.reset(token)
