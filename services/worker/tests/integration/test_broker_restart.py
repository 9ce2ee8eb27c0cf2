"""The worker after its broker restarted empty: topics, offsets and its group all gone.

The scheduler re-creates the topics and re-sends the tasks whose events were lost; the
worker must fetch and run them again, with no process restart (issue 22).
"""

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from interlock.common import topics
from interlock.common.kafka import EventConsumer, EventPublisher
from interlock.devstack import KafkaServer, RestartableServer
from interlock.worker import WorkerSettings

from .conftest import TASK_EVENTS, TaskEvents

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@contextlib.asynccontextmanager
async def observed(settings: WorkerSettings) -> AsyncIterator[TaskEvents]:
    """Task events the worker publishes, read by a fresh group (the broker's may be gone)."""
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


async def create_topics(settings: WorkerSettings) -> bool:
    """Create the topics as the scheduler's topic checks do; whether the broker answered."""
    try:
        await topics.ensure_topics(settings)
        await topics.ensure_task_topics(settings, [""])
    except Exception:
        return False
    return True


async def publish(settings: WorkerSettings, events: list[Any]) -> None:
    async with EventPublisher(settings, client_id="test-scheduler") as publisher:
        await publisher.publish(events)


async def test_the_worker_runs_tasks_again_after_the_broker_restarted_empty(
    own_kafka_server: tuple[KafkaServer, RestartableServer], running_worker, kit: Any
) -> None:
    kafka, control = own_kafka_server
    settings = WorkerSettings(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        kafka_partitions=3,
        worker_group_id="worker",
        worker_id="survivor",
        heartbeat_interval_ms=200,
        drain_timeout_ms=1000,
        log_format="text",
    )
    await create_topics(settings)
    runs = [kit.new_run() for _ in range(12)]
    before = [kit.scheduled(run, f"before-{n}", "noop") for n, run in enumerate(runs)]
    # In flight when the broker goes: their outcomes are lost with it.
    held = [kit.scheduled(run, "held", "sleep", {"duration": "2s"}) for run in runs]
    after = [kit.scheduled(run, f"after-{n}", "noop") for n, run in enumerate(runs)]
    async with running_worker(settings):
        async with observed(settings) as events:
            await publish(settings, before)
            for event in before:
                await events.wait_outcome(event.run_id, event.payload.task_id)
            await publish(settings, held)
            await kit.eventually(
                lambda: sum(1 for e in events.events if e.type == topics.TASK_STARTED) >= 6
            )

        await asyncio.to_thread(control.restart, graceful=False)
        async with observed(settings) as events:
            # The scheduler re-sends what it never heard back about, and goes on: the
            # broker creates the topic with its own defaults, before the scheduler's
            # next topic check does.
            await until(lambda: _published(settings, held + after))
            await asyncio.sleep(10)
            await until(lambda: create_topics(settings))
            for event in held + after:
                await events.wait_outcome(event.run_id, event.payload.task_id, timeout_s=60)


async def until(attempt: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    """Call ``attempt`` every half second until it returns ``True``; fail after the bound."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await attempt():
        assert asyncio.get_running_loop().time() < deadline, "not done in time"
        await asyncio.sleep(0.5)


async def _published(settings: WorkerSettings, events: list[Any]) -> bool:
    try:
        await publish(settings, events)
    except Exception:
        return False
    return True
