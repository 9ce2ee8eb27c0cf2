"""Events the service parked are listed per tenant (operators see what left a queue)."""

from typing import Any

import asyncpg
import httpx
import pytest

from interlock.common import parking, topics
from interlock.common.events import Event
from interlock.common.kafka import EventPublisher
from interlock.events.v1 import task_pb2, workflow_pb2
from interlock.workflow import WorkflowSettings

from .conftest import TENANT, eventually, gateway_headers
from .test_runs import etl, run_event, run_events, start  # noqa: F401 - etl is a fixture

pytestmark = pytest.mark.integration


def event(tenant: str) -> Event:
    payload = task_pb2.TaskCompleted(task_id="t", attempt=1, worker_id="w")
    return Event(type=topics.TASK_COMPLETED, payload=payload, tenant=tenant, run_id="r", source="x")


async def test_parked_events_are_listed_for_the_caller_s_tenant(
    client: httpx.AsyncClient, settings: WorkflowSettings
) -> None:
    ours, theirs = event(TENANT), event("other")
    assert settings.postgres_password is not None
    conn = await asyncpg.connect(
        settings.postgres_dsn, password=settings.postgres_password.get_secret_value()
    )
    try:
        await parking.park(
            conn,
            [
                parking.ParkedEvent.of(ours, origin="workflow.projection", reason="bad \x00 value"),
                parking.ParkedEvent.of(theirs, origin="workflow.projection", reason="x"),
            ],
        )
    finally:
        await conn.close()
    listed = await client.get("/api/v1/parked-events/workflow")
    assert listed.status_code == 200, listed.text
    (entry,) = listed.json()["parked_events"]
    assert (entry["event_id"], entry["event_type"], entry["run_id"]) == (
        ours.id,
        "task.completed",
        "r",
    )
    assert entry["reason"] == "bad \ufffd value"
    assert listed.json()["next_page_token"] is None
    first = await client.get("/api/v1/parked-events/workflow", params={"page_size": 1})
    token = first.json()["next_page_token"]
    after = await client.get("/api/v1/parked-events/workflow", params={"page_token": token})
    assert after.json() == {"parked_events": [], "next_page_token": None}
    forged = await client.get("/api/v1/parked-events/workflow", params={"page_token": "x"})
    assert forged.status_code == 400
    other = await client.get(
        "/api/v1/parked-events/workflow", headers=gateway_headers(tenant="other")
    )
    assert [e["event_id"] for e in other.json()["parked_events"]] == [theirs.id]


@pytest.mark.usefixtures("etl")
async def test_the_projection_parks_what_postgresql_refuses_and_the_run_goes_on(
    client: httpx.AsyncClient, settings: WorkflowSettings
) -> None:
    # A NUL in an output or a reason: PostgreSQL refuses it, and the projection retried
    # the batch for ever, freezing every run on the partition.
    run = await start(client)
    running, failed = run_events(run["run_id"])
    completed = run_event(
        run["run_id"],
        topics.WORKFLOW_COMPLETED,
        workflow_pb2.WorkflowCompleted(output_json=b'{"rows": "\\u0000"}'),
        7,  # after the failure: a resumed run's end, which the projection writes
    )
    waiting = run_event(
        run["run_id"],
        topics.WORKFLOW_WAITING,
        workflow_pb2.WorkflowWaiting(
            tasks=[workflow_pb2.WaitingTask(task_id="extract", attempt=1, reason="no\x00")]
        ),
        2,
    )
    async with EventPublisher(settings) as publisher:
        await publisher.publish([running, waiting, completed, failed])

    async def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(f"/api/v1/runs/{run['run_id']}")).json()
        return body if body["status"] == "failed" else None

    await eventually(finished)

    async def parked() -> list[dict[str, Any]]:
        listed = await client.get("/api/v1/parked-events/workflow")
        entries: list[dict[str, Any]] = listed.json()["parked_events"]
        return entries if len(entries) == 2 else []

    entries = await eventually(parked)
    assert {e["event_id"] for e in entries} == {waiting.id, completed.id}
    assert all(e["origin"] == "workflow.projection" for e in entries)
