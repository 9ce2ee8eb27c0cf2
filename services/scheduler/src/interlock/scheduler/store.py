"""PostgreSQL access: load runs (locked) with their tasks and timers, write back changes.

Everything is batch-shaped: :func:`load_runs` reads any number of runs with three
statements, :func:`save_runs` writes every change of a batch of runs (run rows, task
rows, transitions, timers, dead letters, outbox events) with a handful more. Callers
hold one transaction around both, so the runs' row locks serialize the consumer,
timer loop, reconciler and API on a run (always taken in run id order).

Every write of a run goes through :func:`save_runs`, which gives the run a new random
``version``: a :class:`~interlock.scheduler.run_cache.RunCache` relies on it.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from cachetools import LRUCache

from interlock.common import outbox
from interlock.common.events import Event
from interlock.events.v1 import workflow_pb2
from interlock.scheduler.domain.admission import WaitingRun, is_limited
from interlock.scheduler.domain.queue import Cutoffs, UnservedTask
from interlock.scheduler.domain.run import ErrorInfo, Plan, RunState, TaskState, Timer, TimerKind
from interlock.scheduler.domain.states import ENDED_RUN, RunStatus, TaskStatus
from interlock.scheduler.run_cache import RunCache

_LOAD_RUNS = """
SELECT run_id, tenant, status, started, created_at, ended_at, version, traceparent
FROM runs WHERE run_id = ANY($1::text[])
ORDER BY run_id
FOR UPDATE
"""
_LOAD_RUNS_SKIP_LOCKED = _LOAD_RUNS + " SKIP LOCKED"
_LOAD_TASKS = "SELECT * FROM tasks WHERE run_id = ANY($1::text[])"
_LOAD_TIMERS = "SELECT * FROM timers WHERE run_id = ANY($1::text[])"

_INSERT_RUNS = """
INSERT INTO runs (run_id, tenant, status, started, created_at, updated_at, ended_at, version,
    traceparent)
SELECT run_id, tenant, status, started, created_at, created_at, ended_at, version, traceparent
FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::timestamptz[],
    $6::timestamptz[], $7::bigint[], $8::text[])
    AS r(run_id, tenant, status, started, created_at, ended_at, version, traceparent)
"""
# Every changed run gets its new version; status and times only where the run changed.
_UPDATE_RUNS = """
UPDATE runs AS r SET
    version = u.version,
    status = CASE WHEN u.run_changed THEN u.status ELSE r.status END,
    updated_at = CASE WHEN u.run_changed THEN $6 ELSE r.updated_at END,
    ended_at = CASE WHEN u.run_changed THEN u.ended_at ELSE r.ended_at END
FROM unnest($1::text[], $2::bigint[], $3::bool[], $4::text[], $5::timestamptz[])
    AS u(run_id, version, run_changed, status, ended_at)
WHERE r.run_id = u.run_id
RETURNING r.run_id
"""
# One statement for each kind of task write of a batch (one statement per row costs
# PostgreSQL an executor start-up and asyncpg a round of encoding each). New tasks are
# plain inserts and known ones plain updates: an upsert would write a speculative
# insertion or a row lock to the WAL besides the row. A task's depends_on (only
# compensations have one) travels as a JSON array: a text[] per row does not fit in an
# array parameter.
_INSERT_TASKS = """
INSERT INTO tasks (run_id, task_id, status, attempt, attempt_floor, scheduled_at, started_at,
    ended_at, params_json, output_json, error_type, error_message, error_retryable,
    error_traceback, worker_id, depends_on, lane)
SELECT run_id, task_id, status, attempt, attempt_floor, scheduled_at, started_at,
    ended_at, params_json, output_json, error_type, error_message, error_retryable,
    error_traceback, worker_id,
    CASE WHEN depends_on IS NOT NULL
        THEN ARRAY(SELECT jsonb_array_elements_text(depends_on::jsonb)) END,
    lane
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::timestamptz[],
    $7::timestamptz[], $8::timestamptz[], $9::bytea[], $10::bytea[], $11::text[], $12::text[],
    $13::bool[], $14::text[], $15::text[], $16::text[], $17::text[])
    AS t(run_id, task_id, status, attempt, attempt_floor, scheduled_at, started_at, ended_at,
        params_json, output_json, error_type, error_message, error_retryable, error_traceback,
        worker_id, depends_on, lane)
"""
_UPDATE_TASKS = """
UPDATE tasks AS t SET
    status = u.status, attempt = u.attempt, attempt_floor = u.attempt_floor,
    scheduled_at = u.scheduled_at, started_at = u.started_at, ended_at = u.ended_at,
    params_json = u.params_json, output_json = u.output_json, error_type = u.error_type,
    error_message = u.error_message, error_retryable = u.error_retryable,
    error_traceback = u.error_traceback, worker_id = u.worker_id
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::timestamptz[],
    $7::timestamptz[], $8::timestamptz[], $9::bytea[], $10::bytea[], $11::text[], $12::text[],
    $13::bool[], $14::text[], $15::text[])
    AS u(run_id, task_id, status, attempt, attempt_floor, scheduled_at, started_at, ended_at,
        params_json, output_json, error_type, error_message, error_retryable, error_traceback,
        worker_id)
WHERE t.run_id = u.run_id AND t.task_id = u.task_id
"""
_INSERT_TRANSITIONS = """
INSERT INTO transitions (run_id, task_id, from_status, to_status, attempt, at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[],
    $6::timestamptz[])
"""
_DELETE_TIMERS = """
DELETE FROM timers t USING unnest($1::text[], $2::text[], $3::text[]) AS d(run_id, task_id, kind)
WHERE t.run_id = d.run_id AND t.task_id = d.task_id AND t.kind = d.kind
"""
_UPSERT_TIMERS = """
INSERT INTO timers (run_id, task_id, kind, attempt, due_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::timestamptz[])
ON CONFLICT (run_id, task_id, kind) DO UPDATE SET
    attempt = EXCLUDED.attempt, due_at = EXCLUDED.due_at
"""
_INSERT_WAITING = """
INSERT INTO waiting_runs (run_id, tenant, workflow, max_runs, requested_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::timestamptz[])
ON CONFLICT (run_id) DO NOTHING
"""
# A limited run that ended frees its slot (or leaves the queue, cancelled while waiting).
_FREE_SLOTS = """
WITH waiting AS (DELETE FROM waiting_runs WHERE run_id = ANY($1::text[]))
DELETE FROM active_runs WHERE run_id = ANY($1::text[])
"""
_INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (id, tenant, run_id, task_id, task_type, params_json, attempts,
    error_type, error_message, error_traceback, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""


async def load_runs(
    conn: asyncpg.Connection,
    run_ids: Iterable[str],
    *,
    skip_locked: bool = False,
    cache: RunCache | None = None,
) -> dict[str, RunState]:
    """Lock and load runs with their tasks and timers; unknown ids are left out.

    Args:
        conn: A connection inside a transaction (the row locks last until it ends).
        run_ids: The runs.
        skip_locked: Leave out runs another transaction holds instead of waiting.
            Default: wait.
        cache: Runs kept from earlier batches: a kept run whose version matches is
            returned as is (its tasks and timers are not read), and every run read is
            kept. The caller must ``forget`` the runs if its transaction does not
            commit. Default: none.
    """
    ids = sorted(set(run_ids))
    if not ids:
        return {}
    rows = await conn.fetch(_LOAD_RUNS_SKIP_LOCKED if skip_locked else _LOAD_RUNS, ids)
    runs: dict[str, RunState] = {}
    unread: list[str] = []
    for row in rows:
        run_id = row["run_id"]
        kept = cache.get(run_id, row["version"]) if cache is not None else None
        if kept is not None:
            runs[run_id] = kept
            continue
        started, plan = _definition(run_id, row["started"])
        run = RunState(
            run_id=run_id,
            tenant=row["tenant"],
            definition=started,
            plan=plan,
            status=_RUN_STATUS[row["status"]],
            created_at=row["created_at"],
            ended_at=row["ended_at"],
            traceparent=row["traceparent"],
        )
        runs[run_id] = run
        unread.append(run_id)
        if cache is not None:
            cache.put(run_id, row["version"], run)
    if not unread:
        return runs
    for row in await conn.fetch(_LOAD_TASKS, unread):
        runs[row["run_id"]].tasks[row["task_id"]] = _task(row)
    for row in await conn.fetch(_LOAD_TIMERS, unread):
        kind = TimerKind(row["kind"])
        runs[row["run_id"]].timers[(row["task_id"], kind)] = Timer(
            row["task_id"], kind, row["attempt"], row["due_at"]
        )
    return runs


_DEFINITIONS: LRUCache[str, tuple[workflow_pb2.WorkflowStarted, Plan]] = LRUCache(maxsize=10_000)
_TASK_STATUS = {status.value: status for status in TaskStatus}
_RUN_STATUS = {status.value: status for status in RunStatus}


def _definition(run_id: str, raw: bytes) -> tuple[workflow_pb2.WorkflowStarted, Plan]:
    """A run's parsed, indexed definition; cached per run (definitions never change)."""
    cached = _DEFINITIONS.get(run_id)
    if cached is None:
        started = workflow_pb2.WorkflowStarted()
        started.ParseFromString(raw)
        cached = _DEFINITIONS[run_id] = (started, Plan.of(started))
    return cached


def _task(row: asyncpg.Record) -> TaskState:
    error = None
    if row["error_type"] is not None:
        error = ErrorInfo(
            row["error_type"],
            row["error_message"] or "",
            bool(row["error_retryable"]),
            row["error_traceback"] or "",
        )
    return TaskState(
        task_id=row["task_id"],
        status=_TASK_STATUS[row["status"]],
        attempt=row["attempt"],
        attempt_floor=row["attempt_floor"],
        scheduled_at=row["scheduled_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        params_json=row["params_json"],
        output_json=row["output_json"],
        error=error,
        worker_id=row["worker_id"],
        depends_on=row["depends_on"],
    )


@dataclass(frozen=True)
class SaveResult:
    """What :func:`save_runs` wrote that the caller may react to."""

    events: int
    earliest_timer: datetime | None
    versions: dict[str, int]
    """The new version of every run that changed (new runs included)."""
    slots_changed: bool = False
    """A run began waiting for a concurrency slot, or a limited run ended: waiting runs
    may start."""


async def save_runs(
    conn: asyncpg.Connection, runs: Sequence[RunState], now: datetime
) -> SaveResult:
    """Write every change of ``runs`` and enqueue their events, then clear the change logs.

    Each run that changed gets a new random version (see :mod:`interlock.scheduler.run_cache`).

    Args:
        conn: The connection (inside the transaction) the runs were loaded or created in.
        runs: Loaded or new runs.
        now: The time of the change (``updated_at``).
    """
    versions = {run.run_id: secrets.randbits(63) for run in runs if _has_changes(run)}
    new_runs = [run for run in runs if run.is_new]
    if new_runs:
        await conn.execute(
            _INSERT_RUNS,
            [run.run_id for run in new_runs],
            [run.tenant for run in new_runs],
            [run.status.value for run in new_runs],
            [run.definition.SerializeToString() for run in new_runs],
            [run.created_at or now for run in new_runs],
            [run.ended_at for run in new_runs],
            [versions[run.run_id] for run in new_runs],
            [run.traceparent for run in new_runs],
        )
    slots_changed = await _save_slots(conn, runs)
    created: list[tuple[str, TaskState]] = []
    lanes: list[str] = []
    updated: list[tuple[str, TaskState]] = []
    for run in runs:
        for task_id in sorted(run.changed_tasks):
            if task_id in run.new_tasks:
                created.append((run.run_id, run.tasks[task_id]))
                lanes.append(run.lane_of(task_id))
            else:
                updated.append((run.run_id, run.tasks[task_id]))
    if created:
        depends_on = [
            None if task.depends_on is None else json.dumps(task.depends_on) for _, task in created
        ]
        await conn.execute(_INSERT_TASKS, *_task_columns(created), depends_on, lanes)
    if updated:
        await conn.execute(_UPDATE_TASKS, *_task_columns(updated))
    transitions = [(run.run_id, t) for run in runs for t in run.transitions]
    if transitions:
        await conn.execute(
            _INSERT_TRANSITIONS,
            [run_id for run_id, _ in transitions],
            [t.task_id for _, t in transitions],
            [str(t.from_status) for _, t in transitions],
            [str(t.to_status) for _, t in transitions],
            [t.attempt for _, t in transitions],
            [t.at for _, t in transitions],
        )
    cleared = [(run.run_id, *key) for run in runs for key in run.timers_cleared]
    if cleared:
        await conn.execute(
            _DELETE_TIMERS,
            [c[0] for c in cleared],
            [c[1] for c in cleared],
            [str(c[2]) for c in cleared],
        )
    timers = [(run.run_id, timer) for run in runs for timer in run.timers_set.values()]
    if timers:
        await conn.execute(
            _UPSERT_TIMERS,
            [run_id for run_id, _ in timers],
            [timer.task_id for _, timer in timers],
            [timer.kind.value for _, timer in timers],
            [timer.attempt for _, timer in timers],
            [timer.due_at for _, timer in timers],
        )
    letters = [(run, letter) for run in runs for letter in run.dead_letters]
    if letters:
        await conn.executemany(
            _INSERT_DEAD_LETTER,
            [
                (
                    letter.id,
                    run.tenant,
                    run.run_id,
                    letter.task_id,
                    letter.task_type,
                    letter.params_json,
                    letter.attempts,
                    letter.error.type,
                    letter.error.message,
                    letter.error.traceback_excerpt,
                    now,
                )
                for run, letter in letters
            ],
        )
    events = [event for run in runs for event in run.events]
    changed = [run for run in runs if run.run_id in versions and not run.is_new]
    if changed:
        update = (
            [run.run_id for run in changed],
            [versions[run.run_id] for run in changed],
            [run.run_changed for run in changed],
            [run.status.value for run in changed],
            [run.ended_at for run in changed],
            now,
        )
        if events:
            # The runs' new versions and the outbox rows in one round trip.
            await outbox.execute_with_events(conn, _UPDATE_RUNS, update, events)
        else:
            await conn.execute(_UPDATE_RUNS, *update)
    else:
        await outbox.enqueue(conn, events)
    earliest = min((timer.due_at for _, timer in timers), default=None)
    for run in runs:
        run.is_new = run.run_changed = False
        run.changed_tasks.clear()
        run.new_tasks.clear()
        run.transitions.clear()
        run.timers_set.clear()
        run.timers_cleared.clear()
        run.dead_letters.clear()
        run.events.clear()
        run.waiting = run.withdrawn = False
    return SaveResult(
        events=len(events), earliest_timer=earliest, versions=versions, slots_changed=slots_changed
    )


async def _save_slots(conn: asyncpg.Connection, runs: Sequence[RunState]) -> bool:
    """Queue the runs that wait for a slot (new or retried), free the others' slots.

    Slots are freed for limited runs that ended, and retries queued by runs cancelled
    since are dropped.

    Returns:
        Whether waiting runs may now start, or must be told a new reason.
    """
    waiting = [run for run in runs if run.waiting]
    if waiting:
        await conn.execute(
            _INSERT_WAITING,
            [run.run_id for run in waiting],
            [run.tenant for run in waiting],
            [run.definition.workflow_name for run in waiting],
            [run.definition.definition.max_concurrent_runs for run in waiting],
            [run.requested_at or run.created_at for run in waiting],
        )
    ended = [
        run.run_id
        for run in runs
        if (run.run_changed and run.status in ENDED_RUN and is_limited(run.definition))
        or run.withdrawn
    ]
    if ended:
        await conn.execute(_FREE_SLOTS, ended)
    return bool(waiting or ended)


async def waiting_tenants(conn: asyncpg.Connection) -> list[str]:
    """Tenants with runs waiting for a concurrency slot."""
    rows = await conn.fetch("SELECT DISTINCT tenant FROM waiting_runs")
    return [row["tenant"] for row in rows]


async def lock_admission(conn: asyncpg.Connection, tenant: str) -> None:
    """Serialize admission passes over ``tenant`` (until the transaction ends)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('interlock.scheduler.admission'), hashtext($1))",
        tenant,
    )


async def waiting_runs(conn: asyncpg.Connection, tenant: str, limit: int) -> list[WaitingRun]:
    """``tenant``'s oldest waiting runs, in the order they were requested."""
    rows = await conn.fetch(
        "SELECT run_id, workflow, max_runs, reason FROM waiting_runs"
        " WHERE tenant = $1 ORDER BY requested_at, seq LIMIT $2",
        tenant,
        limit,
    )
    return [WaitingRun(r["run_id"], r["workflow"], r["max_runs"], r["reason"]) for r in rows]


async def active_runs(conn: asyncpg.Connection, tenant: str) -> dict[str, int]:
    """``tenant``'s runs holding a slot, counted by workflow."""
    rows = await conn.fetch(
        "SELECT workflow, count(*) AS n FROM active_runs WHERE tenant = $1 GROUP BY workflow",
        tenant,
    )
    return {row["workflow"]: row["n"] for row in rows}


async def take_slots(conn: asyncpg.Connection, runs: Sequence[RunState]) -> None:
    """Move admitted runs from the waiting ones to those holding a slot."""
    await conn.execute(
        """
        WITH admitted AS (
            DELETE FROM waiting_runs WHERE run_id = ANY($1::text[])
            RETURNING run_id, tenant, workflow
        )
        INSERT INTO active_runs (run_id, tenant, workflow) SELECT * FROM admitted
        """,
        [run.run_id for run in runs],
    )


async def set_waiting_reasons(conn: asyncpg.Connection, reasons: dict[str, str]) -> None:
    """Remember why runs wait, as last published."""
    await conn.execute(
        "UPDATE waiting_runs w SET reason = r.reason"
        " FROM unnest($1::text[], $2::text[]) AS r(run_id, reason) WHERE w.run_id = r.run_id",
        list(reasons),
        list(reasons.values()),
    )


def _has_changes(run: RunState) -> bool:
    return bool(
        run.is_new
        or run.run_changed
        or run.changed_tasks
        or run.transitions
        or run.timers_set
        or run.timers_cleared
        or run.dead_letters
        or run.events
    )


def _task_columns(tasks: Sequence[tuple[str, TaskState]]) -> tuple[list[object], ...]:
    """The task columns :data:`_INSERT_TASKS` and :data:`_UPDATE_TASKS` share, one array each."""
    errors = [task.error for _, task in tasks]
    return (
        [run_id for run_id, _ in tasks],
        [task.task_id for _, task in tasks],
        [task.status.value for _, task in tasks],
        [task.attempt for _, task in tasks],
        [task.attempt_floor for _, task in tasks],
        [task.scheduled_at for _, task in tasks],
        [task.started_at for _, task in tasks],
        [task.ended_at for _, task in tasks],
        [task.params_json for _, task in tasks],
        [task.output_json for _, task in tasks],
        [error.type if error else None for error in errors],
        [error.message if error else None for error in errors],
        [error.retryable if error else None for error in errors],
        [error.traceback_excerpt if error else None for error in errors],
        [task.worker_id for _, task in tasks],
    )


async def due_timer_runs(conn: asyncpg.Connection, now: datetime, limit: int) -> list[str]:
    """Claim up to ``limit`` due timers (skipping ones another instance holds); their runs.

    The timer rows stay locked until the transaction ends, so two instances never
    fire the same timer.
    """
    rows = await conn.fetch(
        """
        SELECT DISTINCT run_id FROM (
            SELECT run_id FROM timers WHERE due_at <= $1
            ORDER BY due_at LIMIT $2
            FOR UPDATE SKIP LOCKED
        ) AS due
        """,
        now,
        limit,
    )
    return [row["run_id"] for row in rows]


async def next_due_at(conn: asyncpg.Connection) -> datetime | None:
    """The earliest timer's due time, if any."""
    value: datetime | None = await conn.fetchval("SELECT min(due_at) FROM timers")
    return value


async def stuck_scheduled(
    conn: asyncpg.Connection, cutoffs: Cutoffs, limit: int
) -> list[tuple[str, str]]:
    """Tasks waiting in ``scheduled`` since before their lane's cut-off.

    Delays are left out by their lane, as in :func:`waiting_by_lane`.
    """
    rows = await conn.fetch(
        """
        SELECT t.run_id, t.task_id FROM tasks t
        LEFT JOIN unnest($1::text[], $2::timestamptz[]) AS c(lane, before) ON c.lane = t.lane
        WHERE t.status = 'scheduled' AND t.lane <> '' AND t.scheduled_at < $3::timestamptz
          AND t.scheduled_at < CASE WHEN c.lane IS NULL THEN $4::timestamptz ELSE c.before END
        ORDER BY t.scheduled_at LIMIT $5
        """,
        list(cutoffs.by_lane),
        list(cutoffs.by_lane.values()),
        cutoffs.latest,
        cutoffs.otherwise,
        limit,
    )
    return [(row["run_id"], row["task_id"]) for row in rows]


BACKLOG_COUNT_LIMIT = 100_000
"""Most rows :func:`backlogs` counts per table, so that it stays cheap however large."""


@dataclass(frozen=True)
class Backlogs:
    """Rows waiting for someone: dead letters (an operator) and due timers (the loop)."""

    dead_letters: int
    timers_due: int


async def backlogs(conn: asyncpg.Connection, now: datetime) -> Backlogs:
    """Count the dead letters and the due timers, each up to :data:`BACKLOG_COUNT_LIMIT`."""
    row = await conn.fetchrow(
        f"""
        SELECT
            (SELECT count(*) FROM (SELECT FROM dead_letters LIMIT {BACKLOG_COUNT_LIMIT}) d)
                AS dead_letters,
            (SELECT count(*) FROM (
                SELECT FROM timers WHERE due_at <= $1 LIMIT {BACKLOG_COUNT_LIMIT}) t)
                AS timers_due
        """,  # noqa: S608 - constants
        now,
    )
    return Backlogs(dead_letters=row["dead_letters"], timers_due=row["timers_due"])


async def waiting_by_lane(conn: asyncpg.Connection) -> dict[str, int]:
    """How many tasks wait in ``scheduled`` for a worker, by lane (delays excluded).

    A delay is told apart by its lane (``NO_LANE``), not by its timer: the anti-join to
    ``timers`` this replaced was planned, while a burst of new runs left the tables'
    statistics stale, as a nested loop over a scan of every timer, and ran for seconds
    of a core with 10,000 delays pending.
    """
    rows = await conn.fetch(
        """
        SELECT t.lane, count(*) AS waiting FROM tasks t
        WHERE t.status = 'scheduled' AND t.lane <> ''
        GROUP BY t.lane
        """
    )
    return {row["lane"]: row["waiting"] for row in rows}


async def scheduled_in_lanes(
    conn: asyncpg.Connection, lanes: Sequence[str], limit: int
) -> list[UnservedTask]:
    """Up to ``limit`` tasks waiting in ``scheduled`` on ``lanes``, oldest first."""
    rows = await conn.fetch(
        """
        SELECT t.run_id, r.tenant, r.started, t.task_id, t.attempt, t.lane
        FROM tasks t JOIN runs r USING (run_id)
        WHERE t.status = 'scheduled' AND t.lane = ANY($1::text[])
        ORDER BY t.scheduled_at LIMIT $2
        """,
        list(lanes),
        limit,
    )
    starts: dict[str, workflow_pb2.WorkflowStarted] = {}
    tasks = []
    for row in rows:
        started = starts.get(row["run_id"])
        if started is None:
            started = starts[row["run_id"]] = workflow_pb2.WorkflowStarted.FromString(
                row["started"]
            )
        tasks.append(
            UnservedTask(
                run_id=row["run_id"],
                tenant=row["tenant"],
                workflow_name=started.workflow_name,
                workflow_version=started.workflow_version,
                task_id=row["task_id"],
                attempt=row["attempt"],
                lane=row["lane"],
            )
        )
    return tasks


async def enqueue_events(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Add events that change no run to the outbox (in the caller's transaction)."""
    await outbox.enqueue(conn, events)


def json_or_none(raw: bytes | None) -> object:
    """Decode a stored JSON document, ``None`` when absent."""
    return json.loads(raw) if raw else None


async def read_run(conn: asyncpg.Connection, tenant: str, run_id: str) -> asyncpg.Record | None:
    """A run's row without locking it; ``None`` when unknown or another tenant's."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT run_id, tenant, status, started, created_at, ended_at FROM runs"
        " WHERE run_id = $1 AND tenant = $2",
        run_id,
        tenant,
    )
    return row


async def read_tasks(
    conn: asyncpg.Connection, run_id: str, task_id: str | None = None
) -> list[asyncpg.Record]:
    """A run's task rows (one task's when ``task_id`` is given), by task id."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM tasks WHERE run_id = $1 AND ($2::text IS NULL OR task_id = $2)"
        " ORDER BY task_id",
        run_id,
        task_id,
    )
    return rows


async def read_transitions(
    conn: asyncpg.Connection, run_id: str, after_id: int
) -> list[asyncpg.Record]:
    """A run's transitions recorded after ``after_id``, oldest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT id, task_id, to_status, at FROM transitions WHERE run_id = $1 AND id > $2"
        " ORDER BY id",
        run_id,
        after_id,
    )
    return rows


async def park_controls(
    conn: asyncpg.Connection, controls: Sequence[tuple[str, str, str, bytes]], now: datetime
) -> None:
    """Keep control requests ``(event id, run id, tenant, payload)`` for runs not started yet."""
    await conn.executemany(
        "INSERT INTO parked_controls (event_id, run_id, tenant, payload, parked_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        [(*control, now) for control in controls],
    )


async def take_parked_controls(
    conn: asyncpg.Connection, run_ids: Sequence[str]
) -> list[asyncpg.Record]:
    """Remove and return the parked controls of ``run_ids``, oldest first per run."""
    rows = await conn.fetch(
        "DELETE FROM parked_controls WHERE run_id = ANY($1::text[])"
        " RETURNING seq, event_id, run_id, tenant, payload",
        list(run_ids),
    )
    return sorted(rows, key=lambda row: row["seq"])


async def prune_parked_controls(conn: asyncpg.Connection, before: datetime) -> int:
    """Delete controls parked before ``before``; how many were deleted.

    The table holds only controls still waiting for their run (normally for
    milliseconds), so a scan needs no index.
    """
    status: str = await conn.execute("DELETE FROM parked_controls WHERE parked_at < $1", before)
    return int(status.split()[-1])


@dataclass(frozen=True)
class RejectedEvent:
    """An event the scheduler refused to apply, and why."""

    event_id: str
    event_type: str
    run_id: str
    event_tenant: str
    run_tenant: str
    reason: str
    payload: bytes


async def reject_events(
    conn: asyncpg.Connection, rejected: Sequence[RejectedEvent], now: datetime
) -> None:
    """Keep events refused for ``reason`` (a redelivered one is kept once)."""
    await conn.executemany(
        "INSERT INTO rejected_events (event_id, event_type, run_id, event_tenant, run_tenant,"
        " reason, payload, rejected_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (event_id) DO NOTHING",
        [
            (
                event.event_id,
                event.event_type,
                event.run_id,
                event.event_tenant,
                event.run_tenant,
                event.reason,
                event.payload,
                now,
            )
            for event in rejected
        ],
    )


async def prune_rejected_events(conn: asyncpg.Connection, before: datetime) -> int:
    """Delete events rejected before ``before``; how many were deleted."""
    status: str = await conn.execute("DELETE FROM rejected_events WHERE rejected_at < $1", before)
    return int(status.split()[-1])


async def last_transition_id(conn: asyncpg.Connection, run_id: str) -> int:
    """The id of the run's latest recorded transition; 0 when none."""
    last: int = await conn.fetchval(
        "SELECT coalesce(max(id), 0) FROM transitions WHERE run_id = $1", run_id
    )
    return last


@dataclass(frozen=True, kw_only=True)
class DeadLetterFilter:
    """Which dead letters of a tenant a list shows (``None``: any)."""

    run_id: str | None = None
    task_id: str | None = None
    task_type: str | None = None
    error_type: str | None = None


async def list_dead_letters(
    conn: asyncpg.Connection,
    tenant: str,
    where: DeadLetterFilter,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Up to ``limit`` dead letters of ``tenant``, newest first, after the key ``after``."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT * FROM dead_letters
        WHERE tenant = $1
          AND ($2::text IS NULL OR run_id = $2)
          AND ($3::text IS NULL OR task_id = $3)
          AND ($4::text IS NULL OR task_type = $4)
          AND ($5::text IS NULL OR error_type = $5)
          AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT $8
        """,
        tenant,
        where.run_id,
        where.task_id,
        where.task_type,
        where.error_type,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return rows


async def dead_letter_task(
    conn: asyncpg.Connection, tenant: str, letter_id: uuid.UUID
) -> tuple[str, str] | None:
    """The ``(run id, task id)`` a dead letter of ``tenant`` parked; ``None`` when unknown."""
    row = await conn.fetchrow(
        "SELECT run_id, task_id FROM dead_letters WHERE id = $1 AND tenant = $2",
        letter_id,
        tenant,
    )
    return None if row is None else (row["run_id"], row["task_id"])


async def delete_dead_letter(conn: asyncpg.Connection, tenant: str, letter_id: uuid.UUID) -> bool:
    """Delete a dead letter of ``tenant``; whether there was one."""
    deleted = await conn.fetchval(
        "DELETE FROM dead_letters WHERE id = $1 AND tenant = $2 RETURNING 1", letter_id, tenant
    )
    return deleted is not None
