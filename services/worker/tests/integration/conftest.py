"""Fixtures for the worker's integration tests: a real broker, workers, event helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.kafka import EventConsumer, EventPublisher
from interlock.common.testing import app_client
from interlock.events.v1 import task_pb2, workflow_pb2
from interlock.worker import Worker, WorkerSettings, create_app
from interlock.worker.context import TaskContext

TASK_EVENTS = [
    topics.TASK_STARTED,
    topics.TASK_COMPLETED,
    topics.TASK_FAILED,
    topics.TASK_HEARTBEAT,
    topics.TASK_LOG,
]


async def eventually(
    predicate: Callable[[], Any], *, timeout_s: float = 30.0, interval_s: float = 0.02
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail after the bound."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(interval_s)


@pytest.fixture
def settings(kafka_server: Any) -> WorkerSettings:
    """Worker settings of one test: its own topics and group, loopback allowed for http."""
    return WorkerSettings(
        kafka_bootstrap_servers=kafka_server.bootstrap_servers,
        kafka_topic_prefix=f"w{secrets.token_hex(4)}.",
        kafka_partitions=3,
        # The local broker holds a new member's join for about half the session
        # timeout: 1.1 s at 1.5 s, 2 s at 3 s, and each test joins two groups or more.
        kafka_session_timeout_ms=1500,
        kafka_heartbeat_interval_ms=300,
        worker_group_id=f"worker-{secrets.token_hex(4)}",
        worker_id=f"test-{secrets.token_hex(3)}",
        heartbeat_interval_ms=200,
        drain_timeout_ms=2000,
        http_allowed_networks=["127.0.0.0/8"],
        log_format="text",
    )


@contextlib.asynccontextmanager
async def _running_worker(
    settings: WorkerSettings, *, artifacts: Any = None, **overrides: Any
) -> AsyncIterator[Worker]:
    app = create_app(
        settings.model_copy(update=overrides) if overrides else settings, artifacts=artifacts
    )
    async with app_client(app):
        yield app.state.worker


@pytest.fixture
def running_worker() -> Callable[..., contextlib.AbstractAsyncContextManager[Worker]]:
    """``async with running_worker(settings, **overrides) as worker:`` runs the worker app.

    ``artifacts=`` passes an artifact store factory to the app.
    """
    return _running_worker


@dataclass
class TaskEvents:
    """Every task event published under the test's prefix, as the scheduler would see them."""

    events: list[Event[Any]] = field(default_factory=list)

    async def __call__(self, batch: Sequence[Event]) -> None:
        self.events.extend(batch)

    def of(self, event_type: topics.EventType[Any], run_id: str, task_id: str = "") -> list[Any]:
        return [
            e.payload
            for e in self.events
            if e.type == event_type
            and e.run_id == run_id
            and (not task_id or e.payload.task_id == task_id)
        ]

    def outcome(self, run_id: str, task_id: str, attempt: int = 1) -> Any:
        for event_type in (topics.TASK_COMPLETED, topics.TASK_FAILED):
            for payload in self.of(event_type, run_id, task_id):
                if payload.attempt == attempt:
                    return payload
        return None

    async def wait_outcome(
        self, run_id: str, task_id: str, attempt: int = 1, timeout_s: float = 30.0
    ) -> Any:
        return await eventually(lambda: self.outcome(run_id, task_id, attempt), timeout_s=timeout_s)


@pytest.fixture
async def task_events(settings: WorkerSettings) -> AsyncIterator[TaskEvents]:
    """Collects task events in the background while the test runs."""
    await topics.ensure_topics(settings)
    collected = TaskEvents()
    consumer = EventConsumer(
        settings,
        group_id=f"observer-{secrets.token_hex(4)}",
        event_types=TASK_EVENTS,
        handler=collected,
        poll_timeout_ms=50,
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        yield collected
    finally:
        await consumer.stop()
        await task


def scheduled(
    run_id: str,
    task_id: str,
    task_type: str,
    params: Any = None,
    *,
    attempt: int = 1,
    queue: str = "",
    tenant: str = "tenant-a",
    **fields: Any,
) -> Event:
    """A task.scheduled event as the scheduler publishes it (keyed by run id)."""
    return Event(
        type=topics.TASK_SCHEDULED,
        payload=task_pb2.TaskScheduled(
            task_id=task_id,
            attempt=attempt,
            type=task_type,
            params_json=json.dumps(params if params is not None else {}).encode(),
            queue=queue,
            idempotency_key=f"{run_id}/{task_id}/{attempt}",
            **fields,
        ),
        tenant=tenant,
        run_id=run_id,
        source="test-scheduler",
    )


def cancelled(run_id: str, tenant: str = "tenant-a") -> Event:
    """A workflow.cancelled event for ``run_id``."""
    return Event(
        type=topics.WORKFLOW_CANCELLED,
        payload=workflow_pb2.WorkflowCancelled(
            workflow_name="wf", workflow_version=1, reason="stopped by test", requested_by="me"
        ),
        tenant=tenant,
        run_id=run_id,
        source="test-workflow",
    )


def settled_cancelled(
    run_id: str, task_id: str, attempt: int, reason: str, tenant: str = "tenant-a"
) -> Event:
    """A task.settled event: the scheduler cancelled ``task_id``'s ``attempt``."""
    return Event(
        type=topics.TASK_SETTLED,
        payload=task_pb2.TasksSettled(
            tasks=[
                task_pb2.SettledTask(
                    task_id=task_id, status="cancelled", attempt=attempt, reason=reason
                )
            ]
        ),
        tenant=tenant,
        run_id=run_id,
        source="test-scheduler",
    )


@pytest.fixture
async def publish(settings: WorkerSettings) -> AsyncIterator[Callable[..., Any]]:
    """``await publish([events])``: publish under the test's prefix."""
    await topics.ensure_topics(settings)
    async with EventPublisher(settings, client_id="test-scheduler") as publisher:
        yield publisher.publish


def new_run() -> str:
    return f"run-{secrets.token_hex(4)}"


def make_context(task_type: str = "test") -> TaskContext:
    return TaskContext(
        tenant="tenant-a",
        run_id=new_run(),
        task_id="t",
        attempt=1,
        task_type=task_type,
        idempotency_key="key-1",
        worker_id="w",
    )


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/status/"):
            status = int(self.path.rsplit("/", 1)[1])
            self._reply(status, b"status body")
        elif self.path == "/big":
            self._reply(200, b"x" * 10_000)
        elif self.path == "/slow":
            time.sleep(2)
            self._reply(200, b"late")
        else:
            self._reply(200, b"hello", extra={"X-Test": "yes"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length)
        echo = json.dumps(
            {"body": body.decode(), "content_type": self.headers.get("content-type")}
        ).encode()
        self._reply(201, echo, extra={"Content-Type": "application/json"})

    def _reply(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def http_server() -> Iterator[str]:
    """A real HTTP server on loopback; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def kit() -> Any:
    """Helpers for building events and contexts, and for bounded polling."""
    import types

    return types.SimpleNamespace(
        scheduled=scheduled,
        cancelled=cancelled,
        settled_cancelled=settled_cancelled,
        new_run=new_run,
        make_context=make_context,
        eventually=eventually,
    )
