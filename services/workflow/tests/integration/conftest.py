"""Fixtures: the workflow app in-process against real PostgreSQL and Kafka.

The scheduler, whose ``ListRunTasks`` a run read asks for the run's tasks, is a
stand-in answering from what each test puts in it (a run it does not hold shows every
task pending, as a run whose start the scheduler has not taken in yet).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from interlock.common.testing import (
    TEST_IDENTITY,
    StandInTaskState,
    app_client,
    identity_headers,
    serving_task_state,
)
from interlock.workflow import WorkflowSettings, create_app

TENANT = "acme"
CREDENTIAL = SecretStr("workflow-credential")
"""What the service presents to the stand-in scheduler."""


def gateway_headers(tenant: str = TENANT, subject: str = "alice") -> dict[str, str]:
    """What the gateway adds to a request it authorized: an identity token."""
    return identity_headers(tenant, subject=subject, roles=["developer"])


@pytest.fixture
async def scheduler() -> AsyncIterator[tuple[str, StandInTaskState]]:
    """A stand-in scheduler's address, and the stand-in (its ``runs`` are the test's)."""
    servicer = StandInTaskState(CREDENTIAL)  # type: ignore[abstract]  # what reads ask
    async with serving_task_state(servicer) as target:
        yield target, servicer


@pytest.fixture
def stand_in(scheduler: tuple[str, StandInTaskState]) -> StandInTaskState:
    """The stand-in scheduler the service asks for runs' tasks."""
    return scheduler[1]


@pytest.fixture
def settings(
    postgres_database: Any, kafka_server: Any, scheduler: tuple[str, StandInTaskState]
) -> WorkflowSettings:
    """Settings for one test: its own database and topic prefix, the stand-in scheduler."""
    return WorkflowSettings(
        scheduler_grpc_target=scheduler[0],
        service_credential=CREDENTIAL,
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
