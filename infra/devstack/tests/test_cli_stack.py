"""The real ``python -m interlock.devstack`` CLI: up, status, data across restarts, down.

Each test runs a complete second stack in its own data folder with a port offset,
so it does not clash with a `make up` stack running on the same machine.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from minio import Minio
from pymongo import MongoClient

from interlock.devstack import free_port_offsets
from interlock.devstack._process import (
    alive_refs,
    port_is_free,
    process_tree,
    processes_with_env,
)
from interlock.devstack._stack import (
    S3_BUCKET,
    SERVICES,
    Stack,
    StackSecrets,
)
from interlock.devstack._supervisor import Supervisor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

STANDIN = Path(__file__).with_name("standin_service.py")
OFFSETS = (700, 750, 2650, 2750)
"""Port offsets of the second stack, all below the ephemeral range, where outgoing
connections would take ports at random."""


@dataclass
class StackUnderTest:
    stack: Stack
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "interlock.devstack", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def secrets(self) -> StackSecrets:
        return StackSecrets.load_or_create(self.stack.secrets_file)[0]


def _free_offset() -> int:
    for offset in free_port_offsets(OFFSETS):
        return offset
    pytest.skip(f"no free port range for a second stack among offsets {OFFSETS}")


def _stack_processes(stack: Stack) -> set[int]:
    """Pids of supervisord and every process below it."""
    pid = Supervisor(stack.supervisor_dir).daemon_pid()
    return set() if pid is None else {ref.pid for ref in process_tree([pid])}


def _processes_mentioning(data_dir: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(data_dir) in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.fixture
def second_stack(tmp_path: Path) -> Iterator[StackUnderTest]:
    # pytest's folders are 0700: as root, PostgreSQL's unprivileged user cannot enter them.
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "INTERLOCK_DEV_DATA_DIR": str(data_dir),
        "INTERLOCK_DEV_PORT_OFFSET": str(_free_offset()),
    }
    env.pop("INTERLOCK_DEV_SERVICE_COMMAND", None)
    under_test = StackUnderTest(Stack.from_env(env), env)
    try:
        yield under_test
    finally:
        under_test.cli("clean")
        shutil.rmtree(data_dir, ignore_errors=True)
        if under_test.stack.postgres_home is not None:
            shutil.rmtree(under_test.stack.postgres_home, ignore_errors=True)


def _assert_up(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"up failed:\n{result.stdout}\n{result.stderr}"


def _assert_gateway_routes(stack: Stack) -> None:
    for service in SERVICES:
        response = httpx.get(f"{stack.gateway_url}/health/{service.name}", trust_env=False)
        assert response.status_code == 200, (service.name, response.text)
    # Without a token an API route never reaches a service: IAM answers 401, or, when
    # the services are stand-ins and nothing answers the authorizer, the gateway fails
    # closed with 503. Both are problem documents.
    refused = httpx.get(f"{stack.gateway_url}/api/v1/runs", trust_env=False)
    assert refused.status_code in (401, 503), refused.text
    assert refused.headers["content-type"] == "application/problem+json"


def _down_and_assert_nothing_left(under_test: StackUnderTest) -> None:
    stack = under_test.stack
    pids = _stack_processes(stack)
    assert len(pids) > 13, "supervisord and its programs should be running before down"
    refs = process_tree(pids)
    result = under_test.cli("down")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not alive_refs(refs), "processes of the stack survived `down`"
    _assert_nothing_left(stack)


def _clean_at_once_and_assert_nothing_left(under_test: StackUnderTest) -> None:
    """`clean` of a running stack: nothing left, PostgreSQL's shared memory freed too."""
    stack = under_test.stack
    refs = process_tree(_stack_processes(stack))
    shared_memory = _postgres_shared_memory_id(stack)
    assert shared_memory in _shared_memory_ids()
    result = under_test.cli("clean")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "at once" in result.stdout
    assert not alive_refs(refs), "processes of the stack survived `clean`"
    _assert_nothing_left(stack)
    assert shared_memory not in _shared_memory_ids()
    assert not stack.data_dir.exists()
    assert stack.s3_ports().leftover_sockets() == []


def _postgres_shared_memory_id(stack: Stack) -> str:
    # postmaster.pid's seventh line holds the key and id of the cluster's System V segment.
    return (stack.postgres_dir / "postmaster.pid").read_text().splitlines()[6].split()[1]


def _shared_memory_ids() -> set[str]:
    rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return {row.split()[1] for row in rows}


def _assert_nothing_left(stack: Stack) -> None:
    assert _processes_mentioning(stack.data_dir) == []
    assert processes_with_env(*next(iter(stack.marker.items()))) == set()
    ports = [p for group in stack.ports_by_program().values() for p in group.values()]
    assert [port for port in ports if not port_is_free(port)] == []


async def _write_and_read_back(stack: Stack, secrets: StackSecrets, *, write: bool) -> None:
    """Write a row, a document and an object (write=True), or check they are still there."""
    conn = await asyncpg.connect(
        stack.postgres_dsn("workflow"), password=secrets.postgres_passwords["workflow"]
    )
    try:
        if write:
            await conn.execute("CREATE TABLE survives (v text)")
            await conn.execute("INSERT INTO survives VALUES ('row')")
        assert await conn.fetchval("SELECT v FROM survives") == "row"
    finally:
        await conn.close()

    mongo: MongoClient[dict[str, object]] = MongoClient(
        f"mongodb://127.0.0.1:{stack.port('mongo')}/?directConnection=true"
    )
    try:
        coll = mongo["devstack_test"]["survives"]
        if write:
            coll.insert_one({"_id": "doc"})
        assert coll.find_one({"_id": "doc"}) == {"_id": "doc"}
    finally:
        mongo.close()

    s3 = Minio(
        stack.s3_endpoint,
        access_key=secrets.s3_access_key,
        secret_key=secrets.s3_secret_key,
        secure=False,
    )
    if write:
        s3.put_object(S3_BUCKET, "survives.txt", io.BytesIO(b"bytes"), 5)
    response = s3.get_object(S3_BUCKET, "survives.txt")
    try:
        assert response.read() == b"bytes"
    finally:
        response.close()
        response.release_conn()


async def test_stack_with_stand_in_services(second_stack: StackUnderTest) -> None:
    """The whole CLI with every service replaced by a tiny HTTP stand-in."""
    second_stack.env["INTERLOCK_DEV_SERVICE_COMMAND"] = f"{{python}} {STANDIN}"
    stack = second_stack.stack

    first = second_stack.cli("up")
    _assert_up(first)
    assert "Interlock is up in" in first.stdout
    assert "http://127.0.0.1:" in first.stdout
    secrets = second_stack.secrets()
    for secret in (
        *secrets.postgres_passwords.values(),
        secrets.key_encryption_keys,
        secrets.s3_secret_key,
        secrets.s3_access_key,
    ):
        assert secret not in first.stdout + first.stderr
    assert stack.secrets_file.stat().st_mode & 0o777 == 0o600
    _assert_gateway_routes(stack)

    again = second_stack.cli("up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running" in again.stdout

    status = second_stack.cli("status")
    assert status.returncode == 0, status.stdout
    for name in (
        "postgres",
        "kafka",
        "mongo",
        "s3",
        "smtp",
        "gateway",
        *(s.name for s in SERVICES),
    ):
        assert any(line.startswith(name) and "ready" in line for line in status.stdout.splitlines())

    await _write_and_read_back(stack, secrets, write=True)
    _down_and_assert_nothing_left(second_stack)

    stopped = second_stack.cli("status")
    assert stopped.returncode == 1
    assert "not running" in stopped.stdout

    restarted = second_stack.cli("up")
    _assert_up(restarted)
    await _write_and_read_back(stack, secrets, write=False)

    # supervisord killed: `up` refuses to start over the orphans, `down` still stops them.
    supervisord = Supervisor(stack.supervisor_dir).daemon_pid()
    assert supervisord is not None
    orphans = process_tree([supervisord])
    os.kill(supervisord, signal.SIGKILL)
    refused = second_stack.cli("up")
    assert refused.returncode == 1
    assert "run `make down` first" in refused.stdout
    stopped = second_stack.cli("down")
    assert stopped.returncode == 0, stopped.stdout
    assert not alive_refs(orphans)
    _assert_nothing_left(stack)

    cleaned = second_stack.cli("clean")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert not stack.data_dir.exists()
    assert stack.postgres_home is None or not stack.postgres_home.exists()


def test_up_reports_a_taken_port_by_name(second_stack: StackUnderTest) -> None:
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", second_stack.stack.port("postgres")))
        blocker.listen()
        result = second_stack.cli("up")
    assert result.returncode == 1
    port = second_stack.stack.port("postgres")
    assert f"port {port} (postgres) is already in use by another process" in result.stdout
    assert Supervisor(second_stack.stack.supervisor_dir).daemon_pid() is None


def test_stack_with_real_services(second_stack: StackUnderTest) -> None:
    """`up` with the seven real services: every /health/<service> answers 200 through
    Envoy, a workflow defined and started through the gateway succeeds end to end, and a
    killed service comes back; `clean` stops it at once (the stand-in test stops one
    with `down`)."""
    result = second_stack.cli("up")
    _assert_up(result)
    _assert_gateway_routes(second_stack.stack)
    status = second_stack.cli("status")
    assert status.returncode == 0, status.stdout
    _assert_a_three_task_run_succeeds_through_the_gateway(second_stack.stack)
    _assert_crashed_service_is_restarted(second_stack.stack, "scheduler")
    _clean_at_once_and_assert_nothing_left(second_stack)


THREE_STEPS = """
name: three-steps
tasks:
  - id: extract
    type: noop
  - id: wait
    type: sleep
    params: {duration: 50ms}
    depends_on: [extract]
  - id: publish
    type: noop
    params: {source: "{{ input.source }}"}
    depends_on: [wait]
"""


def _assert_a_three_task_run_succeeds_through_the_gateway(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway_url, trust_env=False, timeout=10) as client:
        login = client.post(
            "/api/v1/auth/login",
            json={"username": "admin", "password": "interlock-admin", "tenant": "default"},
        )
        assert login.status_code == 200, login.text
        client.headers["authorization"] = f"Bearer {login.json()['access_token']}"
        created = client.post(
            "/api/v1/workflows", content=THREE_STEPS, headers={"content-type": "application/yaml"}
        )
        assert created.status_code == 201, created.text
        started = client.post(
            "/api/v1/workflows/three-steps/runs", json={"input": {"source": "s3://in"}}
        )
        assert started.status_code == 201, started.text
        run_id = started.json()["run_id"]
        deadline = time.monotonic() + 60
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            run = client.get(f"/api/v1/runs/{run_id}").json()
            if run["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.1)
    assert run["status"] == "succeeded", run
    assert [(t["id"], t["status"], t["attempts"]) for t in run["tasks"]] == [
        ("extract", "succeeded", 1),
        ("wait", "succeeded", 1),
        ("publish", "succeeded", 1),
    ]
    assert all("output" in task for task in run["tasks"]), run["tasks"]


def _assert_crashed_service_is_restarted(stack: Stack, name: str) -> None:
    supervisor = Supervisor(stack.supervisor_dir)
    (before,) = (p.pid for p in supervisor.processes() if p.name == name)
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        (after,) = (p for p in supervisor.processes() if p.name == name)
        if after.pid not in (0, before):
            health = httpx.get(f"{stack.gateway_url}/health/{name}", trust_env=False)
            if health.status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"{name} was not restarted and healthy within 60 s of being killed")
