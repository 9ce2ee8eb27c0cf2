"""Fixtures: the workflow app in-process against real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from interlock.common.testing import TEST_IDENTITY, app_client, identity_headers
from interlock.workflow import WorkflowSettings, create_app

TENANT = "acme"


def gateway_headers(tenant: str = TENANT, subject: str = "alice") -> dict[str, str]:
    """What the gateway adds to a request it authorized: an identity token."""
    return identity_headers(tenant, subject=subject, roles=["developer"])


@pytest.fixture
def settings(postgres_database: Any, kafka_server: Any) -> WorkflowSettings:
    """Settings for one test: its own database and topic prefix."""
    return WorkflowSettings(
        postgres_dsn=postgres_database.dsn,
        postgres_password=postgres_database.password,
        postgres_pool_max_size=25,
        kafka_bootstrap_servers=kafka_server.bootstrap_servers,
        kafka_topic_prefix=f"wf{secrets.token_hex(4)}.",
        kafka_session_timeout_ms=3000,
        kafka_heartbeat_interval_ms=500,
        identity_jwks=TEST_IDENTITY.jwks,
    )


@pytest.fixture
async def client(settings: WorkflowSettings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the running app, sending the gateway's headers for tenant ``acme``."""
    async with app_client(create_app(settings)) as client:
        client.headers.update(gateway_headers())
        yield client


async def eventually(
    predicate: Callable[[], Any], *, timeout_s: float = 60.0, interval_s: float = 0.05
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(interval_s)
