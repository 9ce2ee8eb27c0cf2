"""Task logs through the gateway, on the real platform (shared with ``test_tracing``,
see ``conftest.py``: shell tasks allowed, a half-second heartbeat of the log stream).

An echo task and a shell task run on the real worker; their lines are read through
Envoy with the logs route (order, tail, level, cursors) and followed with the SSE
stream (lines before the task ends, resumption after a disconnect, the ``end`` event).
Until execution documents are written by the metadata service's own consumer, the
test writes the ended run's document itself, as that consumer will.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from pymongo import AsyncMongoClient

from interlock.devstack import Platform as SharedPlatform
from interlock.devstack._servers import mongo_url
from interlock.devstack._stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SCRIPT = (
    "import sys\n"
    "for n in range(1, 6):\n"
    "    print(f'out {n}', flush=True)\n"
    "print('trouble', file=sys.stderr, flush=True)\n"
)


@dataclass(frozen=True)
class Platform:
    stack: Stack
    token: str
    tenant: str
    other_token: str

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.stack.gateway_url,
            headers={"authorization": f"Bearer {token or self.token}"},
            trust_env=False,
            timeout=30,
        )


@pytest.fixture(scope="module")
def platform(traced_shell_platform: SharedPlatform) -> Platform:
    ours, other = (traced_shell_platform.new_tenant(name) for name in ("logs", "other"))
    token, other_token = (
        traced_shell_platform.login(t.admin_username, t.admin_password, t.name)
        for t in (ours, other)
    )
    tenant = jwt.decode(token, options={"verify_signature": False})["tid"]
    return Platform(traced_shell_platform.stack, token, tenant, other_token)


async def _start(platform: Platform, name: str, task: dict[str, Any]) -> str:
    definition = json.dumps({"name": name, "tasks": [task]})
    async with platform.client() as client:
        defined = await client.post(
            "/api/v1/workflows", content=definition, headers={"content-type": "application/json"}
        )
        assert defined.status_code == 201, defined.text
        started = await client.post(f"/api/v1/workflows/{name}/runs", json={"input": {}})
        assert started.status_code == 201, started.text
    run_id: str = started.json()["run_id"]
    return run_id


async def _run_status(platform: Platform, run_id: str) -> str:
    async with platform.client() as client:
        response = await client.get(f"/api/v1/runs/{run_id}")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


async def _ended(platform: Platform, run_id: str) -> str:
    """The run's status once it ended (polled; bounded by the caller's timeout)."""
    for _ in range(1200):
        status = await _run_status(platform, run_id)
        if status in {"succeeded", "failed", "cancelled"}:
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not end")


async def _record_the_end(platform: Platform, run_id: str) -> None:
    """Write the run's execution document once the run ended, as metadata's consumer does."""
    status = await _ended(platform, run_id)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_url(platform.stack.port("mongo"))
    )
    try:
        await client["interlock_metadata"]["executions"].update_one(
            {"_id": run_id},
            {"$setOnInsert": {"tenant": platform.tenant, "status": status}},
            upsert=True,
        )
    finally:
        await client.close()


async def _events(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """The stream's events and comments, each as its fields."""
    event: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if event:
                yield event
            event = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")


async def _read_logs(platform: Platform, run_id: str, **params: Any) -> dict[str, Any]:
    async with platform.client() as client:
        response = await client.get(f"/api/v1/executions/{run_id}/logs", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_a_stream_sees_lines_while_the_task_runs_resumes_and_ends(
    platform: Platform,
) -> None:
    lines = [f"tick {n}" for n in range(1, 6)]
    run_id = await _start(
        platform,
        "logs-echo",
        {"id": "talk", "type": "echo", "params": {"lines": lines, "interval": "1s"}},
    )
    url = f"/api/v1/executions/{run_id}/logs/stream"
    received: list[dict[str, Any]] = []
    comments: list[str] = []
    async with asyncio.timeout(120), platform.client() as client:
        while True:  # the run may not be known to metadata yet: 404 until its first line
            async with client.stream("GET", url) as first:
                if first.status_code == 200:
                    assert first.headers["content-type"].startswith("text/event-stream")
                    async for event in _events(first):
                        if "comment" in event:
                            comments.append(event["comment"])
                            continue
                        received.append({"id": event["id"], **json.loads(event["data"])})
                        if len(received) == 1:
                            # The task writes a line a second: it is still running.
                            assert await _run_status(platform, run_id) in {"pending", "running"}
                        if len(received) == 2:
                            break
                    break
            await asyncio.sleep(0.1)
        recorder = asyncio.create_task(_record_the_end(platform, run_id))
        ended = False
        async with client.stream(
            "GET", url, headers={"last-event-id": received[-1]["id"]}
        ) as again:
            async for event in _events(again):
                if "comment" in event:
                    comments.append(event["comment"])
                elif event.get("event") == "end":
                    ended = True
                    break
                else:
                    received.append({"id": event["id"], **json.loads(event["data"])})
        await recorder
    assert ended
    assert [line["message"] for line in received] == lines
    assert [line["seq"] for line in received] == [1, 2, 3, 4, 5]
    assert {(line["task_id"], line["attempt"], line["level"]) for line in received} == {
        ("talk", 1, "INFO")
    }
    assert "heartbeat" in comments  # the lines came a second apart: quiet spells beat
    page = await _read_logs(platform, run_id)
    assert [line["message"] for line in page["lines"]] == lines
    assert page["end_of_log"] is True


async def test_a_shell_tasks_output_is_read_in_order_with_tail_level_and_cursors(
    platform: Platform,
) -> None:
    run_id = await _start(
        platform,
        "logs-shell",
        {"id": "sh", "type": "shell", "params": {"command": [sys.executable, "-c", SCRIPT]}},
    )
    async with asyncio.timeout(60):
        assert await _ended(platform, run_id) == "succeeded"
        page: dict[str, Any] = {"lines": []}
        while len(page["lines"]) < 6:
            async with platform.client() as client:
                response = await client.get(f"/api/v1/executions/{run_id}/logs")
            page = response.json() if response.status_code == 200 else {"lines": []}
            await asyncio.sleep(0.1)
    messages = [line["message"] for line in page["lines"]]
    assert [m for m in messages if m.startswith("out")] == [f"out {n}" for n in range(1, 6)]
    assert sorted(messages) == sorted([f"out {n}" for n in range(1, 6)] + ["trouble"])
    warnings = await _read_logs(platform, run_id, level="warning")
    assert [(line["level"], line["message"]) for line in warnings["lines"]] == [
        ("WARNING", "trouble")
    ]
    first = await _read_logs(platform, run_id, limit=2)
    rest = await _read_logs(platform, run_id, after=first["next_cursor"])
    assert [line["message"] for line in first["lines"] + rest["lines"]] == messages
    tail = await _read_logs(platform, run_id, tail=2)
    assert [line["message"] for line in tail["lines"]] == messages[-2:]
    async with platform.client(platform.other_token) as other:
        hidden = await other.get(f"/api/v1/executions/{run_id}/logs")
        hidden_stream = await other.get(f"/api/v1/executions/{run_id}/logs/stream")
    assert hidden.status_code == 404
    assert hidden_stream.status_code == 404
