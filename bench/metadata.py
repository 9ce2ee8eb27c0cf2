"""``python -m bench.metadata``: the metadata service under the fan-out load, and search.

(i) Metadata lag: fan-out runs (1 → 10 → 1 tasks, each an ``echo`` writing
``LOG_LINES_PER_TASK`` log lines, as issue 14's load says) are started through the
gateway for ``--seconds``; a sample of them is polled at ``GET /api/v1/executions/{id}`` until
the document shows the run ended, and the lag is the time it became visible minus the
run's end (the outcome event's time). Events/s and documents written/s come from the
service's own counters over the window. (ii) Search: 100,000 executions are written
straight into the stack's MongoDB, then ``GET /api/v1/executions`` is timed through the
gateway with a status + workflow + time filter, with ``q``, and with no filter (the
newest runs, a console's first page); it runs before (i), whose backlog the projection
may still be draining afterwards. (iii) Writes, ``--only writes``: the two
consumers' writes alone (the execution projection's and the task-log consumer's, the
same batches every time) against a fresh MongoDB-protocol server, with the server's CPU
and this process's per 1,000 tasks: what the metadata service costs its server, without
the rest of the platform's noise. (i) also reports the stack's CPU per program per
1,000 tasks and per 1,000 log lines; ``--log-lines 0`` runs the same load writing none,
to tell what the lines themselves cost.

It starts its own stack (``BENCH_METADATA_PORT_OFFSET`` pins its ports; default: the
first free bench port offset). ``make bench`` runs it (``BENCH_SYSTEMS`` names
``metadata``); figures from a loaded machine are indicative only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from pymongo import AsyncMongoClient

from bench import stats, workloads
from bench.config import BenchConfig
from bench.cpu import CpuMeter
from bench.interlock_api import InterlockClient, parse_time
from bench.interlock_stack import LOGIN, BenchStack
from bench.progress import ProgressBoard
from interlock.common.statuses import RunStatus
from interlock.devstack import _servers
from interlock.devstack._process import free_ports
from interlock.devstack._runner import start_server
from interlock.devstack._stack import SERVICES
from interlock.metadata.domain import (
    AttemptFinished,
    AttemptScheduled,
    AttemptStarted,
    Fact,
    RunEnded,
    RunStarted,
    apply,
)
from interlock.metadata.logs import LogsOptions
from interlock.metadata.logs.domain import IncomingLog, LogLine
from interlock.metadata.logs.service import LogService
from interlock.metadata.logs.store import LogIndexes, LogStore
from interlock.metadata.service import ExecutionService
from interlock.metadata.store import ExecutionIndexes, ExecutionStore

SEARCH_DOCUMENTS = 100_000
SEARCH_REQUESTS = 50
START_CONCURRENCY = 64
"""Run starts in flight at most: past it the start rate falls behind ``--rate``."""
SAMPLE_EVERY = 10
"""One run in this many is polled for its lag (polling every run would be the load)."""
POLL_INTERVAL_S = 0.1
"""Least time between two reads of a sampled run's document: the lag's resolution (the
goal is 2 s). At 50 ms the reads of the sampled runs took a quarter of the service's CPU
in a profile, slowing what they measure."""
POLL_INTERVAL_SHARE = 0.04
"""A sampled run is read again after this share of its age (at least
``POLL_INTERVAL_S``, at most ``MAX_POLL_INTERVAL_S``): a run still not shown after
seconds is read less often. At a fixed 100 ms, a lag of 30 s meant 300 runs read ten
times a second each, three quarters of the service's CPU in a profile, which held the
lag up itself."""
MAX_POLL_INTERVAL_S = 1.0
ENDED = {status.value for status in RunStatus if status.finished}
LOG_LINES_PER_TASK = 3
WRITE_BATCHES = 40
"""Batches of the writes measure (iii) per shape of run."""
RUNS_PER_BATCH = 20
"""Runs starting in each of those batches; a run's facts come in three batches, as a
run's events reach the projection in a few under load."""


def logging_fanout(name: str, lines_per_task: int = LOG_LINES_PER_TASK) -> dict[str, Any]:
    """The fan-out workflow whose every task writes ``lines_per_task`` lines at once."""
    definition = workloads.fanout(name)
    lines = [f"line {number}" for number in range(1, lines_per_task + 1)]
    for task in definition["tasks"]:
        task["type"] = "echo"
        task["params"] = {"lines": lines, "interval": 0}
    return definition


def _counter(metrics: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.e+]+)$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _write_lag_buckets(metrics: str) -> dict[float, float]:
    """The executions store's write-lag histogram: cumulative batches by upper bound."""
    buckets = {}
    for labels, value in re.findall(
        r"^interlock_metadata_write_lag_seconds_bucket\{([^}]*)\} ([0-9.e+]+)$",
        metrics,
        re.MULTILINE,
    ):
        if 'store="executions"' in labels and (bound := re.search(r'le="([^"]+)"', labels)):
            buckets[float(bound.group(1))] = float(value)
    return buckets


def write_lag_percentiles(before: str, after: str) -> dict[str, float | None]:
    """Upper bounds of the p50 and p99 batch write lag between two scrapes.

    The service's own view (oldest event of each batch to its write), read from its
    histogram: no polling, so it holds even when the sampled reads fall behind.
    ``None``: past the histogram's last finite bucket (or no batch).
    """
    start, end = _write_lag_buckets(before), _write_lag_buckets(after)
    counts = sorted((bound, end[bound] - start.get(bound, 0.0)) for bound in end)
    total = counts[-1][1] if counts else 0.0

    def bound_of(share: float) -> float | None:
        bound = next((b for b, n in counts if total and n >= share * total), None)
        return bound if bound is not None and bound != float("inf") else None

    return {"p50_s_at_most": bound_of(0.5), "p99_s_at_most": bound_of(0.99)}


async def _lag(client: InterlockClient, run_id: str, deadline: float) -> float | None:
    started = time.monotonic()
    while (now := time.monotonic()) < deadline:
        answer = await client._request("GET", f"/api/v1/executions/{run_id}")
        if answer.status == 200:
            body = answer.json()
            if body["status"] in ENDED and body["finished_at"]:
                return (datetime.now(UTC) - parse_time(body["finished_at"])).total_seconds()
        share = (now - started) * POLL_INTERVAL_SHARE
        await asyncio.sleep(min(MAX_POLL_INTERVAL_S, max(POLL_INTERVAL_S, share)))
    return None


async def measure_lag(
    client: InterlockClient,
    metrics_url: str,
    seconds: float,
    rate: float,
    meter: CpuMeter,
    lines_per_task: int = LOG_LINES_PER_TASK,
) -> dict[str, Any]:
    """Start fan-out runs at ``rate`` per second for ``seconds``; sample their lag.

    ``meter`` counts the stack's CPU over the window, per program, reported per 1,000
    tasks and per 1,000 log lines stored (the lines' own share is the difference with
    a window of ``lines_per_task=0``).
    """
    workflow = f"bench-meta-fanout-{secrets.token_hex(3)}"
    await client.define(logging_fanout(workflow, lines_per_task))
    before = await client.fetch_text(metrics_url)
    await meter.start()
    began = time.monotonic()
    lags: list[tuple[float, float | None]] = []
    started = 0
    accepted: list[str] = []
    starting: set[asyncio.Task[Any]] = set()
    sampling: set[asyncio.Task[Any]] = set()

    async def sample_lag(run_id: str, at: float) -> None:
        lags.append((at, await _lag(client, run_id, time.monotonic() + 60)))

    async def start(sample: bool, at: float) -> None:
        run = await client.start_run(workflow)
        accepted.append(run.run_id)
        if sample:
            task = asyncio.create_task(sample_lag(run.run_id, at))
            sampling.add(task)
            task.add_done_callback(sampling.discard)

    while (elapsed := time.monotonic() - began) < seconds:
        # At most START_CONCURRENCY starts in flight: an overloaded platform gets fewer.
        while started < elapsed * rate and len(starting) < START_CONCURRENCY:
            started += 1
            task = asyncio.create_task(start(started % SAMPLE_EVERY == 0, elapsed))
            starting.add(task)
            task.add_done_callback(starting.discard)
        await asyncio.sleep(0.01)
    await asyncio.gather(*starting, return_exceptions=True)
    await asyncio.gather(*sampling, return_exceptions=True)
    window = time.monotonic() - began
    after = await client.fetch_text(metrics_url)
    await meter.stop()
    values = [(at, lag) for at, lag in lags if lag is not None]
    first = [lag for at, lag in values if at < seconds / 2]
    second = [lag for at, lag in values if at >= seconds / 2]
    events = _counter(after, "interlock_metadata_events_total") - _counter(
        before, "interlock_metadata_events_total"
    )
    docs = _counter(after, "interlock_metadata_documents_written_total") - _counter(
        before, "interlock_metadata_documents_written_total"
    )
    lines = _counter(after, "interlock_metadata_log_lines_total") - _counter(
        before, "interlock_metadata_log_lines_total"
    )
    return {
        "runs_started": len(accepted),
        "runs_refused": started - len(accepted),
        "tasks_started_per_s": stats.rate_per_s(len(accepted) * workloads.FANOUT_TASKS, window),
        "sampled_runs": len(lags),
        "lag_ms": stats.latency_percentiles_ms([lag for _, lag in values]),
        "lag_ms_first_half": stats.latency_percentiles_ms(first),
        "lag_ms_second_half": stats.latency_percentiles_ms(second),
        "lost_samples": len(lags) - len(values),
        "batch_write_lag": write_lag_percentiles(before, after),
        "events_per_s": stats.rate_per_s(events, window),
        "documents_written_per_s": stats.rate_per_s(docs, window),
        "log_lines_stored_per_s": stats.rate_per_s(lines, window),
        **_cpu_shares(
            meter.by_program(), tasks=len(accepted) * workloads.FANOUT_TASKS, lines=lines
        ),
    }


def _cpu_shares(by_program: dict[str, float], *, tasks: int, lines: float) -> dict[str, Any]:
    """CPU seconds per 1,000 tasks and per 1,000 log lines stored, by program and in all."""

    def per_1000(count: float) -> dict[str, float]:
        if not count:
            return {}
        shares = {name: round(used * 1000 / count, 3) for name, used in by_program.items()}
        return {**shares, "total": round(sum(by_program.values()) * 1000 / count, 3)}

    return {
        "cpu_s_per_1000_tasks_by_program": per_1000(tasks),
        "cpu_s_per_1000_log_lines_by_program": per_1000(lines),
    }


def _document(index: int, now: datetime) -> dict[str, Any]:
    run_id = f"bench-{index:07d}"
    workflow = f"wf-{index % 50}"
    created = now - timedelta(seconds=index * 5)
    failed = index % 7 == 0
    base: dict[str, Any] = {"tenant": "default", "run_id": run_id}
    facts = [
        RunStarted(
            event_id=f"{run_id}-s",
            time=created,
            workflow=workflow,
            version=1,
            labels={"team": f"t{index % 9}"},
            task_types={"fetch": "http", "load": "python"},
            **base,
        ),
        AttemptScheduled(
            event_id=f"{run_id}-a",
            time=created,
            task_id="fetch",
            attempt=1,
            task_type="http",
            **base,
        ),
        AttemptFinished(
            event_id=f"{run_id}-b",
            time=created + timedelta(seconds=2),
            task_id="fetch",
            attempt=1,
            worker_id="w1",
            started_at=created,
            error={
                "type": "TimeoutError",
                "message": f"upstream {index % 97} timed out",
                "retryable": False,
            }
            if failed
            else None,
            **base,
        ),
        RunEnded(
            event_id=f"{run_id}-e",
            time=created + timedelta(seconds=3),
            status=RunStatus.FAILED if failed else RunStatus.SUCCEEDED,
            **base,
        ),
    ]
    doc = apply(None, facts, retention=timedelta(days=90))
    doc["rev"] = 1
    return doc


async def measure_search(client: InterlockClient, mongo_url: str) -> dict[str, Any]:
    """Write ``SEARCH_DOCUMENTS`` executions, then time filtered searches and ``q``."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    now = datetime.now(UTC).replace(microsecond=0)
    began = time.monotonic()
    collection = mongo["interlock_metadata"]["executions"]
    for start in range(0, SEARCH_DOCUMENTS, 2000):
        await collection.insert_many(
            [_document(i, now) for i in range(start, start + 2000)], ordered=False
        )
    loaded_s = time.monotonic() - began
    await mongo.close()
    window = {
        "created_after": (now - timedelta(days=2)).isoformat(),
        "created_before": (now - timedelta(days=1)).isoformat(),
    }

    async def timed(params: dict[str, Any]) -> dict[str, Any]:
        durations, failures = [], 0
        for _ in range(SEARCH_REQUESTS):
            began = time.perf_counter()
            answer = await client._request("GET", "/api/v1/executions", params=params)
            if answer.status == 200:
                durations.append(time.perf_counter() - began)
            else:
                failures += 1  # e.g. the gateway's 30 s route timeout (504)
        return {**stats.latency_percentiles_ms(durations), "failed_requests": failures}

    return {
        "documents": SEARCH_DOCUMENTS,
        "load_s": round(loaded_s, 1),
        "status_workflow_time_ms": await timed({"status": "failed", "workflow": "wf-7", **window}),
        "q_ms": await timed({"q": "upstream timeouterror 42"}),
        "newest_ms": await timed({}),
    }


def _run_phases(task_ids: list[str]) -> list[list[Fact]]:
    """A run's facts in three batches: start and first task, the middle, the rest and end."""
    run_id, at = secrets.token_hex(8), datetime.now(UTC).replace(microsecond=0)
    base: dict[str, Any] = {"tenant": "default", "run_id": run_id, "time": at}
    numbers = iter(range(1_000_000))

    def event() -> str:
        return f"{run_id}-{next(numbers)}"

    per_task = [
        [
            AttemptScheduled(event_id=event(), task_id=task, attempt=1, task_type="noop", **base),
            AttemptStarted(event_id=event(), task_id=task, attempt=1, worker_id="w1", **base),
            AttemptFinished(
                event_id=event(), task_id=task, attempt=1, worker_id="w1", started_at=at, **base
            ),
        ]
        for task in task_ids
    ]
    started = RunStarted(
        event_id=event(),
        workflow="bench-writes",
        version=1,
        task_types=dict.fromkeys(task_ids, "noop"),
        **base,
    )
    ended = RunEnded(event_id=event(), status=RunStatus.SUCCEEDED, **base)
    middle = [fact for facts in per_task[1:-1] for fact in facts]
    return [[started, *per_task[0]], middle, [*per_task[-1], ended]]


def _log_lines(run_id: str, task_ids: list[str]) -> list[IncomingLog]:
    now = datetime.now(UTC)
    lines = [
        LogLine(seq=seq, time=now, level="INFO", message=f"line {seq}")
        for seq in range(1, LOG_LINES_PER_TASK + 1)
    ]
    return [
        IncomingLog(
            tenant="default",
            attempt=(run_id, task, 1),
            lines=lines,
            last_seq=LOG_LINES_PER_TASK,
            worker_id="w1",
        )
        for task in task_ids
    ]


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _write_shape(
    server: psutil.Process, db: Any, task_ids: list[str], *, logs: bool
) -> dict[str, Any]:
    """Server and own CPU per 1,000 tasks of ``WRITE_BATCHES`` batches of one shape."""
    retention = timedelta(days=90)
    store = ExecutionStore(lambda: db)
    await ExecutionIndexes(store, retention=retention).start()
    await LogIndexes(lambda: db).start()
    executions = ExecutionService(store, retention=retention)
    log_service = LogService(LogStore(lambda: db, retention=timedelta(days=30)), LogsOptions())
    runs = [[_run_phases(task_ids) for _ in range(RUNS_PER_BATCH)] for _ in range(WRITE_BATCHES)]
    own = psutil.Process()
    server_before, own_before, began = _cpu_s(server), _cpu_s(own), time.monotonic()
    for index in range(WRITE_BATCHES):
        facts = [fact for run in runs[index] for fact in run[0]]
        for back, phase in ((1, 1), (2, 2)):
            if index >= back:
                facts += [fact for run in runs[index - back] for fact in run[phase]]
        await executions.apply(facts)
        if logs:
            await log_service.ingest(
                [log for run in runs[index] for log in _log_lines(run[0][0].run_id, task_ids)]
            )
    tasks = WRITE_BATCHES * RUNS_PER_BATCH * len(task_ids)
    return {
        "tasks": tasks,
        "seconds": round(time.monotonic() - began, 1),
        "server_cpu_s_per_1000_tasks": round((_cpu_s(server) - server_before) * 1000 / tasks, 3),
        "metadata_cpu_s_per_1000_tasks": round((_cpu_s(own) - own_before) * 1000 / tasks, 3),
    }


@contextlib.contextmanager
def _started_mongo() -> Iterator[tuple[str, psutil.Process]]:
    """A fresh MongoDB-protocol server: its URL and its process."""
    (port,) = free_ports(1)
    base = Path(tempfile.mkdtemp(prefix="bench-metadata-writes-"))
    _servers.prepare_mongo(base / "data")
    server = start_server(_servers.mongo_spec(base / "data", port=port), log_path=base / "log")
    try:
        yield _servers.mongo_url(port), psutil.Process(server.pid)
    finally:
        server.stop(graceful=False)
        shutil.rmtree(base, ignore_errors=True)


async def measure_writes() -> dict[str, Any]:
    """(iii): the consumers' writes of (a)- and (b)-shaped runs, the latter with log lines."""
    sequential = [f"step{number}" for number in range(1, workloads.SEQUENTIAL_TASKS + 1)]
    fanout = ["first", *(f"branch{n}" for n in range(workloads.FANOUT_WIDTH)), "last"]
    report: dict[str, Any] = {}
    for name, task_ids, logs in (
        ("sequential", sequential, False),
        ("fanout", fanout, False),
        ("fanout_with_logs", fanout, True),
    ):
        with _started_mongo() as (url, server):
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
            try:
                report[name] = await _write_shape(
                    server, client["interlock_metadata"], task_ids, logs=logs
                )
            finally:
                await client.close()
    return report


async def main_async(
    seconds: float,
    rate: float,
    parts: tuple[str, ...] = ("lag", "search"),
    lines_per_task: int = LOG_LINES_PER_TASK,
) -> dict[str, Any]:
    """Start a stack, measure (i) and (ii) (those ``parts`` names), stop it; return the report."""
    offset = os.environ.get("BENCH_METADATA_PORT_OFFSET")
    stack = BenchStack(port_offset=int(offset) if offset else None)
    client = InterlockClient(stack.gateway_url)
    try:
        await stack.up()  # inside: a stack that failed to start is cleaned too
        await client.login(*LOGIN)
        metadata = next(service for service in SERVICES if service.name == "metadata")
        metrics_url = f"http://127.0.0.1:{stack.stack.http_port(metadata)}/metrics"
        report: dict[str, Any] = {"port_offset": stack.port_offset}
        # Search first: after the lag load the projection may still be draining it, and
        # the searches would measure that backlog rather than the queries.
        if "search" in parts:
            report["search"] = await measure_search(
                client, _servers.mongo_url(stack.stack.port("mongo"))
            )
        if "lag" in parts:
            meter = CpuMeter(stack.pids)
            report["fanout"] = await measure_lag(
                client, metrics_url, seconds, rate, meter, lines_per_task
            )
            print(json.dumps(report["fanout"]), file=sys.stderr, flush=True)  # noqa: T201
        return report
    finally:
        await client.aclose()
        await stack.down()


async def measure_metadata(config: BenchConfig, board: ProgressBoard) -> dict[str, Any]:
    """Workloads (i) and (ii), the fan-out window sized by ``BENCH_SCALE`` (20 s at 1)."""
    board.note("metadata: search over 100,000 executions, then lag under the fan-out load")
    return await main_async(max(5.0, 20.0 * config.scale), 110.0)


def main(argv: list[str] | None = None) -> int:
    """Parse the options (``argv``, default the command line), run, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="Fan-out window. Default: 20.")
    parser.add_argument(
        "--rate",
        type=float,
        default=110.0,
        help="Runs started per second. Default: 110 (1,320 tasks/s).",
    )
    parser.add_argument(
        "--only",
        choices=["lag", "search", "writes"],
        help="Measure only the lag under the fan-out load, only search, or only the "
        "consumers' writes (no stack). Default: lag and search.",
    )
    parser.add_argument(
        "--log-lines",
        type=int,
        default=LOG_LINES_PER_TASK,
        help=f"Log lines each task writes in the lag load (0: none, to compare). "
        f"Default: {LOG_LINES_PER_TASK}.",
    )
    args = parser.parse_args(argv)
    if args.only == "writes":
        print(json.dumps(asyncio.run(measure_writes()), indent=2))  # noqa: T201
        return 0
    parts = (args.only,) if args.only else ("lag", "search")
    report = asyncio.run(main_async(args.seconds, args.rate, parts, args.log_lines))
    print(json.dumps(report, indent=2))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
