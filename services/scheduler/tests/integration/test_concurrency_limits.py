"""Concurrency limits against real PostgreSQL and Kafka: runs wait, then start in order."""

from __future__ import annotations

import functools
import uuid

import pytest

from interlock.common import topics
from interlock.events.v1 import definition_pb2, task_pb2, workflow_pb2

from .conftest import (
    HEADERS,
    FakeWorker,
    Scheduler,
    make_settings,
    running_scheduler,
    running_worker,
    task,
)


async def _start(worker: FakeWorker, workflow: str, max_runs: int = 0) -> str:
    run_id = str(uuid.uuid4())
    started = workflow_pb2.WorkflowStarted(
        workflow_name=workflow,
        workflow_version=1,
        definition=definition_pb2.WorkflowDefinition(
            name=workflow, version=1, tasks=[task("a")], max_concurrent_runs=max_runs
        ),
        input_json=b"{}",
    )
    await worker.publish(run_id, started)
    return run_id


async def _reason(scheduler: Scheduler, run_id: str) -> str | None:
    reason: str | None = await scheduler.pool.fetchval(
        "SELECT reason FROM waiting_runs WHERE run_id = $1", run_id
    )
    return reason


async def test_runs_over_max_concurrent_runs_wait_and_start_in_order(
    scheduler: Scheduler,
) -> None:
    worker = scheduler.worker
    first = await _start(worker, "etl", max_runs=1)
    await worker.wait_for(lambda: worker.scheduled(first))
    # Requested in this order; their starts may reach the scheduler in another.
    second, third = [await _start(worker, "etl", max_runs=1) for _ in range(2)]
    other = await _start(worker, "report", max_runs=1)
    await worker.wait_for(lambda: worker.scheduled(other))
    await scheduler.eventually(lambda: _reason(scheduler, second))
    assert await scheduler.eventually(lambda: _reason(scheduler, third)) == (
        "waiting for a slot: 1 of 1 runs of 'etl' are running (max_concurrent_runs)"
    )
    assert worker.scheduled(second) == worker.scheduled(third) == []
    assert await scheduler.run_status(second) == "pending"
    for current, following in ((first, second), (second, third)):
        await worker.publish(current, task_pb2.TaskCompleted(task_id="a", attempt=1))
        await worker.wait_for(functools.partial(worker.scheduled, following), what="next run")
    await worker.publish(third, task_pb2.TaskCompleted(task_id="a", attempt=1))
    assert (await worker.wait_outcome(third)).type == topics.WORKFLOW_COMPLETED
    assert await scheduler.pool.fetchval("SELECT count(*) FROM active_runs") == 1  # other
    assert await scheduler.pool.fetchval("SELECT count(*) FROM waiting_runs") == 0


async def test_the_tenant_limit_holds_runs_of_every_workflow(
    request: pytest.FixtureRequest,
) -> None:
    settings = make_settings(request, tenant_max_concurrent_runs=2)
    async with running_worker(settings) as worker, running_scheduler(settings):
        runs = [await _start(worker, f"wf{i}") for i in range(3)]
        await worker.wait_for(lambda: worker.scheduled(runs[0]) and worker.scheduled(runs[1]))
        cancel = workflow_pb2.RunControl(
            action=workflow_pb2.RunControl.ACTION_CANCEL, reason="enough"
        )
        await worker.publish(runs[0], cancel)
        await worker.wait_for(lambda: worker.scheduled(runs[2]), what="the third run to start")
        assert (await worker.wait_outcome(runs[0])).type == topics.WORKFLOW_CANCELLED


async def _failed_for_good(worker: FakeWorker) -> str:
    """A run of the limited workflow 'etl' whose only task failed, not retryable."""
    failing = await _start(worker, "etl", max_runs=1)
    await worker.wait_for(lambda: worker.scheduled(failing))
    boom = workflow_pb2.TaskError(type="Boom", message="no", retryable=False)
    await worker.publish(failing, task_pb2.TaskFailed(task_id="a", attempt=1, error=boom))
    assert (await worker.wait_outcome(failing)).type == topics.WORKFLOW_FAILED
    return failing


async def _holding_the_slot(worker: FakeWorker) -> str:
    """A run of 'etl' that holds its one slot (its task scheduled, not finished)."""
    holder = await _start(worker, "etl", max_runs=1)
    await worker.wait_for(lambda: worker.scheduled(holder), what="the run holding the slot")
    return holder


async def _holds_the_slot_again(scheduler: Scheduler, run_id: str) -> None:
    """``run_id`` holds the one slot of 'etl' again: a new run of it waits."""
    worker = scheduler.worker
    assert (
        await scheduler.pool.fetchval("SELECT count(*) FROM active_runs WHERE run_id = $1", run_id)
        == 1
    )
    blocked = await _start(worker, "etl", max_runs=1)
    assert await scheduler.eventually(lambda: _reason(scheduler, blocked))
    assert worker.scheduled(blocked) == []


async def test_a_retried_run_takes_a_slot_again_and_waits_for_one(
    scheduler: Scheduler,
) -> None:
    worker = scheduler.worker
    failing = await _failed_for_good(worker)
    holder = await _holding_the_slot(worker)
    retry = workflow_pb2.RunControl(action=workflow_pb2.RunControl.ACTION_RETRY)
    await worker.publish(failing, retry)
    assert await scheduler.eventually(lambda: _reason(scheduler, failing)) == (
        "waiting for a slot: 1 of 1 runs of 'etl' are running (max_concurrent_runs)"
    )
    assert worker.scheduled(failing) == [("a", 1)]
    await worker.publish(holder, task_pb2.TaskCompleted(task_id="a", attempt=1))
    await worker.wait_for(lambda: len(worker.scheduled(failing)) == 2, what="the retry")
    await _holds_the_slot_again(scheduler, failing)


async def test_a_replayed_dead_letter_takes_a_slot_again_and_waits_for_one(
    scheduler: Scheduler,
) -> None:
    worker = scheduler.worker
    failing = await _failed_for_good(worker)
    (dead,) = await worker.wait_for(lambda: worker.of(failing, topics.TASK_DEAD_LETTERED))
    holder = await _holding_the_slot(worker)

    replay = await scheduler.client.post(
        f"/api/v1/dead-letters/{dead.dead_letter_id}/replay", headers=HEADERS
    )
    assert replay.status_code == 202, replay.text
    assert replay.json()["attempt"] == 2
    assert await scheduler.eventually(lambda: _reason(scheduler, failing)) == (
        "waiting for a slot: 1 of 1 runs of 'etl' are running (max_concurrent_runs)"
    )
    assert worker.scheduled(failing) == [("a", 1)]
    assert await scheduler.run_status(failing) == "failed"
    await worker.publish(holder, task_pb2.TaskCompleted(task_id="a", attempt=1))
    await worker.wait_for(lambda: len(worker.scheduled(failing)) == 2, what="the replay")
    assert worker.scheduled(failing) == [("a", 1), ("a", 2)]
    await _holds_the_slot_again(scheduler, failing)
