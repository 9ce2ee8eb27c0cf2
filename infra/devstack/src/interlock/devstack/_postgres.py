"""PostgreSQL administration the dev stack needs: databases and login roles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.devstack._process import LOOPBACK


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (``"my db"``), doubling embedded quotes."""
    return '"' + name.replace('"', '""') + '"'


def libpq_url(*, user: str, port: int, database: str, host: str = LOOPBACK) -> str:
    """A libpq URL without a password (passwords travel separately)."""
    return f"postgresql://{user}@{host}:{port}/{database}"


async def _connect(*, port: int, user: str, password: str, database: str = "postgres") -> Any:
    import asyncpg  # here, not at the top: the pytest plugin loads this module everywhere

    return await asyncpg.connect(
        host=LOOPBACK, port=port, user=user, password=password, database=database, timeout=10
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


async def create_service_databases(
    *,
    port: int,
    superuser: str,
    password: str,
    roles: Mapping[str, str],
    legacy_owner: str | None = None,
) -> None:
    """One login role and one database per service, each role with rights on its own only.

    Idempotent. A database that exists already is handed to its service's role (and,
    when ``legacy_owner`` owned it, so is everything in it), and no other role may
    connect to it (``CONNECT`` revoked from ``PUBLIC``).

    Args:
        port: Server port on loopback.
        superuser: Superuser to connect as.
        password: Its password.
        roles: Each service's role password, by service (role and database names).
        legacy_owner: The role that owned every database before, if any.
    """
    for name, role_password in roles.items():
        await ensure_login_role(
            port=port,
            superuser=superuser,
            password=password,
            role=name,
            role_password=role_password,
        )
        await create_database(
            port=port, superuser=superuser, password=password, name=name, owner=name
        )
    conn = await _connect(port=port, user=superuser, password=password)
    try:
        legacy = legacy_owner is not None and bool(
            await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", legacy_owner)
        )
        for name in roles:
            # Databases first: REASSIGN OWNED below also moves the databases a role owns.
            await conn.execute(f"ALTER DATABASE {quote_ident(name)} OWNER TO {quote_ident(name)}")
            await conn.execute(f"REVOKE ALL ON DATABASE {quote_ident(name)} FROM PUBLIC")
    finally:
        await conn.close()
    if legacy:
        assert legacy_owner is not None
        for name in roles:
            inside = await _connect(port=port, user=superuser, password=password, database=name)
            try:
                await inside.execute(
                    f"REASSIGN OWNED BY {quote_ident(legacy_owner)} TO {quote_ident(name)}"
                )
            finally:
                await inside.close()
