"""Worker benchmarks against a real broker (not tests: ``make test`` never runs them).

Run: ``.venv/bin/pytest -q -s services/worker/tests/benchmarks/bench_worker.py``
(the file is collected only when named explicitly). Each scenario starts a real
``python -m interlock.worker`` process on topics of its own and feeds it ``noop``
``task.scheduled`` events, each of its own run (the record key), from this process;
an observer here receives ``task.completed`` and counts ``task.started``. Figures:
docs/benchmarks.md.

* ``test_lone_task_latency``: the idle worker's CPU over 5 s, then 25 tasks/s for
  12 s; latency = from publishing a task's ``task.scheduled`` to receiving its
  ``task.completed`` (p50/p99), and the part up to the worker creating the outcome
  (its ``ce_time``; same machine, same clock).
* ``test_fixed_load``: 500 and 1,500 tasks/s for 12 s; latency as above, CPU ms per
  task (user + system, psutil) of the worker and of the broker over the whole run,
  and the worker's publish calls per second.
* ``test_burst``: 20,000 tasks published at once; tasks/s from the first publish to
  the last ``task.completed``, and CPU ms per task.

CPU per task and latency at a fixed offered load are the figures to compare; the
burst's tasks/s swings with whatever else runs on the machine.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from aiokafka import AIOKafkaConsumer

from interlock.common import topics
from interlock.common.events import Event, KafkaRecord
from interlock.common.kafka import EventPublisher
from interlock.events.v1 import task_pb2
from interlock.worker import WorkerSettings

PARTITIONS = 3
IDLE_S = 5.0
FIXED_S = 12.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _percentiles(values: list[float]) -> str:
    values = sorted(values)

    def at(q: float) -> float:
        return values[int(q * (len(values) - 1))]

    return f"p50={at(0.5):.1f} p90={at(0.9):.1f} p99={at(0.99):.1f} max={values[-1]:.1f}"


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@dataclass
class Bench:
    """One scenario's worker process, publisher and observer of outcomes."""

    settings: WorkerSettings
    worker: psutil.Process
    broker: psutil.Process
    publisher: EventPublisher
    metrics_url: str
    completed_at: dict[str, float] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)
    sent_wall: dict[str, float] = field(default_factory=dict)
    outcome_wall: dict[str, float] = field(default_factory=dict)
    """When the worker created each outcome (its ``ce_time``), as a Unix time."""
    started: int = 0
    calls: float = 0
    """The worker's publish calls during the measured load."""
    """``task.started`` events received (the worker skips those of instant tasks)."""

    def records(self, count: int) -> list[KafkaRecord]:
        """Encoded ``noop`` tasks, each of a run of its own."""
        records = []
        for _ in range(count):
            run_id = f"run-{secrets.token_hex(6)}"
            event = Event(
                type=topics.TASK_SCHEDULED,
                payload=task_pb2.TaskScheduled(
                    task_id="t",
                    attempt=1,
                    type="noop",
                    params_json=b"{}",
                    idempotency_key=f"{run_id}/t/1",
                ),
                tenant="bench",
                run_id=run_id,
                source="bench",
            )
            records.append(event.to_record())
        return records

    async def send(self, records: list[KafkaRecord]) -> None:
        now, wall = time.monotonic(), time.time()
        for record in records:
            assert record.key is not None
            self.sent_at[record.key.decode()] = now
            self.sent_wall[record.key.decode()] = wall
        await self.publisher.publish_records(records)

    async def wait_all(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.completed_at) < len(self.sent_at):
            assert time.monotonic() < deadline, (
                f"{len(self.completed_at)} of {len(self.sent_at)} tasks completed"
            )
            await asyncio.sleep(0.01)

    async def publish_calls(self) -> float:
        """The worker's publish calls so far (its reporter's batch histogram count)."""
        async with httpx.AsyncClient() as client:
            text = (await client.get(self.metrics_url)).text
        for line in text.splitlines():
            if line.startswith("interlock_worker_publish_batch_events_count"):
                return float(line.split()[-1])
        raise AssertionError("the worker exposes no publish batch metric")

    def to_outcome_ms(self) -> list[float]:
        """From publishing each task to the worker creating its outcome (same clock)."""
        return [(self.outcome_wall[key] - sent) * 1000 for key, sent in self.sent_wall.items()]

    def latencies_ms(self) -> list[float]:
        return [(self.completed_at[key] - sent) * 1000 for key, sent in self.sent_at.items()]


def _read(log: Path) -> str:
    return log.read_text()


async def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, _read(log)
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, _read(log)
            await asyncio.sleep(0.1)


@pytest.fixture
def worker_process(kafka_server: Any, tmp_path: Path) -> Iterator[Any]:
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(settings: WorkerSettings) -> tuple[subprocess.Popen[bytes], int, Path]:
        port = _free_port()
        env = {
            **os.environ,
            "INTERLOCK_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "INTERLOCK_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
            "INTERLOCK_KAFKA_PARTITIONS": str(PARTITIONS),
            "INTERLOCK_WORKER_GROUP_ID": settings.worker_group_id,
            "INTERLOCK_HTTP_PORT": str(port),
            "INTERLOCK_LOG_FORMAT": "text",
        }
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "interlock.worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        processes.append(process)
        return process, port, log

    try:
        yield spawn
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _broker_process() -> psutil.Process:
    """The session's broker: the ``tansu`` process this test session started."""
    for child in psutil.Process().children(recursive=True):
        if "tansu" in child.name():
            return child
    raise AssertionError("no tansu broker among this session's processes")


@asynccontextmanager
async def _bench(kafka_server: Any, worker_process: Any) -> AsyncIterator[Bench]:
    settings = WorkerSettings(
        kafka_bootstrap_servers=kafka_server.bootstrap_servers,
        kafka_topic_prefix=f"wb{secrets.token_hex(3)}.",
        kafka_partitions=PARTITIONS,
        worker_group_id=f"worker-{secrets.token_hex(3)}",
    )
    await topics.ensure_topics(settings)
    process, port, log = worker_process(settings)
    await _wait_ready(process, port, log)
    completed_topic = topics.TASK_COMPLETED.topic(settings)
    observer = AIOKafkaConsumer(
        completed_topic,
        topics.TASK_STARTED.topic(settings),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"observer-{secrets.token_hex(3)}",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=5,
        max_poll_records=5000,
    )
    await observer.start()
    async with EventPublisher(settings, client_id="bench") as publisher:
        bench = Bench(
            settings,
            psutil.Process(process.pid),
            _broker_process(),
            publisher,
            f"http://127.0.0.1:{port}/metrics",
        )

        async def observe() -> None:
            while True:
                batch = await observer.getmany(timeout_ms=100)
                now = time.monotonic()
                for tp, records in batch.items():
                    if tp.topic != completed_topic:
                        bench.started += len(records)
                        continue
                    for record in records:
                        key = record.key.decode()
                        bench.completed_at.setdefault(key, now)
                        ce_time = dict(record.headers)["ce_time"].decode()
                        bench.outcome_wall[key] = datetime.fromisoformat(ce_time).timestamp()

        observing = asyncio.create_task(observe())
        # Warm up: the worker joins its group and has every partition before the clock runs.
        await bench.send(bench.records(30))
        await bench.wait_all(timeout_s=60)
        bench.sent_at.clear()
        bench.sent_wall.clear()
        bench.completed_at.clear()
        bench.started = 0
        try:
            yield bench
        finally:
            observing.cancel()
            await observer.stop()


async def _offered_load(
    bench: Bench, rate: int, seconds: float, tick_s: float
) -> tuple[float, float]:
    """Publish ``rate`` tasks/s in ticks until all completed; return worker and broker CPU s.

    Also sets ``bench.calls``.
    """
    per_tick = max(1, round(rate * tick_s))
    ticks = round(seconds / tick_s)
    prepared = [bench.records(per_tick) for _ in range(ticks)]
    calls_before = await bench.publish_calls()
    cpu_before = _cpu_s(bench.worker), _cpu_s(bench.broker)
    begin = time.monotonic()
    for index, records in enumerate(prepared):
        await bench.send(records)
        await asyncio.sleep(max(0.0, begin + (index + 1) * tick_s - time.monotonic()))
    await bench.wait_all()
    cpu_after = _cpu_s(bench.worker), _cpu_s(bench.broker)
    bench.calls = await bench.publish_calls() - calls_before
    return cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]


async def test_lone_task_latency(kafka_server: Any, worker_process: Any) -> None:
    async with _bench(kafka_server, worker_process) as bench:
        idle_before = _cpu_s(bench.worker)
        await asyncio.sleep(IDLE_S)
        idle_s = _cpu_s(bench.worker) - idle_before
        cpu_s, broker_s = await _offered_load(bench, rate=25, seconds=12, tick_s=0.04)
    count = len(bench.sent_at)
    print(
        f"\nidle worker: {idle_s / IDLE_S * 100:.1f}% of a core"
        f"\nlone tasks: {count} at 25/s; scheduled -> completed ms"
        f" {_percentiles(bench.latencies_ms())}, of which up to the worker's outcome"
        f" {_percentiles(bench.to_outcome_ms())}; CPU ms/task: worker"
        f" {cpu_s * 1000 / count:.2f}, broker {broker_s * 1000 / count:.2f}"
    )


@pytest.mark.parametrize("rate", [500, 1500])
async def test_fixed_load(kafka_server: Any, worker_process: Any, rate: int) -> None:
    async with _bench(kafka_server, worker_process) as bench:
        cpu_s, broker_s = await _offered_load(bench, rate=rate, seconds=FIXED_S, tick_s=0.02)
    count = len(bench.sent_at)
    print(
        f"\nfixed load: {count} at {rate}/s; scheduled -> completed ms"
        f" {_percentiles(bench.latencies_ms())}; CPU ms/task: worker {cpu_s * 1000 / count:.3f},"
        f" broker {broker_s * 1000 / count:.3f}; task.started: {bench.started};"
        f" worker publish calls: {bench.calls / FIXED_S:.0f}/s"
    )


async def test_burst(kafka_server: Any, worker_process: Any) -> None:
    async with _bench(kafka_server, worker_process) as bench:
        batches = [bench.records(1000) for _ in range(20)]
        cpu_before = _cpu_s(bench.worker), _cpu_s(bench.broker)
        begin = time.monotonic()
        for records in batches:
            await bench.send(records)
        await bench.wait_all()
        elapsed = max(bench.completed_at.values()) - begin
        cpu_s = _cpu_s(bench.worker) - cpu_before[0]
        broker_s = _cpu_s(bench.broker) - cpu_before[1]
    count = len(bench.sent_at)
    print(
        f"\nburst: {count} tasks in {elapsed:.2f} s ({count / elapsed:.0f}/s); CPU ms/task:"
        f" worker {cpu_s * 1000 / count:.3f} ({cpu_s / elapsed * 100:.0f}% of a core),"
        f" broker {broker_s * 1000 / count:.3f} ({broker_s / elapsed * 100:.0f}%);"
        f" task.started: {bench.started}"
    )
