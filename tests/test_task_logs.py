"""Task logs through the gateway, on the real platform (its own stack and ports).

An echo task and a shell task run on the real worker; their lines are read through
Envoy with the logs route (order, tail, level, cursors) and followed with the SSE
stream (lines before the task ends, resumption after a disconnect, the ``end`` event).
Until execution documents are written by the metadata service's own consumer, the
test writes the ended run's document itself, as that consumer will.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pymongo import AsyncMongoClient

from interlock.devstack._process import port_is_free
from interlock.devstack._servers import mongo_url
from interlock.devstack._stack import ADMIN_PASSWORD, ADMIN_USERNAME, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PORT_OFFSET = 2250
HEARTBEAT_S = 0.5
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


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.devstack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _login(stack: Stack, username: str, password: str, tenant: str = "default") -> str:
    with httpx.Client(base_url=stack.gateway_url, trust_env=False, timeout=30) as client:
        response = client.post(
            "/api/v1/auth/login",
            json={"username": username, "password": password, "tenant": tenant},
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _other_tenant_admin(stack: Stack, admin: str) -> str:
    name = f"other-{int(time.time() * 1000)}"
    with httpx.Client(base_url=stack.gateway_url, trust_env=False, timeout=30) as client:
        created = client.post(
            "/api/v1/tenants",
            json={"name": name, "admin_username": "root", "admin_password": "other-password"},
            headers={"authorization": f"Bearer {admin}"},
        )
    assert created.status_code == 201, created.text
    return _login(stack, "root", "other-password", name)


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    # Not under pytest's tmp dir: it is 0700 root, and PostgreSQL runs unprivileged.
    data_dir = Path(tempfile.mkdtemp(prefix="ilk-logs-"))
    data_dir.chmod(0o755)
    env = {
        **os.environ,
        "INTERLOCK_DEV_DATA_DIR": str(data_dir),
        "INTERLOCK_DEV_PORT_OFFSET": str(PORT_OFFSET),
        "INTERLOCK_SHELL_ENABLED": "true",
        "INTERLOCK_SHELL_ALLOWED_COMMANDS": json.dumps([sys.executable]),
        "INTERLOCK_LOGS_STREAM_HEARTBEAT_S": str(HEARTBEAT_S),
    }
    env.pop("INTERLOCK_DEV_SERVICE_COMMAND", None)
    env.pop("INTERLOCK_DEV_GATEWAY_AUTHZ", None)
    stack = Stack.from_env(env)
    ports = [p for group in stack.ports_by_program().values() for p in group.values()]
    if not all(port_is_free(port) for port in ports):
        pytest.skip(f"the ports of offset {PORT_OFFSET} are in use")
    try:
        started = _cli(env, "up")
        assert started.returncode == 0, f"up failed:\n{started.stdout}\n{started.stderr}"
        admin = _login(stack, ADMIN_USERNAME, ADMIN_PASSWORD)
        tenant = jwt.decode(admin, options={"verify_signature": False})["tid"]
        yield Platform(stack, admin, tenant, _other_tenant_admin(stack, admin))
    finally:
        # clean, not down: as root, PostgreSQL's folder lives outside the data folder.
        _cli(env, "clean")
        shutil.rmtree(data_dir, ignore_errors=True)


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
