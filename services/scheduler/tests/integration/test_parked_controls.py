"""Controls parked for a run that never starts are dropped once older than a bound."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from interlock.common import topics
from interlock.events.v1 import workflow_pb2
from interlock.scheduler.domain.clock import utc_now
from interlock.scheduler.reconciler import Reconciler
from interlock.scheduler.service import SchedulerService

from .conftest import FakeWorker, Scheduler, make_settings, running_scheduler, running_worker, task

pytestmark = pytest.mark.integration

CANCEL = workflow_pb2.RunControl(
    action=workflow_pb2.RunControl.ACTION_CANCEL, reason="test", requested_by="user-1"
)


async def parked(pool: asyncpg.Pool, run_id: str) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM parked_controls WHERE run_id = $1", run_id
    )
    return count


async def start_and_finish(worker: FakeWorker, run_id: str) -> topics.EventType:
    """Start ``run_id`` late, with its tasks completing; how it ended."""
    worker.behavior = lambda s: ("complete", {})
    await worker.start_run(task("a"), run_id=run_id)
    return (await worker.wait_outcome(run_id)).type


async def test_the_reconciler_drops_controls_parked_longer_than_the_bound(
    scheduler: Scheduler,
) -> None:
    worker = scheduler.worker
    run_id = str(uuid.uuid4())
    await scheduler.consumed(await worker.publish(run_id, CANCEL))
    assert await parked(scheduler.pool, run_id) == 1

    bound = timedelta(hours=1)
    assert (
        await Reconciler(SchedulerService(lambda: scheduler.pool)).prune_parked_controls(bound) == 0
    )
    assert await parked(scheduler.pool, run_id) == 1
    later = Reconciler(
        SchedulerService(lambda: scheduler.pool, clock=lambda: utc_now() + 2 * bound)
    )
    assert await later.prune_parked_controls(bound) == 1
    assert await parked(scheduler.pool, run_id) == 0
    # The dropped cancel no longer applies to a start that comes after all.
    assert await start_and_finish(worker, run_id) == topics.WORKFLOW_COMPLETED


async def test_the_running_service_prunes_parked_controls_with_its_setting(
    request: pytest.FixtureRequest,
) -> None:
    settings = make_settings(request, parked_control_retention_s=3.0, reconcile_interval_s=0.2)
    async with running_scheduler(settings), running_worker(settings) as worker:
        pool = await asyncpg.create_pool(
            settings.postgres_dsn,
            password=settings.postgres_password.get_secret_value()
            if settings.postgres_password
            else None,
            min_size=1,
            max_size=1,
        )
        try:
            run_id = str(uuid.uuid4())
            control = await worker.publish(run_id, CANCEL)
            claimed = "SELECT count(*) FROM interlock_inbox WHERE event_id = $1"
            await eventually(lambda: pool.fetchval(claimed, control[0].id))
            # Parked in the claim's transaction; kept for the 3 s bound.
            assert await parked(pool, run_id) == 1
            await eventually(lambda: _none_parked(pool, run_id))
        finally:
            await pool.close()
        assert await start_and_finish(worker, run_id) == topics.WORKFLOW_COMPLETED


async def eventually(condition: Callable[[], Awaitable[Any]]) -> None:
    async with asyncio.timeout(30):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.05)


async def _none_parked(pool: asyncpg.Pool, run_id: str) -> bool:
    return await parked(pool, run_id) == 0
