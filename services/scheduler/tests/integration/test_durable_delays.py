"""Delay timers against real servers: across a scheduler restart, weekdays and dates."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from interlock.common import topics
from interlock.events.v1 import definition_pb2
from interlock.scheduler import SchedulerSettings

from .conftest import HEADERS, Scheduler, make_settings, running_scheduler, running_worker, task


async def _wait_for_timer(settings: SchedulerSettings, run_id: str) -> None:
    password = settings.postgres_password
    conn = await asyncpg.connect(
        settings.postgres_dsn, password=password.get_secret_value() if password else None
    )
    try:
        async with asyncio.timeout(30):
            while True:
                if await conn.fetchval("SELECT 1 FROM timers WHERE run_id = $1", run_id):
                    return
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_a_delay_timer_fires_after_a_scheduler_restart(
    request: pytest.FixtureRequest,
) -> None:
    settings = make_settings(request)
    delay = definition_pb2.DelaySpec(duration_ms=1_500)
    async with running_worker(settings) as worker:
        worker.behavior = lambda scheduled: ("complete", {})
        async with running_scheduler(settings):
            run_id = await worker.start_run(
                task("wait", type="delay", delay=delay), task("b", "wait")
            )
            await _wait_for_timer(settings, run_id)
        # Down while the timer comes due: the row is all that remembers it.
        async with running_scheduler(settings):
            outcome = await worker.wait_outcome(run_id)
    assert outcome.type == topics.WORKFLOW_COMPLETED
    assert worker.scheduled(run_id) == [("b", 1)]


async def test_weekday_and_date_delays_are_due_at_their_local_time(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    worker.behavior = lambda scheduled: ("complete", {})
    zone = "America/New_York"
    weekly = definition_pb2.DelaySpec(
        weekly=definition_pb2.WeeklyDelay(weekdays=[1, 4], at="09:30", timezone=zone)
    )
    dated = definition_pb2.DelaySpec(
        date=definition_pb2.DateDelay(date="2031-03-09", at="02:30", timezone=zone)
    )
    before = datetime.now(UTC)
    run_id = await worker.start_run(
        task("weekly", type="delay", delay=weekly),
        task("dated", type="delay", delay=dated),
        task("after", "weekly", "dated"),
    )

    async def both_timers() -> list[asyncpg.Record] | None:
        rows = await scheduler.pool.fetch(
            "SELECT task_id, due_at FROM timers WHERE run_id = $1 AND kind = 'delay'", run_id
        )
        return rows if len(rows) == 2 else None

    rows = await scheduler.eventually(both_timers)
    due = {row["task_id"]: row["due_at"] for row in rows}
    local = due["weekly"].astimezone(ZoneInfo(zone))
    assert (local.isoweekday(), local.hour, local.minute) in {(1, 9, 30), (4, 9, 30)}
    assert before < due["weekly"] <= before + timedelta(days=4)
    # 02:30 on 2031-03-09 does not exist in New York (clocks go forward): 03:30.
    assert due["dated"] == datetime(2031, 3, 9, 3, 30, tzinfo=ZoneInfo(zone))
    soon = (datetime.now(UTC) + timedelta(milliseconds=100)).isoformat()
    for task_id in ("weekly", "dated"):
        moved = await scheduler.client.patch(
            f"/api/v1/runs/{run_id}/tasks/{task_id}/timer", json={"due_at": soon}, headers=HEADERS
        )
        assert moved.status_code == 200, moved.text
    assert (await worker.wait_outcome(run_id)).type == topics.WORKFLOW_COMPLETED
    assert worker.scheduled(run_id) == [("after", 1)]
