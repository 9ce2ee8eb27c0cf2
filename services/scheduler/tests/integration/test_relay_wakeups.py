"""The consumer's handler and the timer loop wake the outbox relay after committing events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.outbox import OUTBOX_MIGRATIONS
from interlock.common.postgres import apply_migrations, create_pool
from interlock.events.v1 import definition_pb2, workflow_pb2
from interlock.scheduler import SchedulerSettings
from interlock.scheduler.app import MIGRATIONS
from interlock.scheduler.handlers import BatchHandler, utc_now
from interlock.scheduler.loops import TimerLoop

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(postgres_database: Any) -> AsyncIterator[asyncpg.Pool]:
    settings = SchedulerSettings(
        postgres_dsn=postgres_database.dsn, postgres_password=postgres_database.password
    )
    pool = await create_pool(settings)
    await apply_migrations(pool, [OUTBOX_MIGRATIONS, MIGRATIONS])
    try:
        yield pool
    finally:
        await pool.close()


def start(run_id: str, spec: definition_pb2.TaskSpec) -> Event:
    return Event(
        type=topics.WORKFLOW_STARTED,
        payload=workflow_pb2.WorkflowStarted(
            workflow_name="wf",
            workflow_version=1,
            definition=definition_pb2.WorkflowDefinition(name="wf", version=1, tasks=[spec]),
            input_json=b"{}",
        ),
        tenant="t",
        run_id=run_id,
        source="test",
    )


async def test_a_batch_that_enqueued_events_wakes_the_relay(pool: asyncpg.Pool) -> None:
    wakes: list[str] = []
    handler = BatchHandler(pool, on_events=lambda: wakes.append(""))
    await handler([start("run-w1", definition_pb2.TaskSpec(id="a", type="noop"))])
    assert len(wakes) == 1
    assert await pool.fetchval("SELECT count(*) FROM interlock_outbox") == 1

    await handler([start("run-w1", definition_pb2.TaskSpec(id="a", type="noop"))])
    assert len(wakes) == 1  # a batch that enqueued nothing (a second start) wakes nobody


async def test_a_timer_pass_that_enqueued_events_wakes_the_relay(pool: asyncpg.Pool) -> None:
    delay = definition_pb2.TaskSpec(
        id="wait", type="delay", delay=definition_pb2.DelaySpec(duration_ms=60_000)
    )
    await BatchHandler(pool)([start("run-w2", delay)])
    wakes: list[str] = []
    later = TimerLoop(
        pool, clock=lambda: utc_now() + timedelta(minutes=2), on_events=lambda: wakes.append("")
    )
    assert await later.fire_once() == 1
    assert len(wakes) == 1
    assert await later.fire_once() == 0
    assert len(wakes) == 1
