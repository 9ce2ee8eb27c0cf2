"""Run views whose events the broker lost are brought to the scheduler's state."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.kafka import EventPublisher
from interlock.common.testing import StandInTaskState, app_client, serving_task_state
from interlock.events.v1 import task_pb2, workflow_pb2
from interlock.tasks.v1 import tasks_pb2
from interlock.workflow import WorkflowSettings, create_app

from .conftest import TENANT, eventually, gateway_headers

pytestmark = pytest.mark.integration

CREDENTIAL = SecretStr("workflow-credential")
DEFINITION = {
    "name": "pair",
    "tasks": [{"id": "a", "type": "noop"}, {"id": "b", "type": "noop", "depends_on": ["a"]}],
}
ENDED_AT = datetime.now(UTC) - timedelta(minutes=1)


def _stamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


@pytest.fixture
async def scheduler() -> AsyncIterator[tuple[str, StandInTaskState]]:
    servicer = StandInTaskState(CREDENTIAL)  # type: ignore[abstract]  # what the reconciler asks
    async with serving_task_state(servicer) as target:
        yield target, servicer


def succeeded(task_id: str, output: str) -> tasks_pb2.Task:
    """A task the stand-in scheduler holds as succeeded."""
    return tasks_pb2.Task(
        task_id=task_id,
        status=tasks_pb2.TASK_STATUS_SUCCEEDED,
        attempt=1,
        scheduled_at=_stamp(ENDED_AT - timedelta(seconds=3)),
        started_at=_stamp(ENDED_AT - timedelta(seconds=2)),
        ended_at=_stamp(ENDED_AT - timedelta(seconds=1)),
        output_json=output.encode(),
    )


def event(run_id: str, event_type: topics.EventType, payload: Message, at: datetime) -> Event:
    return Event(
        type=event_type, payload=payload, tenant=TENANT, run_id=run_id, source="test", time=at
    )


def completed(run_id: str, task_id: str, output: str) -> Event:
    payload = task_pb2.TaskCompleted(
        task_id=task_id, attempt=1, worker_id="w1", output_json=output.encode()
    )
    return event(run_id, topics.TASK_COMPLETED, payload, ENDED_AT - timedelta(seconds=5))


def run_completed(run_id: str) -> Event:
    payload = workflow_pb2.WorkflowCompleted(workflow_name="pair", workflow_version=1)
    return event(run_id, topics.WORKFLOW_COMPLETED, payload, ENDED_AT)


async def test_views_missing_lost_events_converge_and_a_late_event_changes_nothing(
    settings: WorkflowSettings, scheduler: tuple[str, StandInTaskState]
) -> None:
    target, stand_in = scheduler
    fast = settings.model_copy(
        update={
            "scheduler_grpc_target": target,
            "service_credential": CREDENTIAL,
            "view_reconcile_interval_s": 0.2,
            "view_quiet_after_s": 0.5,
        }
    )
    async with app_client(create_app(fast)) as client:
        client.headers.update(gateway_headers())
        assert (await client.post("/api/v1/workflows", json=DEFINITION)).status_code == 201
        lost, busy, whole = [
            (await client.post("/api/v1/workflows/pair/runs", json={})).json()["run_id"]
            for _ in range(3)
        ]
        # lost: b's completion never arrived; busy: a's start never arrived; whole: nothing lost.
        late = completed(lost, "b", '"late"')
        scheduled = task_pb2.TaskScheduled(task_id="a", attempt=1, type="noop")
        events = [
            completed(lost, "a", '"a"'),
            run_completed(lost),
            event(busy, topics.TASK_SCHEDULED, scheduled, datetime.now(UTC)),
            completed(whole, "a", '"a"'),
            completed(whole, "b", '"b"'),
            run_completed(whole),
        ]
        ended = tasks_pb2.Run(status=tasks_pb2.RUN_STATUS_SUCCEEDED, ended_at=_stamp(ENDED_AT))
        stand_in.runs[lost] = (ended, [succeeded("a", '"a"'), succeeded("b", '"b"')])
        stand_in.runs[busy] = (
            tasks_pb2.Run(status=tasks_pb2.RUN_STATUS_RUNNING),
            [
                tasks_pb2.Task(
                    task_id="a",
                    status=tasks_pb2.TASK_STATUS_RUNNING,
                    attempt=1,
                    started_at=_stamp(datetime.now(UTC)),
                )
            ],
        )
        await publish(fast, events)

        async def tasks(run_id: str) -> dict[str, str]:
            view = (await client.get(f"/api/v1/runs/{run_id}")).json()
            return {task["id"]: task["status"] for task in view["tasks"]}

        async def shows(run_id: str, expected: dict[str, str]) -> bool:
            return await tasks(run_id) == expected

        await eventually(lambda: shows(lost, {"a": "succeeded", "b": "succeeded"}))
        await eventually(lambda: shows(busy, {"a": "running", "b": "pending"}))
        await eventually(lambda: shows(whole, {"a": "succeeded", "b": "succeeded"}))
        stand_in.asked.clear()
        await publish(fast, [late])
        await eventually(lambda: _consumed(fast, late.id))
        await eventually(lambda: busy in stand_in.asked)  # a pass ran since
        lost_view = (await client.get(f"/api/v1/runs/{lost}")).json()
        busy_view = (await client.get(f"/api/v1/runs/{busy}")).json()
    assert lost_view["status"] == "succeeded"
    assert [(t["status"], t.get("output")) for t in lost_view["tasks"]] == [
        ("succeeded", "a"),
        ("succeeded", "b"),
    ]
    assert busy_view["status"] == "running"
    assert busy_view["tasks"][0]["started_at"] is not None
    # A finished run whose view is whole costs no call, nor one once made whole.
    assert whole not in stand_in.asked
    assert lost not in stand_in.asked


async def publish(settings: WorkflowSettings, events: list[Event]) -> None:
    publisher = EventPublisher(settings, client_id="test")
    await publisher.start()
    try:
        await publisher.publish(events)
    finally:
        await publisher.stop()


async def _consumed(settings: WorkflowSettings, event_id: uuid.UUID | str) -> bool:
    assert settings.postgres_password is not None
    conn = await asyncpg.connect(
        settings.postgres_dsn, password=settings.postgres_password.get_secret_value()
    )
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM interlock_inbox WHERE event_id = $1", str(event_id)
        )
    finally:
        await conn.close()
    return bool(found)
