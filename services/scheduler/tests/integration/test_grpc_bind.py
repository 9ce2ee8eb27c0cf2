"""The task-state gRPC server listens where the settings say, not on a fixed address."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from interlock.common.identity import IdentityVerifier, JwksKeys
from interlock.common.postgres import PostgresDatabase
from interlock.common.settings import PostgresOptions
from interlock.common.testing import TEST_IDENTITY
from interlock.devstack import PostgresServer
from interlock.devstack._process import free_ports
from interlock.scheduler.grpc import TaskStateServer
from interlock.scheduler.service import SchedulerService

pytestmark = pytest.mark.integration


async def _accepts(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=5)
    except ConnectionRefusedError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def test_the_server_binds_the_configured_host(postgres_server: PostgresServer) -> None:
    name = f"grpc_bind_{secrets.token_hex(4)}"
    options = PostgresOptions(
        postgres_dsn=postgres_server.create_database(name),
        postgres_password=postgres_server.password,
    )
    try:
        database = PostgresDatabase(options)
        # Both are loopback addresses on Linux; only the configured one may answer.
        identity = IdentityVerifier(JwksKeys(None, static=TEST_IDENTITY.jwks))
        service = SchedulerService(lambda: database.pool)
        # A port nothing listens on at 127.0.0.1 (a kernel-chosen port for 127.0.0.2
        # may be one another server of the session holds there).
        (port,) = free_ports(1)
        server = TaskStateServer(service, identity, host="127.0.0.2", port=port)
        async with database, server:
            assert await _accepts("127.0.0.2", server.port)
            assert not await _accepts("127.0.0.1", server.port)
    finally:
        postgres_server.drop_database(name)
