"""``python -m bench.metadata``: the metadata service under the fan-out load, and search.

(i) Metadata lag: fan-out runs (1 → 10 → 1 tasks, each an ``echo`` writing
``LOG_LINES_PER_TASK`` log lines, as issue 14's load says) are started through the
gateway for ``--seconds``; a sample of them is polled at ``GET /api/v1/executions/{id}`` until
the document shows the run ended, and the lag is the time it became visible minus the
run's end (the outcome event's time). Events/s and documents written/s come from the
service's own counters over the window. (ii) Search: 100,000 executions are written
straight into the stack's MongoDB, then ``GET /api/v1/executions`` is timed through the
gateway with a status + workflow + time filter, with ``q``, and with no filter (the
newest runs, a console's first page).

It starts its own stack (``BENCH_METADATA_PORT_OFFSET`` pins its ports; default: the
first free bench port offset). ``make bench`` runs it (``BENCH_SYSTEMS`` names
``metadata``); figures from a loaded machine are indicative only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from bench import stats, workloads
from bench.config import BenchConfig
from bench.interlock_api import InterlockClient, parse_time
from bench.interlock_stack import LOGIN, BenchStack
from bench.progress import ProgressBoard
from interlock.common.statuses import RunStatus
from interlock.devstack import _servers
from interlock.devstack._stack import SERVICES
from interlock.metadata.domain import (
    AttemptFinished,
    AttemptScheduled,
    RunEnded,
    RunStarted,
    apply,
)

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


def logging_fanout(name: str) -> dict[str, Any]:
    """The fan-out workflow whose every task writes ``LOG_LINES_PER_TASK`` lines at once."""
    definition = workloads.fanout(name)
    lines = [f"line {number}" for number in range(1, LOG_LINES_PER_TASK + 1)]
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
    client: InterlockClient, metrics_url: str, seconds: float, rate: float
) -> dict[str, Any]:
    """Start fan-out runs at ``rate`` per second for ``seconds``; sample their lag."""
    workflow = f"bench-meta-fanout-{secrets.token_hex(3)}"
    await client.define(logging_fanout(workflow))
    before = await client.fetch_text(metrics_url)
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


async def main_async(
    seconds: float, rate: float, parts: tuple[str, ...] = ("lag", "search")
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
        if "lag" in parts:
            report["fanout"] = await measure_lag(client, metrics_url, seconds, rate)
            print(json.dumps(report["fanout"]), file=sys.stderr, flush=True)  # noqa: T201
        if "search" in parts:
            report["search"] = await measure_search(
                client, _servers.mongo_url(stack.stack.port("mongo"))
            )
        return report
    finally:
        await client.aclose()
        await stack.down()


async def measure_metadata(config: BenchConfig, board: ProgressBoard) -> dict[str, Any]:
    """Workloads (i) and (ii), the fan-out window sized by ``BENCH_SCALE`` (20 s at 1)."""
    board.note("metadata: lag under the fan-out load, then search over 100,000 executions")
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
        choices=["lag", "search"],
        help="Measure only the lag under the fan-out load, or only search. Default: both.",
    )
    args = parser.parse_args(argv)
    parts = (args.only,) if args.only else ("lag", "search")
    print(json.dumps(asyncio.run(main_async(args.seconds, args.rate, parts)), indent=2))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
