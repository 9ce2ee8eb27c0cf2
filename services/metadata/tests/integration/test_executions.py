"""Execution documents from real events through Kafka into MongoDB, read over REST."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from interlock.common.testing import app_client, identity_headers
from interlock.devstack import KafkaServer, MongoServer
from interlock.metadata import MetadataSettings, create_app

from .conftest import RunEvents, eventually, metadata_settings, publish

pytestmark = pytest.mark.integration

TENANT = "acme"
DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)


@pytest.fixture(scope="module")
def settings(mongo_server: MongoServer, kafka_server: KafkaServer) -> MetadataSettings:
    return metadata_settings(mongo_server.url, kafka_server)


@pytest.fixture(scope="module")
async def client(settings: MetadataSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings)) as client:
        client.headers.update(identity_headers(TENANT, roles=["viewer"]))
        yield client


async def visible(client: httpx.AsyncClient, run: RunEvents, status: str) -> dict[str, Any]:
    async def ready() -> dict[str, Any] | None:
        answer = await client.get(f"/api/v1/executions/{run.run_id}")
        body: dict[str, Any] = answer.json()
        return body if answer.status_code == 200 and body["status"] == status else None

    result: dict[str, Any] = await eventually(ready)
    return result


def retried_then_dead(start: datetime, workflow: str = "billing") -> RunEvents:
    return (
        RunEvents(TENANT, workflow, start=start, labels={"team": "payments"})
        .started({"fetch": "http", "charge": "http"}, {"month": "2026-11"})
        .attempt("fetch", 1, 1, task_type="http", error=("TimeoutError", "upstream slow", True))
        .attempt("fetch", 2, 2, task_type="http")
        .attempt("charge", 1, 3, task_type="http", error=("CardDeclined", "card expired", False))
        .dead_lettered("charge", 1, 4, ("CardDeclined", "card expired"))
        .failed("charge", 5, ("CardDeclined", "card expired"))
    )


async def test_shuffled_duplicated_events_show_every_attempt_and_its_error(
    client: httpx.AsyncClient, settings: MetadataSettings
) -> None:
    run = retried_then_dead(DAY)
    events = run.events + random.sample(run.events, 6)
    random.shuffle(events)
    await publish(settings, events)
    doc = await visible(client, run, "failed")
    tasks = {task["id"]: task for task in doc["tasks"]}
    assert doc["workflow"] == "billing" and doc["labels"] == {"team": "payments"}
    assert doc["input"] == {"month": "2026-11"}
    assert doc["failed_task_id"] == "charge"
    assert [a["outcome"] for a in tasks["fetch"]["attempts"]] == ["failed", "succeeded"]
    assert tasks["fetch"]["attempts"][0]["error"]["type"] == "TimeoutError"
    assert tasks["fetch"]["status"] == "succeeded"
    assert tasks["charge"]["status"] == "dead_lettered"
    assert tasks["charge"]["attempts"][0]["error"]["message"] == "card expired"
    assert doc["duration_ms"] == 5000
    assert len(doc["timeline"]) == len(run.events)


async def test_another_tenants_run_is_not_found(
    client: httpx.AsyncClient, settings: MetadataSettings
) -> None:
    run = RunEvents("globex", "secret").started({"a": "noop"}).attempt("a", 1, 1).completed(2)
    mine = RunEvents(TENANT, "visible").started({"a": "noop"}).attempt("a", 1, 1).completed(2)
    await publish(settings, run.events + mine.events)
    await visible(client, mine, "succeeded")
    answer = await client.get(f"/api/v1/executions/{run.run_id}")
    listed = await client.get("/api/v1/executions", params={"workflow": "secret"})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert listed.json()["executions"] == []


async def test_search_by_each_filter_and_by_words(
    client: httpx.AsyncClient, settings: MetadataSettings
) -> None:
    start = DAY + timedelta(hours=2)
    failed = retried_then_dead(start, workflow="search-billing")
    ok = (
        RunEvents(
            TENANT, "search-reports", start=start + timedelta(minutes=1), labels={"team": "bi"}
        )
        .started({"render": "python"})
        .attempt("render", 1, 1, task_type="python")
        .completed(3)
    )
    await publish(settings, failed.events + ok.events)
    await visible(client, failed, "failed")
    await visible(client, ok, "succeeded")

    async def ids(**params: Any) -> list[str]:
        answer = await client.get("/api/v1/executions", params=params)
        assert answer.status_code == 200, answer.text
        return [e["run_id"] for e in answer.json()["executions"]]

    window = {
        "created_after": start.isoformat(),
        "created_before": (start + timedelta(hours=1)).isoformat(),
    }
    assert await ids(**window) == [ok.run_id, failed.run_id]
    assert await ids(workflow="search-billing") == [failed.run_id]
    assert await ids(workflow="search-billing", status="failed") == [failed.run_id]
    assert await ids(workflow="search-billing", status="succeeded") == []
    assert await ids(status=["failed", "cancelled"], **window) == [failed.run_id]
    assert await ids(label="team=bi") == [ok.run_id]
    assert await ids(task_type="python") == [ok.run_id]
    assert await ids(error_type="CardDeclined", **window) == [failed.run_id]
    assert await ids(finished_after=(start + timedelta(seconds=60)).isoformat(), **window) == [
        ok.run_id
    ]
    assert await ids(q="card EXPIRED", **window) == [failed.run_id]
    assert await ids(q="search-reports render") == [ok.run_id]
    assert await ids(q="card render") == []
    assert await ids(order_by="duration desc", **window) == [failed.run_id, ok.run_id]
    bad = await client.get("/api/v1/executions", params={"label": "no-equals"})
    assert bad.status_code == 422


async def test_paging_is_stable_under_inserts(
    client: httpx.AsyncClient, settings: MetadataSettings
) -> None:
    start = DAY + timedelta(hours=5)
    runs = [
        RunEvents(TENANT, "paged", start=start + timedelta(seconds=i)).started({"a": "noop"})
        for i in range(5)
    ]
    await publish(settings, [e for run in runs for e in run.events])
    await eventually(lambda: _count(client, "paged", 5))
    first = (
        await client.get("/api/v1/executions", params={"workflow": "paged", "page_size": 2})
    ).json()
    newer = RunEvents(TENANT, "paged", start=start + timedelta(minutes=5)).started({"a": "noop"})
    older = RunEvents(TENANT, "paged", start=start - timedelta(minutes=5)).started({"a": "noop"})
    await publish(settings, newer.events + older.events)
    await eventually(lambda: _count(client, "paged", 7))
    seen = [e["run_id"] for e in first["executions"]]
    token = first["next_page_token"]
    while token:
        page = await client.get(
            "/api/v1/executions", params={"workflow": "paged", "page_size": 2, "page_token": token}
        )
        body = page.json()
        seen += [e["run_id"] for e in body["executions"]]
        token = body["next_page_token"]
    expected = [run.run_id for run in reversed(runs)] + [older.run_id]
    assert seen == expected
    other = await client.get(
        "/api/v1/executions", params={"workflow": "other", "page_token": first["next_page_token"]}
    )
    assert other.status_code == 400


async def test_words_found_across_days_and_pages_newest_first(
    client: httpx.AsyncClient, settings: MetadataSettings
) -> None:
    # Searches read one window of creation time after another: runs hours, days,
    # weeks and more than a year apart are all found, in order, page after page.
    ages = [timedelta(minutes=30), timedelta(hours=3), timedelta(days=2), timedelta(days=9)]
    ages += [timedelta(days=50), timedelta(days=200), timedelta(days=500)]
    now = datetime.now(UTC)
    runs = [
        RunEvents(TENANT, "windowed-sync", start=now - age).started({"a": "noop"}) for age in ages
    ]
    decoy = RunEvents(TENANT, "windowed-other", start=now - ages[1]).started({"a": "noop"})
    await publish(settings, [e for run in [*runs, decoy] for e in run.events])
    await eventually(lambda: _count(client, "windowed-sync", len(runs)))

    async def pages(**params: Any) -> list[list[str]]:
        found, token = [], None
        while True:
            paging = {"page_size": 3} | ({"page_token": token} if token else {})
            answer = await client.get("/api/v1/executions", params=params | paging)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            found.append([e["run_id"] for e in body["executions"]])
            if not (token := body["next_page_token"]):
                return found

    ids = [run.run_id for run in runs]
    assert await pages(q="windowed SYNC") == [ids[0:3], ids[3:6], ids[6:]]
    assert await pages(workflow="windowed-sync") == [ids[0:3], ids[3:6], ids[6:]]
    bounded = {
        "created_after": (now - timedelta(days=60)).isoformat(),
        "created_before": (now - timedelta(hours=1)).isoformat(),
    }
    assert await pages(q="sync", **bounded) == [ids[1:4], ids[4:5]]


async def test_summary_per_workflow(client: httpx.AsyncClient, settings: MetadataSettings) -> None:
    now = datetime.now(UTC) - timedelta(minutes=10)
    runs = [
        RunEvents(TENANT, "summed", start=now)
        .started({"a": "noop"})
        .attempt("a", 1, 1)
        .completed(2),
        RunEvents(TENANT, "summed", start=now)
        .started({"a": "noop"})
        .attempt("a", 1, 1)
        .completed(4),
        RunEvents(TENANT, "summed", start=now)
        .started({"a": "noop"})
        .failed("a", 1, ("Boom", "boom")),
    ]
    await publish(settings, [e for run in runs for e in run.events])
    for run, status in zip(runs, ["succeeded", "succeeded", "failed"], strict=True):
        await visible(client, run, status)
    answer = await client.get(
        "/api/v1/executions/summary", params={"workflow": "summed", "window": "1h"}
    )
    assert answer.status_code == 200, answer.text
    (summed,) = answer.json()["workflows"]
    assert summed["runs"] == 3
    assert summed["by_status"] == {"failed": 1, "succeeded": 2}
    assert summed["success_rate"] == pytest.approx(2 / 3)
    assert summed["duration_ms_p50"] == 2000
    assert summed["duration_ms_p99"] == 4000
    bad = await client.get("/api/v1/executions/summary", params={"window": "40d"})
    assert bad.status_code == 422


async def _count(client: httpx.AsyncClient, workflow: str, n: int) -> bool:
    answer = await client.get("/api/v1/executions", params={"workflow": workflow})
    return len(answer.json()["executions"]) == n
