"""SQL for the workflow service's own tables (``migrations/``): definitions, runs, task waits.

Every query about a tenant's data filters by tenant. Functions take a connection so
callers decide the transaction; JSON travels as text (``::jsonb`` casts).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import asyncpg

from interlock.common import outbox
from interlock.common.events import Event
from interlock.workflow.domain import (
    CompiledDefinition,
    RunState,
    RunStatus,
    WaitingTask,
    WorkflowExistsError,
)


@dataclass(frozen=True, kw_only=True)
class StoredVersion:
    """One version of a workflow definition, with its workflow's state."""

    name: str
    version: int
    latest_version: int
    content_hash: str
    description: str
    labels: dict[str, str]
    document: dict[str, Any]
    created_by: str
    created_at: datetime
    workflow_created_at: datetime
    archived_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class StoredRun:
    """A run as stored, with its version's task ids (in definition order).

    Runs read for a list (:func:`list_runs`) carry neither input nor task ids.
    """

    id: uuid.UUID
    workflow: str
    version: int
    status: RunStatus
    input: Any
    idempotency_key: str | None
    request_hash: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    task_ids: list[str]
    status_reason: str | None = None
    """Why the run waits for a concurrency slot, else ``None``."""
    output: Any = None
    """The run's output once it succeeded (detail reads only)."""


_VERSION_COLUMNS = """
    v.name, v.version, w.latest_version, v.content_hash, v.document::text AS document,
    v.labels::text AS labels, v.created_by, v.created_at, w.description,
    w.created_at AS workflow_created_at, w.archived_at
"""


def _version(row: asyncpg.Record) -> StoredVersion:
    return StoredVersion(
        name=row["name"],
        version=row["version"],
        latest_version=row["latest_version"],
        content_hash=row["content_hash"],
        description=json.loads(row["document"]).get("description", ""),
        labels=json.loads(row["labels"]),
        document=json.loads(row["document"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        workflow_created_at=row["workflow_created_at"],
        archived_at=row["archived_at"],
    )


async def create_workflow(
    conn: asyncpg.Connection, tenant: str, compiled: CompiledDefinition, created_by: str
) -> StoredVersion:
    """Create a workflow with its version 1.

    Raises:
        WorkflowExistsError: The tenant has a workflow of that name (archived or not).
    """
    created = await conn.fetchval(
        """
        INSERT INTO workflows (tenant, name, latest_version, description, labels)
        VALUES ($1, $2, 1, $3, $4::jsonb)
        ON CONFLICT DO NOTHING
        RETURNING true
        """,
        tenant,
        compiled.name,
        compiled.description,
        json.dumps(compiled.labels),
    )
    if not created:
        raise WorkflowExistsError(f"workflow {compiled.name!r} exists; PUT a new version")
    await _insert_version(conn, tenant, compiled, 1, created_by)
    return await _get_version(conn, tenant, compiled.name, 1)


async def put_workflow(
    conn: asyncpg.Connection, tenant: str, compiled: CompiledDefinition, created_by: str
) -> tuple[StoredVersion, bool]:
    """Add a version when the definition changed (or create the workflow, or revive it).

    Call inside a transaction: the workflow's row is locked so concurrent PUTs number
    their versions one after the other.

    Returns:
        The latest version and whether this call created it (an unchanged definition
        creates nothing; PUT on an archived workflow also un-archives it).
    """
    row = await _lock_workflow(conn, tenant, compiled.name)
    if row is None:
        try:
            async with conn.transaction():  # a savepoint: a racing create may win
                return await create_workflow(conn, tenant, compiled, created_by), True
        except WorkflowExistsError:
            row = await _lock_workflow(conn, tenant, compiled.name)
            assert row is not None
    latest = await _get_version(conn, tenant, compiled.name, row["latest_version"])
    if latest.content_hash == compiled.content_hash and latest.archived_at is None:
        return latest, False
    changed = latest.content_hash != compiled.content_hash
    version = row["latest_version"] + 1 if changed else row["latest_version"]
    if changed:
        await _insert_version(conn, tenant, compiled, version, created_by)
    await conn.execute(
        """
        UPDATE workflows
        SET latest_version = $3, description = $4, labels = $5::jsonb, updated_at = now(),
            archived_at = NULL
        WHERE tenant = $1 AND name = $2
        """,
        tenant,
        compiled.name,
        version,
        compiled.description,
        json.dumps(compiled.labels),
    )
    return await _get_version(conn, tenant, compiled.name, version), changed


async def _lock_workflow(conn: asyncpg.Connection, tenant: str, name: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT latest_version FROM workflows WHERE tenant = $1 AND name = $2 FOR UPDATE",
        tenant,
        name,
    )
    return row


async def _insert_version(
    conn: asyncpg.Connection,
    tenant: str,
    compiled: CompiledDefinition,
    version: int,
    created_by: str,
) -> None:
    definition = compiled.definition.__deepcopy__()
    definition.version = version
    await conn.execute(
        """
        INSERT INTO workflow_versions (tenant, name, version, content_hash, document,
            definition, input_schema, task_ids, labels, created_by)
        VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8, $9::jsonb, $10)
        """,
        tenant,
        compiled.name,
        version,
        compiled.content_hash,
        json.dumps(compiled.document),
        definition.SerializeToString(),
        None if compiled.input_schema is None else json.dumps(compiled.input_schema),
        compiled.task_ids,
        json.dumps(compiled.labels),
        created_by,
    )


async def _get_version(
    conn: asyncpg.Connection, tenant: str, name: str, version: int
) -> StoredVersion:
    found = await get_version(conn, tenant, name, version)
    assert found is not None
    return found


async def get_version(
    conn: asyncpg.Connection, tenant: str, name: str, version: int | None = None
) -> StoredVersion | None:
    """A version of a workflow (the latest when ``version`` is ``None``), or ``None``."""
    row = await conn.fetchrow(
        f"""
        SELECT {_VERSION_COLUMNS}
        FROM workflows w JOIN workflow_versions v ON v.tenant = w.tenant AND v.name = w.name
        WHERE w.tenant = $1 AND w.name = $2 AND v.version = coalesce($3, w.latest_version)
        """,  # noqa: S608 - constant column list
        tenant,
        name,
        version,
    )
    return None if row is None else _version(row)


async def list_versions(
    conn: asyncpg.Connection, tenant: str, name: str, *, after_version: int, limit: int
) -> list[StoredVersion]:
    """A workflow's versions after ``after_version``, oldest first.

    Empty when there is no such workflow.
    """
    rows = await conn.fetch(
        f"""
        SELECT {_VERSION_COLUMNS}
        FROM workflows w JOIN workflow_versions v ON v.tenant = w.tenant AND v.name = w.name
        WHERE w.tenant = $1 AND w.name = $2 AND v.version > $3
        ORDER BY v.version
        LIMIT $4
        """,  # noqa: S608 - constant column list
        tenant,
        name,
        after_version,
        limit,
    )
    return [_version(row) for row in rows]


async def list_workflows(
    conn: asyncpg.Connection,
    tenant: str,
    *,
    name_prefix: str | None,
    labels: dict[str, str],
    include_archived: bool,
    after_name: str | None,
    limit: int,
) -> list[StoredVersion]:
    """Latest versions of a tenant's workflows, by name, after ``after_name``."""
    rows = await conn.fetch(
        f"""
        SELECT {_VERSION_COLUMNS}
        FROM workflows w JOIN workflow_versions v
            ON v.tenant = w.tenant AND v.name = w.name AND v.version = w.latest_version
        WHERE w.tenant = $1
          AND ($2::text IS NULL OR starts_with(w.name, $2))
          AND w.labels @> $3::jsonb
          AND ($4 OR w.archived_at IS NULL)
          AND ($5::text IS NULL OR w.name > $5)
        ORDER BY w.name
        LIMIT $6
        """,  # noqa: S608 - constant column list
        tenant,
        name_prefix,
        json.dumps(labels),
        include_archived,
        after_name,
        limit,
    )
    return [_version(row) for row in rows]


async def archive_workflow(conn: asyncpg.Connection, tenant: str, name: str) -> bool:
    """Archive a workflow (idempotent). Returns whether it exists."""
    status: str = await conn.execute(
        """
        UPDATE workflows SET archived_at = coalesce(archived_at, now()), updated_at = now()
        WHERE tenant = $1 AND name = $2
        """,
        tenant,
        name,
    )
    return status != "UPDATE 0"


async def lock_latest_version(
    conn: asyncpg.Connection, tenant: str, name: str
) -> tuple[int, bool] | None:
    """The latest version of a workflow and whether it is archived, or ``None``.

    Holds a share lock on the workflow until the transaction ends, so no new version
    or archiving commits in between.
    """
    row = await conn.fetchrow(
        "SELECT latest_version, archived_at IS NOT NULL AS archived"
        " FROM workflows WHERE tenant = $1 AND name = $2 FOR SHARE",
        tenant,
        name,
    )
    return None if row is None else (row["latest_version"], row["archived"])


async def version_definition(
    conn: asyncpg.Connection, tenant: str, name: str, version: int
) -> tuple[bytes, Any]:
    """A version's normalized definition (serialized) and its input schema."""
    row = await conn.fetchrow(
        "SELECT definition, input_schema::text AS input_schema FROM workflow_versions"
        " WHERE tenant = $1 AND name = $2 AND version = $3",
        tenant,
        name,
        version,
    )
    assert row is not None
    schema = None if row["input_schema"] is None else json.loads(row["input_schema"])
    return bytes(row["definition"]), schema


_INSERT_RUN = """
INSERT INTO runs (id, tenant, workflow, version, status, input, idempotency_key,
    request_hash, created_by)
SELECT $1, $2, $3, $4, 'pending', $5::jsonb, $6, $7, $8
FROM workflows
WHERE tenant = $2 AND name = $3 AND latest_version = $4 AND archived_at IS NULL
ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING created_at
"""


async def insert_run(
    conn: asyncpg.Connection,
    *,
    run_id: uuid.UUID,
    tenant: str,
    workflow: str,
    version: int,
    input_json: str,
    idempotency_key: str | None,
    request_hash: str | None,
    created_by: str,
    events: Sequence[Event],
) -> datetime | None:
    """Insert a pending run of ``version`` with its ``events``, if that is still the latest.

    One statement and one round trip: the run and its events commit together, inside
    the caller's transaction or on their own.

    Returns:
        Its creation time; ``None`` (nothing written) when a run with the same
        idempotency key exists (concurrent inserts with one key wait on the unique
        index: one wins) or when ``version`` is not the latest of an unarchived workflow.
    """
    args = [
        run_id,
        tenant,
        workflow,
        version,
        input_json,
        idempotency_key,
        request_hash,
        created_by,
    ]
    row = await outbox.execute_with_events(conn, _INSERT_RUN, args, events)
    return None if row is None else cast(datetime, row["created_at"])


_INSERT_RUNS = """
INSERT INTO runs (id, tenant, workflow, version, status, input, idempotency_key,
    request_hash, created_by)
SELECT item.id, $2, $3, $4, 'pending', item.input::jsonb, item.key, item.hash, $5
FROM unnest($1::uuid[], $6::text[], $7::text[], $8::text[]) AS item(id, input, key, hash)
ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id, created_at
"""


@dataclass(frozen=True, kw_only=True)
class NewRun:
    """One run of a batch insert."""

    id: uuid.UUID
    input_json: str
    idempotency_key: str | None
    request_hash: str | None


async def insert_runs(
    conn: asyncpg.Connection,
    *,
    tenant: str,
    workflow: str,
    version: int,
    created_by: str,
    runs: Sequence[NewRun],
) -> dict[uuid.UUID, datetime]:
    """Insert pending runs of ``version`` in one statement (the caller holds the workflow lock).

    Returns:
        The creation time of each run inserted; a run whose idempotency key the tenant
        already used is left out (nothing written for it).
    """
    rows = await conn.fetch(
        _INSERT_RUNS,
        [run.id for run in runs],
        tenant,
        workflow,
        version,
        created_by,
        [run.input_json for run in runs],
        [run.idempotency_key for run in runs],
        [run.request_hash for run in runs],
    )
    return {row["id"]: row["created_at"] for row in rows}


async def runs_by_idempotency_keys(
    conn: asyncpg.Connection, tenant: str, keys: Sequence[str]
) -> dict[str, StoredRun]:
    """The runs a tenant started with any of ``keys``, by key."""
    rows = await conn.fetch(
        f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM}"  # noqa: S608
        " WHERE r.tenant = $1 AND r.idempotency_key = ANY($2::text[])",
        tenant,
        list(keys),
    )
    runs = [_run(row) for row in rows]
    return {run.idempotency_key: run for run in runs if run.idempotency_key is not None}


_RUN_BASE_COLUMNS = """
    r.id, r.workflow, r.version, r.status, r.idempotency_key, r.request_hash, r.created_at,
    r.updated_at, r.finished_at, r.status_reason
"""
_RUN_COLUMNS = _RUN_BASE_COLUMNS + ", r.input::text AS input, v.task_ids, r.output::text AS output"
# Lists show neither input nor tasks: no input to parse, no join with the versions.
_RUN_SUMMARY_COLUMNS = (
    _RUN_BASE_COLUMNS + ", NULL::text AS input, '{}'::text[] AS task_ids, NULL::text AS output"
)
_RUN_FROM = """
    runs r JOIN workflow_versions v
        ON v.tenant = r.tenant AND v.name = r.workflow AND v.version = r.version
"""


def _run(row: asyncpg.Record) -> StoredRun:
    return StoredRun(
        id=row["id"],
        workflow=row["workflow"],
        version=row["version"],
        status=RunStatus(row["status"]),
        input=None if row["input"] is None else json.loads(row["input"]),
        idempotency_key=row["idempotency_key"],
        request_hash=row["request_hash"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
        task_ids=list(row["task_ids"]),
        status_reason=row["status_reason"],
        output=None if row["output"] is None else json.loads(row["output"]),
    )


async def run_by_idempotency_key(
    conn: asyncpg.Connection, tenant: str, key: str
) -> StoredRun | None:
    """The run a tenant started with an idempotency key, or ``None``."""
    row = await conn.fetchrow(
        f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE r.tenant = $1 AND r.idempotency_key = $2",  # noqa: S608
        tenant,
        key,
    )
    return None if row is None else _run(row)


async def get_run(
    conn: asyncpg.Connection, tenant: str, run_id: uuid.UUID, *, lock: bool = False
) -> StoredRun | None:
    """A tenant's run, or ``None``; ``lock`` takes its row lock (inside a transaction)."""
    row = await conn.fetchrow(
        f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE r.tenant = $1 AND r.id = $2"  # noqa: S608
        + (" FOR UPDATE OF r" if lock else ""),
        tenant,
        run_id,
    )
    return None if row is None else _run(row)


async def set_run_status(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    status: RunStatus,
    finished_at: datetime | None,
    *,
    reopened_at: datetime | None = None,
) -> None:
    """Set a run's status and end time.

    ``reopened_at``, a retry's time, becomes the run's latest event time
    (:attr:`RunState.event_at`): an outcome event older than it changes nothing.
    """
    await conn.execute(
        """
        UPDATE runs SET status = $2, finished_at = $3, updated_at = now(),
            run_event_at = coalesce($4, run_event_at)
        WHERE id = $1
        """,
        run_id,
        status.value,
        finished_at,
        reopened_at,
    )


async def list_runs(
    conn: asyncpg.Connection,
    tenant: str,
    *,
    workflow: str | None,
    status: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[StoredRun]:
    """A tenant's runs, newest first, strictly after the ``before`` position.

    The runs' ``input`` is ``None`` and their ``task_ids`` are empty: lists show neither.
    """
    rows = await conn.fetch(
        f"""
        SELECT {_RUN_SUMMARY_COLUMNS} FROM runs r
        WHERE r.tenant = $1
          AND ($2::text IS NULL OR r.workflow = $2)
          AND ($3::text IS NULL OR r.status = $3)
          AND ($4::timestamptz IS NULL OR r.created_at >= $4)
          AND ($5::timestamptz IS NULL OR r.created_at < $5)
          AND ($6::timestamptz IS NULL OR (r.created_at, r.id) < ($6, $7::uuid))
        ORDER BY r.created_at DESC, r.id DESC
        LIMIT $8
        """,  # noqa: S608 - constant column list
        tenant,
        workflow,
        status,
        created_after,
        created_before,
        before[0] if before else None,
        before[1] if before else None,
        limit,
    )
    return [_run(row) for row in rows]


async def task_waits(conn: asyncpg.Connection, run_id: uuid.UUID) -> dict[str, WaitingTask]:
    """Why attempts of a run's tasks wait for a worker of their queue, by task id."""
    rows = await conn.fetch(
        "SELECT task_id, attempt, reason FROM task_waits WHERE run_id = $1", run_id
    )
    return {
        row["task_id"]: WaitingTask(attempt=row["attempt"], reason=row["reason"]) for row in rows
    }


async def lock_runs(
    conn: asyncpg.Connection, runs: Sequence[tuple[str, uuid.UUID]]
) -> dict[uuid.UUID, RunState]:
    """Lock the runs of ``(tenant, run id)`` pairs that exist; their state."""
    rows = await conn.fetch(
        """
        SELECT r.id, r.status, r.finished_at, r.status_reason, r.run_event_at
        FROM runs r JOIN unnest($1::text[], $2::uuid[]) AS k(tenant, id)
            ON r.tenant = k.tenant AND r.id = k.id
        ORDER BY r.id
        FOR UPDATE OF r
        """,
        [tenant for tenant, _ in runs],
        [run_id for _, run_id in runs],
    )
    return {
        row["id"]: RunState(
            RunStatus(row["status"]), row["finished_at"], row["status_reason"], row["run_event_at"]
        )
        for row in rows
    }


async def lock_run(
    conn: asyncpg.Connection, tenant: str, run_id: uuid.UUID
) -> tuple[RunState, datetime] | None:
    """Lock a tenant's run; its state and when it last changed, or ``None``."""
    row = await conn.fetchrow(
        """
        SELECT status, finished_at, status_reason, run_event_at, updated_at FROM runs
        WHERE tenant = $1 AND id = $2
        FOR UPDATE
        """,
        tenant,
        run_id,
    )
    if row is None:
        return None
    state = RunState(
        RunStatus(row["status"]), row["finished_at"], row["status_reason"], row["run_event_at"]
    )
    return state, row["updated_at"]


_SAVE_RUNS = """
UPDATE runs r SET status = s.status, finished_at = s.finished_at, updated_at = now(),
    status_reason = s.status_reason, run_event_at = s.event_at,
    output = coalesce(s.output::jsonb, r.output)
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::timestamptz[],
    $6::text[]) AS s(id, status, finished_at, status_reason, event_at, output)
WHERE r.id = s.id
"""


async def save_runs(
    conn: asyncpg.Connection,
    runs: dict[uuid.UUID, RunState],
    outputs: dict[uuid.UUID, Any] | None = None,
) -> None:
    """Set runs' state, in one statement.

    Args:
        conn: A connection (inside the caller's transaction).
        runs: Status, end time, waiting reason and latest run event of runs.
        outputs: Outputs of runs that succeeded (each run listed in ``runs`` too).
    """
    outputs = outputs or {}
    if not runs:
        return
    states = list(runs.items())
    await conn.execute(
        _SAVE_RUNS,
        [run_id for run_id, _ in states],
        [state.status.value for _, state in states],
        [state.finished_at for _, state in states],
        [state.status_reason for _, state in states],
        [state.event_at for _, state in states],
        [json.dumps(outputs[run_id]) if run_id in outputs else None for run_id, _ in states],
    )


async def save_task_waits(
    conn: asyncpg.Connection, waits: Sequence[tuple[uuid.UUID, str, WaitingTask]]
) -> None:
    """Record why attempts wait for a worker; a later attempt's word replaces an earlier's."""
    if not waits:
        return
    await conn.execute(
        """
        INSERT INTO task_waits (run_id, task_id, attempt, reason)
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[])
        ON CONFLICT (run_id, task_id) DO UPDATE
            SET attempt = excluded.attempt, reason = excluded.reason
            WHERE task_waits.attempt <= excluded.attempt
        """,
        [run_id for run_id, _, _ in waits],
        [task_id for _, task_id, _ in waits],
        [wait.attempt for _, _, wait in waits],
        [wait.reason for _, _, wait in waits],
    )


@dataclass(frozen=True, kw_only=True)
class StalledStart:
    """A pending run whose workflow.started may have been lost."""

    id: uuid.UUID
    tenant: str
    workflow: str
    version: int
    input_json: str
    idempotency_key: str | None


async def claim_stalled_starts(
    conn: asyncpg.Connection, *, grace_s: float, max_republishes: int, limit: int
) -> list[StalledStart]:
    """Lock pending runs due for re-publishing and count the re-publish.

    A run is due ``grace_s * 2**republishes`` after its creation or last re-publish, at
    most ``max_republishes`` times. Rows locked by another instance are skipped.
    """
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT id FROM runs
            WHERE status = 'pending' AND status_reason IS NULL AND start_republishes < $2
              AND coalesce(start_republished_at, created_at)
                  < now() - make_interval(secs => $1 * power(2, start_republishes))
            ORDER BY created_at
            LIMIT $3
            FOR UPDATE SKIP LOCKED
        )
        UPDATE runs r
        SET start_republished_at = now(), start_republishes = r.start_republishes + 1
        FROM due WHERE r.id = due.id
        RETURNING r.id, r.tenant, r.workflow, r.version, r.input::text AS input,
            r.idempotency_key
        """,
        grace_s,
        max_republishes,
        limit,
    )
    return [
        StalledStart(
            id=row["id"],
            tenant=row["tenant"],
            workflow=row["workflow"],
            version=row["version"],
            input_json=row["input"],
            idempotency_key=row["idempotency_key"],
        )
        for row in rows
    ]


async def claim_quiet_runs(
    conn: asyncpg.Connection, *, quiet_s: float, limit: int
) -> list[tuple[str, uuid.UUID]]:
    """``(tenant, run id)`` of unfinished runs whose status may lack lost events; marks them.

    Up to ``limit`` runs with no change for ``quiet_s`` and not checked for as long, the
    least recently looked at first. Rows locked by another instance are skipped.
    """
    rows = await conn.fetch(
        """
        WITH unfinished AS (
            SELECT id FROM runs
            WHERE status IN ('pending', 'running', 'paused')
              AND updated_at < now() - make_interval(secs => $1)
              AND (view_checked_at IS NULL
                   OR view_checked_at < now() - make_interval(secs => $1))
            ORDER BY coalesce(view_checked_at, updated_at)
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        )
        UPDATE runs r SET view_checked_at = now()
        FROM unfinished WHERE r.id = unfinished.id
        RETURNING r.tenant, r.id
        """,
        quiet_s,
        limit,
    )
    return [(row["tenant"], row["id"]) for row in rows]
