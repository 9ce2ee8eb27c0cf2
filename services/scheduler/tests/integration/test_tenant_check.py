"""An event whose tenant is not its run's is rejected (parked with its reason), never applied."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from interlock.common.events import Event
from interlock.events.v1 import task_pb2, workflow_pb2

from .conftest import TENANT, Scheduler, task

pytestmark = pytest.mark.integration

OTHER_TENANT = "tenant-b"


def forged(event: Event) -> Event:
    """``event`` claiming another tenant."""
    return dataclasses.replace(event, tenant=OTHER_TENANT)


async def rejected(scheduler: Scheduler, event: Event) -> Any:
    return await scheduler.pool.fetchrow(
        "SELECT event_type, event_tenant, run_tenant, run_id, reason FROM rejected_events"
        " WHERE event_id = $1",
        event.id,
    )


async def test_a_completion_claiming_another_tenant_is_rejected(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    run_id = await worker.start_run(task("a"), task("b", "a"))
    await worker.wait_for(lambda: worker.scheduled(run_id), what="a scheduled")
    completion = forged(
        worker.event(
            run_id, task_pb2.TaskCompleted(task_id="a", attempt=1, output_json=b'{"x": 1}')
        )
    )
    await worker.publisher.publish([completion])
    await scheduler.consumed([completion])

    assert await scheduler.task_status(run_id, "a") == "scheduled"
    row = await rejected(scheduler, completion)
    assert row is not None
    assert (row["event_type"], row["event_tenant"], row["run_tenant"], row["run_id"]) == (
        "task.completed",
        OTHER_TENANT,
        TENANT,
        run_id,
    )
    assert "tenant" in row["reason"]
    # The run's own tenant still completes it.
    worker.behavior = lambda s: ("complete", {})
    await worker.publish(run_id, task_pb2.TaskCompleted(task_id="a", attempt=1, output_json=b"{}"))
    assert (await worker.wait_outcome(run_id)).type.name == "workflow.completed"


async def test_a_control_claiming_another_tenant_is_rejected(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    run_id = await worker.start_run(task("a"))
    await worker.wait_for(lambda: worker.scheduled(run_id), what="a scheduled")
    cancel = forged(
        worker.event(
            run_id,
            workflow_pb2.RunControl(action=workflow_pb2.RunControl.ACTION_CANCEL, reason="x"),
        )
    )
    await worker.publisher.publish([cancel])
    await scheduler.consumed([cancel])

    assert await scheduler.run_status(run_id) == "running"
    assert await rejected(scheduler, cancel) is not None


async def test_a_parked_control_of_another_tenant_is_rejected_when_its_run_starts(
    scheduler: Scheduler,
) -> None:
    worker = scheduler.worker
    run_id = "early-control-run"
    cancel = forged(
        worker.event(
            run_id,
            workflow_pb2.RunControl(action=workflow_pb2.RunControl.ACTION_CANCEL, reason="x"),
        )
    )
    await worker.publisher.publish([cancel])
    await scheduler.consumed([cancel])
    worker.behavior = lambda s: ("complete", {})
    await worker.start_run(task("a"), run_id=run_id)

    assert (await worker.wait_outcome(run_id)).type.name == "workflow.completed"
    assert await rejected(scheduler, cancel) is not None
