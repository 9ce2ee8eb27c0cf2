"""Fixtures for the data-plumbing integration tests (real servers from interlock.devstack)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from interlock.common.kafka import EventConsumer, group_of
from interlock.common.postgres import COMMON_MIGRATIONS, apply_migrations, create_pool
from interlock.common.settings import KafkaOptions, PostgresOptions
from interlock.common.topics import EventType

Eventually = Callable[..., Awaitable[None]]


async def _eventually(
    predicate: Callable[[], Any], *, timeout_s: float = 30.0, interval_s: float = 0.02
) -> None:
    """Poll ``predicate`` (sync or async) until it is truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(interval_s)


@pytest.fixture
def eventually() -> Eventually:
    """``await eventually(lambda: cond, timeout_s=...)``: poll a condition with a bound."""
    return _eventually


@pytest.fixture
def kafka_options(kafka_server: Any) -> KafkaOptions:
    """Kafka options for one test: a topic prefix of its own, short group timeouts."""
    return KafkaOptions(
        kafka_bootstrap_servers=kafka_server.bootstrap_servers,
        kafka_topic_prefix=f"t{secrets.token_hex(4)}.",
        kafka_partitions=3,
        kafka_linger_ms=5,
        kafka_fetch_max_wait_ms=10,
        # The local broker holds a new member's join for about half the session timeout.
        kafka_session_timeout_ms=1500,
        kafka_heartbeat_interval_ms=300,
    )


async def _committed_offsets(
    options: KafkaOptions, group_id: str, event_types: Sequence[EventType]
) -> dict[tuple[str, int], int]:
    partitions = [
        TopicPartition(t.topic(options), p)
        for t in event_types
        for p in range(options.kafka_partitions)
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=options.kafka_bootstrap_servers)
    await admin.start()
    try:
        # The local broker cannot answer "all partitions of the group": name them.
        offsets = await admin.list_consumer_group_offsets(
            group_of(options, group_id), partitions=partitions
        )
    finally:
        await admin.close()
    return {
        (tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0
    }


@pytest.fixture
def committed_offsets() -> Callable[..., Awaitable[dict[tuple[str, int], int]]]:
    """``await committed_offsets(options, group, event_types)``: committed offsets by partition."""
    return _committed_offsets


@pytest.fixture
def group_id() -> str:
    """A consumer group id nobody else uses."""
    return f"g-{secrets.token_hex(4)}"


@contextlib.asynccontextmanager
async def _running(consumer: EventConsumer) -> AsyncIterator[EventConsumer]:
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        await consumer.stop()
        await task


@pytest.fixture
def running() -> Callable[[EventConsumer], contextlib.AbstractAsyncContextManager[EventConsumer]]:
    """``async with running(consumer):`` starts it, runs it in a task, stops it after."""
    return _running


@pytest.fixture
def postgres_options(postgres_database: Any) -> PostgresOptions:
    """Options pointing at a fresh database of this test."""
    return PostgresOptions(
        postgres_dsn=postgres_database.dsn,
        postgres_password=postgres_database.password,
        postgres_pool_min_size=1,
        postgres_pool_max_size=5,
    )


@pytest.fixture
async def pool(postgres_options: PostgresOptions) -> AsyncIterator[Any]:
    """A pool on a fresh database with the shared library's migrations applied."""
    pool = await create_pool(postgres_options, application_name="interlock-common-tests")
    await apply_migrations(pool, [COMMON_MIGRATIONS])
    try:
        yield pool
    finally:
        await pool.close()
