"""Events the service parked are listed per tenant (operators see what left a queue)."""

import asyncpg
import httpx
import pytest

from interlock.common import parking, topics
from interlock.common.events import Event
from interlock.events.v1 import task_pb2
from interlock.workflow import WorkflowSettings

from .conftest import TENANT, gateway_headers

pytestmark = pytest.mark.integration


def event(tenant: str) -> Event:
    payload = task_pb2.TaskCompleted(task_id="t", attempt=1, worker_id="w")
    return Event(type=topics.TASK_COMPLETED, payload=payload, tenant=tenant, run_id="r", source="x")


async def test_parked_events_are_listed_for_the_caller_s_tenant(
    client: httpx.AsyncClient, settings: WorkflowSettings
) -> None:
    ours, theirs = event(TENANT), event("other")
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
    after = await client.get("/api/v1/parked-events/workflow", params={"after": entry["id"]})
    assert after.json()["parked_events"] == []
    other = await client.get(
        "/api/v1/parked-events/workflow", headers=gateway_headers(tenant="other")
    )
    assert [e["event_id"] for e in other.json()["parked_events"]] == [theirs.id]
