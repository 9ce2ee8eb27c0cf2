"""A scheduler in-process against real PostgreSQL and Kafka, and a scripted fake worker."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from interlock.common import topics
from interlock.common.events import Event, is_type
from interlock.common.kafka import EventConsumer, EventPublisher
from interlock.common.testing import TEST_IDENTITY, app_client, identity_headers
from interlock.events.v1 import definition_pb2, task_pb2, workflow_pb2
from interlock.scheduler import SchedulerSettings, create_app

TENANT = "tenant-a"
HEADERS = identity_headers(TENANT, subject="user-1", roles=["operator"])
"""What the gateway forwards for an operator of ``TENANT``: an identity token."""

WATCHED = (
    topics.TASK_SCHEDULED,
    topics.TASK_DEAD_LETTERED,
    topics.WORKFLOW_COMPLETED,
    topics.WORKFLOW_FAILED,
    topics.WORKFLOW_CANCELLED,
)

Behavior = Callable[[task_pb2.TaskScheduled], "tuple[str, Any] | None"]
"""What the fake worker does with an attempt: ("complete", output), ("fail", retryable),
or None (nothing: the test drives it)."""


def task(task_id: str, *deps: str, **fields: Any) -> definition_pb2.TaskSpec:
    """A task spec; noop, 3 attempts with 50 ms backoff unless told otherwise."""
    fields.setdefault("type", "noop")
    fields.setdefault(
        "retry",
        definition_pb2.RetryPolicy(max_attempts=3, initial_interval_ms=50, max_interval_ms=200),
    )
    if "params" in fields:
        fields["params_json"] = json.dumps(fields.pop("params")).encode()
    return definition_pb2.TaskSpec(id=task_id, depends_on=deps, **fields)


@dataclass
class FakeWorker:
    """Consumes what the scheduler publishes and answers like a worker would."""

    settings: SchedulerSettings
    publisher: EventPublisher
    behavior: Behavior | None = None
    seen: list[Event[Any]] = field(default_factory=list)

    async def handle(self, events: Sequence[Event[Any]]) -> None:
        self.seen.extend(events)
        answers = []
        for event in events:
            if is_type(event, topics.TASK_SCHEDULED) and self.behavior is not None:
                answer = self.behavior(event.payload)
                if answer is not None:
                    answers.extend(self.answer(event, *answer))
        if answers:
            await self.publisher.publish(answers)

    def answer(self, event: Event, action: str, value: Any) -> list[Event]:
        scheduled = event.payload
        assert isinstance(scheduled, task_pb2.TaskScheduled)
        started = self.event(
            event.run_id,
            task_pb2.TaskStarted(
                task_id=scheduled.task_id, attempt=scheduled.attempt, worker_id="w1"
            ),
        )
        if action == "complete":
            payload: Any = task_pb2.TaskCompleted(
                task_id=scheduled.task_id,
                attempt=scheduled.attempt,
                worker_id="w1",
                output_json=json.dumps(value).encode(),
            )
        else:
            payload = task_pb2.TaskFailed(
                task_id=scheduled.task_id,
                attempt=scheduled.attempt,
                worker_id="w1",
                error=workflow_pb2.TaskError(
                    type="RuntimeError",
                    message="boom",
                    retryable=bool(value),
                    traceback_excerpt='File "x.py", line 1\nRuntimeError: boom',
                ),
            )
        return [started, self.event(event.run_id, payload)]

    @staticmethod
    def answer_started(task_id: str, attempt: int) -> task_pb2.TaskStarted:
        return task_pb2.TaskStarted(task_id=task_id, attempt=attempt, worker_id="w1")

    def event(self, run_id: str, payload: Any) -> Event:
        return Event(
            type=topics.for_payload(type(payload)),
            payload=payload,
            tenant=TENANT,
            run_id=run_id,
            source="test-worker",
        )

    async def publish(self, run_id: str, *payloads: Any) -> list[Event]:
        events = [self.event(run_id, payload) for payload in payloads]
        await self.publisher.publish(events)
        return events

    async def start_run(
        self, *tasks: definition_pb2.TaskSpec, input: Any = None, run_id: str | None = None
    ) -> str:
        run_id = run_id or str(uuid.uuid4())
        started = workflow_pb2.WorkflowStarted(
            workflow_name="wf",
            workflow_version=1,
            definition=definition_pb2.WorkflowDefinition(name="wf", version=1, tasks=tasks),
            input_json=json.dumps(input or {}).encode(),
        )
        await self.publish(run_id, started)
        return run_id

    def of(self, run_id: str, event_type: topics.EventType) -> list[Any]:
        return [e.payload for e in self.seen if e.run_id == run_id and e.type == event_type]

    def scheduled(self, run_id: str) -> list[tuple[str, int]]:
        return [(p.task_id, p.attempt) for p in self.of(run_id, topics.TASK_SCHEDULED)]

    async def wait_for(
        self, condition: Callable[[], Any], *, timeout_s: float = 30.0, what: str = ""
    ) -> Any:
        async with asyncio.timeout(timeout_s):
            while True:
                value = condition()
                if value:
                    return value
                await asyncio.sleep(0.02)
        raise AssertionError(what)  # pragma: no cover

    async def wait_outcome(self, run_id: str, timeout_s: float = 30.0) -> Event[Any]:
        ends = (topics.WORKFLOW_COMPLETED, topics.WORKFLOW_FAILED, topics.WORKFLOW_CANCELLED)

        def outcome() -> Event[Any] | None:
            return next((e for e in self.seen if e.run_id == run_id and e.type in ends), None)

        result: Event[Any] = await self.wait_for(outcome, timeout_s=timeout_s, what="run outcome")
        return result


@dataclass
class Scheduler:
    """The running scheduler under test."""

    settings: SchedulerSettings
    client: httpx.AsyncClient
    pool: asyncpg.Pool
    worker: FakeWorker

    async def task_status(self, run_id: str, task_id: str) -> str | None:
        status: str | None = await self.pool.fetchval(
            "SELECT status FROM tasks WHERE run_id = $1 AND task_id = $2", run_id, task_id
        )
        return status

    async def eventually(
        self, condition: Callable[[], Awaitable[Any]], *, timeout_s: float = 30.0
    ) -> Any:
        """Poll an async condition until it is truthy (bounded)."""
        async with asyncio.timeout(timeout_s):
            while True:
                value = await condition()
                if value:
                    return value
                await asyncio.sleep(0.02)

    async def consumed(self, events: list[Event]) -> None:
        """Wait until the scheduler applied (claimed) ``events``."""
        ids = [event.id for event in events]

        async def claimed() -> bool:
            count = await self.pool.fetchval(
                "SELECT count(*) FROM interlock_inbox WHERE event_id = ANY($1::text[])", ids
            )
            return bool(count == len(ids))

        await self.eventually(claimed)

    async def grpc_port(self) -> int:
        """The port the scheduler's gRPC server bound."""
        return int(self.client.headers["x-test-grpc-port"])

    async def run_status(self, run_id: str) -> str | None:
        status: str | None = await self.pool.fetchval(
            "SELECT status FROM runs WHERE run_id = $1", run_id
        )
        return status


def make_settings(request: pytest.FixtureRequest, **overrides: Any) -> SchedulerSettings:
    postgres = request.getfixturevalue("postgres_server")
    kafka = request.getfixturevalue("kafka_server")
    values: dict[str, Any] = {
        "postgres_dsn": postgres.create_database(f"sched_{secrets.token_hex(5)}"),
        "postgres_password": postgres.password,
        "kafka_bootstrap_servers": kafka.bootstrap_servers,
        "kafka_topic_prefix": f"t{secrets.token_hex(4)}.",
        "consumer_group": f"scheduler-{secrets.token_hex(4)}",
        "grpc_port": 0,
        "timer_max_sleep_ms": 100,
        "identity_jwks": TEST_IDENTITY.jwks,
    }
    values.update(overrides)
    return SchedulerSettings(**values)


@asynccontextmanager
async def running_worker(settings: SchedulerSettings) -> AsyncIterator[FakeWorker]:
    publisher = EventPublisher(settings, client_id="test-worker")
    await publisher.start()
    worker = FakeWorker(settings, publisher)
    consumer = EventConsumer(
        settings,
        group_id=f"worker-{secrets.token_hex(4)}",
        event_types=WATCHED,
        handler=worker.handle,
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        yield worker
    finally:
        await consumer.stop()
        task.cancel()
        await publisher.stop()


@asynccontextmanager
async def running_scheduler(settings: SchedulerSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app_client(app) as client:
        client.headers["x-test-grpc-port"] = str(app.state.task_state_server.port)
        yield client


@pytest.fixture
async def scheduler(request: pytest.FixtureRequest) -> AsyncIterator[Scheduler]:
    settings = make_settings(request)
    async with running_scheduler(settings) as client, running_worker(settings) as worker:
        pool = await asyncpg.create_pool(
            settings.postgres_dsn,
            password=settings.postgres_password.get_secret_value()
            if settings.postgres_password
            else None,
            min_size=1,
            max_size=2,
        )
        try:
            yield Scheduler(settings, client, pool, worker)
        finally:
            await pool.close()
