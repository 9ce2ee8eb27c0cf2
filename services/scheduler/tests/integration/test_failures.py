"""Duplicated and reordered events, a scheduler restart mid-run."""

from __future__ import annotations

import pytest

from interlock.common import topics
from interlock.events.v1 import task_pb2

from .conftest import Scheduler, make_settings, running_scheduler, running_worker, task

pytestmark = pytest.mark.integration


async def test_duplicate_and_reordered_events_change_nothing(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    run_id = await worker.start_run(task("a"), task("b", "a"))
    await worker.wait_for(lambda: worker.scheduled(run_id))
    completed = worker.event(
        run_id, task_pb2.TaskCompleted(task_id="a", attempt=1, output_json=b'{"n": 1}')
    )
    started = worker.event(run_id, task_pb2.TaskStarted(task_id="a", attempt=1, worker_id="w"))
    # Completed before started (they travel on different topics), the same record twice,
    # and a result for an attempt that never existed.
    stale = worker.event(run_id, task_pb2.TaskCompleted(task_id="a", attempt=7))
    await worker.publisher.publish([completed, completed, started, stale])
    await scheduler.consumed([completed, started, stale])
    await worker.publisher.publish([completed])
    await worker.wait_for(lambda: ("b", 1) in worker.scheduled(run_id))
    assert worker.scheduled(run_id) == [("a", 1), ("b", 1)]
    assert await scheduler.task_status(run_id, "a") == "succeeded"
    transitions = await scheduler.pool.fetch(
        "SELECT to_status FROM transitions WHERE run_id = $1 AND task_id = 'a' ORDER BY id", run_id
    )
    assert [row["to_status"] for row in transitions] == ["scheduled", "running", "succeeded"]
    duplicate_start = await worker.publish(run_id, worker.answer_started("b", 1))
    await scheduler.consumed(duplicate_start)
    await worker.publish(run_id, worker.answer_started("b", 1))
    await worker.publish(run_id, task_pb2.TaskCompleted(task_id="b", attempt=1))
    assert (await worker.wait_outcome(run_id)).type == topics.WORKFLOW_COMPLETED
    assert len(worker.of(run_id, topics.WORKFLOW_COMPLETED)) == 1


async def test_scheduler_restart_mid_run_loses_nothing(request: pytest.FixtureRequest) -> None:
    settings = make_settings(request)
    async with running_worker(settings) as worker:
        async with running_scheduler(settings):
            run_id = await worker.start_run(task("a"), task("b", "a"), task("c", "b"))
            await worker.wait_for(lambda: worker.scheduled(run_id))
        # The scheduler is down: the worker's answer waits in Kafka.
        await worker.publish(run_id, task_pb2.TaskCompleted(task_id="a", attempt=1))
        worker.behavior = lambda s: ("complete", {})
        async with running_scheduler(settings):
            outcome = await worker.wait_outcome(run_id)
    assert outcome.type == topics.WORKFLOW_COMPLETED
    assert worker.scheduled(run_id) == [("a", 1), ("b", 1), ("c", 1)]


async def test_two_instances_share_the_work_and_one_stopping_loses_nothing(
    request: pytest.FixtureRequest,
) -> None:
    settings = make_settings(request)
    runs: list[str] = []
    async with running_worker(settings) as worker, running_scheduler(settings):
        worker.behavior = lambda s: ("complete", {"task": s.task_id})
        async with running_scheduler(settings.model_copy(update={"grpc_port": 0})):
            for _ in range(10):
                runs.append(
                    await worker.start_run(
                        task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c")
                    )
                )
            await worker.wait_for(lambda: len(worker.of(runs[0], topics.TASK_SCHEDULED)) >= 2)
        # One instance is gone mid-load; the other takes over its partitions.
        for _ in range(10):
            runs.append(await worker.start_run(task("a"), task("b", "a")))
        outcomes = [await worker.wait_outcome(run_id, timeout_s=60) for run_id in runs]
    assert {outcome.type for outcome in outcomes} == {topics.WORKFLOW_COMPLETED}
    for run_id in runs:
        scheduled = worker.scheduled(run_id)
        assert {attempt for _, attempt in scheduled} == {1}, scheduled
    assert len(worker.of(runs[0], topics.WORKFLOW_COMPLETED)) == 1
