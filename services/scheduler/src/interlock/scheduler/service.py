"""The scheduler's use cases: consumed batches, timers, reconciliation, dead letters, reads.

Every change of runs has one shape: lock and load the runs (:func:`store.load_runs`),
let the domain decide (:class:`~interlock.scheduler.domain.run.RunState`), save state
and outgoing events together (:func:`store.save_runs`, transactional outbox), and
after the commit wake the timer loop when an earlier timer was set. The adapters (REST
in :mod:`~interlock.scheduler.api`, gRPC in :mod:`~interlock.scheduler.grpc`, Kafka in
:mod:`~interlock.scheduler.handlers`, the loops) only translate to these calls.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from interlock.common import inbox, topics
from interlock.common.events import Event, is_type
from interlock.common.paging import PageKey
from interlock.events.v1 import workflow_pb2
from interlock.scheduler import metrics, store
from interlock.scheduler.domain.admission import admit, is_limited, tenant_limit
from interlock.scheduler.domain.clock import Clock, utc_now
from interlock.scheduler.domain.control import apply_control
from interlock.scheduler.domain.errors import (
    DeadLetterNotFoundError,
    ForeignEventError,
    PendingDelayNotFoundError,
    ReplayNotAllowedError,
    RunNotFoundError,
)
from interlock.scheduler.domain.events import apply_event, check_tenant
from interlock.scheduler.domain.queue import Lanes, lane_queue, waiting_for_workers
from interlock.scheduler.domain.run import RunState
from interlock.scheduler.domain.states import TaskStatus
from interlock.scheduler.run_cache import RunCache

_log = logging.getLogger(__name__)

CONSUMER = "scheduler"
"""Inbox consumer name (and default consumer group) of the scheduler."""

_DEAD_LETTERS_PAGE = PageKey("dead-letters", datetime, uuid.UUID)


@dataclass(frozen=True)
class _Applied:
    """A committed batch: the runs it touched and what saving them wrote."""

    runs: dict[str, RunState]
    saved: store.SaveResult
    invalid: set[str]
    """Runs an event could not be applied to (their state in memory is in doubt)."""


@dataclass(frozen=True, kw_only=True)
class DeadLetterPage:
    """One page of dead letters, newest first."""

    items: list[asyncpg.Record]
    next_page_token: str | None


@dataclass(frozen=True, kw_only=True)
class Replayed:
    """The attempt a replay scheduled (or queued, when the run waits for a slot)."""

    run_id: str
    task_id: str
    attempt: int


@dataclass(frozen=True, kw_only=True)
class RunChanges:
    """A run's row, its task rows, and its transitions after a known one."""

    run: asyncpg.Record
    tasks: list[asyncpg.Record]
    transitions: list[asyncpg.Record]


class SchedulerService:
    """Per-run task state for every tenant.

    Args:
        pool: Returns the scheduler's open pool (the database opens after wiring).
        clock: Source of the current time. Default: :func:`utc_now`.
        on_timer: Called with the earliest timer a change set, after commit (wakes
            the timer loop). Default: nothing.
        cached_runs: Most runs the consumer keeps in memory between batches.
            Default: 2,000.
        progress: What workers were seen picking up, per lane (queue and priority
            band), so that a task waiting in a long queue is not taken for lost.
            Default: a new one.
        ensure_queues: Creates the task topics of queues before the first task of each
            is saved (the relay would otherwise publish to a topic the broker creates
            with its own defaults). Default: nothing.
        on_slots: Called after a commit that queued a run for a concurrency slot or
            ended a limited run (wakes the admission loop). Default: nothing.
    """

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        clock: Clock = utc_now,
        on_timer: Callable[[datetime], None] | None = None,
        cached_runs: int = 2_000,
        progress: Lanes | None = None,
        ensure_queues: Callable[[set[str]], Awaitable[None]] | None = None,
        on_slots: Callable[[], None] | None = None,
    ) -> None:
        self._pool = pool
        self._on_slots = on_slots
        self._clock = clock
        self._progress = progress or Lanes(clock())
        self._told_unserved: set[tuple[str, str, int]] = set()
        self._ensure_queues = ensure_queues
        self._on_timer = on_timer
        self._cache = RunCache(cached_runs)

    def _acquire(self) -> Any:
        return self._pool().acquire()

    async def _save(
        self,
        conn: asyncpg.Connection,
        runs: Sequence[RunState],
        now: datetime,
        *,
        republished: bool = False,
    ) -> store.SaveResult:
        """Save ``runs`` (:func:`store.save_runs`), once the topics their tasks go to exist.

        Their events are counted (metrics) just before, while the runs still hold them:
        the rare transaction that fails after that is counted again when retried.
        """
        if self._ensure_queues is not None:
            queues = {
                event.payload.queue
                for run in runs
                for event in run.events
                if is_type(event, topics.TASK_SCHEDULED)
            }
            if queues:
                await self._ensure_queues(queues)
        metrics.observe_emitted(runs, now, republished=republished)
        return await store.save_runs(conn, runs, now)

    def _timer_set(self, due_at: datetime | None) -> None:
        if due_at is not None and self._on_timer is not None:
            self._on_timer(due_at)

    def _saved(self, saved: store.SaveResult) -> None:
        """After a commit: wake the loops that the change concerns."""
        self._timer_set(saved.earliest_timer)
        if saved.slots_changed and self._on_slots is not None:
            self._on_slots()

    # Consumed events ---------------------------------------------------------------

    async def apply_events(self, events: Sequence[Event]) -> None:
        """Apply one consumed batch: claim (inbox), lock runs, apply, save, enqueue events.

        Everything commits together, so a batch is applied exactly once whatever the
        redeliveries; the events it causes leave through the outbox as one batch. The
        runs stay in memory (a :class:`RunCache`) for the next batches, which then read
        only the runs' rows, not their tasks, while nothing else wrote them. An event
        of another tenant than its run's is rejected (kept in ``rejected_events``).
        """
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
        self._saved(result.saved)

    async def _apply_batch(self, events: Sequence[Event]) -> _Applied | None:
        async with self._acquire() as conn, conn.transaction():
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
            rejected: list[store.RejectedEvent] = []
            for event in claimed:
                if event.id in early_ids:
                    continue
                try:
                    self._apply(runs, event, now)
                except ForeignEventError as error:
                    rejected.append(_rejection(event, error))
                except Exception:
                    # Applying is pure (no I/O), so an error here is a bug or an event
                    # that contradicts the run's definition: skipping it beats
                    # redelivering the batch forever and blocking the partition.
                    _log.exception(
                        "event caused an invalid transition; skipped",
                        extra={"event_id": event.id, "run_id": event.run_id},
                    )
                    invalid.add(event.run_id)
            await self._park_and_release_controls(conn, runs, early, started, now, rejected)
            if rejected:
                _log.warning(
                    "rejected events of another tenant than their run's",
                    extra={"event_ids": [r.event_id for r in rejected]},
                )
                await store.reject_events(conn, rejected, now)
            saved = await self._save(conn, list(runs.values()), now)
            metrics.RUNS_STARTED.inc(len(started))
        return _Applied(runs=runs, saved=saved, invalid=invalid)

    def _apply(self, runs: dict[str, RunState], event: Event, now: datetime) -> None:
        run = runs.get(event.run_id)
        if is_type(event, topics.WORKFLOW_STARTED):
            if run is None:
                new = RunState(
                    run_id=event.run_id,
                    tenant=event.tenant,
                    definition=event.payload,
                    requested_at=event.time,
                    traceparent=event.traceparent,
                )
                runs[event.run_id] = new
                new.start(now, limited=is_limited(event.payload))
            else:
                check_tenant(run, event)
            return
        if run is None:
            _log.warning(
                "event for an unknown run ignored",
                extra={"event_type": event.type.name, "run_id": event.run_id},
            )
            return
        check_tenant(run, event)
        _observe_queue(self._progress, run, event, now)
        run.cause_traceparent = event.traceparent
        try:
            apply_event(run, event, now)
        finally:
            run.cause_traceparent = None

    async def _park_and_release_controls(
        self,
        conn: asyncpg.Connection,
        runs: dict[str, RunState],
        early: Sequence[Event],
        started: Sequence[str],
        now: datetime,
        rejected: list[store.RejectedEvent],
    ) -> None:
        """Keep controls that overtook their run's start; apply them once it started.

        ``workflow.control`` and ``workflow.started`` travel on different topics, so
        a cancel sent right after a start may arrive first: dropping it would let a
        run the user cancelled go on. A parked control of another tenant than its run's
        joins ``rejected``.
        """
        if early:
            parked = [(e.id, e.run_id, e.tenant, e.payload.SerializeToString()) for e in early]
            await store.park_controls(conn, parked, now)
        if not started:
            return
        for row in await store.take_parked_controls(conn, started):
            run = runs.get(row["run_id"])
            if run is None:
                continue
            if run.tenant != row["tenant"]:
                rejected.append(
                    store.RejectedEvent(
                        event_id=row["event_id"],
                        event_type=topics.WORKFLOW_CONTROL.name,
                        run_id=run.run_id,
                        event_tenant=row["tenant"],
                        run_tenant=run.tenant,
                        reason=str(ForeignEventError(row["tenant"], run.tenant)),
                        payload=row["payload"],
                    )
                )
                continue
            control = workflow_pb2.RunControl.FromString(row["payload"])
            try:
                apply_control(run, control, now)
            except Exception:
                _log.exception(
                    "parked control is invalid for its run; skipped", extra={"run_id": run.run_id}
                )

    # Timers ------------------------------------------------------------------------

    async def fire_due_timers(self, limit: int) -> int:
        """Fire up to ``limit`` due timers (their runs' other due timers too).

        Claims the timers with ``FOR UPDATE SKIP LOCKED`` and their runs with ``SKIP
        LOCKED`` (a run busy elsewhere is fired on a later pass), all in one
        transaction, so any number of instances may fire at once.

        Returns:
            How many timers fired.
        """
        async with self._acquire() as conn, conn.transaction():
            now = self._clock()
            run_ids = await store.due_timer_runs(conn, now, limit)
            if not run_ids:
                return 0
            runs = await store.load_runs(conn, run_ids, skip_locked=True)
            due = [
                (timer.kind.value, timer.due_at)
                for run in runs.values()
                for timer in run.timers.values()
                if timer.due_at <= now
            ]
            fired = sum(run.fire_due_timers(now) for run in runs.values())
            metrics.observe_fired(due, now)
            saved = await self._save(conn, list(runs.values()), now)
        self._saved(saved)
        return fired

    async def next_timer_due(self) -> datetime | None:
        """The earliest timer's due time, if any."""
        async with self._acquire() as conn:
            return await store.next_due_at(conn)

    async def reschedule_delay(
        self, tenant: str, run_id: str, task_id: str, due_at: datetime
    ) -> None:
        """Move a pending delay of ``tenant``'s run to ``due_at`` (in the past: at once).

        Raises:
            RunNotFoundError: No such run for ``tenant``.
            PendingDelayNotFoundError: The task is no delay waiting for its timer.
        """
        async with self._acquire() as conn, conn.transaction():
            run = await _tenant_run(conn, tenant, run_id)
            if not run.reschedule_delay(task_id, due_at):
                raise PendingDelayNotFoundError()
            await self._save(conn, [run], self._clock())
        self._timer_set(due_at)

    async def cancel_delay(self, tenant: str, run_id: str, task_id: str) -> None:
        """Cancel a pending delay: the task is skipped and the run continues.

        Raises:
            RunNotFoundError: No such run for ``tenant``.
            PendingDelayNotFoundError: The task is no delay waiting for its timer.
        """
        async with self._acquire() as conn, conn.transaction():
            run = await _tenant_run(conn, tenant, run_id)
            now = self._clock()
            if not run.cancel_delay(task_id, now):
                raise PendingDelayNotFoundError()
            saved = await self._save(conn, [run], now)
        self._saved(saved)

    # Concurrency limits ------------------------------------------------------------

    async def admit_waiting(self, per_tenant: int = 500) -> int:
        """Start the waiting runs that got a concurrency slot; tell the others why they wait.

        One transaction per tenant with waiting runs, under an advisory lock on the
        tenant, so passes of several instances never hand out the same slot twice.
        A run busy elsewhere (``SKIP LOCKED``) waits for the next pass.

        Returns:
            How many runs started.
        """
        async with self._acquire() as conn:
            tenants = await store.waiting_tenants(conn)
        started = 0
        for tenant in tenants:
            async with self._acquire() as conn, conn.transaction():
                await store.lock_admission(conn, tenant)
                waiting = await store.waiting_runs(conn, tenant, per_tenant)
                active = await store.active_runs(conn, tenant)
                decided = admit(waiting, active, tenant_limit())
                runs = await store.load_runs(
                    conn, [*decided.admitted, *decided.reasons], skip_locked=True
                )
                now = self._clock()
                admitted = [runs[run_id] for run_id in decided.admitted if run_id in runs]
                for run in admitted:
                    run.admit(now)
                reasons = {r: why for r, why in decided.reasons.items() if r in runs}
                for run_id, why in reasons.items():
                    runs[run_id].wait(why, now)
                if admitted:
                    await store.take_slots(conn, admitted)
                if reasons:
                    await store.set_waiting_reasons(conn, reasons)
                saved = await self._save(conn, list(runs.values()), now)
            self._timer_set(saved.earliest_timer)
            started += len(admitted)
        return started

    # Reconciliation ----------------------------------------------------------------

    async def republish_stuck(self, waited: timedelta, limit: int) -> int:
        """Re-publish ``task.scheduled`` of up to ``limit`` tasks whose event was lost.

        Lost: the workers' pick-ups in its lane (queue and priority band) overtook the
        task by ``waited``, or it waited that long while no worker of the lane did
        anything (:class:`~interlock.scheduler.domain.queue.Lanes`). A worker that never
        saw the event (a broker that lost its data, a lost record) then gets it again;
        the attempt and its idempotency key stay the same.

        Returns:
            How many were re-published.
        """
        now = self._clock()
        cutoffs = self._progress.lost_before(now, waited)
        if cutoffs.latest is None:
            return 0
        async with self._acquire() as conn, conn.transaction():
            stuck = await store.stuck_scheduled(conn, cutoffs, limit)
            if not stuck:
                return 0
            runs = await store.load_runs(conn, {run_id for run_id, _ in stuck}, skip_locked=True)
            count = sum(
                runs[run_id].republish(task_id, now) for run_id, task_id in stuck if run_id in runs
            )
            await self._save(conn, list(runs.values()), now, republished=True)
        return count

    async def backlogs(self) -> store.Backlogs:
        """How many dead letters are kept and how many timers are due (bounded counts)."""
        async with self._acquire() as conn:
            return await store.backlogs(conn, self._clock())

    async def waiting_lanes(self) -> dict[str, tuple[int, timedelta]]:
        """Lanes with tasks waiting for a worker: how many, and how long idle.

        Idle: how long no worker of the lane took or ran a task, as this process saw.
        """
        async with self._acquire() as conn:
            waiting = await store.waiting_by_lane(conn)
        now = self._clock()
        return {lane: (count, self._progress.idle(lane, now)) for lane, count in waiting.items()}

    async def tell_unserved(self, after: timedelta, limit: int = 500) -> int:
        """Tell the run views which waiting tasks no worker of their queue takes.

        A queue is unserved when, while its tasks wait, no worker took or ran a task of
        any of its bands for ``after`` (as this process saw): no worker serves it, or
        none has had room for its tasks. Each waiting attempt is told once (one
        ``workflow.waiting`` per run naming its tasks); its ``task.started`` clears it.

        Returns:
            How many tasks were newly told.
        """
        now = self._clock()
        async with self._acquire() as conn:
            waiting = await store.waiting_by_lane(conn)
        unserved = sorted(
            lane for lane in waiting if self._progress.queue_idle(lane_queue(lane), now) >= after
        )
        if not unserved:
            self._told_unserved = set()
            return 0
        async with self._acquire() as conn, conn.transaction():
            tasks = await store.scheduled_in_lanes(conn, unserved, limit)
            fresh = [
                t for t in tasks if (t.run_id, t.task_id, t.attempt) not in self._told_unserved
            ]
            if fresh:
                await store.enqueue_events(conn, waiting_for_workers(fresh, after, now))
        self._told_unserved = {(t.run_id, t.task_id, t.attempt) for t in tasks}
        return len(fresh)

    async def prune_inbox(self, older_than: timedelta) -> int:
        """Forget consumed event ids older than ``older_than``; how many."""
        async with self._acquire() as conn:
            return await inbox.prune(conn, older_than=older_than)

    async def prune_parked_controls(self, older_than: timedelta) -> int:
        """Drop controls parked longer than ``older_than`` (their run never started); how many.

        A control waits for its run's ``workflow.started``; one whose start has not
        come after the workflow service gave up re-publishing it never will, and would
        stay forever.
        """
        async with self._acquire() as conn:
            return await store.prune_parked_controls(conn, self._clock() - older_than)

    async def prune_rejected_events(self, older_than: timedelta) -> int:
        """Forget events rejected longer than ``older_than`` ago; how many."""
        async with self._acquire() as conn:
            return await store.prune_rejected_events(conn, self._clock() - older_than)

    # Dead letters ------------------------------------------------------------------

    async def list_dead_letters(
        self,
        tenant: str,
        where: store.DeadLetterFilter,
        *,
        page_size: int,
        page_token: str | None,
    ) -> DeadLetterPage:
        """Dead letters of ``tenant``, newest first, ``page_size`` a page (AIP-158).

        Raises:
            InvalidPageTokenError: ``page_token`` is not one this list issued for
                these filters.
        """
        filters = dataclasses.asdict(where)
        after = _DEAD_LETTERS_PAGE.decode(page_token, filters) if page_token else None
        async with self._acquire() as conn:
            rows = await store.list_dead_letters(conn, tenant, where, after, page_size + 1)
        next_page_token = None
        if len(rows) > page_size:
            last = rows[page_size - 1]
            next_page_token = _DEAD_LETTERS_PAGE.encode((last["created_at"], last["id"]), filters)
        return DeadLetterPage(items=rows[:page_size], next_page_token=next_page_token)

    async def replay_dead_letter(self, tenant: str, letter_id: str) -> Replayed:
        """Re-run the task with a fresh retry budget and resume its run; the letter goes.

        A failed run under a concurrency limit gave its slot back: like a retried one,
        it queues for a slot again, and the admission pass that gives it one re-runs
        the task (:meth:`admit_waiting`).

        Raises:
            DeadLetterNotFoundError: No such dead letter for ``tenant``.
            RunNotFoundError: Its run is gone.
            ReplayNotAllowedError: The task is no longer dead-lettered, or its run
                cannot resume.
        """
        key = _letter_id(letter_id)
        async with self._acquire() as conn, conn.transaction():
            parked = await store.dead_letter_task(conn, tenant, key)
            if parked is None:
                raise DeadLetterNotFoundError()
            run_id, task_id = parked
            run = await _tenant_run(conn, tenant, run_id)
            now = self._clock()
            attempt = run.replay(task_id, now, limited=is_limited(run.definition))
            if attempt is None:
                raise ReplayNotAllowedError()
            result = await self._save(conn, [run], now)
            await store.delete_dead_letter(conn, tenant, key)
        self._saved(result)
        return Replayed(run_id=run_id, task_id=task_id, attempt=attempt)

    async def delete_dead_letter(self, tenant: str, letter_id: str) -> None:
        """Discard a dead letter (the task stays dead-lettered in its run).

        Raises:
            DeadLetterNotFoundError: No such dead letter for ``tenant``.
        """
        async with self._acquire() as conn:
            if not await store.delete_dead_letter(conn, tenant, _letter_id(letter_id)):
                raise DeadLetterNotFoundError()

    # Reads -------------------------------------------------------------------------

    async def get_run(self, tenant: str, run_id: str) -> asyncpg.Record:
        """A run's row.

        Raises:
            RunNotFoundError: No such run for ``tenant``.
        """
        async with self._acquire() as conn:
            return await _read_run(conn, tenant, run_id)

    async def list_run_tasks(
        self, tenant: str, run_id: str, task_id: str | None = None
    ) -> list[asyncpg.Record]:
        """A run's task rows (one task's when ``task_id`` is given), by task id.

        Raises:
            RunNotFoundError: No such run for ``tenant``.
        """
        async with self._acquire() as conn:
            await _read_run(conn, tenant, run_id)
            return await store.read_tasks(conn, run_id, task_id)

    async def run_snapshot(self, tenant: str, run_id: str) -> tuple[RunChanges, int]:
        """A run's row and tasks, and the id of its latest transition (to watch after).

        Raises:
            RunNotFoundError: No such run for ``tenant``.
        """
        async with self._acquire() as conn:
            run = await _read_run(conn, tenant, run_id)
            last_id = await store.last_transition_id(conn, run_id)
            tasks = await store.read_tasks(conn, run_id)
        return RunChanges(run=run, tasks=tasks, transitions=[]), last_id

    async def run_changes(self, tenant: str, run_id: str, after_id: int) -> RunChanges | None:
        """The run's transitions after ``after_id`` with its row and tasks; ``None``: none.

        Raises:
            RunNotFoundError: No such run for ``tenant``.
        """
        async with self._acquire() as conn:
            changes = await store.read_transitions(conn, run_id, after_id)
            if not changes:
                return None
            tasks = await store.read_tasks(conn, run_id)
            run = await _read_run(conn, tenant, run_id)
        return RunChanges(run=run, tasks=tasks, transitions=changes)


def _observe_queue(progress: Lanes, run: RunState, event: Event, now: datetime) -> None:
    """Tell ``progress`` that a worker picked up (or runs) one of ``run``'s tasks."""
    heartbeat = is_type(event, topics.TASK_HEARTBEAT)
    if not (
        heartbeat
        or is_type(event, topics.TASK_STARTED)
        or is_type(event, topics.TASK_COMPLETED)
        or is_type(event, topics.TASK_FAILED)
    ):
        return
    # Each of these payloads names its task and attempt.
    payload: Any = event.payload
    task = run.tasks.get(payload.task_id)
    if task is None:
        return
    lane = progress.lane(run.lane_of(task.task_id))
    if heartbeat:
        lane.busy(now)
    elif (
        task.attempt == payload.attempt
        and task.status is TaskStatus.SCHEDULED
        and task.scheduled_at is not None
    ):
        lane.picked_up(task.scheduled_at, now)


def _rejection(event: Event, error: ForeignEventError) -> store.RejectedEvent:
    return store.RejectedEvent(
        event_id=event.id,
        event_type=event.type.name,
        run_id=event.run_id,
        event_tenant=error.event_tenant,
        run_tenant=error.run_tenant,
        reason=str(error),
        payload=event.payload.SerializeToString(),
    )


async def _tenant_run(conn: asyncpg.Connection, tenant: str, run_id: str) -> RunState:
    """Lock and load ``tenant``'s run.

    Raises:
        RunNotFoundError: No such run for ``tenant``.
    """
    run = (await store.load_runs(conn, [run_id])).get(run_id)
    if run is None or run.tenant != tenant:
        raise RunNotFoundError()
    return run


async def _read_run(conn: asyncpg.Connection, tenant: str, run_id: str) -> asyncpg.Record:
    row = await store.read_run(conn, tenant, run_id)
    if row is None:
        raise RunNotFoundError()
    return row


def _letter_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as error:
        raise DeadLetterNotFoundError() from error
