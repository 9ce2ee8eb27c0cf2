"""SQL for ``tenant_secrets``: sealed values, never plain ones. Every query takes the tenant."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, kw_only=True)
class SecretRecord:
    """A secret's metadata (the only part ever shown)."""

    name: str
    created_at: float
    updated_at: float
    updated_by: str


def _record(row: asyncpg.Record) -> SecretRecord:
    return SecretRecord(
        name=row["name"],
        created_at=row["created_at"].timestamp(),
        updated_at=row["updated_at"].timestamp(),
        updated_by=row["updated_by"],
    )


async def put_secret(
    conn: asyncpg.Connection, tenant: str, name: str, sealed: str, updated_by: str
) -> SecretRecord:
    """Create or replace a secret's sealed value."""
    row = await conn.fetchrow(
        "INSERT INTO tenant_secrets (tenant, name, sealed, updated_by) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (tenant, name) DO UPDATE SET sealed = excluded.sealed,"
        " updated_at = now(), updated_by = excluded.updated_by"
        " RETURNING name, created_at, updated_at, updated_by",
        tenant,
        name,
        sealed,
        updated_by,
    )
    return _record(row)


async def count_secrets(conn: asyncpg.Connection, tenant: str) -> int:
    """How many secrets ``tenant`` keeps."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM tenant_secrets WHERE tenant = $1", tenant
    )
    return count


async def secret_exists(conn: asyncpg.Connection, tenant: str, name: str) -> bool:
    """Whether ``tenant`` has a secret ``name``."""
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM tenant_secrets WHERE tenant = $1 AND name = $2)",
        tenant,
        name,
    )
    return found


async def list_secrets(
    conn: asyncpg.Connection, tenant: str, *, after: str | None, limit: int
) -> list[SecretRecord]:
    """Secrets of ``tenant`` by name (metadata only): after ``after``, at most ``limit``."""
    rows = await conn.fetch(
        "SELECT name, created_at, updated_at, updated_by FROM tenant_secrets"
        " WHERE tenant = $1 AND ($2::text IS NULL OR name > $2) ORDER BY name LIMIT $3",
        tenant,
        after,
        limit,
    )
    return [_record(row) for row in rows]


async def delete_secret(conn: asyncpg.Connection, tenant: str, name: str) -> bool:
    """Delete a secret; whether there was one."""
    status: str = await conn.execute(
        "DELETE FROM tenant_secrets WHERE tenant = $1 AND name = $2", tenant, name
    )
    return status.endswith(" 1")


async def sealed_secrets(conn: asyncpg.Connection, tenant: str, names: list[str]) -> dict[str, str]:
    """The sealed values of those of ``names`` that ``tenant`` has."""
    rows = await conn.fetch(
        "SELECT name, sealed FROM tenant_secrets WHERE tenant = $1 AND name = ANY ($2)",
        tenant,
        names,
    )
    return {row["name"]: row["sealed"] for row in rows}
