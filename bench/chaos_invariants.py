"""What ``make chaos`` checks once the runs of a fault are final, beyond the runs' states.

- **Metadata**: every run's execution document (``GET /api/v1/executions/{id}``) shows
  the run's status and every task's status as the scheduler's database holds them;
  so does the workflow service's run view (``GET /api/v1/runs/{id}``), checked apart.
- **Notifications**: a webhook subscription hears ``run.succeeded`` of every run of the
  fault; the receiver started here, on loopback, verifies each message's signature
  (``standardwebhooks``) and expects one ``webhook-id`` per run: a repeated id is a
  retry of the same message, a second id for one run a duplicate message.
- **Artifacts**: the ``echo`` task's artifact of every talking run is listed, available,
  and its bytes read through the gateway have the SHA-256 the record and the text give.
- **Logs**: every line the ``echo`` task writes is in ``GET /api/v1/executions/{id}/logs``.

Each check is asked again until it holds or the settle bound is over: the execution
documents, deliveries and log lines lag the runs by design.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from bench.interlock_api import InterlockClient
from interlock.devstack._process import LOOPBACK, free_ports

TALK_TASK = "talk"
"""The ``echo`` task that writes log lines and stores an artifact."""
ECHO_LINES = [f"chaos line {n}" for n in range(1, 11)]
ECHO_INTERVAL = "200ms"
ARTIFACT_NAME = "chaos.txt"
ARTIFACT_TEXT = "written by make chaos while the platform was losing pieces\n"
ARTIFACT_SHA256 = hashlib.sha256(ARTIFACT_TEXT.encode()).hexdigest()
PROBLEMS_KEPT = 10
"""Examples of each broken invariant kept in the report."""


def talk_workflow() -> list[dict[str, Any]]:
    """One ``echo`` task: ten log lines 200 ms apart, then a small text artifact.

    It retries, as a task that needs another service should: an attempt that finds the
    artifact service away fails (retryable), and without retries so does the run.
    """
    return [
        {
            "id": TALK_TASK,
            "type": "echo",
            "params": {
                "lines": ECHO_LINES,
                "interval": ECHO_INTERVAL,
                "artifact": {"name": ARTIFACT_NAME, "text": ARTIFACT_TEXT},
            },
            "retry": {"max_attempts": 10, "initial_interval": "1s", "max_interval": "5s"},
        }
    ]


@dataclass
class Inbox:
    """What one subscription's webhooks brought: per run, the ids; per id, the arrivals."""

    secret: str
    ids_by_run: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    arrivals: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bad_signatures: int = 0


class WebhookReceiver:
    """An HTTP server on loopback that takes every subscription's webhooks.

    Each subscription posts to its own path; :meth:`inbox` registers the path and the
    secret its messages are verified with.
    """

    def __init__(self) -> None:
        self._inboxes: dict[str, Inbox] = {}
        self.url = ""

    def inbox(self, path: str, secret: str) -> Inbox:
        """Start taking webhooks at ``path``, signed with ``secret``."""
        self._inboxes[path] = Inbox(secret)
        return self._inboxes[path]

    async def _handle(self, request: web.Request) -> web.Response:
        inbox = self._inboxes.get(request.path)
        if inbox is None:
            return web.Response(status=404)
        try:
            body = await request.read()
        except ConnectionResetError:  # the sender was killed mid-request: it sends again
            return web.Response(status=499)
        try:
            message = Webhook(inbox.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            inbox.bad_signatures += 1
            return web.Response(status=400)
        webhook_id = request.headers["webhook-id"]
        inbox.arrivals[webhook_id] += 1
        inbox.ids_by_run[message["data"]["run_id"]].add(webhook_id)
        return web.Response(status=204)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[WebhookReceiver]:
        """Listen on a free loopback port until the block ends."""
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        (port,) = free_ports(1)
        await web.TCPSite(runner, LOOPBACK, port).start()
        self.url = f"http://{LOOPBACK}:{port}"
        try:
            yield self
        finally:
            await runner.cleanup()


async def subscribe(
    client: InterlockClient, receiver: WebhookReceiver, name: str, workflows: list[str]
) -> Inbox:
    """A webhook subscription to ``run.succeeded`` of ``workflows``, and its inbox."""
    path = f"/{name}"
    answer = await client._request(
        "POST",
        "/api/v1/subscriptions",
        json={
            "name": name,
            "channel": "webhook",
            "target": receiver.url + path,
            "events": ["run.succeeded"],
            "filter": {"workflows": workflows},
        },
    )
    body = InterlockClient._check(answer, "subscribe")
    return receiver.inbox(path, body["secret"])


@dataclass(frozen=True)
class RunState:
    """A run's status and its tasks' statuses."""

    status: str
    tasks: dict[str, str]


SchedulerStates = Callable[[list[str]], Awaitable[dict[str, RunState]]]
"""Reads runs' states from the scheduler's database (the truth the views converge to)."""


@dataclass
class Findings:
    """The lagging invariants' state for one fault; each ``*_open`` shrinks as they hold."""

    metadata_open: dict[str, str] = field(default_factory=dict)
    """Run id -> how its execution document differs from the scheduler (while it does)."""
    run_view_open: dict[str, str] = field(default_factory=dict)
    """Run id -> how ``GET /api/v1/runs/{id}`` differs from the scheduler (while it does)."""
    notifications_open: set[str] = field(default_factory=set)
    """Succeeded runs no webhook told of yet."""
    artifacts_open: dict[str, str] = field(default_factory=dict)
    """Talking run id -> why its artifact is not readable with its SHA-256 (yet)."""
    logs_open: dict[str, int] = field(default_factory=dict)
    """Talking run id -> echo lines not stored (yet)."""

    def settled(self) -> bool:
        """Whether every check holds."""
        return not (
            self.metadata_open
            or self.run_view_open
            or self.notifications_open
            or self.artifacts_open
            or self.logs_open
        )


def _shown_state(view: dict[str, Any]) -> RunState:
    return RunState(view["status"], {task["id"]: task["status"] for task in view["tasks"]})


def difference(truth: RunState | None, path: str, answer: Any) -> str | None:
    """How a view of a run (``answer`` of GET ``path``) differs from ``truth``, or ``None``."""
    if truth is None:
        return "the scheduler does not know the run"
    if answer.status != 200:
        return f"GET {path} answered {answer.status}"
    shown = _shown_state(answer.json())
    if shown.status != truth.status:
        return f"scheduler {truth.status}, shown {shown.status}"
    tasks = truth.tasks.keys() | shown.tasks.keys()
    differing = sorted(t for t in tasks if truth.tasks.get(t) != shown.tasks.get(t))
    if not differing:
        return None
    return "tasks " + ", ".join(
        f"{t}: scheduler {truth.tasks.get(t)}, shown {shown.tasks.get(t)}" for t in differing[:3]
    )


async def _compare(
    client: InterlockClient, open_: dict[str, str], truths: dict[str, RunState], path: str
) -> None:
    for run_id in list(open_):
        view = f"{path}/{run_id}"
        problem = difference(truths.get(run_id), view, await client._request("GET", view))
        if problem is None:
            del open_[run_id]
        else:
            open_[run_id] = problem


async def artifact_problem(client: InterlockClient, run_id: str) -> str | None:
    """Why the run's artifact is not readable with its SHA-256, or ``None`` when it is."""
    answer = await client._request(
        "GET", "/api/v1/artifacts", params={"run_id": run_id, "name_prefix": ARTIFACT_NAME}
    )
    if answer.status != 200:
        return f"list answered {answer.status}"
    available = [a for a in answer.json()["artifacts"] if a["state"] == "available"]
    if not available:
        return "no available artifact"
    for artifact in available:
        if artifact["sha256"] != ARTIFACT_SHA256:
            return f"record {artifact['artifact_id']} has SHA-256 {artifact['sha256']}"
        content = await client._request(
            "GET", f"/api/v1/artifacts/{artifact['artifact_id']}/content"
        )
        if content.status != 200:
            return f"content of {artifact['artifact_id']} answered {content.status}"
        if hashlib.sha256(content.body).hexdigest() != ARTIFACT_SHA256:
            return f"bytes of {artifact['artifact_id']} have another SHA-256"
    return None


async def missing_log_lines(client: InterlockClient, run_id: str) -> int:
    """How many of the echo task's lines the run's log lacks (every attempt counted once)."""
    answer = await client._request(
        "GET",
        f"/api/v1/executions/{run_id}/logs",
        params={"task_id": TALK_TASK, "limit": 10_000},
    )
    if answer.status != 200:
        return len(ECHO_LINES)
    stored = {line["message"] for line in answer.json()["lines"]}
    return sum(1 for line in ECHO_LINES if line not in stored)


async def look_again(
    client: InterlockClient, scheduler: SchedulerStates, findings: Findings, inbox: Inbox
) -> None:
    """Ask every open check again; what holds now leaves ``findings``."""
    truths = await scheduler(list(findings.metadata_open.keys() | findings.run_view_open.keys()))
    await _compare(client, findings.metadata_open, truths, "/api/v1/executions")
    await _compare(client, findings.run_view_open, truths, "/api/v1/runs")
    findings.notifications_open -= inbox.ids_by_run.keys()
    for run_id in list(findings.artifacts_open):
        problem = await artifact_problem(client, run_id)
        if problem is None:
            del findings.artifacts_open[run_id]
        else:
            findings.artifacts_open[run_id] = problem
    for run_id in list(findings.logs_open):
        missing = await missing_log_lines(client, run_id)
        if missing:
            findings.logs_open[run_id] = missing
        else:
            del findings.logs_open[run_id]


def duplicate_messages(inbox: Inbox) -> int:
    """Runs told of by more than one ``webhook-id`` (a message sent twice, not retried)."""
    return sum(1 for ids in inbox.ids_by_run.values() if len(ids) > 1)


def retried_deliveries(inbox: Inbox) -> int:
    """Arrivals of a ``webhook-id`` beyond its first (retries, allowed)."""
    return sum(count - 1 for count in inbox.arrivals.values())


def examples(problems: dict[str, Any] | set[str]) -> dict[str, str]:
    """At most :data:`PROBLEMS_KEPT` of ``problems``, for the report."""
    items = problems.items() if isinstance(problems, dict) else ((p, "") for p in problems)
    return {
        key: json.dumps(value) if not isinstance(value, str) else value
        for key, value in list(items)[:PROBLEMS_KEPT]
    }
