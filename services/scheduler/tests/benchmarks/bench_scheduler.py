"""Scheduler benchmarks against real servers (not tests: ``make test`` never runs them).

Run: ``.venv/bin/pytest -q -s services/scheduler/tests/benchmarks/bench_scheduler.py``
(the file is collected only when named explicitly). Figures: docs/benchmarks.md.

* ``test_timer_fires``: 28,000 delay timers due at 1,400/s for 20 s; one timer loop
  fires them; lateness = fire time - due time.
* ``test_completed_to_scheduled``: 100 runs of 60-task chains; a worker in a process of
  its own (this file run as a script) completes every ``task.scheduled`` at once (at
  most 500/s); latency = from publishing ``task.completed`` to receiving the next
  ``task.scheduled``. The CPU time per completed task of the scheduler (this process)
  and of the broker is printed too: unlike latency, it barely depends on what else
  the machine does.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import psutil

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.kafka import EventConsumer, EventPublisher
from interlock.common.outbox import OUTBOX_MIGRATIONS
from interlock.common.postgres import apply_migrations, create_pool
from interlock.common.testing import app_client
from interlock.events.v1 import definition_pb2, task_pb2, workflow_pb2
from interlock.scheduler import SchedulerSettings, create_app
from interlock.scheduler.app import MIGRATIONS
from interlock.scheduler.handlers import BatchHandler
from interlock.scheduler.loops import TimerLoop
from interlock.scheduler.service import SchedulerService

TIMERS = 28_000
TIMER_RATE = 1_400
RUNS, CHAIN, COMPLETION_RATE = 100, 60, 500


def _percentiles(values: list[float]) -> str:
    values = sorted(values)

    def at(q: float) -> float:
        return values[int(q * (len(values) - 1))]

    return f"p50={at(0.5):.0f} p95={at(0.95):.0f} p99={at(0.99):.0f} max={values[-1]:.0f}"


def _started(*tasks: definition_pb2.TaskSpec) -> workflow_pb2.WorkflowStarted:
    return workflow_pb2.WorkflowStarted(
        workflow_name="bench",
        workflow_version=1,
        definition=definition_pb2.WorkflowDefinition(name="bench", version=1, tasks=tasks),
        input_json=b"{}",
    )


def _start_events(started: workflow_pb2.WorkflowStarted, count: int) -> list[Event]:
    return [
        Event(
            type=topics.WORKFLOW_STARTED,
            payload=started,
            tenant="t",
            run_id=str(uuid.uuid4()),
            source="bench",
        )
        for _ in range(count)
    ]


async def test_timer_fires(postgres_server: Any) -> None:
    settings = SchedulerSettings(
        postgres_dsn=postgres_server.create_database(f"bench_{secrets.token_hex(4)}"),
        postgres_password=postgres_server.password,
    )
    pool = await create_pool(settings)
    await apply_migrations(pool, [OUTBOX_MIGRATIONS, MIGRATIONS])
    hour = definition_pb2.DelaySpec(duration_ms=3_600_000)
    started = _started(definition_pb2.TaskSpec(id="wait", type="delay", delay=hour))
    service = SchedulerService(lambda: pool)
    handler = BatchHandler(service)
    for _ in range(0, TIMERS, 500):
        await handler(_start_events(started, 500))
    # Spread the due times at TIMER_RATE from 2 s from now; keep each due time in
    # scheduled_at (minus the hour) to measure lateness afterwards.
    await pool.execute(
        """
        WITH r AS (SELECT run_id, row_number() OVER (ORDER BY run_id) AS n FROM timers)
        UPDATE timers t SET due_at = now() + interval '2 s' + (r.n / $1::float) * interval '1 s'
        FROM r WHERE r.run_id = t.run_id
        """,
        TIMER_RATE,
    )
    await pool.execute(
        "UPDATE tasks t SET scheduled_at = tm.due_at - interval '1 hour'"
        " FROM timers tm WHERE tm.run_id = t.run_id"
    )
    loop = TimerLoop(service)
    begin = time.monotonic()
    running = asyncio.create_task(loop.run())
    while True:
        if not await pool.fetchval("SELECT count(*) FROM timers"):
            break
        await asyncio.sleep(0.5)
    elapsed = time.monotonic() - begin
    running.cancel()
    rows = await pool.fetch(
        "SELECT extract(epoch FROM ended_at - scheduled_at) * 1000 - 3600000 AS late FROM tasks"
    )
    await pool.close()
    late = [float(row["late"]) for row in rows]
    print(
        f"\ntimers: {len(late)} due at {TIMER_RATE}/s, all fired {elapsed:.1f} s after start"
        f" (last due at {2 + TIMERS / TIMER_RATE:.1f} s); lateness ms {_percentiles(late)}"
    )
    assert len(late) == TIMERS


async def test_completed_to_scheduled(postgres_server: Any, kafka_server: Any) -> None:
    settings = SchedulerSettings(
        postgres_dsn=postgres_server.create_database(f"bench_{secrets.token_hex(4)}"),
        postgres_password=postgres_server.password,
        kafka_bootstrap_servers=kafka_server.bootstrap_servers,
        kafka_topic_prefix=f"b{secrets.token_hex(3)}.",
        consumer_group="scheduler-bench",
        grpc_port=0,
    )
    broker = _process_listening_on(int(kafka_server.bootstrap_servers.rsplit(":", 1)[1]))
    async with app_client(create_app(settings)):
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            settings.kafka_bootstrap_servers,
            settings.kafka_topic_prefix,
            stdout=asyncio.subprocess.PIPE,
            limit=2**24,  # the results line holds every latency
        )
        # The worker prints "ready" once consuming, then its results as JSON.
        assert worker.stdout is not None
        assert (await worker.stdout.readline()).strip() == b"ready"
        cpu_before = _cpu_s(psutil.Process()), _cpu_s(broker)
        result = json.loads(await worker.stdout.readline())
        cpu_after = _cpu_s(psutil.Process()), _cpu_s(broker)
        await worker.wait()
    done, elapsed = result["done"], result["elapsed"]
    scheduler_ms, broker_ms = (
        (b - a) * 1000 / done for a, b in zip(cpu_before, cpu_after, strict=True)
    )
    print(
        f"\ncompletions: {done} in {elapsed:.1f} s ({done / elapsed:.0f}/s);"
        f" task.completed -> next task.scheduled ms {_percentiles(result['latencies'])};"
        f" CPU ms per task: scheduler process {scheduler_ms:.2f}, broker {broker_ms:.2f};"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    assert done == RUNS * CHAIN


def _process_listening_on(port: int) -> psutil.Process:
    for connection in psutil.net_connections("tcp"):
        if (
            connection.status == psutil.CONN_LISTEN
            and connection.laddr
            and connection.laddr.port == port
        ):
            return psutil.Process(connection.pid)
    raise AssertionError(f"nothing listens on port {port}")


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _worker(bootstrap_servers: str, topic_prefix: str) -> None:
    """The benchmark's worker: start the runs, answer every task.scheduled at once."""
    settings = SchedulerSettings(
        kafka_bootstrap_servers=bootstrap_servers, kafka_topic_prefix=topic_prefix
    )
    chain = [
        definition_pb2.TaskSpec(id=f"t{i}", type="noop", depends_on=[f"t{i - 1}"] if i else [])
        for i in range(CHAIN)
    ]
    sent: dict[tuple[str, int], float] = {}
    latencies: list[float] = []
    ready: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue()

    async def on_scheduled(events: Sequence[Event]) -> None:
        now = time.monotonic()
        for event in events:
            payload = event.payload
            assert isinstance(payload, task_pb2.TaskScheduled)
            index = int(payload.task_id[1:])
            before = sent.pop((event.run_id, index - 1), None)
            if before is not None:
                latencies.append((now - before) * 1000)
            ready.put_nowait((event.run_id, payload.task_id, payload.attempt))

    publisher = EventPublisher(settings, client_id="bench")
    await publisher.start()
    consumer = EventConsumer(
        settings,
        group_id="bench-worker",
        event_types=[topics.TASK_SCHEDULED],
        handler=on_scheduled,
    )
    await consumer.start()
    consuming = asyncio.create_task(consumer.run())
    print("ready", flush=True)
    await publisher.publish(_start_events(_started(*chain), RUNS))
    done, begin = 0, time.monotonic()
    while done < RUNS * CHAIN and time.monotonic() - begin < 240:
        tick = time.monotonic()
        batch: list[tuple[str, str, int]] = []
        while not ready.empty() and len(batch) < COMPLETION_RATE // 20:
            batch.append(ready.get_nowait())
        if batch:
            now = time.monotonic()
            for run_id, task_id, _ in batch:
                sent[(run_id, int(task_id[1:]))] = now
            await publisher.publish(
                [
                    Event(
                        type=topics.TASK_COMPLETED,
                        payload=task_pb2.TaskCompleted(
                            task_id=task_id, attempt=attempt, output_json=b"{}"
                        ),
                        tenant="t",
                        run_id=run_id,
                        source="bench",
                    )
                    for run_id, task_id, attempt in batch
                ]
            )
            done += len(batch)
        await asyncio.sleep(max(0.0, 0.05 - (time.monotonic() - tick)))
    elapsed = time.monotonic() - begin
    await consumer.stop()
    consuming.cancel()
    await publisher.stop()
    print(json.dumps({"done": done, "elapsed": elapsed, "latencies": latencies}), flush=True)


if __name__ == "__main__":
    asyncio.run(_worker(*sys.argv[1:3]))
