"""The worker as a real process: SIGTERM drains it, SIGKILL loses nothing."""

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from interlock.common import topics
from interlock.common.kafka import group_of
from interlock.worker import WorkerSettings

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class WorkerProcess:
    def __init__(self, process: subprocess.Popen[bytes], port: int, worker_id: str, log: Path):
        self.process = process
        self.port = port
        self.worker_id = worker_id
        self.log = log

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        async with httpx.AsyncClient() as client:
            deadline = asyncio.get_running_loop().time() + timeout_s
            while True:
                assert self.process.poll() is None, self.log.read_text()
                try:
                    response = await client.get(f"http://127.0.0.1:{self.port}/readyz")
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"worker not ready:\n{self.log.read_text()}")
                await asyncio.sleep(0.1)

    async def wait_exit(self, timeout_s: float = 60.0) -> int:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while (code := self.process.poll()) is None:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"worker did not exit:\n{self.log.read_text()}")
            await asyncio.sleep(0.05)
        return code


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Any]:
    """``spawn_worker(settings, **env)`` starts ``python -m interlock.worker``; killed after."""
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(settings: WorkerSettings, **overrides: str) -> WorkerProcess:
        port = free_port()
        worker_id = f"proc-{secrets.token_hex(3)}"
        env = {
            **os.environ,
            "INTERLOCK_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "INTERLOCK_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
            "INTERLOCK_KAFKA_PARTITIONS": str(settings.kafka_partitions),
            "INTERLOCK_KAFKA_SESSION_TIMEOUT_MS": str(settings.kafka_session_timeout_ms),
            "INTERLOCK_KAFKA_HEARTBEAT_INTERVAL_MS": str(settings.kafka_heartbeat_interval_ms),
            "INTERLOCK_WORKER_GROUP_ID": settings.worker_group_id,
            "INTERLOCK_WORKER_ID": worker_id,
            "INTERLOCK_HTTP_PORT": str(port),
            "INTERLOCK_HEARTBEAT_INTERVAL_MS": "200",
            "INTERLOCK_LOG_FORMAT": "text",
            **{f"INTERLOCK_{name.upper()}": value for name, value in overrides.items()},
        }
        log = tmp_path / f"{worker_id}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "interlock.worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        processes.append(process)
        return WorkerProcess(process, port, worker_id, log)

    try:
        yield spawn
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


async def committed_total(settings: WorkerSettings) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(
            group_of(settings, settings.worker_group_id),
            partitions=[
                TopicPartition(topics.TASK_SCHEDULED.topic(settings), p)
                for p in range(settings.kafka_partitions)
            ],
        )
    finally:
        await admin.close()
    return sum(meta.offset for meta in offsets.values() if meta.offset >= 0)


async def test_sigterm_finishes_running_tasks_reports_late_ones_and_commits(
    settings, spawn_worker, running_worker, task_events, publish, kit: Any
) -> None:
    worker = spawn_worker(settings, max_in_flight="2", drain_timeout_ms="1500")
    await worker.wait_ready()
    quick, stuck, queued = kit.new_run(), kit.new_run(), kit.new_run()
    await publish(
        [
            kit.scheduled(quick, "t", "sleep", {"duration": "1s"}),
            kit.scheduled(stuck, "t", "sleep", {"duration": "120s"}),
        ]
    )
    await kit.eventually(
        lambda: (
            task_events.of(topics.TASK_STARTED, quick)
            and task_events.of(topics.TASK_STARTED, stuck)
        )
    )
    # The worker is full: this one waits fetched (or unfetched) and must not be lost.
    await publish([kit.scheduled(queued, "t", "noop")])

    worker.process.send_signal(signal.SIGTERM)
    # Uvicorn re-raises the signal once the app's shut-down is complete.
    assert await worker.wait_exit() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in worker.log.read_text()

    finished = task_events.outcome(quick, "t") or await task_events.wait_outcome(quick, "t")
    late = await task_events.wait_outcome(stuck, "t")
    assert finished.DESCRIPTOR.name == "TaskCompleted"
    assert finished.worker_id == worker.worker_id
    assert (late.error.type, late.error.retryable) == ("WorkerShutdown", True)
    assert task_events.of(topics.TASK_STARTED, queued) == []
    assert await committed_total(settings) == 2

    async with running_worker(settings) as successor:
        picked_up = await task_events.wait_outcome(queued, "t")
    assert picked_up.DESCRIPTOR.name == "TaskCompleted"
    assert picked_up.worker_id == successor.worker_id


async def test_sigkill_mid_task_loses_nothing_when_the_attempt_is_retried(
    settings, spawn_worker, running_worker, task_events, publish, kit: Any
) -> None:
    doomed = spawn_worker(settings)
    await doomed.wait_ready()
    run = kit.new_run()
    await publish([kit.scheduled(run, "victim", "sleep", {"duration": "2s"})])
    await kit.eventually(lambda: task_events.of(topics.TASK_STARTED, run, "victim"))
    doomed.process.kill()
    assert await doomed.wait_exit() == -signal.SIGKILL

    # What the scheduler does once heartbeats stop: schedule the next attempt.
    await publish([kit.scheduled(run, "victim", "sleep", {"duration": "2s"}, attempt=2)])
    async with running_worker(settings) as survivor:
        retried = await task_events.wait_outcome(run, "victim", attempt=2, timeout_s=60)
        # The first attempt was never committed: it is redelivered and reported too.
        first = await task_events.wait_outcome(run, "victim", attempt=1, timeout_s=60)
    assert retried.DESCRIPTOR.name == "TaskCompleted"
    assert retried.worker_id == survivor.worker_id
    assert first.worker_id == survivor.worker_id

    def started_by() -> set[str]:
        return {s.worker_id for s in task_events.of(topics.TASK_STARTED, run, "victim")}

    await kit.eventually(lambda: started_by() == {doomed.worker_id, survivor.worker_id})
