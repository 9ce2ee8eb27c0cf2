"""Interlock measured end to end through its gateway: workloads (a)-(e).

Each workload runs on a freshly started private stack (see
:mod:`bench.interlock_stack`), logs in as the local admin, defines its workflows and
drives runs as a user would: POST a run, learn its outcome from the run list.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench import stats, timers, workloads
from bench.config import BenchConfig
from bench.cpu import CpuMeter
from bench.hops import HopProbe, hop_table
from bench.interlock_api import (
    TERMINAL_STATUSES,
    InterlockClient,
    InterlockError,
    RunWatcher,
    StartedRun,
    parse_time,
)
from bench.interlock_stack import LOGIN, BenchStack, StackError, stack_pids
from bench.measure import (
    RunRecord,
    bounded_map,
    closed_loop,
    summarize_throughput,
    summarize_timers,
)
from bench.progress import Bar, ProgressBoard
from bench.timers import TimerTimes
from interlock.devstack import SERVICES

MEASURES = (
    "sequential",
    "fanout",
    "timers",
    "failure_mix",
    "starts",
    "batch_starts",
    "lone_run",
    "backlog",
    "concurrent_timers",
)
"""The workloads measured on Interlock, as keys of the result."""
LONE_RUN_POLL_S = 0.005
"""Pause between a lone run's status reads."""
LONE_RUN_FIRST_POLL_S = 0.02
"""Wait before a lone run's first status read: no run finishes sooner, and reads sent
meanwhile would only load the two cores the run itself needs."""
LONE_RUN_WARMUP = 5
"""Lone runs made and not counted first: the stack has just started (cold caches and
connections), and the workload measures the latency floor."""


class PlatformUnavailableError(RuntimeError):
    """The stack did not start or did not let us in: no workload can run."""


@dataclass
class Session:
    """A logged-in client and the processes whose CPU counts."""

    client: InterlockClient
    pids: Callable[[], set[int]]
    suffix: str
    """Appended to workflow names (unique per workload, for a shared running stack)."""
    worker_metrics: str | None = None
    """The worker's ``/metrics`` URL (our own stack only): executions are counted there."""
    kafka_bootstrap: str | None = None
    """The stack's broker (our own stack only): the lone runs' hops are timed there."""


class Teardowns:
    """Stacks stopping in the background while the next one starts (saves ~20 s each).

    A workload waits for them before it measures, so they cost it no CPU.
    """

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, stack: BenchStack) -> None:
        """Stop ``stack`` in the background."""
        self._tasks.append(asyncio.create_task(stack.down()))

    async def wait(self) -> None:
        """Wait until every stack handed over has stopped."""
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def session(
    config: BenchConfig, board: ProgressBoard, label: str, teardowns: Teardowns
) -> AsyncIterator[Session]:
    """A fresh stack (or the configured running one) with a logged-in client.

    The previous workload's stack may still be stopping while this one starts; it
    is gone before this one is handed out.
    """
    stack: BenchStack | None = None
    worker_metrics: str | None = None
    kafka_bootstrap: str | None = None
    if config.interlock_gateway:
        gateway = config.interlock_gateway
        data_dir = config.interlock_data_dir

        def pids() -> set[int]:
            return stack_pids(data_dir) if data_dir else set()
    else:
        try:
            stack = BenchStack()
        except StackError:
            # The ports may still be held by the stack stopping in the background.
            await teardowns.wait()
            try:
                stack = BenchStack()
            except StackError as error:
                raise PlatformUnavailableError(str(error)) from error
        board.note(
            f"interlock {label}: starting a fresh stack (fresh broker) in {stack.data_dir}, "
            f"port offset {stack.port_offset}"
        )
        began = time.monotonic()
        try:
            await stack.up()
        except Exception as error:
            await stack.down()
            raise PlatformUnavailableError(str(error)) from error
        board.note(f"interlock {label}: stack up in {time.monotonic() - began:.1f} s")
        gateway, pids = stack.gateway_url, stack.pids
        worker = next(service for service in SERVICES if service.name == "worker")
        worker_metrics = f"http://127.0.0.1:{stack.stack.http_port(worker)}/metrics"
        kafka_bootstrap = stack.stack.kafka_bootstrap_servers
    client = InterlockClient(gateway)
    try:
        try:
            await client.login(*LOGIN)
        except Exception as error:
            raise PlatformUnavailableError(f"login through the gateway failed: {error}") from error
        await teardowns.wait()
        yield Session(
            client=client,
            pids=pids,
            suffix=uuid.uuid4().hex[:6],
            worker_metrics=worker_metrics,
            kafka_bootstrap=kafka_bootstrap,
        )
    finally:
        await client.aclose()
        if stack is not None:
            teardowns.add(stack)


def _record(summary: dict[str, Any]) -> RunRecord:
    finished = summary.get("finished_at")
    return RunRecord(
        run_id=summary["run_id"],
        started_at=parse_time(summary["created_at"]),
        finished_at=parse_time(finished) if finished else None,
        status=summary["status"],
    )


async def _await_final(
    watcher: RunWatcher, run: StartedRun, timeout_s: float
) -> dict[str, Any] | None:
    """The run's final summary, or ``None`` if it is not final within ``timeout_s``."""
    try:
        return await asyncio.wait_for(watcher.watch(run), timeout_s)
    except TimeoutError:
        return None


async def _throughput(
    s: Session,
    config: BenchConfig,
    board: ProgressBoard,
    *,
    definition: dict[str, Any],
    tasks_per_run: int,
    label: str,
) -> tuple[dict[str, Any], list[tuple[float, float]]]:
    name = definition["name"]
    await s.client.define(definition)
    bar = board.bar(label, None)
    meter = CpuMeter(s.pids)
    with RunWatcher(s.client, name) as watcher:

        async def one_run() -> RunRecord:
            run = await s.client.start_run(name)
            summary = await _await_final(watcher, run, config.drain_timeout_s)
            if summary is None:
                return RunRecord(
                    run_id=run.run_id, started_at=run.created_at, finished_at=None, status="lost"
                )
            return _record(summary)

        await meter.start()
        records = await closed_loop(
            one_run,
            window=config.window,
            duration_s=config.throughput_s,
            max_runs=config.max_runs,
            on_finished=bar.advance,
        )
        cpu_s = await meter.stop()
    bar.done()
    summary = summarize_throughput(
        records,
        tasks_per_run=tasks_per_run,
        cpu_s=cpu_s if s.pids() else None,
        window=config.window,
    )
    summary.figures["list_passes"] = watcher.passes
    tasks = summary.figures["runs"] * tasks_per_run
    if tasks and s.pids():
        summary.figures["cpu_s_per_1000_tasks_by_program"] = {
            program: round(seconds * 1000 / tasks, 3)
            for program, seconds in meter.by_program().items()
        }
    return summary.figures, summary.timeline


async def _start_and_wait(
    s: Session,
    config: BenchConfig,
    name: str,
    count: int,
    bar_advance: Callable[[], None],
    *,
    workflow_of: Callable[[int], str] | None = None,
    extra_wait_s: float = 0.0,
) -> tuple[list[StartedRun], dict[str, dict[str, Any]]]:
    """Start ``count`` runs (bounded concurrency); wait until each is final or time is up.

    Returns:
        The starts, and the final summaries by run id (runs still going are absent).
    """
    names = workflow_of or (lambda _: name)
    # A slower poll than the throughput loops': nothing here is timed by when we notice
    # a run finished, and the whole batch is listed on every pass.
    watchers = {
        wf: RunWatcher(s.client, wf, interval_s=0.25) for wf in {names(i) for i in range(count)}
    }
    finals: dict[str, dict[str, Any]] = {}
    for watcher in watchers.values():
        watcher.__enter__()
    try:

        async def start(index: int) -> tuple[StartedRun, Awaitable[dict[str, Any]]]:
            workflow = names(index)
            run = await s.client.start_run(workflow)
            return run, watchers[workflow].watch(run)

        started = await bounded_map(range(count), start, concurrency=config.start_concurrency)

        async def wait(item: tuple[StartedRun, Awaitable[dict[str, Any]]]) -> None:
            summary = await item[1]
            finals[summary["run_id"]] = summary
            bar_advance()

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(wait(item) for item in started)),
                config.drain_timeout_s + extra_wait_s,
            )
    finally:
        for watcher in watchers.values():
            watcher.__exit__()
    return [run for run, _ in started], finals


async def _timers(s: Session, config: BenchConfig, board: ProgressBoard) -> dict[str, Any]:
    name = f"bench-timers-{s.suffix}"
    await s.client.define(workloads.delay(name, config.timer_delay_s))
    bar = board.bar("interlock timers: waiting", config.timer_runs)
    meter = CpuMeter(s.pids)
    await meter.start()
    _, finals = await _start_and_wait(
        s,
        config,
        name,
        config.timer_runs,
        bar.advance,
        extra_wait_s=config.timer_delay_s,
    )
    cpu_s = await meter.stop()
    succeeded = [run_id for run_id, summary in finals.items() if summary["status"] == "succeeded"]
    views = await bounded_map(succeeded, s.client.get_run, concurrency=32)
    measured = [delay_lateness_s(view, config.timer_delay_s) for view in views]
    lateness = [value for value, _ in measured if value is not None]
    bases = {basis for value, basis in measured if value is not None}
    figures = summarize_timers(
        lateness,
        runs=config.timer_runs,
        delay_s=config.timer_delay_s,
        cpu_s=cpu_s if s.pids() else None,
    )
    figures["lateness_basis"] = " + ".join(LATENESS_BASES[basis] for basis in sorted(bases))
    return figures


LATENESS_BASES = {
    "task": "the delay task's own set and fire times",
    "run": "run created_at -> finished_at minus the delay (for views still missing the delay "
    "task's times): an upper bound that includes the start's way to the scheduler",
}
"""How a timer's lateness was measured, by basis."""


def delay_lateness_s(view: dict[str, Any], delay_s: float) -> tuple[float | None, str]:
    """How late a timer run's delay fired: fire time - (time it was set + ``delay_s``).

    Returns:
        The lateness in seconds (``None`` if the view has no times) and the basis
        used, ``"task"`` or ``"run"`` (:func:`delay_times`).
    """
    times, basis = delay_times(view, delay_s)
    if times is None:
        return None, basis
    return stats.lateness_s(times.due_at, times.fired_at), basis


def delay_times(view: dict[str, Any], delay_s: float) -> tuple[TimerTimes | None, str]:
    """When a timer run's delay was set, was due (set + ``delay_s``) and fired.

    Uses the delay task's own timestamps when the run view has them (set at
    ``scheduled_at`` or ``started_at``; fired at ``output.fired_at`` or ``finished_at``).
    Without them it falls back to the run: created at ``created_at``, and finished
    when its only task, the delay, fired. That basis also counts the time the start
    took to reach the scheduler, so its lateness is an upper bound.

    Returns:
        The times (``None`` if the view has none) and the basis used, ``"task"`` or
        ``"run"``.
    """
    tasks: list[dict[str, Any]] = view.get("tasks", [])
    task = next((t for t in tasks if t.get("id") == workloads.DELAY_TASK), {})
    output = task.get("output")
    set_at = task.get("scheduled_at") or task.get("started_at")
    fired = (output.get("fired_at") if isinstance(output, dict) else None) or task.get(
        "finished_at"
    )
    basis = "task"
    if not (set_at and fired):
        set_at, fired, basis = view.get("created_at"), view.get("finished_at"), "run"
    if not (set_at and fired):
        return None, basis
    set_time = parse_time(set_at)
    due = set_time + timedelta(seconds=delay_s)
    return TimerTimes(set_at=set_time, due_at=due, fired_at=parse_time(fired)), basis


CONCURRENT_TIMERS_POLL_S = 5.0
"""Pause between two listings of (c2)'s runs once their timers are due (each lists them
all: rarely, so that the run views' projection catches up sooner)."""


async def _concurrent_timers(
    s: Session, config: BenchConfig, board: ProgressBoard, starts_per_s: float | None
) -> dict[str, Any]:
    """(c2) Many timers pending at once: batch starts (1,000 runs each), one delay per run.

    The delay leaves room for every start at ``starts_per_s`` (the invocation's (e2)
    rate, bench/timers.py). Nothing is polled before the last timer is due, so the
    listing does not load the machine while the timers fire.
    """
    runs = config.concurrent_timers
    delay_s = timers.concurrent_delay_s(config.timer_delay_s, runs, starts_per_s)
    name = f"bench-many-timers-{s.suffix}"
    await s.client.define(workloads.delay(name, delay_s))
    bar = board.bar(f"interlock (c2) {runs:,} timers of {delay_s:g} s", runs)
    since = datetime.now(UTC) - timedelta(minutes=1)
    meter = CpuMeter(s.pids)
    await meter.start()
    requested = 0

    async def lane() -> None:
        nonlocal requested
        while requested < runs:
            count = min(BATCH_SIZE, runs - requested)
            requested += count
            await s.client.start_batch(name, count)

    await asyncio.gather(*(lane() for _ in range(BATCHES_IN_FLIGHT)))
    await asyncio.sleep(delay_s)
    finals = await _listed_until_final(s, name, since, runs, bar, config.drain_timeout_s)
    cpu_s = await meter.stop()
    bar.done()
    succeeded = [run["run_id"] for run in finals if run["status"] == "succeeded"]

    async def view_of(run_id: str) -> dict[str, Any]:
        # A view the gateway refuses counts as a timer not measured, not as a failure.
        try:
            return await s.client.get_run(run_id)
        except InterlockError:
            return {}

    views = await bounded_map(succeeded, view_of, concurrency=32)
    measured = [delay_times(view, delay_s) for view in views]
    figures = timers.summarize_concurrent_timers(
        [times for times, _ in measured if times is not None],
        runs=runs,
        delay_s=delay_s,
        cpu_s=cpu_s if s.pids() else None,
    )
    bases = {basis for times, basis in measured if times is not None}
    figures["lateness_basis"] = " + ".join(LATENESS_BASES[basis] for basis in sorted(bases))
    figures["start_rate_basis"] = starts_per_s
    return figures


async def _listed_until_final(
    s: Session,
    name: str,
    since: datetime,
    runs: int,
    bar: Bar,
    timeout_s: float,
) -> list[dict[str, Any]]:
    """The final summaries of ``name``'s runs, once ``runs`` are final or time is up.

    A listing the gateway refuses (a service too busy to answer) is tried again at the
    next pass.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    counted = 0
    finals: list[dict[str, Any]] = []
    while True:
        with contextlib.suppress(InterlockError):
            finals = [
                run
                for run in await s.client.list_runs(name, since)
                if run["status"] in TERMINAL_STATUSES
            ]
        bar.advance(len(finals) - counted)
        counted = len(finals)
        if counted >= runs or loop.time() > deadline:
            return finals
        await asyncio.sleep(CONCURRENT_TIMERS_POLL_S)


async def _starts(s: Session, config: BenchConfig, board: ProgressBoard) -> dict[str, Any]:
    name = f"bench-starts-{s.suffix}"
    await s.client.define(workloads.single_noop(name))
    bar = board.bar("interlock (e) run starts", config.start_runs)

    async def start() -> StartedRun:
        run = await s.client.start_run(name)
        bar.advance()
        return run

    meter = CpuMeter(s.pids)
    await meter.start()
    client_cpu = time.process_time()
    began = time.perf_counter()
    deadline = began + config.start_duration_s
    runs: list[StartedRun] = []

    async def lane() -> None:
        while len(runs) < config.start_runs and time.perf_counter() < deadline:
            runs.append(await start())

    await asyncio.gather(*(lane() for _ in range(config.start_concurrency)))
    elapsed = time.perf_counter() - began
    client_cpu = time.process_time() - client_cpu
    await meter.stop()
    bar.done()
    rate = stats.rate_per_s(len(runs), elapsed)
    # Every stack process counts, the scheduler and worker running the started runs
    # included, and so does this benchmark's own client: they share the same cores.
    used = {**meter.by_program(), "bench client": client_cpu}
    per_start = (
        {program: round(seconds * 1000 / len(runs), 3) for program, seconds in used.items()}
        if runs
        else {}
    )
    return {
        "runs": len(runs),
        "concurrency": config.start_concurrency,
        "duration_s": round(elapsed, 3),
        "starts_per_s": None if rate is None else round(rate, 1),
        **stats.latency_percentiles_ms([run.latency_s for run in runs]),
        "retried_429_503": s.client.retried,
        "cpu_ms_per_start": per_start,
    }


BATCH_SIZE = 1000
"""Runs per batch start request (the API's most)."""
BATCHES_IN_FLIGHT = 4
"""Batch requests in flight at once."""


async def _batch_starts(s: Session, config: BenchConfig, board: ProgressBoard) -> dict[str, Any]:
    """Workload (e2): runs accepted per second through ``runs:batch``, 1,000 per request."""
    name = f"bench-batch-{s.suffix}"
    await s.client.define(workloads.single_noop(name))
    total = config.start_runs * 5
    bar = board.bar("interlock (e2) batch starts", total)
    accepted = 0
    latencies_s: list[float] = []
    began = time.perf_counter()
    deadline = began + config.start_duration_s

    async def lane() -> None:
        nonlocal accepted
        while accepted < total and time.perf_counter() < deadline:
            sent = time.perf_counter()
            started = await s.client.start_batch(name, BATCH_SIZE)
            latencies_s.append(time.perf_counter() - sent)
            accepted += started
            bar.advance(started)

    await asyncio.gather(*(lane() for _ in range(BATCHES_IN_FLIGHT)))
    elapsed = time.perf_counter() - began
    bar.done()
    rate = stats.rate_per_s(accepted, elapsed)
    return {
        "runs": accepted,
        "batch_size": BATCH_SIZE,
        "batches_in_flight": BATCHES_IN_FLIGHT,
        "duration_s": round(elapsed, 3),
        "runs_per_s": None if rate is None else round(rate, 1),
        **{
            f"batch_{key}": value
            for key, value in stats.latency_percentiles_ms(latencies_s).items()
        },
    }


async def _lone_runs(s: Session, config: BenchConfig, board: ProgressBoard) -> dict[str, Any]:
    """Sequential 3-task runs one at a time, nothing else in flight: the latency floor.

    The headline is the server's own span of each run (``finished_at - created_at``);
    the client's span (request sent until a ``GET`` every few ms, from 20 ms on, sees the
    run finished) adds the HTTP round trips and the polling. The first
    ``LONE_RUN_WARMUP`` runs are not counted. On our own stack, ``hops`` times each
    event of the runs on the broker (:mod:`bench.hops`): where the span goes.
    """
    name = f"bench-lone-{s.suffix}"
    await s.client.define(workloads.sequential(name))
    bar = board.bar("interlock (f) lone 3-task runs", config.lone_runs)
    server_s: list[float] = []
    client_s: list[float] = []
    runs: list[StartedRun] = []
    for _ in range(LONE_RUN_WARMUP):
        await _lone_run(s, name)
    probe = HopProbe(s.kafka_bootstrap) if s.kafka_bootstrap else None
    if probe is not None:
        await probe.start()
    try:
        for _ in range(config.lone_runs):
            run, server_span, client_span = await _lone_run(s, name)
            runs.append(run)
            server_s.append(server_span)
            client_s.append(client_span)
            bar.advance()
    finally:
        if probe is not None:
            await probe.stop()
    bar.done()
    client = stats.latency_percentiles_ms(client_s)
    figures: dict[str, Any] = {
        "runs": len(server_s),
        **stats.latency_percentiles_ms(server_s),
        **{f"client_{key}": value for key, value in client.items()},
    }
    if probe is not None:
        figures["hops"] = hop_table([(run.run_id, run.created_at) for run in runs], probe.seen)
    return figures


async def _lone_run(s: Session, name: str) -> tuple[StartedRun, float, float]:
    """One run alone: the run, its span as the server recorded it and as the client saw it (s)."""
    began = time.perf_counter()
    run = await s.client.start_run(name)
    await asyncio.sleep(LONE_RUN_FIRST_POLL_S)
    view = await s.client.get_run(run.run_id)
    while view["status"] not in TERMINAL_STATUSES:
        await asyncio.sleep(LONE_RUN_POLL_S)
        view = await s.client.get_run(run.run_id)
    client = time.perf_counter() - began
    if view["status"] != "succeeded":
        raise InterlockError(f"lone run {run.run_id} ended {view['status']}")
    return run, (parse_time(view["finished_at"]) - run.created_at).total_seconds(), client


async def _failure_mix(s: Session, config: BenchConfig, board: ProgressBoard) -> dict[str, Any]:
    steady = f"bench-steady-{s.suffix}"
    flaky = f"bench-flaky-{s.suffix}"
    await s.client.define(workloads.single_noop(steady))
    await s.client.define(
        workloads.flaky(
            flaky, failure_rate=config.flaky_failure_rate, max_attempts=config.flaky_max_attempts
        )
    )
    every = round(1 / config.flaky_share)

    def workflow_of(index: int) -> str:
        return flaky if index % every == 0 else steady

    bar = board.bar("interlock (d) failure mix", config.failure_runs)
    started, finals = await _start_and_wait(
        s, config, steady, config.failure_runs, bar.advance, workflow_of=workflow_of
    )
    flaky_ids = {run.run_id for index, run in enumerate(started) if workflow_of(index) == flaky}
    failed = [run_id for run_id, f in finals.items() if f["status"] == "failed"]
    views = await bounded_map(failed, s.client.get_run, concurrency=32)
    dead_lettered = sum(
        1
        for view in views
        if view["run_id"] in flaky_ids
        and any(task["status"] == "dead_lettered" for task in view["tasks"])
    )
    p_dead = stats.dead_letter_probability(config.flaky_failure_rate, config.flaky_max_attempts)
    expected = stats.expected_dead_letters(
        len(flaky_ids), config.flaky_failure_rate, config.flaky_max_attempts
    )
    low, high = stats.binomial_range(len(flaky_ids), p_dead)
    succeeded = sum(1 for f in finals.values() if f["status"] == "succeeded")
    lost = len(started) - sum(1 for f in finals.values() if f["status"] in TERMINAL_STATUSES)
    other_failures = len(failed) - dead_lettered
    return {
        "runs": len(started),
        "flaky_runs": len(flaky_ids),
        "succeeded": succeeded,
        "dead_lettered": dead_lettered,
        "failed_otherwise": other_failures,
        "expected_dead_lettered": expected,
        "expected_range_3_sigma": [low, high],
        "lost": lost,
        "matches_expectation": lost == 0 and other_failures == 0 and low <= dead_lettered <= high,
    }


async def _backlog(s: Session, config: BenchConfig, board: ProgressBoard) -> dict[str, Any]:
    """(g) N runs of two sleeps started at once: does the backlog drain at capacity?

    The ideal drain is ``runs x 2 x sleep / slots``; an execution beyond the two each
    run needs is a duplicate (a task re-sent while it was only queued, and run again).
    Executions are the worker's own count of finished ``sleep`` attempts.
    """
    name = f"bench-backlog-{s.suffix}"
    steps = workloads.BACKLOG_STEPS
    await s.client.define(workloads.sleeps(name, seconds=config.backlog_sleep_s, steps=steps))
    ideal_s = config.backlog_runs * steps * config.backlog_sleep_s / config.worker_slots
    bar = board.bar("interlock (g) backlog of 2 x sleep 3s", config.backlog_runs)
    before = await _sleep_executions(s)
    started, finals = await _start_and_wait(
        s, config, name, config.backlog_runs, bar.advance, extra_wait_s=2 * ideal_s
    )
    bar.done()
    after = await _sleep_executions(s)
    succeeded = [f for f in finals.values() if f["status"] == "succeeded"]
    first = min(run.created_at for run in started)
    ends = [parse_time(f["finished_at"]) for f in finals.values() if f.get("finished_at")]
    drain_s = (max(ends) - first).total_seconds() if ends else None
    executions = None if before is None or after is None else after - before
    needed = len(succeeded) * steps
    duplicates = None if executions is None else max(0, executions - needed)
    return {
        "runs": len(started),
        "succeeded": len(succeeded),
        "lost": len(started) - len(finals),
        "slots": config.worker_slots,
        "ideal_drain_s": round(ideal_s, 1),
        "drain_s": None if drain_s is None else round(drain_s, 1),
        "drain_vs_ideal": None if drain_s is None else round(drain_s / ideal_s, 3),
        "executions": executions,
        "duplicates": duplicates,
        "duplicate_share": (
            None if duplicates is None or not needed else round(duplicates / needed, 4)
        ),
    }


async def _sleep_executions(s: Session) -> int | None:
    """Finished ``sleep`` attempts the worker counted, or ``None`` without its metrics."""
    if s.worker_metrics is None:
        return None
    text = await s.client.fetch_text(s.worker_metrics)
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "interlock_worker_tasks_total" and sample.labels["type"] == "sleep":
                total += sample.value
    return round(total)


async def measure_interlock(config: BenchConfig, board: ProgressBoard) -> dict[str, Any]:
    """Run workloads (a)-(f), each group on a fresh stack.

    Returns:
        ``{"sequential", "fanout", "timers", "starts", "starts_per_s", "failure_mix", "lone_run",
        "timelines"}``; ``{"error": reason}`` when the platform cannot be used at all, and
        a workload that failed on its own holds ``{"error": reason}`` instead of figures.
    """
    result: dict[str, Any] = {
        "stack": (
            f"running stack at {config.interlock_gateway} (broker NOT fresh per workload)"
            if config.interlock_gateway
            else "python -m interlock.devstack: a freshly started stack (fresh broker, fresh "
            "databases) per workload; run starts (e) follow the failure mix (d) on its stack"
        ),
        "timelines": {},
    }

    async def sequential(s: Session) -> dict[str, Any]:
        figures, timeline = await _throughput(
            s,
            config,
            board,
            definition=workloads.sequential(f"bench-sequential-{s.suffix}"),
            tasks_per_run=workloads.SEQUENTIAL_TASKS,
            label="interlock (a) sequential 3 no-ops",
        )
        result["timelines"]["sequential"] = timeline
        return figures

    async def fanout(s: Session) -> dict[str, Any]:
        figures, timeline = await _throughput(
            s,
            config,
            board,
            definition=workloads.fanout(f"bench-fanout-{s.suffix}"),
            tasks_per_run=workloads.FANOUT_TASKS,
            label="interlock (b) fan-out 1→10→1",
        )
        result["timelines"]["fanout"] = timeline
        return figures

    Step = Callable[[Session], Awaitable[dict[str, Any]]]
    # One fresh stack per group. Run starts (e) barely touch the broker, so they share
    # the failure mix's stack, after it, rather than pay for another start-up; lone runs
    # (f) go first on the timers' stack, while it is quiet.
    plan: list[list[tuple[str, Step]]] = [
        [("sequential", sequential)],
        [("fanout", fanout)],
        [
            ("lone_run", lambda s: _lone_runs(s, config, board)),
            ("timers", lambda s: _timers(s, config, board)),
        ],
        [
            ("failure_mix", lambda s: _failure_mix(s, config, board)),
            ("starts", lambda s: _starts(s, config, board)),
            ("batch_starts", lambda s: _batch_starts(s, config, board)),
        ],
        [("backlog", lambda s: _backlog(s, config, board))],
    ]
    if config.concurrent_timers:
        # After (e2), whose start rate sizes its delay, on a fresh stack of its own.
        plan.append(
            [
                (
                    "concurrent_timers",
                    lambda s: _concurrent_timers(
                        s, config, board, _rate(result.get("batch_starts"), "runs_per_s")
                    ),
                )
            ]
        )
    teardowns = Teardowns()
    try:
        for group in plan:
            label = " + ".join(key for key, _ in group)
            try:
                async with session(config, board, label, teardowns) as s:
                    for key, step in group:
                        try:
                            result[key] = await step(s)
                        except Exception as error:
                            board.note(f"interlock {key}: failed: {type(error).__name__}: {error}")
                            result[key] = {"error": f"{type(error).__name__}: {error}"}
            except PlatformUnavailableError as error:
                board.note(f"interlock: cannot run ({error}); skipping the Interlock workloads")
                measured = {key: result[key] for key in (*MEASURES, "timelines") if key in result}
                return {"error": str(error), "stack": result["stack"], **measured}
            except Exception as error:  # stopping the stack failed: keep what was measured
                board.note(f"interlock {label}: {type(error).__name__}: {error}")
                for key, _ in group:
                    result.setdefault(key, {"error": f"{type(error).__name__}: {error}"})
    finally:
        await teardowns.wait()
    starts = result.get("starts", {})
    result["starts_per_s"] = starts.get("starts_per_s") if isinstance(starts, dict) else None
    return result


def _rate(figures: Any, key: str) -> float | None:
    """``figures[key]`` when a workload measured it (not an error)."""
    value = figures.get(key) if isinstance(figures, dict) else None
    return float(value) if isinstance(value, int | float) else None
