"""Fixtures and helpers: the notification app against real PostgreSQL, Kafka and SMTP, a webhook
receiver on loopback, events, polling."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.kafka import EventPublisher
from interlock.common.sealing import new_key_encryption_key
from interlock.common.testing import TEST_IDENTITY, app_client, identity_headers
from interlock.events.v1 import definition_pb2, workflow_pb2
from interlock.notification import NotificationSettings, create_app


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def verify(self, *keys: str) -> dict[str, Any]:
        """Check the signature with each secret (standardwebhooks); return the body."""
        payload: dict[str, Any] = {}
        for key in keys:
            payload = Webhook(key).verify(self.body, self.headers)
        return payload


@dataclass(frozen=True)
class Answer:
    """A scripted answer: status, headers, and a delay before answering."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class Receiver:
    """A webhook receiver on 127.0.0.1: records every request, answers as scripted
    (per path, in order), then 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._scripts: dict[str, list[Answer]] = {}
        self._in_flight: dict[str, int] = {}
        self._most_in_flight: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: Answer) -> None:
        self._scripts[path] = list(answers)

    def at(self, path: str) -> list[Received]:
        return [item for item in self.received if item.path == path]

    def most_concurrent(self, path: str) -> int:
        """The most requests to ``path`` that were being answered at once."""
        return self._most_in_flight.get(path, 0)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(
            Received(request.path, {k.lower(): v for k, v in request.headers.items()}, body)
        )
        script = self._scripts.get(request.path)
        answer = script.pop(0) if script else Answer()
        self._in_flight[request.path] = self._in_flight.get(request.path, 0) + 1
        self._most_in_flight[request.path] = max(
            self._most_in_flight.get(request.path, 0), self._in_flight[request.path]
        )
        try:
            if answer.delay_s:
                await asyncio.sleep(answer.delay_s)
        finally:
            self._in_flight[request.path] -= 1
        return web.Response(status=answer.status, headers=answer.headers, text="ok")


def unique_path() -> str:
    return f"/hook/{uuid.uuid4().hex[:12]}"


def started(
    tenant: str,
    run_id: str,
    workflow: str,
    *,
    labels: dict[str, str] | None = None,
    time_: datetime | None = None,
) -> Event:
    definition = definition_pb2.WorkflowDefinition(name=workflow, version=1, labels=labels or {})
    return Event(
        type=topics.WORKFLOW_STARTED,
        payload=workflow_pb2.WorkflowStarted(
            workflow_name=workflow, workflow_version=1, definition=definition
        ),
        tenant=tenant,
        run_id=run_id,
        source="test",
        time=time_ or datetime.now(UTC) - timedelta(seconds=90),
    )


def failed(tenant: str, run_id: str, workflow: str) -> Event:
    return Event(
        type=topics.WORKFLOW_FAILED,
        payload=workflow_pb2.WorkflowFailed(
            workflow_name=workflow,
            workflow_version=1,
            failed_task_id="load",
            error=workflow_pb2.TaskError(type="TimeoutError", message="no answer in 30 s"),
        ),
        tenant=tenant,
        run_id=run_id,
        source="test",
    )


def succeeded(tenant: str, run_id: str, workflow: str) -> Event:
    return Event(
        type=topics.WORKFLOW_COMPLETED,
        payload=workflow_pb2.WorkflowCompleted(workflow_name=workflow, workflow_version=1),
        tenant=tenant,
        run_id=run_id,
        source="test",
    )


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


TENANT = "acme"
KEY_ENCRYPTION_KEYS = new_key_encryption_key()
"""The tests' key-encryption key (the same for every app of a session: they share data)."""


def gateway_headers(tenant: str = TENANT, role: str = "developer") -> dict[str, str]:
    """What the gateway adds to a request it authorized: an identity token."""
    return identity_headers(tenant, subject="alice", roles=[role])


def make_settings(dsn: str, password: Any, kafka: str, **overrides: Any) -> NotificationSettings:
    """Quick settings for tests: short schedules, loopback allowed."""
    values: dict[str, Any] = {
        "postgres_dsn": dsn,
        "postgres_password": password,
        "kafka_bootstrap_servers": kafka,
        "kafka_topic_prefix": f"nt{secrets.token_hex(4)}.",
        # The local broker holds a new member's join for about half the session timeout.
        "kafka_session_timeout_ms": 1500,
        "kafka_heartbeat_interval_ms": 300,
        "identity_jwks": TEST_IDENTITY.jwks,
        "retry_schedule": ["0s", "100ms", "100ms", "100ms", "100ms", "100ms"],
        "max_consecutive_failures": 4,
        "delivery_poll_interval_s": 0.05,
        "webhook_allowed_networks": ["127.0.0.0/8"],
        "public_url": "http://gateway.test:8080",
        "key_encryption_keys": KEY_ENCRYPTION_KEYS,
    }
    values.update(overrides)
    return NotificationSettings(**values)


@pytest.fixture(scope="module")
def database(postgres_server: Any) -> Iterator[tuple[str, Any]]:
    """A database of its own for the module's app."""
    name = f"test_{secrets.token_hex(6)}"
    dsn = postgres_server.create_database(name)
    try:
        yield dsn, postgres_server.password
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    """The module's webhook receiver."""
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    """Settings a module changes for its app (a module overrides this fixture)."""
    return {}


@pytest.fixture(scope="module")
def settings(
    database: tuple[str, Any],
    kafka_server: Any,
    smtp_server: Any,
    settings_overrides: dict[str, Any],
) -> NotificationSettings:
    """The module app's settings."""
    dsn, password = database
    return make_settings(
        dsn,
        password,
        kafka_server.bootstrap_servers,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        **settings_overrides,
    )


@pytest.fixture(scope="module")
async def client(settings: NotificationSettings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the running app, sending the gateway's headers for tenant ``acme``."""
    async with app_client(create_app(settings)) as client:
        client.headers.update(gateway_headers())
        yield client


@pytest.fixture(scope="module")
async def publisher(settings: NotificationSettings) -> AsyncIterator[EventPublisher]:
    """Publishes events as the other services would."""
    async with EventPublisher(settings) as events:
        yield events
