"""Two scheduler processes share the partitions; one is SIGKILLed mid-load.

Issue 5 §9: the survivor takes the dead instance's partitions over (after the group's
session timeout), its outbox rows and its unfinished transactions are as if they never
happened or are relayed by the survivor, so every run finishes and no step that was
already recorded complete is scheduled again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from interlock.common import topics
from interlock.common.kafka import group_of
from interlock.events.v1 import definition_pb2
from interlock.scheduler import SchedulerSettings

from .conftest import FakeWorker, make_settings, running_worker, task

pytestmark = pytest.mark.integration

RUNS = 36
"""Runs of the load, half chains and half fan-outs."""
KILL_AFTER_RUNS = 12
"""Runs started before one instance is killed (the rest start while the other takes over)."""
START_INTERVAL_S = 0.05
"""Pace of the load: one run start per interval."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SchedulerProcess:
    """``python -m interlock.scheduler`` with the test's settings."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        async with httpx.AsyncClient() as client, asyncio.timeout(timeout_s):
            while True:
                assert self.process.poll() is None, self.log.read_text()
                try:
                    response = await client.get(f"http://127.0.0.1:{self.port}/readyz")
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(self.process.wait, 30) == -signal.SIGKILL


@pytest.fixture
def spawn_scheduler(tmp_path: Path) -> Iterator[Any]:
    """``spawn_scheduler(settings, name)`` starts a scheduler process; killed after the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(settings: SchedulerSettings, name: str) -> SchedulerProcess:
        port = free_port()
        password = settings.postgres_password
        env = {
            **os.environ,
            "INTERLOCK_HTTP_HOST": "127.0.0.1",
            "INTERLOCK_HTTP_PORT": str(port),
            "INTERLOCK_GRPC_PORT": str(free_port()),
            "INTERLOCK_LOG_FORMAT": "text",
            "INTERLOCK_POSTGRES_DSN": settings.postgres_dsn,
            "INTERLOCK_POSTGRES_PASSWORD": password.get_secret_value() if password else "",
            "INTERLOCK_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "INTERLOCK_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
            "INTERLOCK_KAFKA_PARTITIONS": str(settings.kafka_partitions),
            "INTERLOCK_KAFKA_SESSION_TIMEOUT_MS": str(settings.kafka_session_timeout_ms),
            "INTERLOCK_KAFKA_HEARTBEAT_INTERVAL_MS": str(settings.kafka_heartbeat_interval_ms),
            "INTERLOCK_CONSUMER_GROUP": settings.consumer_group,
            # Nothing in this test waits that long in "scheduled": a re-published
            # task.scheduled here could only be the bug the test looks for.
            "INTERLOCK_RECONCILE_AFTER_S": "600",
        }
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "interlock.scheduler"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        processes.append(process)
        return SchedulerProcess(process, port, log)

    try:
        yield spawn
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def workflow(index: int) -> list[definition_pb2.TaskSpec]:
    """A chain a → b → c, or a fan-out a → b, c, d → e."""
    if index % 2:
        return [task("a"), task("b", "a"), task("c", "b")]
    return [task("a"), task("b", "a"), task("c", "a"), task("d", "a"), task("e", "b", "c", "d")]


def distinct_scheduled(worker: FakeWorker) -> Counter[tuple[str, str, int]]:
    """How many distinct task.scheduled events each (run, task, attempt) got.

    The same event delivered twice (a relay that published and died before deleting
    its outbox row) keeps its id: a worker dedupes that. A second id means the
    scheduler decided again to run the attempt.
    """
    ids = {
        event.id: (event.run_id, event.payload.task_id, event.payload.attempt)
        for event in worker.seen
        if event.type == topics.TASK_SCHEDULED
    }
    return Counter(ids.values())


async def group_members(settings: SchedulerSettings) -> int:
    """Members of the schedulers' consumer group (0 while it is not stable)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups(
            [group_of(settings, settings.consumer_group)]
        )
    finally:
        await admin.close()
    (group,) = response.groups
    _, _, state, *_, members = group
    return len(members) if state == "Stable" else 0


async def wait_for_members(settings: SchedulerSettings, count: int) -> None:
    async with asyncio.timeout(30):
        while True:
            if await group_members(settings) == count:
                return
            await asyncio.sleep(0.2)


async def test_sigkill_of_one_instance_mid_load_loses_no_run_and_reruns_no_step(
    request: pytest.FixtureRequest, spawn_scheduler: Any
) -> None:
    settings = make_settings(
        request, kafka_session_timeout_ms=3000, kafka_heartbeat_interval_ms=500
    )
    doomed = spawn_scheduler(settings, "doomed")
    await doomed.wait_ready()
    survivor = spawn_scheduler(settings, "survivor")
    await survivor.wait_ready()
    # Both share the partitions before the load starts.
    await wait_for_members(settings, 2)
    runs: list[tuple[str, int]] = []
    async with running_worker(settings) as worker:
        worker.behavior = lambda s: ("complete", {"task": s.task_id})

        def unfinished() -> list[str]:
            return [run for run, _ in runs if not worker.of(run, topics.WORKFLOW_COMPLETED)]

        for index in range(RUNS):
            specs = workflow(index)
            runs.append((await worker.start_run(*specs), len(specs)))
            if index == KILL_AFTER_RUNS - 1:
                # Right after a start, so at least that run is in flight: runs may
                # finish within the start interval.
                assert unfinished(), "the kill came after the load it should interrupt"
                await doomed.kill()
            await asyncio.sleep(START_INTERVAL_S)
        outcomes = [await worker.wait_outcome(run_id, timeout_s=60) for run_id, _ in runs]

    assert {outcome.type for outcome in outcomes} == {topics.WORKFLOW_COMPLETED}
    scheduled = distinct_scheduled(worker)
    assert sum(scheduled.values()) == sum(count for _, count in runs)
    assert {attempt for _, _, attempt in scheduled} == {1}
    assert set(scheduled.values()) == {1}, [key for key, n in scheduled.items() if n > 1]
    password = settings.postgres_password
    conn = await asyncpg.connect(
        settings.postgres_dsn, password=password.get_secret_value() if password else None
    )
    try:
        statuses = await conn.fetch("SELECT status, count(*) AS n FROM runs GROUP BY status")
        rescheduled = await conn.fetchval(
            "SELECT count(*) FROM (SELECT run_id, task_id FROM transitions"
            " WHERE to_status = 'scheduled' GROUP BY run_id, task_id HAVING count(*) > 1) AS t"
        )
    finally:
        await conn.close()
    assert {row["status"]: row["n"] for row in statuses} == {"succeeded": RUNS}
    assert rescheduled == 0
    assert "Traceback" not in survivor.log.read_text()
