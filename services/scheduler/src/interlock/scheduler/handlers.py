"""The Kafka side: apply a batch of consumed events to the runs in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from interlock.common import inbox, topics
from interlock.common.events import Event, is_type
from interlock.events.v1 import workflow_pb2
from interlock.scheduler import store
from interlock.scheduler.domain.queue import QueueProgress
from interlock.scheduler.domain.run import SOURCE, RunState
from interlock.scheduler.domain.states import TaskStatus
from interlock.scheduler.run_cache import RunCache

_log = logging.getLogger(__name__)

CONSUMER = "scheduler"
"""Inbox consumer name (and default consumer group) of the scheduler."""

CONSUMED = (
    topics.WORKFLOW_STARTED,
    topics.WORKFLOW_CONTROL,
    topics.TASK_STARTED,
    topics.TASK_COMPLETED,
    topics.TASK_FAILED,
    topics.TASK_HEARTBEAT,
)
"""Event types the scheduler consumes."""

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Applied:
    """A committed batch: the runs it touched and what saving them wrote."""

    runs: dict[str, RunState]
    saved: store.SaveResult
    invalid: set[str]
    """Runs an event could not be applied to (their state in memory is in doubt)."""


class BatchHandler:
    """Applies one consumed batch: claim (inbox), lock runs, apply, save, enqueue events.

    Everything commits together, so a batch is applied exactly once whatever the
    redeliveries; the events it causes leave through the outbox as one batch. The runs
    stay in memory (a :class:`RunCache`) for the next batches, which then read only the
    runs' rows, not their tasks, while nothing else wrote them.

    Args:
        pool: The scheduler's pool.
        clock: Source of the current time. Default: :func:`utc_now`.
        on_timer: Called with the earliest timer a batch set, after commit (wakes
            the timer loop). Default: nothing.
        cached_runs: Most runs kept in memory. Default: 2,000.
        progress: Told when workers pick up or run tasks (the reconciler's view of the
            queue). Default: none.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Clock = utc_now,
        on_timer: Callable[[datetime], None] | None = None,
        cached_runs: int = 2_000,
        progress: QueueProgress | None = None,
    ) -> None:
        self._progress = progress
        self._pool = pool
        self._clock = clock
        self._on_timer = on_timer
        self._cache = RunCache(cached_runs)

    async def __call__(self, events: Sequence[Event]) -> None:
        """Apply ``events`` (the consumer's handler)."""
        # Its own events (a fired delay's task.completed) tell the scheduler nothing:
        # skipping them spares a claim and a run lock each.
        events = [event for event in events if event.source != SOURCE]
        if not events:
            return
        try:
            result = await self._apply_batch(events)
        except BaseException:
            # The runs in memory may hold changes that never committed.
            self._cache.forget({event.run_id for event in events})
            raise
        if result is None:
            return
        for run_id, version in result.saved.versions.items():
            self._cache.put(run_id, version, result.runs[run_id])
        self._cache.forget(result.invalid)
        if result.saved.earliest_timer is not None and self._on_timer is not None:
            self._on_timer(result.saved.earliest_timer)

    async def _apply_batch(self, events: Sequence[Event]) -> _Applied | None:
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await inbox.claim_events(conn, CONSUMER, events)
            if not claimed:
                return None
            runs = await store.load_runs(
                conn, {event.run_id for event in claimed}, cache=self._cache
            )
            now = self._clock()
            started = [
                event.run_id
                for event in claimed
                if is_type(event, topics.WORKFLOW_STARTED) and event.run_id not in runs
            ]
            early = [
                event
                for event in claimed
                if is_type(event, topics.WORKFLOW_CONTROL) and event.run_id not in runs
            ]
            early_ids = {event.id for event in early}
            invalid: set[str] = set()
            for event in claimed:
                if event.id not in early_ids and not self._apply_or_skip(runs, event, now):
                    invalid.add(event.run_id)
            await self._park_and_release_controls(conn, runs, early, started, now)
            saved = await store.save_runs(conn, list(runs.values()), now)
        return _Applied(runs=runs, saved=saved, invalid=invalid)

    def _apply_or_skip(self, runs: dict[str, RunState], event: Event, now: datetime) -> bool:
        """Apply ``event``; ``False`` when it raised (logged and skipped)."""
        try:
            self._apply(runs, event, now)
        except Exception:
            # Applying is pure (no I/O), so an error here is a bug or an event
            # that contradicts the run's definition: skipping it beats
            # redelivering the batch forever and blocking the partition.
            _log.exception(
                "event caused an invalid transition; skipped",
                extra={"event_id": event.id, "run_id": event.run_id},
            )
            return False
        return True

    async def _park_and_release_controls(
        self,
        conn: asyncpg.Connection,
        runs: dict[str, RunState],
        early: Sequence[Event],
        started: Sequence[str],
        now: datetime,
    ) -> None:
        """Keep controls that overtook their run's start; apply them once it started.

        ``workflow.control`` and ``workflow.started`` travel on different topics, so
        a cancel sent right after a start may arrive first: dropping it would let a
        run the user cancelled go on.
        """
        if early:
            parked = [(e.id, e.run_id, e.tenant, e.payload.SerializeToString()) for e in early]
            await store.park_controls(conn, parked, now)
        if not started:
            return
        for row in await store.take_parked_controls(conn, started):
            run = runs.get(row["run_id"])
            if run is None or run.tenant != row["tenant"]:
                continue
            control = workflow_pb2.RunControl.FromString(row["payload"])
            try:
                apply_control(run, control, now)
            except Exception:
                _log.exception(
                    "parked control is invalid for its run; skipped", extra={"run_id": run.run_id}
                )

    def _apply(self, runs: dict[str, RunState], event: Event, now: datetime) -> None:
        if is_type(event, topics.WORKFLOW_STARTED):
            if event.run_id not in runs:
                new = RunState(run_id=event.run_id, tenant=event.tenant, definition=event.payload)
                runs[event.run_id] = new
                new.start(now)
            return
        run = runs.get(event.run_id)
        if run is None:
            _log.warning(
                "event for an unknown run ignored",
                extra={"event_type": event.type.name, "run_id": event.run_id},
            )
            return
        if self._progress is not None:
            self._observe_queue(run, event, now)
        if is_type(event, topics.TASK_STARTED):
            run.task_started(
                event.payload.task_id, event.payload.attempt, event.payload.worker_id, now
            )
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

    def _observe_queue(self, run: RunState, event: Event, now: datetime) -> None:
        assert self._progress is not None
        if is_type(event, topics.TASK_HEARTBEAT):
            self._progress.busy(now)
            return
        if not (
            is_type(event, topics.TASK_STARTED)
            or is_type(event, topics.TASK_COMPLETED)
            or is_type(event, topics.TASK_FAILED)
        ):
            return
        task = run.tasks.get(event.payload.task_id)
        if (
            task is not None
            and task.attempt == event.payload.attempt
            and task.status is TaskStatus.SCHEDULED
            and task.scheduled_at is not None
        ):
            self._progress.picked_up(task.scheduled_at, now)


def apply_control(run: RunState, control: workflow_pb2.RunControl, now: datetime) -> None:
    """Apply a cancel, pause, resume or retry request to ``run``."""
    action = control.action
    if action == workflow_pb2.RunControl.ACTION_CANCEL:
        run.cancel(control.reason, control.requested_by, now)
    elif action == workflow_pb2.RunControl.ACTION_PAUSE:
        run.pause(now)
    elif action == workflow_pb2.RunControl.ACTION_RESUME:
        run.resume(now)
    elif action == workflow_pb2.RunControl.ACTION_RETRY:
        run.retry(now)
