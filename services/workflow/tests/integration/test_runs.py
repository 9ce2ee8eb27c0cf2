"""Runs over REST: starts (idempotent, validated, pinned), reads (tasks from the
scheduler), lists, control, events."""

import asyncio
import json
import socket
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.kafka import EventConsumer, EventPublisher
from interlock.common.testing import StandInTaskState, app_client
from interlock.events.v1 import workflow_pb2
from interlock.tasks.v1 import tasks_pb2
from interlock.workflow import WorkflowSettings, create_app
from interlock.workflow.handlers import RunProjection

from .conftest import TENANT, eventually, gateway_headers

pytestmark = pytest.mark.integration

DEFINITION = """
name: etl
input_schema: {type: object, required: [source], properties: {source: {type: string}}}
defaults: {retry: {max_attempts: 3}, timeout: 5m}
tasks:
  - id: extract
    type: http
    params: {url: "{{ input.source }}"}
  - id: wait
    type: delay
    params: {weekdays: [mon, fri], at: "09:00", timezone: Europe/Berlin}
    depends_on: [extract]
  - id: load
    type: noop
    params: {rows: "{{ tasks.extract.output.rows }}"}
    depends_on: [wait]
"""
RUNS = "/api/v1/workflows/etl/runs"


@pytest.fixture
async def etl(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/workflows", content=DEFINITION, headers={"content-type": "application/yaml"}
    )
    assert response.status_code == 201, response.text


async def start(client: httpx.AsyncClient, source: str = "s3://x", **kwargs: Any) -> dict[str, Any]:
    response = await client.post(RUNS, json={"input": {"source": source}}, **kwargs)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.usefixtures("etl")
async def test_a_started_run_is_pending_with_every_task_listed(client: httpx.AsyncClient) -> None:
    run = await start(client)
    assert run["status"] == "pending"
    assert (run["workflow"], run["version"], run["finished_at"]) == ("etl", 1, None)
    assert [t["id"] for t in run["tasks"]] == ["extract", "wait", "load"]
    assert run["tasks"][0] == {
        "id": "extract",
        "status": "pending",
        "attempts": 0,
        "scheduled_at": None,
        "started_at": None,
        "finished_at": None,
    }
    created = datetime.strptime(run["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(run["created_at"]) == len("2026-01-01T00:00:00.000Z")
    assert abs(created.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds() < 600
    fetched = (await client.get(f"/api/v1/runs/{run['run_id']}")).json()
    assert fetched == run


@pytest.mark.usefixtures("etl")
async def test_input_failing_the_input_schema_is_422_with_pointers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(RUNS, json={"input": {"source": 7}})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"pointer": "/input/source", "detail": "7 is not of type 'string'"}
    ]
    missing = await client.post(RUNS, json={"input": {}})
    assert [e["pointer"] for e in missing.json()["errors"]] == ["/input"]
    assert (await client.post(RUNS, content=b"[]")).status_code == 400
    huge = {"input": {"source": "x" * 300_000}}
    assert (await client.post(RUNS, json=huge)).status_code == 413
    assert (await client.post("/api/v1/workflows/ghost/runs", json={})).status_code == 404
    assert (await client.get("/api/v1/runs")).json()["runs"] == []


@pytest.mark.usefixtures("etl")
async def test_twenty_concurrent_starts_with_one_key_make_exactly_one_run(
    client: httpx.AsyncClient, settings: WorkflowSettings
) -> None:
    headers = {"idempotency-key": "nightly-2026-01-01"}
    responses = await asyncio.gather(
        *(client.post(RUNS, json={"input": {"source": "s"}}, headers=headers) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["run_id"] for r in responses}) == 1
    listed = (await client.get("/api/v1/runs")).json()["runs"]
    assert len(listed) == 1
    assert settings.postgres_password is not None
    conn = await asyncpg.connect(
        settings.postgres_dsn, password=settings.postgres_password.get_secret_value()
    )
    try:
        assert await conn.fetchval("SELECT count(*) FROM runs") == 1
        # One workflow.started for the one run (the relay may have published it already).
        published = await conn.fetchval("SELECT count(*) FROM interlock_outbox")
        assert published <= 1
    finally:
        await conn.close()


@pytest.mark.usefixtures("etl")
async def test_a_key_reused_with_another_body_is_409(client: httpx.AsyncClient) -> None:
    headers = {"idempotency-key": "k-1"}
    first = await start(client, "a", headers=headers)
    same = await client.post(RUNS, json={"input": {"source": "a"}}, headers=headers)
    assert (same.status_code, same.json()["run_id"]) == (200, first["run_id"])
    other = await client.post(RUNS, json={"input": {"source": "b"}}, headers=headers)
    assert other.status_code == 409
    assert other.json()["type"] == "urn:interlock:problem:idempotency-conflict"
    no_key = await start(client, "a")
    assert no_key["run_id"] != first["run_id"]


@pytest.mark.usefixtures("etl")
@pytest.mark.parametrize(("key", "detail"), [("", "at least 1"), ("k" * 256, "at most 255")])
async def test_an_empty_or_too_long_key_is_422_naming_the_header(
    client: httpx.AsyncClient, key: str, detail: str
) -> None:
    body = {"input": {"source": "a"}}
    refused = await client.post(RUNS, json=body, headers={"idempotency-key": key})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    [error] = refused.json()["errors"]
    assert error["pointer"] == "/header/Idempotency-Key"
    assert detail in error["detail"]
    longest = await client.post(RUNS, json=body, headers={"idempotency-key": "k" * 255})
    assert longest.status_code == 201


@pytest.mark.usefixtures("etl")
async def test_pages_stay_stable_while_runs_are_added(client: httpx.AsyncClient) -> None:
    before = [(await start(client, f"s{i}"))["run_id"] for i in range(12)]
    seen: list[str] = []
    token = None
    added: list[str] = []
    while True:
        params: dict[str, Any] = {"page_size": 5, "workflow": "etl"}
        if token:
            params["page_token"] = token
        page = (await client.get("/api/v1/runs", params=params)).json()
        seen += [run["run_id"] for run in page["runs"]]
        token = page["next_page_token"]
        if token is None:
            break
        added += [(await start(client, "new"))["run_id"] for _ in range(3)]
    assert seen == list(reversed(before))  # newest first, no repeats, no gaps
    assert not set(added) & set(seen)
    everything = (await client.get("/api/v1/runs", params={"page_size": 100})).json()["runs"]
    assert len(everything) == len(before) + len(added)
    filtered = await client.get("/api/v1/runs", params={"page_token": token or "x"})
    assert filtered.status_code == 400
    mismatch_token = (
        await client.get("/api/v1/runs", params={"page_size": 1, "status": "pending"})
    ).json()["next_page_token"]
    mismatch = await client.get(
        "/api/v1/runs", params={"page_token": mismatch_token, "status": "failed"}
    )
    assert mismatch.status_code == 400
    window = await client.get(
        "/api/v1/runs",
        params={"created_after": "2000-01-01T00:00:00Z", "created_before": "2001-01-01T00:00:00Z"},
    )
    assert window.json()["runs"] == []
    assert (await client.get("/api/v1/runs", params={"status": "nope"})).status_code == 422


async def collect(
    settings: WorkflowSettings, event_types: Sequence[topics.EventType]
) -> tuple[EventConsumer, list[Event[Any]], asyncio.Task[None]]:
    received: list[Event[Any]] = []

    async def handle(events: Sequence[Event]) -> None:
        received.extend(events)

    consumer = EventConsumer(
        settings,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        event_types=event_types,
        handler=handle,
    )
    await consumer.start()
    return consumer, received, asyncio.create_task(consumer.run())


@pytest.mark.usefixtures("etl")
async def test_started_and_control_events_reach_kafka_and_decode(
    client: httpx.AsyncClient, settings: WorkflowSettings
) -> None:
    consumer, received, task = await collect(
        settings, [topics.WORKFLOW_STARTED, topics.WORKFLOW_CONTROL]
    )
    try:
        run = await start(client, "s3://in", headers={"idempotency-key": "k"})
        run_url = f"/api/v1/runs/{run['run_id']}"
        assert (await client.post(f"{run_url}/pause")).json()["status"] == "paused"
        assert (await client.post(f"{run_url}/pause")).status_code == 409
        assert (await client.post(f"{run_url}/resume")).json()["status"] == "running"
        cancelled = await client.post(f"{run_url}/cancel", json={"reason": "not needed"})
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["finished_at"] is not None
        again = await client.post(f"{run_url}/cancel")
        assert again.status_code == 409
        assert again.json()["type"] == "urn:interlock:problem:transition-not-allowed"
        assert (await client.post(f"{run_url}/retry")).status_code == 409
        assert (await client.post(f"{run_url}/explode")).status_code == 422
        await eventually(lambda: len(received) >= 4)
    finally:
        await consumer.stop()
        task.cancel()
    mine = [e for e in received if e.run_id == run["run_id"]]
    # Topics are ordered apart: one run's controls keep their order, not the start's.
    (started,) = [e for e in mine if e.type is topics.WORKFLOW_STARTED]
    assert (started.tenant, started.source) == (TENANT, "workflow")
    payload = started.payload
    assert isinstance(payload, workflow_pb2.WorkflowStarted)
    assert (payload.workflow_name, payload.workflow_version) == ("etl", 1)
    assert json.loads(payload.input_json) == {"source": "s3://in"}
    assert payload.idempotency_key == "k"
    definition = payload.definition
    assert (definition.name, definition.version) == ("etl", 1)
    extract, wait, load = definition.tasks
    assert (extract.retry.max_attempts, extract.timeout_ms) == (3, 300_000)
    assert list(wait.delay.weekly.weekdays) == [1, 5]
    assert wait.delay.weekly.timezone == "Europe/Berlin"
    assert list(load.depends_on) == ["wait"]
    controls = [e.payload for e in mine if e.type is topics.WORKFLOW_CONTROL]
    assert [c.action for c in controls] == [
        workflow_pb2.RunControl.ACTION_PAUSE,
        workflow_pb2.RunControl.ACTION_RESUME,
        workflow_pb2.RunControl.ACTION_CANCEL,
    ]
    assert (controls[2].reason, controls[2].requested_by) == ("not needed", "alice")


def _stamp(seconds: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at(seconds))
    return stamp


def at(seconds: int) -> datetime:
    return datetime(2026, 1, 1, 0, 0, seconds, tzinfo=UTC)


def run_event(
    run_id: str, event_type: topics.EventType, payload: Any, second: int, tenant: str = TENANT
) -> Event:
    return Event(
        type=event_type,
        payload=payload,
        tenant=tenant,
        run_id=run_id,
        source="scheduler",
        time=at(second),
    )


def run_events(run_id: str, tenant: str = TENANT) -> list[Event]:
    """The scheduler's run-level events of an etl run that failed."""
    return [
        run_event(run_id, topics.WORKFLOW_RUNNING, workflow_pb2.WorkflowRunning(), 1, tenant),
        run_event(
            run_id,
            topics.WORKFLOW_FAILED,
            workflow_pb2.WorkflowFailed(workflow_name="etl", failed_task_id="wait"),
            6,
            tenant,
        ),
    ]


def failed_etl_tasks() -> list[tasks_pb2.Task]:
    """The tasks of a failed etl run as the scheduler holds them."""
    return [
        tasks_pb2.Task(
            task_id="extract",
            status=tasks_pb2.TASK_STATUS_SUCCEEDED,
            attempt=1,
            scheduled_at=_stamp(1),
            started_at=_stamp(2),
            ended_at=_stamp(3),
            output_json=b'{"rows": 3}',
        ),
        tasks_pb2.Task(
            task_id="wait",
            status=tasks_pb2.TASK_STATUS_DEAD_LETTERED,
            attempt=2,
            scheduled_at=_stamp(3),
            started_at=_stamp(4),
            ended_at=_stamp(5),
            error_type="Boom",
            error_message="no",
            error_retryable=True,
            error_traceback="Traceback: Boom",
        ),
        tasks_pb2.Task(
            task_id="load",
            status=tasks_pb2.TASK_STATUS_SKIPPED,
            ended_at=_stamp(5),
            error_type="RunFailed",
            error_message="the run failed",
            reason="the run failed",
        ),
    ]


@pytest.mark.usefixtures("etl")
async def test_a_read_shows_each_task_as_the_scheduler_holds_it(
    client: httpx.AsyncClient, settings: WorkflowSettings, stand_in: StandInTaskState
) -> None:
    run = await start(client)
    run_url = f"/api/v1/runs/{run['run_id']}"
    stand_in.runs[run["run_id"]] = (tasks_pb2.Run(), failed_etl_tasks())
    async with EventPublisher(settings) as publisher:
        await publisher.publish(run_events(run["run_id"]))

    async def failed() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(run_url)).json()
        return body if body["status"] == "failed" else None

    body = await eventually(failed)
    assert body["finished_at"] == "2026-01-01T00:00:06.000Z"
    assert body["tasks"] == [
        {
            "id": "extract",
            "status": "succeeded",
            "attempts": 1,
            "scheduled_at": "2026-01-01T00:00:01.000Z",
            "started_at": "2026-01-01T00:00:02.000Z",
            "finished_at": "2026-01-01T00:00:03.000Z",
            "output": {"rows": 3},
        },
        {
            "id": "wait",
            "status": "dead_lettered",
            "attempts": 2,
            "scheduled_at": "2026-01-01T00:00:03.000Z",
            "started_at": "2026-01-01T00:00:04.000Z",
            "finished_at": "2026-01-01T00:00:05.000Z",
            "error": {
                "type": "Boom",
                "message": "no",
                "retryable": True,
                "traceback": "Traceback: Boom",
            },
        },
        {
            "id": "load",
            "status": "skipped",
            "attempts": 0,
            "scheduled_at": None,
            "started_at": None,
            "finished_at": "2026-01-01T00:00:05.000Z",
            "reason": "the run failed",
        },
    ]
    retried = await client.post(f"{run_url}/retry")
    assert (retried.status_code, retried.json()["status"]) == (200, "running")
    assert retried.json()["finished_at"] is None
    assert [t["status"] for t in retried.json()["tasks"]] == [
        "succeeded",
        "dead_lettered",
        "skipped",
    ]
    listed = await client.get("/api/v1/runs", params={"status": "running"})
    assert [r["run_id"] for r in listed.json()["runs"]] == [run["run_id"]]


@pytest.mark.usefixtures("etl")
async def test_a_scheduled_task_shows_why_it_waits_while_that_attempt_waits(
    client: httpx.AsyncClient, settings: WorkflowSettings, stand_in: StandInTaskState
) -> None:
    run = await start(client)
    reason = "waiting for a worker serving queue 'gpu': none took or ran a task of it"
    waiting = workflow_pb2.WorkflowWaiting(
        tasks=[workflow_pb2.WaitingTask(task_id="extract", attempt=1, reason=reason)]
    )
    async with EventPublisher(settings) as publisher:
        await publisher.publish([run_event(run["run_id"], topics.WORKFLOW_WAITING, waiting, 1)])
    await eventually(lambda: _consumed(settings, run["run_id"]))

    def extract(status: tasks_pb2.TaskStatus.ValueType, attempt: int) -> tasks_pb2.Task:
        return tasks_pb2.Task(task_id="extract", status=status, attempt=attempt)

    async def shown() -> dict[str, Any]:
        tasks: list[dict[str, Any]] = (await client.get(f"/api/v1/runs/{run['run_id']}")).json()[
            "tasks"
        ]
        return tasks[0]

    stand_in.runs[run["run_id"]] = (tasks_pb2.Run(), [extract(tasks_pb2.TASK_STATUS_SCHEDULED, 1)])
    assert (await shown())["reason"] == reason
    stand_in.runs[run["run_id"]] = (tasks_pb2.Run(), [extract(tasks_pb2.TASK_STATUS_RUNNING, 1)])
    assert "reason" not in await shown()
    stand_in.runs[run["run_id"]] = (tasks_pb2.Run(), [extract(tasks_pb2.TASK_STATUS_SCHEDULED, 2)])
    assert "reason" not in await shown()


async def _consumed(settings: WorkflowSettings, run_id: str) -> bool:
    assert settings.postgres_password is not None
    conn = await asyncpg.connect(
        settings.postgres_dsn, password=settings.postgres_password.get_secret_value()
    )
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM task_waits WHERE run_id = $1", uuid.UUID(run_id)
        )
    finally:
        await conn.close()
    return bool(found)


@pytest.mark.usefixtures("etl")
async def test_the_projection_applies_each_event_once_and_ignores_other_tenants(
    client: httpx.AsyncClient, settings: WorkflowSettings
) -> None:
    run = await start(client)
    other = await start(client)
    assert settings.postgres_password is not None
    pool = await asyncpg.create_pool(
        settings.postgres_dsn,
        password=settings.postgres_password.get_secret_value(),
        min_size=1,
        max_size=2,
    )
    try:
        projection = RunProjection(lambda: pool)
        events = run_events(run["run_id"])[:1]
        await projection.handle(events)
        first = (await client.get(f"/api/v1/runs/{run['run_id']}")).json()
        await projection.handle(list(reversed(events)) + events)
        assert (await client.get(f"/api/v1/runs/{run['run_id']}")).json() == first
        assert first["status"] == "running"
        foreign = run_events(other["run_id"], tenant="globex")
        await projection.handle(foreign)
        untouched = (await client.get(f"/api/v1/runs/{other['run_id']}")).json()
        assert untouched["status"] == "pending"
        assert {t["status"] for t in untouched["tasks"]} == {"pending"}
        await projection.handle(run_events(str(uuid.uuid4())))  # unknown run: ignored
    finally:
        await pool.close()


@pytest.mark.usefixtures("etl")
async def test_a_read_is_503_while_the_scheduler_does_not_answer_and_a_control_still_works(
    client: httpx.AsyncClient, settings: WorkflowSettings
) -> None:
    run = await start(client)
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    unanswered = settings.model_copy(update={"scheduler_grpc_target": closed})
    async with app_client(create_app(unanswered)) as other:
        other.headers.update(gateway_headers())
        read = await other.get(f"/api/v1/runs/{run['run_id']}")
        assert read.status_code == 503, read.text
        assert read.headers["content-type"] == "application/problem+json"
        assert read.json()["type"] == "urn:interlock:problem:tasks-unavailable"
        cancelled = await other.post(f"/api/v1/runs/{run['run_id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert (cancelled.json()["tasks"], cancelled.json()["tasks_unavailable"]) == ([], True)
        listed = (await other.get("/api/v1/runs")).json()["runs"]
        assert [r["status"] for r in listed] == ["cancelled"]
    answered = (await client.get(f"/api/v1/runs/{run['run_id']}")).json()
    assert answered["status"] == "cancelled"
    assert "tasks_unavailable" not in answered
