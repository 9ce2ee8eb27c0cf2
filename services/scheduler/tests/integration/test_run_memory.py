"""The consumer's handler keeps runs in memory between batches, never trusting a stale one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.outbox import OUTBOX_MIGRATIONS
from interlock.common.postgres import apply_migrations, create_pool
from interlock.events.v1 import definition_pb2, task_pb2, workflow_pb2
from interlock.scheduler import SchedulerSettings, store
from interlock.scheduler.app import MIGRATIONS
from interlock.scheduler.domain.clock import utc_now
from interlock.scheduler.handlers import BatchHandler
from interlock.scheduler.service import SchedulerService

pytestmark = pytest.mark.integration

RUN = "run-memory-1"


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


def event(payload: Any) -> Event:
    return Event(
        type=topics.for_payload(type(payload)),
        payload=payload,
        tenant="t",
        run_id=RUN,
        source="test",
    )


def chain_start() -> Event:
    specs = [
        definition_pb2.TaskSpec(id="a", type="noop"),
        definition_pb2.TaskSpec(id="b", type="noop", depends_on=["a"]),
    ]
    return event(
        workflow_pb2.WorkflowStarted(
            workflow_name="wf",
            workflow_version=1,
            definition=definition_pb2.WorkflowDefinition(name="wf", version=1, tasks=specs),
            input_json=b"{}",
        )
    )


def a_completed() -> Event:
    return event(task_pb2.TaskCompleted(task_id="a", attempt=1, output_json=b"{}"))


async def scheduled_in_outbox(pool: asyncpg.Pool) -> list[str]:
    """Task ids of the task.scheduled events waiting in the outbox (no relay runs here)."""
    rows = await pool.fetch(
        "SELECT value FROM interlock_outbox WHERE topic = $1 ORDER BY seq",
        topics.TASK_SCHEDULED.name,
    )
    return [task_pb2.TaskScheduled.FromString(row["value"]).task_id for row in rows]


async def test_a_run_written_elsewhere_since_the_last_batch_is_read_again(
    pool: asyncpg.Pool,
) -> None:
    handler = BatchHandler(SchedulerService(lambda: pool))
    await handler([chain_start()])
    assert await scheduled_in_outbox(pool) == ["a"]
    # Someone else (here: what the API's cancel does) changes the run in between.
    async with pool.acquire() as conn, conn.transaction():
        run = (await store.load_runs(conn, [RUN]))[RUN]
        run.cancel("stop", "user-1", utc_now())
        await store.save_runs(conn, [run], utc_now())

    await handler([a_completed()])

    assert await scheduled_in_outbox(pool) == ["a"]  # b is not scheduled in a cancelled run
    assert await pool.fetchval("SELECT status FROM runs WHERE run_id = $1", RUN) == "cancelled"


async def test_a_batch_that_did_not_commit_leaves_nothing_behind_in_memory(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = BatchHandler(SchedulerService(lambda: pool))
    await handler([chain_start()])
    save_runs = store.save_runs

    async def save_then_fail(conn: asyncpg.Connection, runs: Sequence[Any], now: Any) -> Any:
        await save_runs(conn, runs, now)
        raise ConnectionError("lost the database before commit")

    monkeypatch.setattr(store, "save_runs", save_then_fail)
    with pytest.raises(ConnectionError):
        await handler([a_completed()])
    monkeypatch.setattr(store, "save_runs", save_runs)

    await handler([a_completed()])  # the redelivery

    assert await scheduled_in_outbox(pool) == ["a", "b"]
    statuses = dict(await pool.fetch("SELECT task_id, status FROM tasks WHERE run_id = $1", RUN))
    assert statuses == {"a": "succeeded", "b": "scheduled"}
