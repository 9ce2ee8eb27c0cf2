"""``make chaos``: faults injected into a running platform while runs are in flight.

For each fault of the schedule: start ``runs`` runs through the gateway, in turn of a
mixed load (issue 22's ``sleep 3s -> sleep 3s -> noop`` with no timeout set, a fan-out,
a timer, a task that needs retries, an ``echo`` task writing log lines and storing an
artifact; ``--issue-workload`` for the first alone), every run's end subscribed to by
a webhook, inject the fault a second later, then wait until every run is final. Each
row reports how many runs the fault caught in flight, how long after the fault the
last of them finished and every service answered ``/readyz`` again, how long after
that the lagging checks held (``settled``), and the invariants:

- every run succeeded (the workload has no designed failure) within ``bound_s``;
- no task completion recorded twice for one attempt (the scheduler's transitions);
- no dead letter (none is designed, so none is explained);
- within ``settle_s`` of the last run's end (:mod:`bench.chaos_invariants`): every
  execution document and every run view (``GET /api/v1/runs/{id}``) shows the run's
  and its tasks' statuses as the scheduler holds them; every succeeded run was
  told by one signed webhook (one ``webhook-id``; retries of it allowed); every echo
  task's artifact is readable with its SHA-256 and its log lines are all stored.

Faults, each on the stack's supervisord: SIGKILL of every service in turn (supervision
restarts it), SIGSTOP of the worker past the scheduler's lost-attempt bound, the broker
restarted empty, PostgreSQL, MongoDB and S3 stopped and started again. The short
schedule SIGKILLs the scheduler, metadata, notification and artifact services at once.

Usage::

    python -m bench.chaos                  # a fresh private stack, every fault, 300 runs
    python -m bench.chaos --short          # a few minutes: one fault of each kind, 30 runs
    python -m bench.chaos --port-offset 1425   # the private stack on chosen ports
    INTERLOCK_DEV_PORT_OFFSET=2000 python -m bench.chaos --running   # the `make up` stack

Writes ``bench/results/chaos.json`` (or ``--json``) and prints the table; the exit
status is 0 only when every invariant held.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table

from bench import chaos_invariants as checks
from bench.chaos_invariants import Findings, WebhookReceiver
from bench.config import RESULTS_DIR
from bench.interlock_api import TERMINAL_STATUSES, InterlockClient, StartedRun
from bench.interlock_stack import LOGIN, BenchStack
from interlock.devstack import SERVICES, Stack
from interlock.devstack._stack import StackSecrets
from interlock.devstack._supervisor import Supervisor

WORKFLOW_SLEEP = "3s"
"""Each sleep of the chaos workflow."""
FAULT_DELAY_S = 1.0
"""Time between the last start and the fault."""
POLL_S = 1.0
"""Pause between two looks at the runs and the services."""
STOP_PAST_BOUND_S = 10.0
"""How much longer than the lost-attempt bound the worker stays stopped."""
LOST_ATTEMPT_ENV = "INTERLOCK_LOST_ATTEMPT_AFTER_S"
DEFAULT_LOST_ATTEMPT_S = 60.0


@dataclass
class Row:
    """What one fault did."""

    fault: str
    runs: int
    succeeded: int = 0
    not_final: int = 0
    failed: int = 0
    last_run_final_after_s: float | None = None
    services_ready_after_s: float | None = None
    double_completions: int = 0
    dead_letters: int = 0
    error: str | None = None
    unfinished: dict[str, str] = field(default_factory=dict)
    """Runs not succeeded at the end (at most 20): id -> last status seen."""
    settled_after_s: float | None = None
    """After the last run's end, when every lagging check held (None: not within the bound)."""
    metadata_diverged: int = 0
    run_views_diverged: int = 0
    notifications_expected: int = 0
    notifications_missing: int = 0
    duplicate_messages: int = 0
    """Runs told of under more than one webhook-id."""
    webhook_retries: int = 0
    """Arrivals of a webhook-id beyond its first (allowed: retries)."""
    bad_signatures: int = 0
    artifacts_expected: int = 0
    artifacts_unreadable: int = 0
    log_runs: int = 0
    log_lines_missing: int = 0
    problems: dict[str, dict[str, str]] = field(default_factory=dict)
    """Examples of each lagging check still broken at the end: run id -> what."""
    invariants: dict[str, bool] = field(default_factory=dict)

    def check(self, bound_s: float) -> None:
        """Fill :attr:`invariants` from the figures."""
        finished = self.last_run_final_after_s
        self.invariants = {
            "every run succeeded within the bound": self.succeeded == self.runs
            and finished is not None
            and finished <= bound_s,
            "services ready again": self.services_ready_after_s is not None,
            "no completion recorded twice per attempt": self.double_completions == 0,
            "every dead letter explained (none designed)": self.dead_letters == 0,
            "execution documents converged to the scheduler": self.metadata_diverged == 0,
            "run views converged to the scheduler": self.run_views_diverged == 0,
            "every succeeded run notified, one signed webhook-id each": (
                self.notifications_missing == 0
                and self.duplicate_messages == 0
                and self.bad_signatures == 0
            ),
            "every artifact readable with its SHA-256": self.artifacts_unreadable == 0,
            "every echo log line stored": self.log_lines_missing == 0,
        }

    def record(self, findings: Findings, inbox: checks.Inbox) -> None:
        """The lagging checks' figures as they stand at the end."""
        self.metadata_diverged = len(findings.metadata_open)
        self.run_views_diverged = len(findings.run_view_open)
        self.notifications_missing = len(findings.notifications_open)
        self.duplicate_messages = checks.duplicate_messages(inbox)
        self.webhook_retries = checks.retried_deliveries(inbox)
        self.bad_signatures = inbox.bad_signatures
        self.artifacts_unreadable = len(findings.artifacts_open)
        self.log_lines_missing = sum(findings.logs_open.values())
        self.problems |= {
            name: checks.examples(open_)
            for name, open_ in (
                ("execution documents", findings.metadata_open),
                ("run views", findings.run_view_open),
                ("notifications", findings.notifications_open),
                ("artifacts", findings.artifacts_open),
                ("logs", findings.logs_open),
            )
            if open_
        }

    @property
    def passed(self) -> bool:
        """Whether every invariant held."""
        return self.error is None and all(self.invariants.values())


class Platform:
    """The stack under test: its gateway, its supervisord, its scheduler database."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.supervisor = Supervisor(stack.supervisor_dir)
        self.client = InterlockClient(stack.gateway_url)
        secrets, _ = StackSecrets.load_or_create(stack.secrets_file)
        self._postgres_password = secrets.postgres_passwords["scheduler"]

    def pid(self, program: str) -> int:
        """Pid of a running program (0 when it is not running)."""
        return next((p.pid for p in self.supervisor.processes() if p.name == program), 0)

    def restart(self, program: str) -> None:
        """Stop ``program`` cleanly through supervisord and start it again."""
        self.supervisor.stop_all([program], timeout_s=60)
        self.supervisor.start(program)

    async def all_ready(self) -> bool:
        """Whether every service answers ``/readyz`` with 200."""
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as http:
            for service in SERVICES:
                url = f"http://127.0.0.1:{self.stack.http_port(service)}/readyz"
                try:
                    if (await http.get(url)).status_code != 200:
                        return False
                except httpx.HTTPError:
                    return False
        return True

    async def _scheduler_db(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            self.stack.postgres_dsn("scheduler"), password=self._postgres_password
        )

    async def scheduler_states(self, run_ids: list[str]) -> dict[str, checks.RunState]:
        """Each run's status and its tasks' statuses, as the scheduler holds them."""
        conn = await self._scheduler_db()
        try:
            runs = await conn.fetch(
                "SELECT run_id, status FROM runs WHERE run_id = ANY($1::text[])", run_ids
            )
            tasks = await conn.fetch(
                "SELECT run_id, task_id, status FROM tasks WHERE run_id = ANY($1::text[])",
                run_ids,
            )
        finally:
            await conn.close()
        states = {run["run_id"]: checks.RunState(run["status"], {}) for run in runs}
        for task in tasks:
            states[task["run_id"]].tasks[task["task_id"]] = task["status"]
        return states

    async def scheduler_facts(self, run_ids: list[str]) -> tuple[int, dict[str, str]]:
        """Attempts completed more than once among ``run_ids``, and their dead letters.

        Dead letters: run id -> the task and the error it ended with.
        """
        conn = await self._scheduler_db()
        try:
            doubles = await conn.fetchval(
                """
                SELECT count(*) FROM (
                    SELECT 1 FROM transitions
                    WHERE run_id = ANY($1::text[]) AND to_status = 'succeeded'
                      AND task_id IS NOT NULL
                    GROUP BY run_id, task_id, attempt HAVING count(*) > 1) AS d
                """,
                run_ids,
            )
            letters = await conn.fetch(
                "SELECT run_id, task_id, error_type, error_message FROM dead_letters"
                " WHERE run_id = ANY($1::text[])",
                run_ids,
            )
        finally:
            await conn.close()
        return int(doubles), {
            letter["run_id"]: f"{letter['task_id']}: {letter['error_type']}: "
            f"{letter['error_message'][:200]}"
            for letter in letters
        }


Fault = Callable[[Platform], Coroutine[Any, Any, None]]


def kill(program: str) -> Fault:
    """SIGKILL ``program``: supervisord starts it again."""

    async def fault(platform: Platform) -> None:
        pid = platform.pid(program)
        if pid:
            os.kill(pid, signal.SIGKILL)

    return fault


def restart(program: str) -> Fault:
    """Stop ``program`` and start it again (same port, same data)."""

    async def fault(platform: Platform) -> None:
        await asyncio.to_thread(platform.restart, program)

    return fault


def stop_worker(seconds: float) -> Fault:
    """SIGSTOP the worker for ``seconds`` (it neither heartbeats nor reports), then SIGCONT.

    The local stack's watchdog may restart the frozen worker first (its ``/healthz``
    times out): then there is nothing left to continue.
    """

    async def fault(platform: Platform) -> None:
        pid = platform.pid("worker")
        if not pid:
            return
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    return fault


def kill_together(*programs: str) -> Fault:
    """SIGKILL every one of ``programs`` at once."""
    killers = [kill(program) for program in programs]

    async def fault(platform: Platform) -> None:
        for killer in killers:
            await killer(platform)

    return fault


def schedule(*, short: bool, lost_attempt_s: float) -> list[tuple[str, Fault]]:
    """The faults, in order. ``short``: one of each kind."""
    stopped = stop_worker(lost_attempt_s + STOP_PAST_BOUND_S)
    if short:
        return [
            (
                "SIGKILL scheduler, metadata, notification and artifact",
                kill_together("scheduler", "metadata", "notification", "artifact"),
            ),
            ("broker restarted empty", kill("kafka")),
            ("PostgreSQL restarted", restart("postgres")),
            ("worker SIGSTOPped past the lost-attempt bound", stopped),
        ]
    return [
        *((f"SIGKILL {service.name}", kill(service.name)) for service in SERVICES),
        ("worker SIGSTOPped past the lost-attempt bound", stopped),
        ("broker restarted empty", kill("kafka")),
        ("PostgreSQL restarted", restart("postgres")),
        ("MongoDB restarted", restart("mongo")),
        ("S3 restarted", restart("s3")),
    ]


async def _start(client: InterlockClient, workflow: str) -> StartedRun:
    for attempt in range(20):
        try:
            return await client.start_run(workflow)
        except Exception:
            if attempt == 19:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


async def _statuses(client: InterlockClient, workflow: str, since: Any) -> dict[str, str]:
    try:
        runs = await client.list_runs(workflow, since)
    except Exception:  # the gateway or a service is down right now: look again later
        return {}
    return {run["run_id"]: run["status"] for run in runs}


def _sleep(task_id: str, duration: str, *after: str) -> dict[str, Any]:
    task: dict[str, Any] = {"id": task_id, "type": "sleep", "params": {"duration": duration}}
    if after:
        task["depends_on"] = list(after)
    return task


def workflows(mixed: bool) -> list[list[dict[str, Any]]]:
    """The task lists runs are started from, in turn (each succeeds by design).

    The issue's workflow (``sleep 3s -> sleep 3s -> noop``, no timeout), and with
    ``mixed`` also a fan-out (1 -> 5 sleeps -> 1), a timer (a 3 s delay), retries
    (a task failing half its attempts, 20 attempts: it succeeds but with a 1e-6 chance)
    and an ``echo`` task writing log lines and storing an artifact.
    """
    issue: list[dict[str, Any]] = [
        _sleep("a", WORKFLOW_SLEEP),
        _sleep("b", WORKFLOW_SLEEP, "a"),
        {"id": "c", "type": "noop", "depends_on": ["b"]},
    ]
    if not mixed:
        return [issue]
    branches = [f"branch{n}" for n in range(5)]
    fanout: list[dict[str, Any]] = [
        {"id": "first", "type": "noop"},
        *(_sleep(branch, "1s", "first") for branch in branches),
        {"id": "last", "type": "noop", "depends_on": branches},
    ]
    timer: list[dict[str, Any]] = [
        {"id": "wait", "type": "delay", "params": {"duration": "3s"}},
        {"id": "after", "type": "noop", "depends_on": ["wait"]},
    ]
    retries: list[dict[str, Any]] = [
        {
            "id": "flaky",
            "type": "flaky",
            "params": {"failure_rate": 0.5},
            "retry": {"max_attempts": 20, "initial_interval": "100ms", "max_interval": "1s"},
        }
    ]
    return [issue, fanout, timer, retries, checks.talk_workflow()]


@dataclass(frozen=True, kw_only=True)
class Bounds:
    """How long a fault's runs may take to end, and the lagging checks to hold after."""

    runs_s: float
    settle_s: float


async def one_fault(
    platform: Platform,
    receiver: WebhookReceiver,
    name: str,
    fault: Fault,
    *,
    runs: int,
    bounds: Bounds,
    mixed: bool,
) -> Row:
    """Start the runs, inject ``fault``, wait for the runs, the services, the checks."""
    bound_s = bounds.runs_s
    await platform.client.login(*LOGIN)  # a fresh token: the whole schedule outlives one
    names: list[str] = []
    for tasks in workflows(mixed):
        workflow = f"chaos-{uuid.uuid4().hex[:8]}"
        await platform.client.define(
            {"name": workflow, "description": f"make chaos: {name}", "tasks": tasks}
        )
        names.append(workflow)
    inbox = await checks.subscribe(platform.client, receiver, names[0], names)
    gate = asyncio.Semaphore(32)

    async def start(index: int) -> StartedRun:
        async with gate:
            return await _start(platform.client, names[index % len(names)])

    started = await asyncio.gather(*(start(index) for index in range(runs)))
    since = min(run.created_at for run in started)
    row = Row(fault=name, runs=runs)
    await asyncio.sleep(FAULT_DELAY_S)
    fault_at = time.monotonic()
    injecting = asyncio.create_task(fault(platform))
    statuses: dict[str, str] = {}
    while time.monotonic() - fault_at < bound_s:
        await asyncio.sleep(POLL_S)
        for workflow in names:
            statuses.update(await _statuses(platform.client, workflow, since))
        final = sum(1 for status in statuses.values() if status in TERMINAL_STATUSES)
        if row.last_run_final_after_s is None and final == runs:
            row.last_run_final_after_s = round(time.monotonic() - fault_at, 1)
        if row.services_ready_after_s is None and injecting.done() and await platform.all_ready():
            row.services_ready_after_s = round(time.monotonic() - fault_at, 1)
        if row.last_run_final_after_s is not None and row.services_ready_after_s is not None:
            break
    await injecting
    row.succeeded = sum(1 for status in statuses.values() if status == "succeeded")
    row.failed = sum(1 for status in statuses.values() if status in ("failed", "cancelled"))
    row.not_final = runs - row.succeeded - row.failed
    row.unfinished = dict(
        list(
            {
                run.run_id: statuses.get(run.run_id, "unseen")
                for run in started
                if statuses.get(run.run_id) != "succeeded"
            }.items()
        )[:20]
    )
    row.double_completions, letters = await platform.scheduler_facts(
        [run.run_id for run in started]
    )
    row.dead_letters = len(letters)
    if letters:
        row.problems["dead letters"] = checks.examples(letters)
    succeeded = [run.run_id for run in started if statuses.get(run.run_id) == "succeeded"]
    # The talking workflow is the mixed load's last, and runs take the workflows in turn.
    talking = [
        run.run_id
        for index, run in enumerate(started)
        if mixed and index % len(names) == len(names) - 1 and run.run_id in succeeded
    ]
    await settle(platform, row, inbox, [run.run_id for run in started], succeeded, talking, bounds)
    row.check(bound_s)
    return row


async def settle(
    platform: Platform,
    row: Row,
    inbox: checks.Inbox,
    run_ids: list[str],
    succeeded: list[str],
    talking: list[str],
    bounds: Bounds,
) -> None:
    """Ask the lagging checks again until they all hold or ``bounds.settle_s`` is over."""
    findings = Findings(
        metadata_open=dict.fromkeys(run_ids, "not compared"),
        run_view_open=dict.fromkeys(run_ids, "not compared"),
        notifications_open=set(succeeded),
        artifacts_open=dict.fromkeys(talking, "not read"),
        logs_open=dict.fromkeys(talking, len(checks.ECHO_LINES)),
    )
    row.notifications_expected = len(succeeded)
    row.artifacts_expected = row.log_runs = len(talking)
    began = time.monotonic()
    while True:
        with contextlib.suppress(Exception):  # a service still away: look again
            await checks.look_again(platform.client, platform.scheduler_states, findings, inbox)
        if findings.settled():
            row.settled_after_s = round(time.monotonic() - began, 1)
            break
        if time.monotonic() - began > bounds.settle_s:
            break
        await asyncio.sleep(POLL_S)
    row.record(findings, inbox)


@contextlib.asynccontextmanager
async def platform_under_test(
    running: bool, port_offset: int | None, console: Console
) -> AsyncIterator[Platform]:
    """The running ``make up`` stack, or a fresh private one stopped afterwards.

    ``port_offset``: the private stack's ports (default: the first free bench offset).
    """
    if running:
        platform = Platform(Stack.from_env())
        try:
            await platform.client.login(*LOGIN)
            yield platform
        finally:
            await platform.client.aclose()
        return
    bench_stack = BenchStack(port_offset)
    console.print(f"starting a fresh stack in {bench_stack.data_dir} ...")
    try:  # a stack that failed to start is stopped and deleted too
        await bench_stack.up()
        platform = Platform(bench_stack.stack)
        try:
            await platform.client.login(*LOGIN)
            yield platform
        finally:
            await platform.client.aclose()
    finally:
        await bench_stack.down()


async def chaos(args: argparse.Namespace, console: Console) -> list[Row]:
    """Run the schedule; one row per fault."""
    lost_attempt_s = float(os.environ.get(LOST_ATTEMPT_ENV) or DEFAULT_LOST_ATTEMPT_S)
    faults = schedule(short=args.short, lost_attempt_s=lost_attempt_s)
    if args.only:
        faults = [(name, fault) for name, fault in faults if args.only.lower() in name.lower()]
    rows: list[Row] = []
    bounds = Bounds(runs_s=args.bound_s, settle_s=args.settle_s)
    async with (
        platform_under_test(args.running, args.port_offset, console) as platform,
        WebhookReceiver().serving() as receiver,
    ):
        for name, fault in faults:
            console.print(f"[bold]{name}[/bold]: {args.runs} runs in flight ...")
            try:
                row = await one_fault(
                    platform,
                    receiver,
                    name,
                    fault,
                    runs=args.runs,
                    bounds=bounds,
                    mixed=not args.issue_workload,
                )
            except Exception as error:
                row = Row(fault=name, runs=args.runs, error=f"{type(error).__name__}: {error}")
            rows.append(row)
            console.print(f"  {_summary(row)}")
    return rows


def _summary(row: Row) -> str:
    if row.error:
        return f"[red]error: {row.error}[/red]"
    verdict = "[green]pass[/green]" if row.passed else "[red]FAIL[/red]"
    return (
        f"{verdict}: {row.succeeded}/{row.runs} succeeded, last final after "
        f"{row.last_run_final_after_s} s, services ready after {row.services_ready_after_s} s, "
        f"checks settled {row.settled_after_s} s later; {_lagging(row)}"
    )


def _lagging(row: Row) -> str:
    """The lagging checks' counts: what is still off of what was expected."""
    return (
        f"documents {row.metadata_diverged}/{row.runs} off, "
        f"run views {row.run_views_diverged}/{row.runs} off, "
        f"notified {row.notifications_expected - row.notifications_missing}/"
        f"{row.notifications_expected} ({row.duplicate_messages} dup, "
        f"{row.webhook_retries} retries, {row.bad_signatures} bad sig), "
        f"artifacts {row.artifacts_expected - row.artifacts_unreadable}/{row.artifacts_expected}, "
        f"log lines missing {row.log_lines_missing} of {row.log_runs * len(checks.ECHO_LINES)}"
    )


def render(rows: list[Row], console: Console) -> None:
    """The table: fault, runs affected, time to recover, invariants."""
    table = Table(title="make chaos")
    columns = (
        "fault",
        "runs",
        "succeeded",
        "last run final (s)",
        "ready (s)",
        "settled (s)",
        "lagging checks",
        "invariants",
    )
    for column in columns:
        table.add_column(column)
    for row in rows:
        broken = [name for name, held in row.invariants.items() if not held]
        verdict = row.error or ("all held" if not broken else "FAILED: " + "; ".join(broken))
        table.add_row(
            row.fault,
            str(row.runs),
            str(row.succeeded),
            str(row.last_run_final_after_s),
            str(row.services_ready_after_s),
            str(row.settled_after_s),
            _lagging(row),
            verdict,
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the schedule, write the JSON, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="one fault of each kind")
    parser.add_argument("--runs", type=int, default=None, help="runs per fault (300; short 30)")
    parser.add_argument("--bound-s", type=float, default=240.0, help="longest recovery allowed")
    parser.add_argument(
        "--settle-s",
        type=float,
        default=120.0,
        help="longest the lagging checks may take after the runs' end",
    )
    parser.add_argument("--running", action="store_true", help="use the `make up` stack")
    parser.add_argument("--port-offset", type=int, help="the private stack's port offset")
    parser.add_argument("--only", help="only the faults whose name contains this")
    parser.add_argument(
        "--issue-workload",
        action="store_true",
        help="only issue 22's sleep 3s -> sleep 3s -> noop (default: a mixed load)",
    )
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "chaos.json")
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 30 if args.short else 300
    # A log (CI, a file) gets a table wide enough to read, not 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 200)
    rows = asyncio.run(chaos(args, console))
    render(rows, console)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "runs_per_fault": args.runs,
                "bound_s": args.bound_s,
                "settle_s": args.settle_s,
                "workflows": workflows(not args.issue_workload),
                "rows": [asdict(row) | {"passed": row.passed} for row in rows],
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"wrote {args.json}")
    return 0 if rows and all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
