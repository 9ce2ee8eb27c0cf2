"""The resource wrappers wired as a service wires them (interlock.common.resources)."""

import contextlib
from collections.abc import Sequence
from typing import Any

import pytest

from interlock.common import inbox, outbox, topics
from interlock.common.events import Event
from interlock.common.kafka import EventConsumerTask, KafkaBroker
from interlock.common.mongo import MongoDatabase
from interlock.common.outbox import OUTBOX_MIGRATIONS, OutboxRelayTask
from interlock.common.postgres import PostgresDatabase
from interlock.common.resources import Resource
from interlock.common.settings import KafkaOptions, MongoOptions, PostgresOptions
from interlock.events.v1 import workflow_pb2

pytestmark = pytest.mark.integration


async def test_a_service_wired_from_resources_relays_and_consumes(
    postgres_options: PostgresOptions, kafka_options: KafkaOptions, group_id: str, eventually
) -> None:
    received: list[Event] = []
    database = PostgresDatabase(postgres_options, migrations=[OUTBOX_MIGRATIONS])
    broker = KafkaBroker(kafka_options, client_id="test-service")

    async def handle(events: Sequence[Event]) -> None:
        async with database.pool.acquire() as conn, conn.transaction():
            received.extend(await inbox.claim_events(conn, group_id, events))

    relay = OutboxRelayTask(database, broker, poll_interval_ms=200)
    consumer = EventConsumerTask(
        broker.consumer(group_id=group_id, event_types=[topics.WORKFLOW_STARTED], handler=handle)
    )
    resources: list[Resource] = [database, broker, relay, consumer]
    assert all(isinstance(r, Resource) for r in resources)

    async with contextlib.AsyncExitStack() as stack:
        for resource in resources:
            await stack.enter_async_context(resource)
        for resource in resources:
            await resource.check()

        event = Event(
            type=topics.WORKFLOW_STARTED,
            payload=workflow_pb2.WorkflowStarted(workflow_name="etl", workflow_version=1),
            tenant="tenant",
            run_id="run-1",
            source="workflow",
        )
        async with database.pool.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, [event])
        await eventually(lambda: received, timeout_s=20)
        assert received == [event]

    # Closed, they are not ready (the broker's check reflects the broker itself).
    for resource in (database, relay, consumer):
        with pytest.raises(RuntimeError, match=r"not (open|running)"):
            await resource.check()


async def test_mongo_database_resource(mongo_server: Any) -> None:
    database = MongoDatabase(MongoOptions(mongo_url=mongo_server.url, mongo_database="res"))
    assert isinstance(database, Resource)
    async with database:
        await database.check()
        await database.db["things"].insert_one({"_id": 1})
        assert await database.db["things"].count_documents({}) == 1
    with pytest.raises(RuntimeError):
        await database.check()
