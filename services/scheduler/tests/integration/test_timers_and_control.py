"""Timeouts, heartbeats, delays, and cancel / pause / resume / retry controls."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from interlock.common import topics
from interlock.common.testing import identity_headers
from interlock.events.v1 import definition_pb2, task_pb2, workflow_pb2
from interlock.scheduler import store
from interlock.scheduler.domain.run import NO_LANE

from .conftest import HEADERS, Scheduler, task

pytestmark = pytest.mark.integration

Action = workflow_pb2.RunControl.Action


def control(action: Action.ValueType) -> workflow_pb2.RunControl:
    return workflow_pb2.RunControl(action=action, reason="test", requested_by="user-1")


async def test_start_to_close_timeout_retries_the_attempt(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    # The first attempt starts and never answers; the second completes.
    worker.behavior = lambda s: ("complete", {}) if s.attempt > 1 else None
    run_id = await worker.start_run(task("slow", timeout_ms=300))
    await worker.wait_for(lambda: worker.scheduled(run_id))
    await worker.publish(run_id, task_pb2.TaskStarted(task_id="slow", attempt=1, worker_id="w1"))
    assert (await worker.wait_outcome(run_id)).type == topics.WORKFLOW_COMPLETED
    assert worker.scheduled(run_id) == [("slow", 1), ("slow", 2)]
    failures = await scheduler.pool.fetch(
        "SELECT attempt FROM transitions WHERE run_id = $1 AND to_status = 'failed'", run_id
    )
    assert [row["attempt"] for row in failures] == [1]


async def test_heartbeat_loss_is_detected_and_retried(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    worker.behavior = lambda s: ("complete", {}) if s.attempt > 1 else None
    run_id = await worker.start_run(task("beating", heartbeat_timeout_ms=400))
    await worker.wait_for(lambda: worker.scheduled(run_id))
    hb = task_pb2.TaskHeartbeat(task_id="beating", attempt=1, worker_id="w1")
    await worker.publish(run_id, task_pb2.TaskStarted(task_id="beating", attempt=1, worker_id="w1"))
    for _ in range(3):  # alive for a while, then the worker "dies"
        await worker.publish(run_id, hb)
    assert (await worker.wait_outcome(run_id)).type == topics.WORKFLOW_COMPLETED
    assert ("beating", 2) in worker.scheduled(run_id)
    kinds = await scheduler.pool.fetch(
        "SELECT task_id FROM tasks WHERE run_id = $1 AND error_type IS NULL", run_id
    )
    assert len(kinds) == 1


async def test_short_delay_fires_and_continues(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    worker.behavior = lambda s: ("complete", {})
    delay = definition_pb2.DelaySpec(duration_ms=500)
    run_id = await worker.start_run(task("wait", type="delay", delay=delay), task("after", "wait"))
    assert (await worker.wait_outcome(run_id)).type == topics.WORKFLOW_COMPLETED
    assert worker.scheduled(run_id) == [("after", 1)]
    fired = await scheduler.pool.fetchrow(
        "SELECT scheduled_at, ended_at FROM tasks WHERE run_id = $1 AND task_id = 'wait'", run_id
    )
    assert fired["ended_at"] - fired["scheduled_at"] >= timedelta(milliseconds=500)


async def test_a_pending_delay_is_on_no_lane_and_never_counted_as_waiting_for_a_worker(
    scheduler: Scheduler,
) -> None:
    # The fake worker answers nothing: the no-op waits for a worker, the delay for a day.
    worker = scheduler.worker
    day = definition_pb2.DelaySpec(duration_ms=86_400_000)
    run_id = await worker.start_run(task("wait", type="delay", delay=day), task("alone"))
    await worker.wait_for(lambda: worker.scheduled(run_id))
    lanes = {
        row["task_id"]: row["lane"]
        for row in await scheduler.pool.fetch(
            "SELECT task_id, lane FROM tasks WHERE run_id = $1 AND status = 'scheduled'", run_id
        )
    }
    assert lanes["wait"] == NO_LANE
    assert lanes["alone"] != NO_LANE
    async with scheduler.pool.acquire() as conn:
        assert await store.waiting_by_lane(conn) == {lanes["alone"]: 1}
        assert [
            task.task_id for task in await store.scheduled_in_lanes(conn, [lanes["alone"]], 10)
        ] == ["alone"]


async def test_pending_delay_can_be_moved_or_cancelled(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    worker.behavior = lambda s: ("complete", {})
    day = definition_pb2.DelaySpec(duration_ms=86_400_000)
    moved = await worker.start_run(task("wait", type="delay", delay=day), task("after", "wait"))
    skipped = await worker.start_run(task("wait", type="delay", delay=day), task("after", "wait"))
    for run_id in (moved, skipped):
        await scheduler.eventually(
            functools.partial(
                scheduler.pool.fetchval, "SELECT 1 FROM timers WHERE run_id = $1", run_id
            )
        )
    url = f"/api/v1/runs/{moved}/tasks/wait/timer"
    soon = datetime.now(UTC) + timedelta(milliseconds=200)
    patched = await scheduler.client.patch(url, json={"due_at": soon.isoformat()}, headers=HEADERS)
    assert patched.status_code == 200, patched.text
    naive = await scheduler.client.patch(
        url, json={"due_at": "2030-01-01T00:00:00"}, headers=HEADERS
    )
    assert naive.status_code in (400, 422)
    assert naive.headers["content-type"] == "application/problem+json"
    beyond_utc = await scheduler.client.patch(
        url, json={"due_at": "9999-12-31T23:59:59-23:59"}, headers=HEADERS
    )
    assert beyond_utc.status_code == 422, beyond_utc.text  # was a 500 (OverflowError)
    other = identity_headers("tenant-b", subject="user-1", roles=["operator"])
    assert (
        await scheduler.client.delete(f"/api/v1/runs/{skipped}/tasks/wait/timer", headers=other)
    ).status_code == 404
    deleted = await scheduler.client.delete(
        f"/api/v1/runs/{skipped}/tasks/wait/timer", headers=HEADERS
    )
    assert deleted.status_code == 204
    for run_id in (moved, skipped):
        assert (await worker.wait_outcome(run_id)).type == topics.WORKFLOW_COMPLETED
    assert await scheduler.task_status(skipped, "wait") == "skipped"
    assert await scheduler.task_status(moved, "wait") == "succeeded"
    again = await scheduler.client.delete(f"/api/v1/runs/{moved}/tasks/wait/timer", headers=HEADERS)
    assert again.status_code == 404


async def test_cancel_stops_scheduling_and_tells_workers(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    run_id = await worker.start_run(task("a"), task("b", "a"))
    await worker.wait_for(lambda: worker.scheduled(run_id))
    await worker.publish(run_id, control(Action.ACTION_CANCEL))
    outcome = await worker.wait_outcome(run_id)
    assert outcome.type == topics.WORKFLOW_CANCELLED and outcome.payload.requested_by == "user-1"
    late = await worker.publish(
        run_id, task_pb2.TaskCompleted(task_id="a", attempt=1, output_json=b"{}")
    )
    await scheduler.consumed(late)
    assert worker.scheduled(run_id) == [("a", 1)]
    assert await scheduler.task_status(run_id, "b") == "cancelled"


async def test_pause_holds_new_scheduling_until_resume(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    run_id = await worker.start_run(task("a"), task("b", "a"))
    await worker.wait_for(lambda: worker.scheduled(run_id))
    await scheduler.consumed(await worker.publish(run_id, control(Action.ACTION_PAUSE)))
    assert await scheduler.run_status(run_id) == "paused"
    done = task_pb2.TaskCompleted(task_id="a", attempt=1, output_json=b"{}")
    await scheduler.consumed(await worker.publish(run_id, done))
    assert await scheduler.task_status(run_id, "a") == "succeeded"
    assert worker.scheduled(run_id) == [("a", 1)]
    await worker.publish(run_id, control(Action.ACTION_RESUME))
    await worker.wait_for(lambda: ("b", 1) in worker.scheduled(run_id))
    await worker.publish(run_id, task_pb2.TaskCompleted(task_id="b", attempt=1, output_json=b"{}"))
    assert (await worker.wait_outcome(run_id)).type == topics.WORKFLOW_COMPLETED


async def test_retry_control_reschedules_a_failed_run(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    retried: set[str] = set()
    worker.behavior = lambda s: ("complete", {}) if retried else ("fail", False)
    run_id = await worker.start_run(task("x"))
    assert (await worker.wait_outcome(run_id)).type == topics.WORKFLOW_FAILED
    retried.add(run_id)
    await worker.publish(run_id, control(Action.ACTION_RETRY))
    await worker.wait_for(
        lambda: worker.of(run_id, topics.WORKFLOW_COMPLETED), what="completed after retry"
    )
    assert worker.scheduled(run_id) == [("x", 1), ("x", 2)]


async def test_a_cancel_that_overtakes_the_start_still_cancels_the_run(
    scheduler: Scheduler,
) -> None:
    worker = scheduler.worker
    run_id = str(uuid.uuid4())
    early = await worker.publish(run_id, control(Action.ACTION_CANCEL))
    await scheduler.consumed(early)
    await worker.start_run(task("a"), task("b", "a"), run_id=run_id)
    outcome = await worker.wait_outcome(run_id)
    assert outcome.type == topics.WORKFLOW_CANCELLED
    assert await scheduler.run_status(run_id) == "cancelled"
