"""Fixtures: the metadata app in-process against real MongoDB and Kafka, and runs as events."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.kafka import EventPublisher
from interlock.common.testing import TEST_IDENTITY
from interlock.devstack import KafkaServer, MongoServer, _servers
from interlock.devstack._process import free_ports
from interlock.devstack._runner import RestartableServer
from interlock.events.v1 import definition_pb2, task_pb2, workflow_pb2
from interlock.metadata import MetadataSettings


def metadata_settings(mongo_url: str, kafka: KafkaServer, **overrides: Any) -> MetadataSettings:
    """Settings of one app: its own database and topic prefix."""
    values: dict[str, Any] = {
        "mongo_url": mongo_url,
        "mongo_database": f"metadata_{secrets.token_hex(4)}",
        "mongo_server_selection_timeout_ms": 1000,
        "kafka_bootstrap_servers": kafka.bootstrap_servers,
        "kafka_topic_prefix": f"md{secrets.token_hex(4)}.",
        "kafka_session_timeout_ms": 3000,
        "kafka_heartbeat_interval_ms": 500,
        "projection_fetch_max_wait_ms": 25,  # tests wait for each batch: small ones
        "logs_fetch_max_wait_ms": 25,
        "identity_jwks": TEST_IDENTITY.jwks,
    }
    return MetadataSettings(**(values | overrides))


@pytest.fixture
async def database(mongo_server: MongoServer) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """A database of one test on the session's MongoDB server, dropped after it."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_server.url, tz_aware=True)
    db = client[f"metadata_{secrets.token_hex(4)}"]
    try:
        yield db
    finally:
        await client.drop_database(db.name)
        await client.close()


@pytest.fixture
def restartable_mongo(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[MongoServer, RestartableServer]]:
    """A MongoDB server of one test, which it may stop and start again (data kept)."""
    (port,) = free_ports(1)
    base = tmp_path_factory.mktemp("restartable-mongo")
    _servers.prepare_mongo(base / "data")
    control = RestartableServer(_servers.mongo_spec(base / "data", port=port), log_dir=base)
    control.start()
    try:
        yield MongoServer(url=_servers.mongo_url(port)), control
    finally:
        control.stop(graceful=False)


async def eventually(
    predicate: Callable[[], Any], *, timeout_s: float = 60.0, interval_s: float = 0.1
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


class RunEvents:
    """The events of one run, as the workflow service, the scheduler and workers send them.

    Args:
        tenant: The run's tenant.
        workflow: Workflow name.
        start: When the run starts.
        labels: The version's labels.
    """

    def __init__(
        self,
        tenant: str,
        workflow: str,
        *,
        start: datetime | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.tenant = tenant
        self.run_id = secrets.token_hex(8)
        self.workflow = workflow
        self.start = start or datetime.now(UTC)
        self.labels = labels or {}
        self.events: list[Event] = []

    def _add(self, event_type: topics.EventType, payload: Any, seconds: float) -> None:
        self.events.append(
            Event(
                type=event_type,
                payload=payload,
                tenant=self.tenant,
                run_id=self.run_id,
                source="test",
                time=self.start + timedelta(seconds=seconds),
            )
        )

    def started(self, tasks: dict[str, str], run_input: Any = None) -> RunEvents:
        definition = definition_pb2.WorkflowDefinition(
            name=self.workflow,
            version=1,
            labels=self.labels,
            tasks=[definition_pb2.TaskSpec(id=i, type=t) for i, t in tasks.items()],
        )
        payload = workflow_pb2.WorkflowStarted(
            workflow_name=self.workflow,
            workflow_version=1,
            definition=definition,
            input_json=json.dumps(run_input or {}).encode(),
        )
        self._add(topics.WORKFLOW_STARTED, payload, 0)
        return self

    def attempt(
        self,
        task_id: str,
        attempt: int,
        at: float,
        *,
        task_type: str = "noop",
        error: tuple[str, str, bool] | None = None,
    ) -> RunEvents:
        self._add(
            topics.TASK_SCHEDULED,
            task_pb2.TaskScheduled(task_id=task_id, attempt=attempt, type=task_type),
            at,
        )
        self._add(
            topics.TASK_STARTED,
            task_pb2.TaskStarted(task_id=task_id, attempt=attempt, worker_id="w1"),
            at + 0.1,
        )
        if error is None:
            self._add(
                topics.TASK_COMPLETED,
                task_pb2.TaskCompleted(task_id=task_id, attempt=attempt, worker_id="w1"),
                at + 0.5,
            )
        else:
            kind, message, retryable = error
            failure = workflow_pb2.TaskError(type=kind, message=message, retryable=retryable)
            self._add(
                topics.TASK_FAILED,
                task_pb2.TaskFailed(
                    task_id=task_id, attempt=attempt, worker_id="w1", error=failure
                ),
                at + 0.5,
            )
        return self

    def dead_lettered(
        self, task_id: str, attempts: int, at: float, error: tuple[str, str]
    ) -> RunEvents:
        failure = workflow_pb2.TaskError(type=error[0], message=error[1])
        self._add(
            topics.TASK_DEAD_LETTERED,
            task_pb2.TaskDeadLettered(task_id=task_id, attempts=attempts, last_error=failure),
            at,
        )
        return self

    def completed(self, at: float) -> RunEvents:
        payload = workflow_pb2.WorkflowCompleted(workflow_name=self.workflow, workflow_version=1)
        self._add(topics.WORKFLOW_COMPLETED, payload, at)
        return self

    def failed(self, task_id: str, at: float, error: tuple[str, str]) -> RunEvents:
        payload = workflow_pb2.WorkflowFailed(
            workflow_name=self.workflow,
            workflow_version=1,
            failed_task_id=task_id,
            error=workflow_pb2.TaskError(type=error[0], message=error[1]),
        )
        self._add(topics.WORKFLOW_FAILED, payload, at)
        return self


async def publish(settings: MetadataSettings, events: Sequence[Event]) -> None:
    """Publish ``events`` to the app's topics."""
    publisher = EventPublisher(settings, client_id="test")
    await publisher.start()
    try:
        await publisher.publish(events)
    finally:
        await publisher.stop()
