"""Run statuses whose run events the broker lost are brought to the scheduler's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.kafka import EventPublisher
from interlock.common.testing import StandInTaskState, app_client
from interlock.events.v1 import workflow_pb2
from interlock.tasks.v1 import tasks_pb2
from interlock.workflow import WorkflowSettings, create_app

from .conftest import TENANT, eventually, gateway_headers

pytestmark = pytest.mark.integration

DEFINITION = {
    "name": "pair",
    "tasks": [{"id": "a", "type": "noop"}, {"id": "b", "type": "noop", "depends_on": ["a"]}],
}
SLOT = "waiting for a slot: the tenant has 3 of its 3 runs running"


def _stamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def event(run_id: str, event_type: topics.EventType, payload: Message, at: datetime) -> Event:
    return Event(
        type=event_type, payload=payload, tenant=TENANT, run_id=run_id, source="test", time=at
    )


async def test_run_statuses_missing_lost_events_converge_and_a_late_event_changes_nothing(
    settings: WorkflowSettings, stand_in: StandInTaskState
) -> None:
    fast = settings.model_copy(update={"view_reconcile_interval_s": 0.2, "view_quiet_after_s": 0.5})
    async with app_client(create_app(fast)) as client:
        client.headers.update(gateway_headers())
        assert (await client.post("/api/v1/workflows", json=DEFINITION)).status_code == 201
        lost, busy, waiting, whole = [
            (await client.post("/api/v1/workflows/pair/runs", json={})).json()["run_id"]
            for _ in range(4)
        ]
        # lost: its workflow.running and workflow.completed never arrived; busy: its
        # workflow.running never arrived; waiting: a retried run still queued for a slot,
        # which the scheduler holds failed (since before the retry) until admitted;
        # whole: nothing lost.
        ended_at = datetime.now(UTC) + timedelta(milliseconds=1)
        failed = workflow_pb2.WorkflowFailed(workflow_name="pair", failed_task_id="a")
        events = [
            event(waiting, topics.WORKFLOW_FAILED, failed, ended_at),
            event(whole, topics.WORKFLOW_RUNNING, workflow_pb2.WorkflowRunning(), ended_at),
            event(whole, topics.WORKFLOW_COMPLETED, workflow_pb2.WorkflowCompleted(), ended_at),
        ]
        succeeded = tasks_pb2.RUN_STATUS_SUCCEEDED
        stand_in.runs[lost] = (tasks_pb2.Run(status=succeeded, ended_at=_stamp(ended_at)), [])
        stand_in.runs[busy] = (tasks_pb2.Run(status=tasks_pb2.RUN_STATUS_RUNNING), [])
        stand_in.runs[waiting] = (
            tasks_pb2.Run(status=tasks_pb2.RUN_STATUS_FAILED, ended_at=_stamp(ended_at)),
            [],
        )
        await publish(fast, events)

        async def shows(run_id: str, status: str) -> bool:
            view = (await client.get(f"/api/v1/runs/{run_id}")).json()
            return bool(view["status"] == status)

        await eventually(lambda: shows(waiting, "failed"))
        assert (await client.post(f"/api/v1/runs/{waiting}/retry")).status_code == 200
        queued = workflow_pb2.WorkflowWaiting(reason=SLOT)
        # Its failure may reach the projection only after the retry (the reconciler
        # showed it first): it must not end the retried run again.
        overtaken = event(waiting, topics.WORKFLOW_FAILED, failed, ended_at)
        await publish(fast, [overtaken])
        await publish(fast, [event(waiting, topics.WORKFLOW_WAITING, queued, datetime.now(UTC))])
        await eventually(lambda: shows(lost, "succeeded"))
        await eventually(lambda: shows(busy, "running"))
        await eventually(lambda: shows(whole, "succeeded"))
        stand_in.asked.clear()
        late = event(lost, topics.WORKFLOW_FAILED, failed, ended_at + timedelta(seconds=1))
        await publish(fast, [late])
        await eventually(lambda: _consumed(fast, late.id))
        await eventually(lambda: waiting in stand_in.asked)  # a pass ran since
        lost_view = (await client.get(f"/api/v1/runs/{lost}")).json()
        waiting_view = (await client.get(f"/api/v1/runs/{waiting}")).json()
    assert (lost_view["status"], lost_view["finished_at"]) == (
        "succeeded",
        ended_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )
    assert (waiting_view["status"], waiting_view["status_reason"]) == ("running", SLOT)
    # A finished run costs no call.
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
