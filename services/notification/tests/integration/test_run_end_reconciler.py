"""Run ends the broker lost are learned from the scheduler and notified once.

A run's ``workflow.started`` arrives, its end event never does (the broker restarted
empty): the run-end reconciler asks the stand-in scheduler and writes the message the
end event would have; the real end event arriving late writes no second one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr

from interlock.common.kafka import EventPublisher
from interlock.common.testing import StandInTaskState, app_client, serving_task_state
from interlock.notification import NotificationSettings, create_app
from interlock.notification.domain.messages import rfc3339
from interlock.tasks.v1 import tasks_pb2

from .conftest import (
    TENANT,
    Receiver,
    eventually,
    gateway_headers,
    started,
    succeeded,
    unique_path,
)
from .test_deliveries import deliveries, finished_delivery, subscribe

pytestmark = pytest.mark.integration

CREDENTIAL = SecretStr("notification-credential")
ENDED_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)


def _stamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def held(
    status: tasks_pb2.RunStatus.ValueType, *tasks: tasks_pb2.Task
) -> tuple[tasks_pb2.Run, list[tasks_pb2.Task]]:
    """A run of ``lost-end`` v1 as the stand-in scheduler holds it."""
    run = tasks_pb2.Run(workflow_name="lost-end", workflow_version=1, status=status)
    if status != tasks_pb2.RUN_STATUS_RUNNING:
        run.ended_at.CopyFrom(_stamp(ENDED_AT))
    return run, list(tasks)


@pytest.fixture(scope="module")
async def scheduler() -> AsyncIterator[tuple[str, StandInTaskState]]:
    servicer = StandInTaskState(CREDENTIAL)  # type: ignore[abstract]  # what the reconciler asks
    async with serving_task_state(servicer) as target:
        yield target, servicer


@pytest.fixture(scope="module")
async def reconciling(
    settings: NotificationSettings, scheduler: tuple[str, StandInTaskState]
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its run-end reconciler asking the stand-in scheduler, passing fast."""
    target, _ = scheduler
    fast = settings.model_copy(
        update={
            "scheduler_grpc_target": target,
            "service_credential": CREDENTIAL,
            "notify_reconcile_interval_s": 0.2,
            "notify_reconcile_quiet_after_s": 0.5,
        }
    )
    async with app_client(create_app(fast)) as client:
        client.headers.update(gateway_headers())
        yield client


async def test_a_lost_run_end_is_notified_once_even_when_the_real_event_comes_late(
    reconciling: httpx.AsyncClient,
    publisher: EventPublisher,
    receiver: Receiver,
    scheduler: tuple[str, StandInTaskState],
) -> None:
    _, stand_in = scheduler
    path = unique_path()
    hook = await subscribe(reconciling, receiver.url(path), filter={"workflows": ["lost-end"]})
    other_path = unique_path()
    await subscribe(reconciling, receiver.url(other_path), filter={"workflows": ["elsewhere"]})
    lost, failing, running = (str(uuid.uuid4()) for _ in range(3))
    stand_in.runs[lost] = held(tasks_pb2.RUN_STATUS_SUCCEEDED)
    stand_in.runs[failing] = held(
        tasks_pb2.RUN_STATUS_FAILED,
        tasks_pb2.Task(
            task_id="load",
            status=tasks_pb2.TASK_STATUS_DEAD_LETTERED,
            attempt=3,
            error_type="TimeoutError",
            error_message="no answer in 30 s",
        ),
        tasks_pb2.Task(task_id="report", status=tasks_pb2.TASK_STATUS_SKIPPED, attempt=0),
    )
    stand_in.runs[running] = held(tasks_pb2.RUN_STATUS_RUNNING)
    # Only the starts reach the service: the ends were lost with the broker.
    began = ENDED_AT - timedelta(seconds=80)
    await publisher.publish(
        [started(TENANT, run, "lost-end", time_=began) for run in (lost, failing, running)]
    )

    def messages() -> dict[str, dict[str, object]]:
        bodies = [request.verify(hook["secret"]) for request in receiver.at(path)]
        return {body["data"]["run_id"]: body for body in bodies}

    await eventually(lambda: len(messages()) == 2)
    by_run = messages()
    assert set(by_run) == {lost, failing}
    assert by_run[lost]["type"] == "run.succeeded"
    data = by_run[lost]["data"]
    assert isinstance(data, dict)
    assert (data["workflow"], data["version"], data["status"]) == ("lost-end", 1, "succeeded")
    assert (data["started_at"], data["finished_at"]) == (rfc3339(began), rfc3339(ENDED_AT))
    assert data["duration_ms"] == 80_000  # the start's time came from workflow.started
    assert by_run[failing]["type"] == "run.failed"
    failed_data = by_run[failing]["data"]
    assert isinstance(failed_data, dict)
    assert failed_data["failed_tasks"] == [
        {
            "task_id": "load",
            "attempts": None,
            "error": {"type": "TimeoutError", "message": "no answer in 30 s"},
        }
    ]
    assert receiver.at(other_path) == []  # the filters applied

    # An ended run is not asked about again; a running one is, while it runs.
    asked_about_lost = stand_in.asked.count(lost)
    running_asks = stand_in.asked.count(running)
    await eventually(lambda: stand_in.asked.count(running) >= running_asks + 2)
    assert stand_in.asked.count(lost) == asked_about_lost == 1
    assert receiver.at(path) and all(
        request.verify(hook["secret"])["data"]["run_id"] != running for request in receiver.at(path)
    )

    # The real end event, late (say the broker only lagged): no second message.
    await publisher.publish([succeeded(TENANT, lost, "lost-end")])
    probe = await subscribe(
        reconciling, receiver.url(unique_path()), filter={"workflows": ["probe"]}
    )
    await publisher.publish([succeeded(TENANT, str(uuid.uuid4()), "probe")])
    await finished_delivery(reconciling, probe["id"])  # the late event was consumed by now
    assert len(await deliveries(reconciling, subscription=hook["id"], run=lost)) == 1
    assert (
        len([r for r in receiver.at(path) if r.verify(hook["secret"])["data"]["run_id"] == lost])
        == 1
    )
