"""Issue 17's scheduling semantics through the gateway, on the real platform.

One stack (the seven services, real workers, Envoy) for the module, on this module's own
port offsets; the scheduler runs with a tenant limit of 3 runs and calls a queue
unserved after 1 s without a worker. Each test drives runs through the public API and
reads the run view: skipped and cancelled tasks with their reasons, schedule-to-start and
run timeouts (the worker stops the timed-out task), tasks waiting for a worker of their
queue (run by one started later), concurrency limits (a retried run, or one whose
dead letter is replayed, takes a slot again, its view saying why it waits meanwhile),
conditions and trigger rules, the run's
output, a timer across a scheduler restart, weekday and date delays.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from interlock.devstack import free_port_offsets
from interlock.devstack._probes import run_sync
from interlock.devstack._stack import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    Stack,
    StackSecrets,
    service_by_name,
)
from interlock.devstack._supervisor import Supervisor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

OFFSETS = (2600, 2700, 2800)
"""Port offsets this module may use (other tests use others at the same time), all
below the ephemeral range, where outgoing connections would take ports at random."""
TENANT_LIMIT = 3
"""The scheduler's ``tenant_max_concurrent_runs`` in this stack."""
UNSERVED_AFTER_S = 1
"""The scheduler's ``unserved_after_s`` (and reconcile interval) in this stack."""
ENDED = {"succeeded", "failed", "cancelled"}


@dataclass
class Platform:
    stack: Stack
    client: httpx.Client
    secrets: StackSecrets

    @property
    def scheduler_password(self) -> str:
        return self.secrets.postgres_passwords["scheduler"]

    def define(self, yaml: str) -> None:
        response = self.client.post(
            "/api/v1/workflows", content=yaml, headers={"content-type": "application/yaml"}
        )
        assert response.status_code == 201, response.text

    def start(self, workflow: str, run_input: dict[str, Any] | None = None) -> str:
        response = self.client.post(
            f"/api/v1/workflows/{workflow}/runs", json={"input": run_input or {}}
        )
        assert response.status_code == 201, response.text
        run_id: str = response.json()["run_id"]
        return run_id

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/runs/{run_id}")
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        return view

    def tasks(self, run_id: str) -> dict[str, dict[str, Any]]:
        return {task["id"]: task for task in self.run(run_id)["tasks"]}

    def eventually(
        self, check: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.1)

    def ended(self, run_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """The run view once the run and every one of its tasks have settled."""

        def settled() -> dict[str, Any] | None:
            response = self.client.get(f"/api/v1/runs/{run_id}")
            if response.status_code == 503:  # the scheduler, which holds the tasks, restarts
                return None
            assert response.status_code == 200, response.text
            view: dict[str, Any] = response.json()
            busy = {"pending", "scheduled", "running", "retrying"}
            if view["status"] in ENDED and not any(t["status"] in busy for t in view["tasks"]):
                return view
            return None

        view: dict[str, Any] = self.eventually(settled, timeout_s, f"run {run_id} to end")
        return view

    def scheduler_rows(self, query: str, *args: Any) -> list[Any]:
        async def fetch() -> list[Any]:
            conn = await asyncpg.connect(
                self.stack.postgres_dsn("scheduler"), password=self.scheduler_password
            )
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return run_sync(fetch)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.devstack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    # Not under pytest's tmp dir: it is 0700 root, and PostgreSQL runs unprivileged.
    data_dir = Path(tempfile.mkdtemp(prefix="ilk-semantics-"))
    data_dir.chmod(0o755)
    env = {
        **os.environ,
        "INTERLOCK_DEV_DATA_DIR": str(data_dir),
        "INTERLOCK_TENANT_MAX_CONCURRENT_RUNS": str(TENANT_LIMIT),
        "INTERLOCK_UNSERVED_AFTER_S": str(UNSERVED_AFTER_S),
        "INTERLOCK_RECONCILE_INTERVAL_S": str(UNSERVED_AFTER_S),
    }
    env.pop("INTERLOCK_DEV_SERVICE_COMMAND", None)
    failures = []
    try:
        # On a loaded machine a service may miss `up`'s readiness deadline once: then
        # the same offset again, then the next free one.
        for offset in (o for o in free_port_offsets(OFFSETS) for _ in range(2)):
            env["INTERLOCK_DEV_PORT_OFFSET"] = str(offset)
            up = _cli(env, "up")
            if up.returncode == 0:
                break
            failures.append(f"offset {offset}:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
            _cli(env, "down")
        else:
            tried = "\n".join(failures) or f"no offset of {OFFSETS} had all its ports free"
            pytest.fail(f"up failed at every free offset:\n{tried}")
        stack = Stack.from_env(env)
        secrets = StackSecrets.load_or_create(stack.secrets_file)[0]
        with httpx.Client(base_url=stack.gateway_url, trust_env=False, timeout=30) as client:
            login = client.post(
                "/api/v1/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
            )
            assert login.status_code == 200, login.text
            client.headers["authorization"] = f"Bearer {login.json()['access_token']}"
            yield Platform(stack, client, secrets)
    finally:
        # clean, not down: as root, PostgreSQL's folder lives outside the data folder.
        _cli(env, "clean")
        shutil.rmtree(data_dir, ignore_errors=True)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_conditions_and_trigger_rules_pick_a_branch_and_the_output_is_rendered(
    platform: Platform,
) -> None:
    name = _name("branches")
    platform.define(
        f"""
name: {name}
output:
  size: "{{{{ tasks.measure.output.size }}}}"
  path: "{{{{ tasks.small.output.path }}}}"
tasks:
  - id: measure
    type: noop
    params: {{size: "{{{{ input.size }}}}"}}
  - id: big
    type: noop
    depends_on: [measure]
    when: "tasks.measure.output.size > 100"
  - id: after_big
    type: noop
    depends_on: [big]
  - id: small
    type: noop
    params: {{path: small}}
    depends_on: [measure]
    when: "not (tasks.measure.output.size > 100) and input.mode != 'dry'"
  - id: join
    type: noop
    depends_on: [after_big, small]
    trigger_rule: none_failed
  - id: any_branch
    type: noop
    depends_on: [big, small]
    trigger_rule: one_success
"""
    )
    view = platform.ended(platform.start(name, {"size": 7, "mode": "wet"}))
    tasks = {task["id"]: task for task in view["tasks"]}
    assert view["status"] == "succeeded"
    assert view["output"] == {"size": 7, "path": "small"}
    assert tasks["big"]["status"] == "skipped"
    assert tasks["big"]["reason"] == "condition is false: tasks.measure.output.size > 100"
    assert tasks["after_big"]["status"] == "skipped"
    assert tasks["after_big"]["reason"] == "upstream task 'big' was skipped"
    assert {tasks[t]["status"] for t in ("measure", "small", "join", "any_branch")} == {"succeeded"}


def test_a_failed_run_skips_its_downstream_tasks_and_runs_its_cleanup(platform: Platform) -> None:
    name = _name("failing")
    platform.define(
        f"""
name: {name}
tasks:
  - id: extract
    type: fail
    params: {{retryable: false}}
  - id: transform
    type: noop
    depends_on: [extract]
  - id: load
    type: noop
    depends_on: [transform]
  - id: cleanup
    type: noop
    depends_on: [load]
    trigger_rule: all_done
  - id: alert
    type: noop
    depends_on: [extract]
    trigger_rule: one_failed
"""
    )
    view = platform.ended(platform.start(name))
    tasks = {task["id"]: task for task in view["tasks"]}
    assert view["status"] == "failed"
    assert tasks["extract"]["status"] == "dead_lettered"
    for task_id in ("transform", "load"):
        assert tasks[task_id]["status"] == "skipped"
        assert tasks[task_id]["reason"] == "the run failed"
    assert tasks["cleanup"]["status"] == "succeeded"
    assert tasks["alert"]["status"] == "succeeded"


def test_a_cancelled_run_cancels_its_running_and_pending_tasks_with_the_reason(
    platform: Platform,
) -> None:
    name = _name("cancelled")
    platform.define(
        f"""
name: {name}
tasks:
  - id: slow
    type: sleep
    params: {{duration: 60s}}
  - id: after
    type: noop
    depends_on: [slow]
"""
    )
    run_id = platform.start(name)
    platform.eventually(
        lambda: platform.tasks(run_id).get("slow", {}).get("status") == "running",
        what="the slow task to run",
    )
    cancel = platform.client.post(f"/api/v1/runs/{run_id}/cancel", json={"reason": "not today"})
    assert cancel.status_code == 200, cancel.text
    view = platform.ended(run_id)
    tasks = {task["id"]: task for task in view["tasks"]}
    assert view["status"] == "cancelled"
    for task_id in ("slow", "after"):
        assert tasks[task_id]["status"] == "cancelled"
        assert tasks[task_id]["reason"] == "the run was cancelled: not today"


def test_a_task_no_worker_starts_in_time_is_retried_then_fails_clearly(platform: Platform) -> None:
    name = _name("unserved")
    platform.define(
        f"""
name: {name}
tasks:
  - id: gpu
    type: noop
    queue: no-such-workers
    schedule_to_start_timeout: 500ms
    retry: {{max_attempts: 2, initial_interval: 100ms}}
  - id: after
    type: noop
    depends_on: [gpu]
"""
    )
    view = platform.ended(platform.start(name))
    tasks = {task["id"]: task for task in view["tasks"]}
    assert view["status"] == "failed"
    assert tasks["gpu"]["status"] == "dead_lettered"
    assert tasks["gpu"]["attempts"] == 2
    assert tasks["gpu"]["error"]["type"] == "ScheduleToStartTimeout"
    assert "not started by a worker within 500 ms" in tasks["gpu"]["error"]["message"]
    assert tasks["after"]["status"] == "skipped"


def test_a_run_past_its_timeout_fails_and_its_running_task_is_cancelled(
    platform: Platform,
) -> None:
    name = _name("deadline")
    platform.define(
        f"""
name: {name}
timeout: 2s
tasks:
  - id: slow
    type: sleep
    params: {{duration: 60s}}
  - id: after
    type: noop
    depends_on: [slow]
"""
    )
    stopped_before = _worker_metric(platform, 'interlock_worker_tasks_total{outcome="cancelled"')
    run_id = platform.start(name)
    platform.eventually(
        lambda: _worker_metric(platform, "interlock_worker_tasks_running{") >= 1,
        what="the sleep to run on the worker",
    )
    view = platform.ended(run_id, timeout_s=20)
    tasks = {task["id"]: task for task in view["tasks"]}
    assert view["status"] == "failed"
    assert tasks["slow"]["status"] == "cancelled"
    assert tasks["slow"]["reason"] == "the run timed out after 2000 ms"
    assert tasks["after"]["status"] == "skipped"
    # The worker stopped the sleep (its slot is free) instead of letting it run 60 s.
    platform.eventually(
        lambda: (
            _worker_metric(platform, 'interlock_worker_tasks_total{outcome="cancelled"')
            > stopped_before
        ),
        timeout_s=20,
        what="the worker to stop the timed-out task",
    )
    assert _worker_metric(platform, "interlock_worker_tasks_running{") == 0


def _worker_metric(platform: Platform, prefix: str) -> float:
    """The sum of the stack worker's ``sleep`` series that start with ``prefix``."""
    worker = service_by_name("worker")
    assert worker is not None
    port = platform.stack.http_port(worker)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False, timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix) and 'type="sleep"' in line
    )


def test_a_task_of_a_queue_no_worker_serves_waits_visibly_then_runs_on_a_new_worker(
    platform: Platform,
) -> None:
    queue = _name("gpu")
    name = _name("unserved-queue")
    platform.define(
        f"""
name: {name}
tasks:
  - id: train
    type: noop
    queue: {queue}
"""
    )
    run_id = platform.start(name)
    task = platform.eventually(
        lambda: (t := platform.tasks(run_id).get("train", {})).get("reason") and t,
        what="the task's waiting reason",
    )
    assert task["status"] == "scheduled"
    assert task["reason"] == (
        f"waiting for a worker serving queue {queue!r}: none took or ran a task of it "
        f"in the last {UNSERVED_AFTER_S} s"
    )
    with _extra_worker(platform, queue):
        view = platform.ended(run_id, timeout_s=60)
    assert view["status"] == "succeeded"
    assert view["tasks"][0]["status"] == "succeeded"
    assert "reason" not in view["tasks"][0]


@contextlib.contextmanager
def _extra_worker(platform: Platform, queue: str) -> Iterator[None]:
    """A second worker process, serving only ``queue``, wired to the stack."""
    worker = service_by_name("worker")
    assert worker is not None
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("INTERLOCK_")}
    env |= platform.stack.service_env(worker, platform.secrets, {})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        env["INTERLOCK_HTTP_PORT"] = str(probe.getsockname()[1])
    env["INTERLOCK_WORKER_QUEUES"] = json.dumps([queue])
    process = subprocess.Popen(
        platform.stack.service_command(worker, {}),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_runs_over_the_workflow_limit_wait_visibly_and_start_in_order(platform: Platform) -> None:
    name = _name("one-at-a-time")
    platform.define(
        f"""
name: {name}
max_concurrent_runs: 1
tasks:
  - id: work
    type: sleep
    params: {{duration: 2s}}
"""
    )
    first = platform.start(name)
    platform.eventually(lambda: platform.run(first)["status"] == "running", what="a first run")
    # Requested in this order (their starts may reach the scheduler in another).
    runs = [first, platform.start(name), platform.start(name)]
    waiting = platform.eventually(
        lambda: all(platform.run(r).get("status_reason") for r in runs[1:]) and runs[1:],
        what="runs waiting with a reason",
    )
    reason = platform.run(waiting[0])["status_reason"]
    assert reason == (
        f"waiting for a slot: 1 of 1 runs of {name!r} are running (max_concurrent_runs)"
    )
    views = [platform.ended(run_id) for run_id in runs]
    assert [view["status"] for view in views] == ["succeeded"] * 3
    started = [view["tasks"][0]["started_at"] for view in views]
    finished = [view["tasks"][0]["finished_at"] for view in views]
    assert started == sorted(started)
    for previous_end, next_start in zip(finished, started[1:], strict=False):
        assert previous_end <= next_start
    assert views[1].get("status_reason") is None


def _failing_and_holding(platform: Platform, prefix: str) -> tuple[str, str]:
    """Two workflows: one whose task fails for good, one that holds a slot for 3 s."""
    failing, holding = _name(prefix), _name("holding")
    platform.define(
        f"""
name: {failing}
tasks:
  - id: work
    type: fail
    params: {{retryable: false}}
"""
    )
    platform.define(
        f"""
name: {holding}
tasks:
  - id: work
    type: sleep
    params: {{duration: 3s}}
"""
    )
    return failing, holding


def _hold_every_tenant_slot(platform: Platform, holding: str) -> list[str]:
    """Start runs of ``holding`` until every slot of the tenant is taken; their ids."""
    holders = [platform.start(holding) for _ in range(TENANT_LIMIT)]
    platform.eventually(
        lambda: all(platform.run(h)["status"] == "running" for h in holders),
        what="runs holding every slot of the tenant",
    )
    return holders


def test_a_retried_run_waits_for_a_slot_like_a_new_one(platform: Platform) -> None:
    failing, holding = _failing_and_holding(platform, "retried")
    run_id = platform.start(failing)
    assert platform.ended(run_id)["status"] == "failed"
    holders = _hold_every_tenant_slot(platform, holding)
    retry = platform.client.post(f"/api/v1/runs/{run_id}/retry", json={})
    assert retry.status_code == 200, retry.text
    waiting = platform.eventually(
        lambda: platform.run(run_id).get("status_reason"), what="the retried run to wait"
    )
    assert waiting == (
        f"waiting for a slot: the tenant has {TENANT_LIMIT} of its {TENANT_LIMIT} runs running"
    )
    freed = min(platform.ended(h)["tasks"][0]["finished_at"] for h in holders)
    retried = platform.eventually(
        lambda: (v := platform.ended(run_id))["tasks"][0]["attempts"] == 2 and v,
        what="the retried attempt",
    )
    assert retried["status"] == "failed"
    assert freed <= retried["tasks"][0]["started_at"]


def test_a_replayed_dead_letter_waits_for_a_slot_like_a_retried_run(platform: Platform) -> None:
    failing, holding = _failing_and_holding(platform, "replayed")
    run_id = platform.start(failing)
    assert platform.ended(run_id)["status"] == "failed"
    letters = platform.eventually(
        lambda: platform.client.get("/api/v1/dead-letters", params={"run_id": run_id}).json()[
            "items"
        ],
        what="the run's dead letter",
    )
    holders = _hold_every_tenant_slot(platform, holding)
    replay = platform.client.post(f"/api/v1/dead-letters/{letters[0]['id']}/replay")
    assert replay.status_code == 202, replay.text
    assert replay.json()["attempt"] == 2
    freed = min(platform.ended(h)["tasks"][0]["finished_at"] for h in holders)
    replayed = platform.eventually(
        lambda: (v := platform.ended(run_id))["tasks"][0]["attempts"] == 2 and v,
        what="the replayed attempt",
    )
    assert replayed["status"] == "failed"
    assert freed <= replayed["tasks"][0]["started_at"]


def test_a_replayed_dead_letter_of_a_limited_workflow_shows_why_it_waits(
    platform: Platform,
) -> None:
    name = _name("replayed-limited")
    platform.define(
        f"""
name: {name}
max_concurrent_runs: 1
tasks:
  - id: hold
    type: sleep
    params: {{duration: 3s}}
    when: "input.mode == 'hold'"
  - id: check
    type: fail
    params: {{retryable: false}}
    when: "input.mode == 'fail'"
"""
    )
    failing = platform.start(name, {"mode": "fail"})
    assert platform.ended(failing)["status"] == "failed"
    letters = platform.eventually(
        lambda: platform.client.get("/api/v1/dead-letters", params={"run_id": failing}).json()[
            "items"
        ],
        what="the run's dead letter",
    )
    holder = platform.start(name, {"mode": "hold"})
    platform.eventually(lambda: platform.run(holder)["status"] == "running", what="the holder")
    replay = platform.client.post(f"/api/v1/dead-letters/{letters[0]['id']}/replay")
    assert replay.status_code == 202, replay.text
    # The run stays failed until it gets its slot; its view says why it waits meanwhile.
    waiting = platform.eventually(
        lambda: (view := platform.run(failing)).get("status_reason") and view,
        what="the replayed run's waiting reason",
    )
    assert waiting["status"] == "failed"
    assert waiting["status_reason"] == (
        f"waiting for a slot: 1 of 1 runs of {name!r} are running (max_concurrent_runs)"
    )
    freed = platform.ended(holder)["tasks"][0]["finished_at"]
    replayed = platform.eventually(
        lambda: (v := platform.ended(failing))["tasks"][1]["attempts"] == 2 and v,
        what="the replayed attempt",
    )
    assert replayed["status"] == "failed"
    assert "status_reason" not in replayed
    assert freed <= replayed["tasks"][1]["started_at"]


def test_runs_over_the_tenant_limit_wait_until_others_end(platform: Platform) -> None:
    name = _name("tenant-limit")
    platform.define(
        f"""
name: {name}
tasks:
  - id: work
    type: sleep
    params: {{duration: 1s}}
"""
    )
    runs = [platform.start(name) for _ in range(TENANT_LIMIT + 2)]
    waiting = platform.eventually(
        lambda: [r for r in runs if platform.run(r).get("status_reason")],
        what="runs over the tenant limit waiting",
    )
    assert platform.run(waiting[0])["status_reason"] == (
        f"waiting for a slot: the tenant has {TENANT_LIMIT} of its {TENANT_LIMIT} runs running"
    )
    views = [platform.ended(run_id) for run_id in runs]
    assert {view["status"] for view in views} == {"succeeded"}
    spans = [(v["tasks"][0]["started_at"], v["tasks"][0]["finished_at"]) for v in views]
    for start, _ in spans:
        overlapping = sum(1 for s, f in spans if s <= start < f)
        assert overlapping <= TENANT_LIMIT


def test_a_delay_timer_survives_a_scheduler_restart(platform: Platform) -> None:
    name = _name("restart")
    platform.define(
        f"""
name: {name}
tasks:
  - id: wait
    type: delay
    params: {{duration: 4s}}
  - id: after
    type: noop
    depends_on: [wait]
"""
    )
    run_id = platform.start(name)
    platform.eventually(
        lambda: platform.scheduler_rows("SELECT 1 FROM timers WHERE run_id = $1", run_id),
        what="the delay's timer row",
    )
    supervisor = Supervisor(platform.stack.supervisor_dir)
    supervisor.stop_all(["scheduler"], timeout_s=60)
    supervisor.start("scheduler")
    view = platform.ended(run_id, timeout_s=90)
    assert view["status"] == "succeeded"
    assert [task["status"] for task in view["tasks"]] == ["succeeded", "succeeded"]


def test_weekday_and_date_delays_wait_for_their_local_time(platform: Platform) -> None:
    name = _name("calendar")
    zone = ZoneInfo("America/New_York")
    platform.define(
        f"""
name: {name}
tasks:
  - id: weekly
    type: delay
    params: {{weekdays: [mon, thu], at: "09:30", timezone: America/New_York}}
  - id: dated
    type: delay
    params: {{date: "2031-03-09", at: "02:30", timezone: America/New_York}}
  - id: after
    type: noop
    depends_on: [weekly, dated]
"""
    )
    before = datetime.now(UTC)
    run_id = platform.start(name)
    rows = platform.eventually(
        lambda: platform.scheduler_rows(
            "SELECT task_id, due_at FROM timers WHERE run_id = $1 ORDER BY task_id", run_id
        ),
        what="the delays' timers",
    )
    due = {row["task_id"]: row["due_at"] for row in rows}
    weekly = due["weekly"].astimezone(zone)
    assert (weekly.isoweekday(), weekly.hour, weekly.minute) in {(1, 9, 30), (4, 9, 30)}
    assert before < due["weekly"] <= before + timedelta(days=4)
    # 2031-03-09 02:30 does not exist in New York (clocks go forward): shifted to 03:30.
    assert due["dated"] == datetime(2031, 3, 9, 3, 30, tzinfo=zone)
    soon = (datetime.now(UTC) + timedelta(milliseconds=200)).isoformat()
    for task_id in ("weekly", "dated"):
        moved = platform.client.patch(
            f"/api/v1/runs/{run_id}/tasks/{task_id}/timer", json={"due_at": soon}
        )
        assert moved.status_code == 200, moved.text
    view = platform.ended(run_id)
    assert view["status"] == "succeeded"
