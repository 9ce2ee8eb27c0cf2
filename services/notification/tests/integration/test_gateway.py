"""Through the gateway on the real platform (`make up`'s stack on its own ports): a run
finishes and the subscriber's local receiver gets a signed webhook."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from interlock.devstack import free_port_offsets
from interlock.devstack._stack import ADMIN_PASSWORD, ADMIN_USERNAME, Stack

from .conftest import Receiver, eventually, unique_path

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

OFFSETS = (500, 550)
"""The port offsets these tests may use (other suites use others at the same time), all
below the ephemeral range, where outgoing connections would take ports at random."""


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.devstack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _free_offset() -> int:
    for offset in free_port_offsets(OFFSETS):
        return offset
    pytest.skip(f"no free port range for a stack among offsets {OFFSETS}")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The whole platform in a data folder of its own; cleaned afterwards."""
    # Not under pytest's tmp dir: it is 0700 root, and PostgreSQL runs unprivileged.
    data_dir = Path(tempfile.mkdtemp(prefix="ilk-notify-"))
    data_dir.chmod(0o755)
    env = {
        **os.environ,
        "INTERLOCK_DEV_DATA_DIR": str(data_dir),
        "INTERLOCK_DEV_PORT_OFFSET": str(_free_offset()),
    }
    env.pop("INTERLOCK_DEV_SERVICE_COMMAND", None)
    env.pop("INTERLOCK_DEV_GATEWAY_AUTHZ", None)
    platform = Stack.from_env(env)
    try:
        started = _cli(env, "up")
        assert started.returncode == 0, f"up failed:\n{started.stdout}\n{started.stderr}"
        yield platform
    finally:
        _cli(env, "clean")
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
async def gateway(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway, logged in as the stack's admin."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, trust_env=False, timeout=30) as client:
        response = await client.post(
            "/api/v1/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
        )
        assert response.status_code == 200, response.text
        client.headers["authorization"] = f"Bearer {response.json()['access_token']}"
        yield client


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_finished_run_reaches_a_local_receiver_through_the_gateway(
    stack: Stack, gateway: httpx.AsyncClient, receiver: Receiver
) -> None:
    workflow = f"notify-{uuid.uuid4().hex[:8]}"
    path = unique_path()
    subscribed = await gateway.post(
        "/api/v1/subscriptions",
        json={
            "name": "my laptop",
            "channel": "webhook",
            "target": receiver.url(path),
            "events": ["run.succeeded", "run.failed"],
            "filter": {"workflows": [workflow]},
        },
    )
    assert subscribed.status_code == 201, subscribed.text
    secret = subscribed.json()["secret"]
    created = await gateway.post(
        "/api/v1/workflows",
        content=f"name: {workflow}\ntasks:\n  - id: a\n    type: noop\n",
        headers={"content-type": "application/yaml"},
    )
    assert created.status_code == 201, created.text
    run = await gateway.post(f"/api/v1/workflows/{workflow}/runs", json={"input": {}})
    assert run.status_code == 201, run.text
    run_id = run.json()["run_id"]

    (request,) = await eventually(lambda: receiver.at(path), timeout_s=120)
    body: dict[str, Any] = request.verify(secret)
    assert body["type"] == "run.succeeded"
    assert (body["data"]["run_id"], body["data"]["workflow"]) == (run_id, workflow)
    assert body["data"]["links"]["run"] == f"{stack.gateway_url}/api/v1/runs/{run_id}"
    assert body["data"]["duration_ms"] is not None

    async def recorded() -> list[dict[str, Any]]:
        # Successes are recorded in batches, a moment after the receiver answered.
        history = await gateway.get("/api/v1/deliveries", params={"run": run_id})
        assert history.status_code == 200
        deliveries: list[dict[str, Any]] = history.json()["deliveries"]
        return deliveries if all(d["status"] == "succeeded" for d in deliveries) else []

    (delivery,) = await eventually(recorded, timeout_s=30)
    assert delivery["webhook_id"] == request.webhook_id
    link = await gateway.get(body["data"]["links"]["run"].removeprefix(stack.gateway_url))
    assert link.status_code == 200 and link.json()["status"] == "succeeded"
