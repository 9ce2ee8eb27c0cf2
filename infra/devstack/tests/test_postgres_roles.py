"""Each relational service gets a PostgreSQL role of its own, with rights on its own database."""

from __future__ import annotations

import secrets

import asyncpg
import pytest

from interlock.devstack import PostgresServer
from interlock.devstack._postgres import create_service_databases, drop_database

pytestmark = pytest.mark.integration


async def _connect(
    server: PostgresServer, user: str, password: str, database: str
) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=server.host, port=server.port, user=user, password=password, database=database
    )


async def test_a_service_role_reaches_its_own_database_only(
    postgres_server: PostgresServer,
) -> None:
    suffix = secrets.token_hex(3)
    legacy, first, second = f"shared_{suffix}", f"alpha_{suffix}", f"beta_{suffix}"
    passwords = {first: secrets.token_hex(8), second: secrets.token_hex(8)}
    admin = await _connect(
        postgres_server, postgres_server.user, postgres_server.password, "postgres"
    )
    try:
        # An older data folder: one shared role owning a database and a table in it.
        await admin.execute(f"CREATE ROLE {legacy} LOGIN PASSWORD 'legacy-password'")
        await admin.execute(f"CREATE DATABASE {first} OWNER {legacy}")
        old = await _connect(postgres_server, legacy, "legacy-password", first)
        await old.execute("CREATE TABLE kept (v text)")
        await old.execute("INSERT INTO kept VALUES ('row')")
        await old.close()

        for _ in range(2):  # idempotent
            await create_service_databases(
                port=postgres_server.port,
                superuser=postgres_server.user,
                password=postgres_server.password,
                roles=passwords,
                legacy_owner=legacy,
            )

        own = await _connect(postgres_server, first, passwords[first], first)
        try:
            assert await own.fetchval("SELECT v FROM kept") == "row"
            await own.execute("INSERT INTO kept VALUES ('mine now')")  # it owns the table
            await own.execute("CREATE TABLE created_by_the_service (v int)")
        finally:
            await own.close()
        for user, password, database in (
            (first, passwords[first], second),
            (second, passwords[second], first),
            (legacy, "legacy-password", first),
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await _connect(postgres_server, user, password, database)
        owners = await admin.fetch(
            "SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database"
            " WHERE datname = ANY($1::text[])",
            [first, second],
        )
        assert {row["datname"]: row["owner"] for row in owners} == {first: first, second: second}
    finally:
        for name in (first, second):
            await drop_database(
                port=postgres_server.port,
                superuser=postgres_server.user,
                password=postgres_server.password,
                name=name,
            )
        for role in (first, second, legacy):
            await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
