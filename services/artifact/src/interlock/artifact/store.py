"""SQL for the service's one table, ``artifacts`` (migrations/0001)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

__all__ = [
    "AVAILABLE",
    "PENDING",
    "NewRow",
    "StoredArtifact",
    "delete",
    "expired",
    "get",
    "insert_pending",
    "keys_with_rows",
    "latest_by_name",
    "list_artifacts",
    "lock_tenant",
    "make_available",
    "stale_pending",
    "tenant_usage",
]

PENDING = "pending"
AVAILABLE = "available"

_COLUMNS = (
    "id, tenant, run_id, task_id, attempt, name, content_type, size_bytes, sha256, labels,"
    " object_key, state, created_by, created_at, available_at, expires_at, upload_deadline"
)


@dataclass(frozen=True, kw_only=True)
class StoredArtifact:
    """One artifact row."""

    id: uuid.UUID
    tenant: str
    run_id: uuid.UUID
    task_id: str | None
    attempt: int | None
    name: str
    content_type: str
    size_bytes: int
    """The stored size once available; the declared one while a pre-signed upload is
    pending; 0 while a streamed upload is pending."""
    sha256: str | None
    """Hex SHA-256 of the bytes once available; the declared one while pending."""
    labels: dict[str, str]
    object_key: str
    state: str
    created_by: str
    created_at: datetime
    available_at: datetime | None
    expires_at: datetime
    upload_deadline: datetime


@dataclass(frozen=True, kw_only=True)
class NewRow:
    """What a pending row starts with."""

    id: uuid.UUID
    tenant: str
    run_id: uuid.UUID
    task_id: str | None
    attempt: int | None
    name: str
    content_type: str
    size_bytes: int
    sha256: str | None
    labels: dict[str, str]
    object_key: str
    created_by: str
    expires_at: datetime
    upload_deadline: datetime


def _artifact(row: asyncpg.Record) -> StoredArtifact:
    values: dict[str, Any] = dict(row)
    values["labels"] = json.loads(values["labels"])
    return StoredArtifact(**values)


async def insert_pending(conn: asyncpg.Connection, new: NewRow) -> StoredArtifact:
    """Insert a ``pending`` row."""
    row = await conn.fetchrow(
        f"""INSERT INTO artifacts (id, tenant, run_id, task_id, attempt, name, content_type,
                size_bytes, sha256, labels, object_key, state, created_by, expires_at,
                upload_deadline)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '{PENDING}', $12, $13, $14)
            RETURNING {_COLUMNS}""",  # noqa: S608 - constant column list
        new.id,
        new.tenant,
        new.run_id,
        new.task_id,
        new.attempt,
        new.name,
        new.content_type,
        new.size_bytes,
        new.sha256,
        json.dumps(new.labels),
        new.object_key,
        new.created_by,
        new.expires_at,
        new.upload_deadline,
    )
    assert row is not None
    return _artifact(row)


async def lock_tenant(conn: asyncpg.Connection, tenant: str) -> None:
    """Serialize quota decisions of one tenant until the transaction ends."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "artifacts:" + tenant
    )


async def tenant_usage(
    conn: asyncpg.Connection, tenant: str, *, excluding: uuid.UUID | None = None
) -> int:
    """Bytes the tenant keeps or has reserved (pending uploads count)."""
    usage = await conn.fetchval(
        "SELECT coalesce(sum(size_bytes), 0) FROM artifacts"
        " WHERE tenant = $1 AND ($2::uuid IS NULL OR id <> $2)",
        tenant,
        excluding,
    )
    return int(usage)


async def make_available(
    conn: asyncpg.Connection, artifact_id: uuid.UUID, *, size_bytes: int, sha256: str
) -> StoredArtifact | None:
    """Mark a pending row ``available`` with its verified size and digest."""
    row = await conn.fetchrow(
        f"""UPDATE artifacts SET state = '{AVAILABLE}', size_bytes = $2, sha256 = $3,
                available_at = now()
            WHERE id = $1 AND state = '{PENDING}'
            RETURNING {_COLUMNS}""",  # noqa: S608 - constant column list
        artifact_id,
        size_bytes,
        sha256,
    )
    return None if row is None else _artifact(row)


async def get(
    conn: asyncpg.Connection, tenant: str, artifact_id: uuid.UUID, *, now: datetime
) -> StoredArtifact | None:
    """The tenant's artifact, unless expired."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM artifacts WHERE id = $1 AND tenant = $2 AND expires_at > $3",  # noqa: S608 - constant column list
        artifact_id,
        tenant,
        now,
    )
    return None if row is None else _artifact(row)


async def latest_by_name(
    conn: asyncpg.Connection, tenant: str, run_id: uuid.UUID, name: str, *, now: datetime
) -> StoredArtifact | None:
    """The run's newest available artifact called ``name``."""
    row = await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM artifacts
            WHERE tenant = $1 AND run_id = $2 AND name = $3 AND state = '{AVAILABLE}'
              AND expires_at > $4
            ORDER BY created_at DESC, id DESC LIMIT 1""",  # noqa: S608 - constant column list
        tenant,
        run_id,
        name,
        now,
    )
    return None if row is None else _artifact(row)


async def list_artifacts(
    conn: asyncpg.Connection,
    tenant: str,
    *,
    run_id: uuid.UUID | None,
    task_id: str | None,
    name_prefix: str | None,
    before: tuple[datetime, uuid.UUID] | None,
    now: datetime,
    limit: int,
) -> list[StoredArtifact]:
    """The tenant's unexpired artifacts, newest first, strictly after ``before``."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM artifacts
            WHERE tenant = $1 AND expires_at > $2
              AND ($3::uuid IS NULL OR run_id = $3)
              AND ($4::text IS NULL OR task_id = $4)
              AND ($5::text IS NULL OR starts_with(name, $5))
              AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT $8""",  # noqa: S608 - constant column list
        tenant,
        now,
        run_id,
        task_id,
        name_prefix,
        before[0] if before else None,
        before[1] if before else None,
        limit,
    )
    return [_artifact(row) for row in rows]


async def delete(conn: asyncpg.Connection, artifact_id: uuid.UUID) -> StoredArtifact | None:
    """Delete a row; the deleted one, or ``None`` when it was gone."""
    row = await conn.fetchrow(
        f"DELETE FROM artifacts WHERE id = $1 RETURNING {_COLUMNS}",  # noqa: S608 - constant columns
        artifact_id,
    )
    return None if row is None else _artifact(row)


async def expired(conn: asyncpg.Connection, *, now: datetime, limit: int) -> list[StoredArtifact]:
    """Rows past their retention, oldest expiry first, locked (``SKIP LOCKED``)."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM artifacts WHERE expires_at <= $1
            ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED""",  # noqa: S608 - constant column list
        now,
        limit,
    )
    return [_artifact(row) for row in rows]


async def stale_pending(
    conn: asyncpg.Connection, *, now: datetime, limit: int
) -> list[StoredArtifact]:
    """Pending rows whose upload deadline passed, locked (``SKIP LOCKED``)."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM artifacts
            WHERE state = '{PENDING}' AND upload_deadline <= $1
            ORDER BY upload_deadline LIMIT $2 FOR UPDATE SKIP LOCKED""",  # noqa: S608 - constant column list
        now,
        limit,
    )
    return [_artifact(row) for row in rows]


async def keys_with_rows(conn: asyncpg.Connection, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` some row holds (in any state)."""
    rows = await conn.fetch(
        "SELECT object_key FROM artifacts WHERE object_key = ANY($1::text[])", list(keys)
    )
    return {row["object_key"] for row in rows}
