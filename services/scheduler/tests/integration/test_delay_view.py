"""A delay task's times reach the run view: scheduler and workflow service on real servers.

The scheduler runs delay tasks itself (no worker, no ``task.scheduled``); the
``task.completed`` it publishes when the timer fires carries when the delay was set,
so ``GET /api/v1/runs/{id}`` shows it like any other task.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from interlock.common.testing import TEST_IDENTITY, app_client, identity_headers
from interlock.workflow import WorkflowSettings
from interlock.workflow import create_app as create_workflow_app

from .conftest import make_settings, running_scheduler

pytestmark = pytest.mark.integration

DEFINITION = {
    "name": "wait-a-second",
    "tasks": [
        {"id": "wait", "type": "delay", "params": {"duration": "1s"}},
        {"id": "after", "type": "delay", "depends_on": ["wait"], "params": {"duration": "10ms"}},
    ],
}
HEADERS = identity_headers("acme", subject="alice", roles=["developer"])


async def finished_view(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    """The run's view once the run succeeded and every task shows its end (bounded)."""
    async with asyncio.timeout(60):
        while True:
            view: dict[str, Any] = (await client.get(f"/api/v1/runs/{run_id}")).json()
            tasks = view.get("tasks", [])
            if view["status"] == "succeeded" and all(t.get("finished_at") for t in tasks):
                return view
            await asyncio.sleep(0.1)


@pytest.fixture
async def workflow(
    request: pytest.FixtureRequest, postgres_database: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The workflow service, and the topic prefix the scheduler must share."""
    prefix = f"t{secrets.token_hex(4)}."
    settings = WorkflowSettings(
        postgres_dsn=postgres_database.dsn,
        postgres_password=postgres_database.password,
        kafka_bootstrap_servers=request.getfixturevalue("kafka_server").bootstrap_servers,
        kafka_topic_prefix=prefix,
        kafka_session_timeout_ms=3000,
        kafka_heartbeat_interval_ms=500,
        identity_jwks=TEST_IDENTITY.jwks,
    )
    async with app_client(create_workflow_app(settings)) as client:
        client.headers.update(HEADERS)
        yield client, prefix


async def test_a_delay_task_shows_when_it_was_set_and_fired(
    request: pytest.FixtureRequest, workflow: tuple[httpx.AsyncClient, str]
) -> None:
    client, prefix = workflow
    settings = make_settings(request, kafka_topic_prefix=prefix)
    async with running_scheduler(settings):
        assert (await client.post("/api/v1/workflows", json=DEFINITION)).status_code == 201
        started = await client.post(f"/api/v1/workflows/{DEFINITION['name']}/runs", json={})
        assert started.status_code == 201, started.text
        view = await finished_view(client, started.json()["run_id"])
        password = settings.postgres_password
        conn = await asyncpg.connect(
            settings.postgres_dsn, password=password.get_secret_value() if password else None
        )
        try:
            claimed = await conn.fetchval("SELECT count(*) FROM interlock_inbox")
        finally:
            await conn.close()
    # The scheduler consumed workflow.started, and skipped the completions it published.
    assert claimed == 1

    tasks = {task["id"]: task for task in view["tasks"]}
    wait = tasks["wait"]
    assert wait["status"] == "succeeded"
    scheduled_at = datetime.fromisoformat(wait["scheduled_at"])
    finished_at = datetime.fromisoformat(wait["finished_at"])
    assert datetime.fromisoformat(wait["started_at"]) == scheduled_at
    # The view keeps milliseconds; the output keeps the fire time as the scheduler had it.
    fired_at = datetime.fromisoformat(wait["output"]["fired_at"])
    assert abs(fired_at - finished_at) < timedelta(milliseconds=1)
    assert finished_at - scheduled_at >= timedelta(seconds=1)
    # The next delay was set when the first fired.
    assert datetime.fromisoformat(tasks["after"]["scheduled_at"]) == finished_at
