"""A consumer parks the events it can never apply and goes on with the others."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest

from interlock.common import inbox, parking, topics
from interlock.common.events import Event
from interlock.common.kafka import EventConsumer, EventPublisher
from interlock.common.settings import KafkaOptions
from interlock.events.v1 import task_pb2

pytestmark = pytest.mark.integration

TYPES = [topics.TASK_FAILED]


def failed(run_id: str, message: str) -> Event:
    payload = task_pb2.TaskFailed(task_id="t", attempt=1, worker_id="w")
    payload.error.message = message
    return Event(type=topics.TASK_FAILED, payload=payload, tenant="acme", run_id=run_id, source="t")


async def test_an_event_postgresql_refuses_is_parked_and_the_partition_flows(
    pool: asyncpg.Pool,
    kafka_options: KafkaOptions,
    group_id: str,
    running: Any,
    eventually: Any,
    committed_offsets: Any,
) -> None:
    # One key (run): one partition. Before, the NUL kept the whole partition retrying.
    await topics.ensure_topics(kafka_options, TYPES)
    await pool.execute("CREATE TABLE failures (event_id text PRIMARY KEY, message text)")

    async def apply(events: Sequence[Event]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            for event in await inbox.claim_events(conn, group_id, events):
                assert isinstance(event.payload, task_pb2.TaskFailed)
                await conn.execute(
                    "INSERT INTO failures VALUES ($1, $2)", event.id, event.payload.error.message
                )

    events = [failed("run", "a"), failed("run", "b\x00c"), failed("run", "d"), failed("run", "e")]
    async with EventPublisher(kafka_options) as publisher:
        await publisher.publish(events)
    consumer = EventConsumer(
        kafka_options,
        group_id=group_id,
        event_types=TYPES,
        handler=apply,
        park=parking.postgres_parking(lambda: pool),
    )
    async with running(consumer):
        await eventually(lambda: pool.fetchval("SELECT count(*) = 3 FROM failures"), timeout_s=30)
        await eventually(
            lambda: pool.fetchval("SELECT count(*) = 1 FROM interlock_parked_events"),
            timeout_s=30,
        )
    applied = {row["event_id"] for row in await pool.fetch("SELECT event_id FROM failures")}
    assert applied == {events[0].id, events[2].id, events[3].id}
    parked = await pool.fetchrow("SELECT * FROM interlock_parked_events")
    assert (parked["origin"], parked["event_id"], parked["tenant"], parked["run_id"]) == (
        group_id,
        events[1].id,
        "acme",
        "run",
    )
    assert "UntranslatableCharacter" in parked["reason"] or "0x00" in parked["reason"]
    assert (
        Event.from_record(parking.ParkedEvent.of(events[1], origin="x", reason="y").record).id
        == events[1].id
    )

    # Committed past the poison: a restart does not meet it again.
    await eventually(
        lambda: _all_committed(committed_offsets, kafka_options, group_id, 4), timeout_s=30
    )


async def _all_committed(committed_offsets: Any, options: KafkaOptions, group: str, n: int) -> bool:
    return sum((await committed_offsets(options, group, TYPES)).values()) == n


def test_poison_and_transient_errors_are_told_apart() -> None:
    assert parking.is_poison(asyncpg.exceptions.UntranslatableCharacterError("\\u0000"))
    assert parking.is_poison(asyncpg.exceptions.NumericValueOutOfRangeError("x"))
    assert parking.is_poison(asyncpg.exceptions.UniqueViolationError("x"))
    assert parking.is_poison(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogate"))
    assert parking.is_poison(parking.PoisonEventError("tenant mismatch"))
    assert not parking.is_poison(ConnectionResetError())
    assert not parking.is_poison(asyncpg.exceptions.ConnectionDoesNotExistError("x"))
    assert not parking.is_poison(asyncpg.exceptions.AdminShutdownError("x"))
    assert not parking.is_poison(asyncpg.exceptions.SerializationError("x"))
    assert not parking.is_poison(TimeoutError())
    wrapped = RuntimeError("publish failed")
    wrapped.__cause__ = asyncpg.exceptions.StringDataRightTruncationError("x")
    assert parking.is_poison(wrapped)
