"""Long-lived pieces recover by themselves after their server restarts (issue 22)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest

from interlock.common import outbox, topics
from interlock.common.events import Event
from interlock.common.kafka import EventConsumerTask, KafkaBroker
from interlock.common.outbox import OUTBOX_MIGRATIONS, OutboxRelayTask
from interlock.common.postgres import PostgresDatabase
from interlock.common.resources import Resource
from interlock.common.settings import KafkaOptions, PostgresOptions
from interlock.devstack import KafkaServer, PostgresServer, RestartableServer
from interlock.events.v1 import workflow_pb2

pytestmark = pytest.mark.integration


def started(n: int) -> Event:
    return Event(
        type=topics.WORKFLOW_STARTED,
        payload=workflow_pb2.WorkflowStarted(workflow_name="etl", workflow_version=1),
        tenant="tenant",
        run_id=f"run-{n}",
        source="test",
    )


class Service:
    """A database, a broker, a relay and a consumer, wired as a service wires them."""

    def __init__(self, postgres: PostgresOptions, kafka: KafkaOptions, group_id: str) -> None:
        self.received: list[str] = []
        self.database = PostgresDatabase(postgres, migrations=[OUTBOX_MIGRATIONS])
        self.broker = KafkaBroker(kafka, client_id="test")
        self.relay = OutboxRelayTask(self.database, self.broker, poll_interval_ms=200)
        self.consumer = EventConsumerTask(
            self.broker.consumer(
                group_id=group_id, event_types=[topics.WORKFLOW_STARTED], handler=self._collect
            )
        )
        self.resources: list[Resource] = [self.database, self.broker, self.relay, self.consumer]

    async def _collect(self, events: Sequence[Event]) -> None:
        self.received.extend(event.run_id for event in events)

    async def enqueue(self, n: int) -> bool:
        """Commit one event to the outbox; ``False`` while the database is unreachable."""
        try:
            async with self.database.pool.acquire() as conn, conn.transaction():
                await outbox.enqueue(conn, [started(n)])
        except Exception:
            return False
        return True

    async def ready(self) -> bool:
        for resource in self.resources:
            try:
                await resource.check()
            except Exception:
                return False
        return True


@contextlib.asynccontextmanager
async def running(service: Service) -> AsyncIterator[Service]:
    async with contextlib.AsyncExitStack() as stack:
        for resource in service.resources:
            await stack.enter_async_context(resource)
        yield service


async def test_relay_delivers_and_is_ready_again_after_postgres_restarts(
    own_postgres_server: tuple[PostgresServer, RestartableServer],
    kafka_options: KafkaOptions,
    group_id: str,
    eventually,
) -> None:
    server, control = own_postgres_server
    dsn = server.create_database("relay")
    postgres = PostgresOptions(postgres_dsn=dsn, postgres_password=server.password)
    async with running(Service(postgres, kafka_options, group_id)) as service:
        assert await service.enqueue(1)
        await eventually(lambda: "run-1" in service.received, timeout_s=30)

        await asyncio.to_thread(control.restart)

        await eventually(lambda: service.enqueue(2), timeout_s=60, interval_s=0.5)
        await eventually(lambda: "run-2" in service.received, timeout_s=60)
        await eventually(service.ready, timeout_s=60, interval_s=0.5)
        # Woken by NOTIFY again, not only by polling: the listener listens again.
        listening = service.relay.relay
        assert listening.failing is None


async def test_consumer_resumes_after_the_broker_restarts_empty(
    postgres_options: PostgresOptions,
    own_kafka_server: tuple[KafkaServer, RestartableServer],
    group_id: str,
    eventually,
) -> None:
    kafka, control = own_kafka_server
    options = KafkaOptions(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        kafka_partitions=1,
        kafka_fetch_max_wait_ms=10,
        kafka_session_timeout_ms=3000,
        kafka_heartbeat_interval_ms=500,
    )
    async with running(Service(postgres_options, options, group_id)) as service:
        assert await service.enqueue(1)
        await eventually(lambda: "run-1" in service.received, timeout_s=30)

        await asyncio.to_thread(control.restart, graceful=False)
        # The broker came back empty: no topics. A service re-creates them (the
        # scheduler's topic guard); here the test does.
        await eventually(lambda: _ensure_topics(options), timeout_s=30, interval_s=0.5)

        assert await service.enqueue(2)
        await eventually(lambda: "run-2" in service.received, timeout_s=90)
        await eventually(service.ready, timeout_s=60, interval_s=0.5)


async def _ensure_topics(options: KafkaOptions) -> bool:
    try:
        await topics.ensure_topics(options, [topics.WORKFLOW_STARTED])
    except Exception:
        return False
    return True
