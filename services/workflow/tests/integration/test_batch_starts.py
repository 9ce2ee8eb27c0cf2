"""Batch starts: many runs in one request, each judged and answered on its own."""

from typing import Any

import httpx
import pytest

from interlock.common import topics
from interlock.workflow import WorkflowSettings

from .conftest import eventually
from .test_runs import RUNS, collect, etl  # noqa: F401 - the fixture these tests use

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("etl")]

BATCH = f"{RUNS}:batch"


def item(source: Any, key: str | None = None) -> dict[str, Any]:
    run: dict[str, Any] = {"input": {"source": source}}
    if key is not None:
        run["idempotency_key"] = key
    return run


async def start_batch(client: httpx.AsyncClient, *runs: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post(BATCH, json={"runs": list(runs)})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(runs)))
    return results


async def test_every_run_of_a_batch_starts_and_its_workflow_started_is_published(
    client: httpx.AsyncClient, settings: WorkflowSettings
) -> None:
    consumer, received, task = await collect(settings, [topics.WORKFLOW_STARTED])
    try:
        results = await start_batch(client, *(item(f"s3://{n}") for n in range(50)))
        await eventually(lambda: len(received) >= 50)
    finally:
        await consumer.stop()
        task.cancel()
    assert {r["status"] for r in results} == {201}
    run_ids = [r["run"]["run_id"] for r in results]
    assert len(set(run_ids)) == 50
    assert {e.run_id for e in received} == set(run_ids)
    listed = (await client.get("/api/v1/runs", params={"page_size": 100})).json()["runs"]
    assert {r["run_id"] for r in listed} == set(run_ids)
    assert {r["status"] for r in listed} == {"pending"}


async def test_a_bad_input_refuses_only_its_own_run(client: httpx.AsyncClient) -> None:
    results = await start_batch(client, item("a"), item(7), item("c"))

    assert [r["status"] for r in results] == [201, 422, 201]
    problem = results[1]["problem"]
    assert problem["type"] == "urn:interlock:problem:invalid-input"
    assert problem["errors"] == [
        {"pointer": "/input/source", "detail": "7 is not of type 'string'"}
    ]
    assert "run" not in results[1]
    assert len((await client.get("/api/v1/runs")).json()["runs"]) == 2


async def test_idempotency_keys_hold_within_a_batch_and_against_earlier_starts(
    client: httpx.AsyncClient,
) -> None:
    single = await client.post(
        RUNS, json={"input": {"source": "a"}}, headers={"idempotency-key": "k0"}
    )
    assert single.status_code == 201

    results = await start_batch(
        client,
        item("a", "k0"),  # the single start's run
        item("b", "k0"),  # the same key, another input
        item("c", "k1"),
        item("c", "k1"),  # repeated in the batch: the first's run
        item("d", "k2"),
    )

    assert [r["status"] for r in results] == [200, 409, 201, 200, 201]
    assert results[0]["run"]["run_id"] == single.json()["run_id"]
    assert results[1]["problem"]["type"] == "urn:interlock:problem:idempotency-conflict"
    assert results[3]["run"]["run_id"] == results[2]["run"]["run_id"]
    again = await start_batch(client, item("d", "k2"))
    assert (again[0]["status"], again[0]["run"]["run_id"]) == (200, results[4]["run"]["run_id"])
    assert len((await client.get("/api/v1/runs")).json()["runs"]) == 3


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[]", 400),
        (b'{"runs": []}', 400),
        (b'{"runs": [{"input": {}}], "extra": 1}', 400),
        (b'{"runs": [{"input": {}, "priority": 1}]}', 400),
        (b'{"runs": [{"idempotency_key": ""}]}', 400),
        (b'{"runs": [{"idempotency_key": 7}]}', 400),
        (b'{"runs": [' + b",".join([b"{}"] * 1001) + b"]}", 400),
        (b'{"runs": [{"input": {"source": "' + b"x" * 300_000 + b'"}}]}', 413),
    ],
)
async def test_a_malformed_batch_is_refused_whole(
    client: httpx.AsyncClient, body: bytes, status: int
) -> None:
    response = await client.post(BATCH, content=body, headers={"content-type": "application/json"})

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/runs")).json()["runs"] == []


async def test_a_batch_of_an_unknown_workflow_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/workflows/ghost/runs:batch", json={"runs": [{}]})

    assert response.status_code == 404
