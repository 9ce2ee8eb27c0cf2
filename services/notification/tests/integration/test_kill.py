"""A notification process SIGKILLed in the middle of a retry: the delivery still arrives,
with the same ``webhook-id``, once the dead instance's lease on it ends."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from interlock.common.kafka import EventPublisher
from interlock.common.testing import TEST_IDENTITY

from .conftest import (
    KEY_ENCRYPTION_KEYS,
    TENANT,
    Answer,
    Receiver,
    eventually,
    gateway_headers,
    succeeded,
    unique_path,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class NotificationProcess:
    """``python -m interlock.notification`` on its own port."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        async with httpx.AsyncClient() as client, asyncio.timeout(timeout_s):
            while True:
                assert self.process.poll() is None, self.log.read_text()
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(self.process.wait, 30) == -signal.SIGKILL


@pytest.fixture
def spawn(tmp_path: Path, settings: Any) -> Iterator[Any]:
    """Starts notification processes with the module's database and topics."""
    processes: list[subprocess.Popen[bytes]] = []
    password = settings.postgres_password

    def start(name: str) -> NotificationProcess:
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")},
            "INTERLOCK_HTTP_PORT": str(port),
            "INTERLOCK_LOG_FORMAT": "text",
            "INTERLOCK_POSTGRES_DSN": settings.postgres_dsn,
            "INTERLOCK_POSTGRES_PASSWORD": password.get_secret_value() if password else "",
            "INTERLOCK_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "INTERLOCK_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
            "INTERLOCK_KAFKA_SESSION_TIMEOUT_MS": "3000",
            "INTERLOCK_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "INTERLOCK_IDENTITY_JWKS": TEST_IDENTITY.jwks,
            "INTERLOCK_RETRY_SCHEDULE": json.dumps(["0s", "100ms", "100ms", "100ms"]),
            "INTERLOCK_DELIVERY_LEASE_S": "2",
            "INTERLOCK_DELIVERY_POLL_INTERVAL_S": "0.1",
            "INTERLOCK_WEBHOOK_ALLOWED_NETWORKS": json.dumps(["127.0.0.0/8"]),
            "INTERLOCK_KEY_ENCRYPTION_KEYS": KEY_ENCRYPTION_KEYS,
        }
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "interlock.notification"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        processes.append(process)
        return NotificationProcess(process, port, log)

    try:
        yield start
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


async def test_a_delivery_survives_its_process_being_killed_mid_retry(
    spawn: Any, receiver: Receiver, publisher: EventPublisher
) -> None:
    first = spawn("first")
    await first.wait_ready()
    path = unique_path()
    # The first attempt fails; the retry hangs until the process is killed under it.
    receiver.script(path, Answer(500), Answer(200, delay_s=10))
    async with httpx.AsyncClient(base_url=first.url, headers=gateway_headers()) as api:
        created = await api.post(
            "/api/v1/subscriptions",
            json={
                "name": "kill",
                "channel": "webhook",
                "target": receiver.url(path),
                "events": ["run.succeeded"],
                "filter": {"workflows": ["killed"]},
            },
        )
        assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    await publisher.publish([succeeded(TENANT, str(uuid.uuid4()), "killed")])
    await eventually(lambda: len(receiver.at(path)) == 2)  # the retry is in flight
    await first.kill()

    second = spawn("second")
    await second.wait_ready()
    await eventually(lambda: len(receiver.at(path)) >= 3)
    requests = receiver.at(path)
    assert len({request.webhook_id for request in requests}) == 1
    for request in requests:
        assert request.verify(secret)["type"] == "run.succeeded"
    async with httpx.AsyncClient(base_url=second.url, headers=gateway_headers()) as api:
        run_id = requests[0].verify(secret)["data"]["run_id"]

        async def succeeded_delivery() -> dict[str, Any] | None:
            response = await api.get("/api/v1/deliveries", params={"run": run_id})
            found = response.json()["deliveries"]
            return found[0] if found and found[0]["status"] == "succeeded" else None

        delivery = await eventually(succeeded_delivery)
    assert delivery["webhook_id"] == requests[0].webhook_id
    assert delivery["attempts"][0]["status_code"] == 500
    assert delivery["attempts"][-1]["status_code"] == 200
