"""Run starts the broker may have lost are published again, with the same event id."""

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.kafka import EventConsumer
from interlock.common.testing import app_client
from interlock.workflow import WorkflowSettings, create_app, store

from .conftest import eventually, gateway_headers

pytestmark = pytest.mark.integration

DEFINITION = {"name": "w", "tasks": [{"id": "a", "type": "noop"}]}


async def test_pending_runs_are_republished_a_bounded_number_of_times_and_the_inbox_pruned(
    settings: WorkflowSettings,
) -> None:
    fast = settings.model_copy(
        update={"reconcile_interval_s": 0.1, "start_grace_s": 0.1, "max_start_republishes": 2}
    )
    received: list[Event[Any]] = []

    async def handle(events: Sequence[Event]) -> None:
        received.extend(events)

    consumer = EventConsumer(
        fast, group_id="test-reconciler", event_types=[topics.WORKFLOW_STARTED], handler=handle
    )
    await consumer.start()
    consuming = asyncio.create_task(consumer.run())
    try:
        async with app_client(create_app(fast)) as client:
            client.headers.update(gateway_headers())
            assert (await client.post("/api/v1/workflows", json=DEFINITION)).status_code == 201
            run = (await client.post("/api/v1/workflows/w/runs", json={})).json()
            assert fast.postgres_password is not None
            conn = await asyncpg.connect(
                fast.postgres_dsn, password=fast.postgres_password.get_secret_value()
            )
            try:
                await conn.execute(
                    "INSERT INTO interlock_inbox (consumer, event_id, received_at)"
                    " VALUES ('workflow.projection', 'ancient', now() - interval '8 days')"
                )

                async def pruned() -> bool:
                    return not await conn.fetchval("SELECT count(*) FROM interlock_inbox")

                await eventually(lambda: len(received) >= 3)
                await eventually(pruned)
                count = await conn.fetchval("SELECT start_republishes FROM runs")
                # The cap holds whatever the clock says: nothing is due any more.
                due = await store.claim_stalled_starts(conn, grace_s=0, max_republishes=2, limit=10)
            finally:
                await conn.close()
    finally:
        await consumer.stop()
        consuming.cancel()
    assert (count, due) == (2, [])
    assert len(received) == 3
    assert {e.run_id for e in received} == {run["run_id"]}
    assert len({e.id for e in received}) == 1  # the scheduler's inbox drops the copies
    assert all(e.payload.definition.name == "w" for e in received)
