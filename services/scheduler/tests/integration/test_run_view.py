"""The workflow service's run view reads its tasks from this scheduler: both on real servers.

``GET /api/v1/runs/{id}`` takes a run's status from the scheduler's run events
(``workflow.running`` and the outcomes) and its tasks from the scheduler's
``ListRunTasks`` (the workflow service presents its service credential): each task as
the scheduler holds it, a failed one's error, a skipped one's reason, a delay's times.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from interlock.common.testing import TEST_IDENTITY, app_client, identity_headers
from interlock.scheduler import SchedulerSettings
from interlock.workflow import WorkflowSettings
from interlock.workflow import create_app as create_workflow_app

from .conftest import TENANT, FakeWorker, make_settings, running_scheduler, running_worker

pytestmark = pytest.mark.integration

CREDENTIAL = SecretStr("workflow-service-credential")
DELAYS = {
    "name": "wait-a-second",
    "tasks": [
        {"id": "wait", "type": "delay", "params": {"duration": "1s"}},
        {"id": "after", "type": "delay", "depends_on": ["wait"], "params": {"duration": "10ms"}},
    ],
}
FAILING = {
    "name": "load-fails",
    "tasks": [
        {"id": "extract", "type": "noop"},
        {"id": "load", "type": "noop", "depends_on": ["extract"]},
        {"id": "report", "type": "noop", "depends_on": ["load"]},
        {"id": "cleanup", "type": "noop", "depends_on": ["load"], "trigger_rule": "all_done"},
    ],
}
HEADERS = identity_headers(TENANT, subject="alice", roles=["developer"])


@dataclass
class Platform:
    client: httpx.AsyncClient
    """The workflow service, as the gateway calls it for a developer of ``TENANT``."""
    scheduler: SchedulerSettings
    worker: FakeWorker


@pytest.fixture
async def platform(
    request: pytest.FixtureRequest, postgres_database: Any
) -> AsyncIterator[Platform]:
    """A scheduler accepting the workflow service's credential, the workflow service asking
    it for tasks, and a scripted worker; one topic prefix for the three."""
    settings = make_settings(request, service_credentials=CREDENTIAL)
    async with running_scheduler(settings) as scheduler, running_worker(settings) as worker:
        workflow = WorkflowSettings(
            postgres_dsn=postgres_database.dsn,
            postgres_password=postgres_database.password,
            kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
            kafka_topic_prefix=settings.kafka_topic_prefix,
            kafka_session_timeout_ms=3000,
            kafka_heartbeat_interval_ms=500,
            identity_jwks=TEST_IDENTITY.jwks,
            scheduler_grpc_target=f"127.0.0.1:{scheduler.headers['x-test-grpc-port']}",
            service_credential=CREDENTIAL,
        )
        async with app_client(create_workflow_app(workflow)) as client:
            client.headers.update(HEADERS)
            yield Platform(client, settings, worker)


async def start(client: httpx.AsyncClient, definition: dict[str, Any]) -> str:
    assert (await client.post("/api/v1/workflows", json=definition)).status_code == 201
    started = await client.post(f"/api/v1/workflows/{definition['name']}/runs", json={})
    assert started.status_code == 201, started.text
    run_id: str = started.json()["run_id"]
    return run_id


async def settled_view(client: httpx.AsyncClient, run_id: str, status: str) -> dict[str, Any]:
    """The run's view once it has ``status`` and every task shows its end (bounded)."""
    async with asyncio.timeout(60):
        while True:
            view: dict[str, Any] = (await client.get(f"/api/v1/runs/{run_id}")).json()
            tasks = view.get("tasks", [])
            if view["status"] == status and all(t.get("finished_at") for t in tasks):
                return view
            await asyncio.sleep(0.1)


async def test_each_task_shows_as_the_scheduler_holds_it(platform: Platform) -> None:
    platform.worker.behavior = lambda scheduled: (
        ("fail", False) if scheduled.task_id == "load" else ("complete", {"rows": 3})
    )
    run_id = await start(platform.client, FAILING)
    view = await settled_view(platform.client, run_id, "failed")
    tasks = {task["id"]: task for task in view["tasks"]}
    assert [task["id"] for task in view["tasks"]] == ["extract", "load", "report", "cleanup"]
    assert (tasks["extract"]["status"], tasks["extract"]["output"]) == ("succeeded", {"rows": 3})
    assert tasks["load"]["status"] == "dead_lettered"
    assert tasks["load"]["attempts"] == 1
    assert tasks["load"]["error"] == {
        "type": "RuntimeError",
        "message": "boom",
        "retryable": False,
        "traceback": 'File "x.py", line 1\nRuntimeError: boom',
    }
    assert tasks["load"]["started_at"] is not None
    assert (tasks["report"]["status"], tasks["report"]["reason"]) == ("skipped", "the run failed")
    assert "error" not in tasks["report"]
    assert tasks["cleanup"]["status"] == "succeeded"
    listed = await platform.client.get("/api/v1/runs", params={"workflow": "load-fails"})
    assert [(r["run_id"], r["status"]) for r in listed.json()["runs"]] == [(run_id, "failed")]


async def test_a_delay_task_shows_when_it_was_set_and_fired(platform: Platform) -> None:
    run_id = await start(platform.client, DELAYS)
    view = await settled_view(platform.client, run_id, "succeeded")
    password = platform.scheduler.postgres_password
    conn = await asyncpg.connect(
        platform.scheduler.postgres_dsn, password=password.get_secret_value() if password else None
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
