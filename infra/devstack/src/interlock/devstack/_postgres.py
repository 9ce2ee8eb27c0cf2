"""PostgreSQL administration the dev stack needs: databases and login roles."""

from __future__ import annotations

from typing import Any

from interlock.devstack._process import LOOPBACK


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (``"my db"``), doubling embedded quotes."""
    return '"' + name.replace('"', '""') + '"'


def libpq_url(*, user: str, port: int, database: str, host: str = LOOPBACK) -> str:
    """A libpq URL without a password (passwords travel separately)."""
    return f"postgresql://{user}@{host}:{port}/{database}"


async def _connect(*, port: int, user: str, password: str) -> Any:
    import asyncpg  # here, not at the top: the pytest plugin loads this module everywhere

    return await asyncpg.connect(
        host=LOOPBACK, port=port, user=user, password=password, database="postgres", timeout=10
    )


async def create_database(
    *, port: int, superuser: str, password: str, name: str, owner: str | None = None
) -> bool:
    """Create database ``name`` unless it exists.

    Args:
        port: Server port on loopback.
        superuser: Superuser to connect as.
        password: Its password.
        name: Database to create.
        owner: Role that owns a newly created database. Default: the superuser.

    Returns:
        Whether the database was created now.
    """
    import asyncpg

    conn = await _connect(port=port, user=superuser, password=password)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        statement = f"CREATE DATABASE {quote_ident(name)}"
        if owner is not None:
            statement += f" OWNER {quote_ident(owner)}"
        try:
            await conn.execute(statement)
        except asyncpg.DuplicateDatabaseError:  # created concurrently
            return False
        return True
    finally:
        await conn.close()


async def drop_database(*, port: int, superuser: str, password: str, name: str) -> None:
    """Drop database ``name`` if it exists, closing the connections still open to it."""
    conn = await _connect(port=port, user=superuser, password=password)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()


async def ensure_login_role(
    *, port: int, superuser: str, password: str, role: str, role_password: str
) -> None:
    """Create login role ``role`` or reset its password (idempotent)."""
    conn = await _connect(port=port, user=superuser, password=password)
    try:
        # The password is sent as a literal through format(): utility statements take
        # no bind parameters, and it never appears in the server log at this level.
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        verb = "ALTER" if exists else "CREATE"
        statement = await conn.fetchval(
            "SELECT format('%s ROLE %I WITH LOGIN PASSWORD %L', $1::text, $2::text, $3::text)",
            verb,
            role,
            role_password,
        )
        await conn.execute(statement)
    finally:
        await conn.close()
