"""Queues and priorities end to end: the real scheduler and real workers (issue 17, 1-2).

- A queue's tasks reach only the workers serving it: a worker process serving only
  ``gpu`` runs the ``gpu`` tasks, and the default worker never reads them.
- Among tasks waiting for the same queue, higher priority starts first: with the worker
  saturated by a backlog of low-priority runs, a high-priority run started afterwards
  finishes before nearly all of them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from interlock.common import topics
from interlock.common.testing import TEST_IDENTITY, app_client
from interlock.events.v1 import definition_pb2, workflow_pb2
from interlock.scheduler import SchedulerSettings
from interlock.worker import Worker, WorkerSettings
from interlock.worker import create_app as create_worker_app

from .conftest import FakeWorker, make_settings, running_scheduler, running_worker, task
from .test_kill import free_port

pytestmark = pytest.mark.integration

WAITING = "interlock_scheduler_tasks_waiting"
GPU_LANE = topics.task_topic("gpu")

LOW_RUNS = 500
"""Low-priority runs queued before the high-priority one."""


def worker_settings(settings: SchedulerSettings, **overrides: Any) -> WorkerSettings:
    """Worker settings sharing the scheduler's broker, prefix and partitions."""
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
        "kafka_topic_prefix": settings.kafka_topic_prefix,
        "kafka_partitions": settings.kafka_partitions,
        "kafka_session_timeout_ms": 3000,
        "kafka_heartbeat_interval_ms": 500,
        "worker_group_id": f"{settings.consumer_group}-workers",
        "drain_timeout_ms": 2000,
        "identity_jwks": TEST_IDENTITY.jwks,
        "log_format": "text",
    }
    values.update(overrides)
    return WorkerSettings(**values)


@asynccontextmanager
async def in_process_worker(settings: WorkerSettings) -> AsyncIterator[Worker]:
    app = create_worker_app(settings)
    async with app_client(app):
        yield app.state.worker


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Any]:
    """``await spawn_worker(settings)`` starts ``python -m interlock.worker`` and waits until
    it is ready; it is stopped after the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(settings: WorkerSettings) -> Awaitable[None]:
        port = free_port()
        env = {
            **os.environ,
            "INTERLOCK_HTTP_HOST": "127.0.0.1",
            "INTERLOCK_HTTP_PORT": str(port),
            "INTERLOCK_LOG_FORMAT": "text",
            "INTERLOCK_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "INTERLOCK_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
            "INTERLOCK_KAFKA_PARTITIONS": str(settings.kafka_partitions),
            "INTERLOCK_KAFKA_SESSION_TIMEOUT_MS": str(settings.kafka_session_timeout_ms),
            "INTERLOCK_KAFKA_HEARTBEAT_INTERVAL_MS": str(settings.kafka_heartbeat_interval_ms),
            "INTERLOCK_WORKER_GROUP_ID": settings.worker_group_id,
            "INTERLOCK_WORKER_ID": settings.worker_id,
            "INTERLOCK_WORKER_QUEUES": f'["{settings.worker_queues[0]}"]',
            "INTERLOCK_MAX_IN_FLIGHT": str(settings.max_in_flight),
            "INTERLOCK_IDENTITY_JWKS": TEST_IDENTITY.jwks,
        }
        log = tmp_path / f"{settings.worker_id}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "interlock.worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        processes.append(process)
        return _ready(process, port, log)

    try:
        yield spawn
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    async with httpx.AsyncClient() as client, asyncio.timeout(60):
        while True:
            assert process.poll() is None, f"the worker exited; its log: {log}"
            try:
                ready = await client.get(f"http://127.0.0.1:{port}/readyz")
                if ready.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)


async def open_pool(settings: SchedulerSettings) -> asyncpg.Pool:
    password = settings.postgres_password
    pool: asyncpg.Pool = await asyncpg.create_pool(
        settings.postgres_dsn,
        password=password.get_secret_value() if password else None,
        min_size=1,
        max_size=2,
    )
    return pool


async def test_a_gpu_worker_process_takes_the_gpu_tasks_and_the_default_worker_never_sees_them(
    request: pytest.FixtureRequest, spawn_worker: Any
) -> None:
    settings = make_settings(request)
    default_settings = worker_settings(settings, worker_id="default-worker")
    async with (
        running_scheduler(settings),
        running_worker(settings) as observer,
        in_process_worker(default_settings) as default_worker,
    ):
        pool = await open_pool(settings)
        try:
            gpu_run = await observer.start_run(
                task("prepare"), task("train", "prepare", queue="gpu"), task("report", "train")
            )
            # No worker serves gpu yet: the task waits, the default worker skips nothing.
            await observer.wait_for(
                lambda: ("train", 1) in observer.scheduled(gpu_run), what="train scheduled"
            )
            # It waits visibly: counted in its lane's metric by the reconciler's pass.
            await observer.wait_for(
                lambda: (REGISTRY.get_sample_value(WAITING, {"lane": GPU_LANE}) or 0) >= 1,
                timeout_s=20,
                what="the gpu lane's waiting tasks counted",
            )
            assert await _status(pool, gpu_run, "train") == "scheduled"
            await spawn_worker(
                worker_settings(settings, worker_id="gpu-worker", worker_queues=["gpu"])
            )
            outcome = await observer.wait_outcome(gpu_run, timeout_s=60)
            default_topics = {topic for topic, _ in default_worker.task_assignment()}
            workers = await _workers(pool, gpu_run)
        finally:
            await pool.close()
    assert outcome.type == topics.WORKFLOW_COMPLETED
    assert workers == {
        "prepare": "default-worker",
        "train": "gpu-worker",
        "report": "default-worker",
    }
    assert default_topics == {settings.kafka_topic_prefix + t for t in topics.queue_topics("")}


async def test_a_high_priority_run_overtakes_a_saturating_backlog_of_low_priority_runs(
    request: pytest.FixtureRequest, spawn_worker: Any
) -> None:
    settings = make_settings(request)
    # The worker's slots must be the bottleneck (not the CPU of this loaded machine):
    # 2 slots of 100 ms tasks drain the backlog in about 25 s, 20 runs a second, so the
    # high-priority run's own trip (start, scheduler, worker), which takes a second or
    # more when the machine is busy, lets few low runs end before it.
    sleepy = {"type": "sleep", "params": {"duration_ms": 100}}
    async with running_scheduler(settings), running_worker(settings) as observer:
        await spawn_worker(worker_settings(settings, worker_id="w", max_in_flight=2))
        low = await start_runs(observer, LOW_RUNS, task("a", priority=-10, **sleepy))
        await observer.wait_for(
            lambda: completed(observer), timeout_s=60, what="the backlog started"
        )
        high = await observer.start_run(task("a", priority=10, **sleepy))
        await observer.wait_for(
            lambda: len(completed(observer)) > LOW_RUNS, timeout_s=120, what="every run ended"
        )
    finished = completed(observer)
    overtaken = sum(1 for run in low if finished[run] > finished[high])
    assert overtaken >= 0.9 * LOW_RUNS, f"finished before only {overtaken} of {LOW_RUNS}"


def completed(observer: FakeWorker) -> dict[str, datetime]:
    """When each run the observer saw completing completed."""
    return {e.run_id: e.time for e in observer.seen if e.type == topics.WORKFLOW_COMPLETED}


async def start_runs(observer: FakeWorker, count: int, *specs: Any) -> list[str]:
    """Start ``count`` runs of ``specs`` with one publish (one produce batch)."""
    run_ids = [str(uuid.uuid4()) for _ in range(count)]
    started = workflow_pb2.WorkflowStarted(
        workflow_name="wf",
        workflow_version=1,
        definition=definition_pb2.WorkflowDefinition(name="wf", version=1, tasks=specs),
        input_json=b"{}",
    )
    await observer.publisher.publish([observer.event(run_id, started) for run_id in run_ids])
    return run_ids


async def _status(pool: asyncpg.Pool, run_id: str, task_id: str) -> str | None:
    status: str | None = await pool.fetchval(
        "SELECT status FROM tasks WHERE run_id = $1 AND task_id = $2", run_id, task_id
    )
    return status


async def _workers(pool: asyncpg.Pool, run_id: str) -> dict[str, str]:
    rows = await pool.fetch("SELECT task_id, worker_id FROM tasks WHERE run_id = $1", run_id)
    return {row["task_id"]: row["worker_id"] for row in rows}
