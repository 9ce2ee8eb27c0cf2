"""``make chaos``: faults injected into a running platform while runs are in flight.

For each fault of the schedule: start ``runs`` runs through the gateway, in turn of a
mixed load (issue 22's ``sleep 3s -> sleep 3s -> noop`` with no timeout set, a fan-out,
a timer, a task that needs retries; ``--issue-workload`` for the first alone), inject
the fault a second later, then wait until every run is final. Each row reports how
many runs the fault caught in flight, how long after the fault the last of them
finished and every service answered ``/readyz`` again, and the invariants:

- every run succeeded (the workload has no designed failure) within ``bound_s``;
- no task completion recorded twice for one attempt (the scheduler's transitions);
- no dead letter (none is designed, so none is explained).

Faults, each on the stack's supervisord: SIGKILL of every service in turn (supervision
restarts it), SIGSTOP of the worker past the scheduler's lost-attempt bound, the broker
restarted empty, PostgreSQL, MongoDB and S3 stopped and started again.

Usage::

    python -m bench.chaos                  # a fresh private stack, every fault, 300 runs
    python -m bench.chaos --short          # a few minutes: one fault of each kind, 30 runs
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

    async def scheduler_facts(self, run_ids: list[str]) -> tuple[int, int]:
        """(attempts completed more than once, dead letters) among ``run_ids``."""
        conn = await asyncpg.connect(
            self.stack.postgres_dsn("scheduler"), password=self._postgres_password
        )
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
            letters = await conn.fetchval(
                "SELECT count(*) FROM dead_letters WHERE run_id = ANY($1::text[])", run_ids
            )
        finally:
            await conn.close()
        return int(doubles), int(letters)


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


def schedule(*, short: bool, lost_attempt_s: float) -> list[tuple[str, Fault]]:
    """The faults, in order. ``short``: one of each kind."""
    stopped = stop_worker(lost_attempt_s + STOP_PAST_BOUND_S)
    if short:
        return [
            ("SIGKILL scheduler", kill("scheduler")),
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
    ``mixed`` also a fan-out (1 -> 5 sleeps -> 1), a timer (a 3 s delay) and retries
    (a task failing half its attempts, 20 attempts: it succeeds but with a 1e-6 chance).
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
    return [issue, fanout, timer, retries]


async def one_fault(
    platform: Platform, name: str, fault: Fault, *, runs: int, bound_s: float, mixed: bool
) -> Row:
    """Start the runs, inject ``fault``, wait for the runs and the services."""
    names: list[str] = []
    for tasks in workflows(mixed):
        workflow = f"chaos-{uuid.uuid4().hex[:8]}"
        await platform.client.define(
            {"name": workflow, "description": f"make chaos: {name}", "tasks": tasks}
        )
        names.append(workflow)
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
    row.double_completions, row.dead_letters = await platform.scheduler_facts(
        [run.run_id for run in started]
    )
    row.check(bound_s)
    return row


@contextlib.asynccontextmanager
async def platform_under_test(running: bool, console: Console) -> AsyncIterator[Platform]:
    """The running ``make up`` stack, or a fresh private one stopped afterwards."""
    bench_stack: BenchStack | None = None
    if running:
        stack = Stack.from_env()
    else:
        bench_stack = BenchStack()
        console.print(f"starting a fresh stack in {bench_stack.data_dir} ...")
        await bench_stack.up()
        stack = bench_stack.stack
    platform = Platform(stack)
    try:
        await platform.client.login(*LOGIN)
        yield platform
    finally:
        await platform.client.aclose()
        if bench_stack is not None:
            await bench_stack.down()


async def chaos(args: argparse.Namespace, console: Console) -> list[Row]:
    """Run the schedule; one row per fault."""
    lost_attempt_s = float(os.environ.get(LOST_ATTEMPT_ENV) or DEFAULT_LOST_ATTEMPT_S)
    faults = schedule(short=args.short, lost_attempt_s=lost_attempt_s)
    if args.only:
        faults = [(name, fault) for name, fault in faults if args.only.lower() in name.lower()]
    rows: list[Row] = []
    async with platform_under_test(args.running, console) as platform:
        for name, fault in faults:
            console.print(f"[bold]{name}[/bold]: {args.runs} runs in flight ...")
            try:
                row = await one_fault(
                    platform,
                    name,
                    fault,
                    runs=args.runs,
                    bound_s=args.bound_s,
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
        f"{row.last_run_final_after_s} s, services ready after {row.services_ready_after_s} s"
    )


def render(rows: list[Row], console: Console) -> None:
    """The table: fault, runs affected, time to recover, invariants."""
    table = Table(title="make chaos")
    for column in ("fault", "runs", "succeeded", "last run final (s)", "ready (s)", "invariants"):
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
            verdict,
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the schedule, write the JSON, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="one fault of each kind")
    parser.add_argument("--runs", type=int, default=None, help="runs per fault (300; short 30)")
    parser.add_argument("--bound-s", type=float, default=240.0, help="longest recovery allowed")
    parser.add_argument("--running", action="store_true", help="use the `make up` stack")
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
    console = Console()
    rows = asyncio.run(chaos(args, console))
    render(rows, console)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "runs_per_fault": args.runs,
                "bound_s": args.bound_s,
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
