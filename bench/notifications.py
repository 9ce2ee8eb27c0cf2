"""Benchmark: notifications when runs finish (``BENCH_SYSTEMS=notifications``; issue 15).

Starts its own small platform on free loopback ports: PostgreSQL, the Kafka-protocol
broker, the SMTP capture and the notification service as a real process
(``python -m interlock.notification``, its default retry schedule), plus a webhook
receiver in this process. Two subscriptions (a webhook and an email) hear about every
run; runs finish at a steady pace, each as the scheduler tells it (``workflow.started``
then ``workflow.completed`` on Kafka), and every message is timed from the run's
finish (the event's time) to its arrival (the receiver's clock, or the captured mail's
file time). Then a second phase with a receiver that fails half of the first attempts
(503), which must still get every message within the retry schedule.

Figures: deliveries made, lost (expected but never arrived), duplicated webhook-ids
(answered 2xx more than once: retries of failed attempts are not duplicates), the
delivery lag p50/p99/max, and where the first phase's lag went (``stages``: run
finished → delivery written by the consumer → first attempt started by the delivery
loop). Everything shares the machine's cores with the load.
Standalone: ``python -m bench.notifications [--runs 1000] [--rate 100]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import hashlib
import json
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from bench import stats
from bench.config import BenchConfig
from bench.progress import ProgressBoard
from interlock.common import topics
from interlock.common.events import Event
from interlock.common.kafka import EventPublisher
from interlock.common.sealing import new_key_encryption_key
from interlock.common.settings import KafkaOptions
from interlock.common.testing import TEST_IDENTITY, identity_headers
from interlock.devstack._probes import http_probe
from interlock.devstack._process import LOOPBACK, free_ports
from interlock.devstack._runner import RunningServer, scratch_postgres, start_server
from interlock.devstack._servers import ServerSpec, kafka_spec, smtp_spec
from interlock.events.v1 import definition_pb2, workflow_pb2

TENANT = "bench"
WORKFLOW = "bench-notify"
FLAKY_WORKFLOW = "bench-notify-flaky"
_RUN_LINE = re.compile(r"^Run:\s+(\S+)$", re.MULTILINE)


@dataclass
class Receiver:
    """A webhook receiver: arrival time of each 2xx-answered webhook-id, and every id seen."""

    fail_half_of_first_attempts: bool = False
    arrivals: dict[str, tuple[float, str]] = field(default_factory=dict)
    """webhook-id → (arrival time, run id), first 2xx answer."""
    answered_ok: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)

    async def handle(self, request: web.Request) -> web.Response:
        """Record the attempt; fail it when it is a first attempt picked to fail."""
        body = await request.read()
        arrived = time.time()
        webhook_id = request.headers["webhook-id"]
        self.attempts[webhook_id] += 1
        picked = hashlib.sha256(webhook_id.encode()).digest()[0] % 2 == 0
        if self.fail_half_of_first_attempts and self.attempts[webhook_id] == 1 and picked:
            return web.Response(status=503, text="busy")
        self.answered_ok[webhook_id] += 1
        if webhook_id not in self.arrivals:
            self.arrivals[webhook_id] = (arrived, json.loads(body)["data"]["run_id"])
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def _receiver_server(routes: dict[str, Receiver]) -> AsyncIterator[int]:
    app = web.Application()
    for path, receiver in routes.items():
        app.router.add_post(path, receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    (port,) = free_ports(1)
    await web.TCPSite(runner, LOOPBACK, port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


@dataclass(frozen=True)
class Platform:
    """Where the started platform listens."""

    service_url: str
    kafka: KafkaOptions
    mail_dir: Path


def _stop_all(servers: list[RunningServer]) -> None:
    for server in reversed(servers):
        server.stop()


@contextlib.contextmanager
def _platform(base: Path) -> Iterator[Platform]:
    kafka_port, smtp_port, http_port = free_ports(3)
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(scratch_postgres())
        dsn = postgres.create_database("notification_bench")
        servers: list[RunningServer] = []
        stack.callback(_stop_all, servers)
        servers.append(start_server(kafka_spec(port=kafka_port), log_path=base / "kafka.log"))
        mail_dir = base / "mail"
        servers.append(
            start_server(smtp_spec(mail_dir, port=smtp_port), log_path=base / "smtp.log")
        )
        env = {
            "INTERLOCK_HTTP_PORT": str(http_port),
            "INTERLOCK_POSTGRES_DSN": dsn,
            "INTERLOCK_POSTGRES_PASSWORD": postgres.password,
            "INTERLOCK_KAFKA_BOOTSTRAP_SERVERS": f"{LOOPBACK}:{kafka_port}",
            "INTERLOCK_SMTP_HOST": LOOPBACK,
            "INTERLOCK_SMTP_PORT": str(smtp_port),
            "INTERLOCK_IDENTITY_JWKS": TEST_IDENTITY.jwks,
            "INTERLOCK_WEBHOOK_ALLOWED_NETWORKS": json.dumps(["127.0.0.0/8"]),
            "INTERLOCK_LOG_LEVEL": "WARNING",
            "INTERLOCK_KEY_ENCRYPTION_KEYS": new_key_encryption_key(),
        }
        url = f"http://{LOOPBACK}:{http_port}"
        spec = ServerSpec(
            name="notification",
            argv=(sys.executable, "-m", "interlock.notification"),
            probe=http_probe(f"{url}/readyz"),
            ports={"http": http_port},
            env=env,
            start_timeout_s=120,
        )
        servers.append(start_server(spec, log_path=base / "notification.log"))
        kafka = KafkaOptions(kafka_bootstrap_servers=f"{LOOPBACK}:{kafka_port}")
        yield Platform(service_url=url, kafka=kafka, mail_dir=mail_dir)


async def _subscribe(api: httpx.AsyncClient, **body: Any) -> None:
    response = await api.post("/api/v1/subscriptions", json={"events": ["run.succeeded"], **body})
    response.raise_for_status()


def _events(run_id: str, workflow: str, finished: datetime) -> list[Event]:
    definition = definition_pb2.WorkflowDefinition(name=workflow, version=1)
    started = workflow_pb2.WorkflowStarted(
        workflow_name=workflow, workflow_version=1, definition=definition
    )
    completed = workflow_pb2.WorkflowCompleted(workflow_name=workflow, workflow_version=1)
    return [
        Event(
            type=topics.WORKFLOW_STARTED,
            payload=started,
            tenant=TENANT,
            run_id=run_id,
            source="bench",
            time=finished - timedelta(seconds=1),
        ),
        Event(
            type=topics.WORKFLOW_COMPLETED,
            payload=completed,
            tenant=TENANT,
            run_id=run_id,
            source="bench",
            time=finished,
        ),
    ]


async def _finish_runs(
    publisher: EventPublisher, workflow: str, runs: int, rate: float
) -> dict[str, float]:
    """Publish ``runs`` run finishes at ``rate`` a second; return each run's finish time."""
    finished: dict[str, float] = {}
    batch = max(1, round(rate / 10))
    began = time.monotonic()
    for start in range(0, runs, batch):
        await asyncio.sleep(max(0.0, began + start / rate - time.monotonic()))
        events = []
        for _ in range(min(batch, runs - start)):
            run_id = str(uuid.uuid4())
            now = datetime.now(UTC)
            finished[run_id] = now.timestamp()
            events += _events(run_id, workflow, now)
        await publisher.publish(events)
    return finished


def _mail_count(mail_dir: Path) -> int:
    return sum(1 for _ in (mail_dir / "new").glob("*"))


def _mail_arrivals(mail_dir: Path) -> dict[str, float]:
    arrivals: dict[str, float] = {}
    for path in (mail_dir / "new").glob("*"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        plain = message.get_body(("plain",))
        found = _RUN_LINE.search(plain.get_content()) if plain is not None else None
        if found:
            arrivals[found.group(1)] = path.stat().st_mtime
    return arrivals


def _lag_figures(lags_s: list[float], expected: int, duplicates: int) -> dict[str, Any]:
    lags_ms = sorted(lag * 1000 for lag in lags_s)
    return {
        "expected": expected,
        "delivered": len(lags_ms),
        "lost": expected - len(lags_ms),
        "duplicated_webhook_ids": duplicates,
        "lag_ms_p50": _rounded(stats.percentile(lags_ms, 50)),
        "lag_ms_p99": _rounded(stats.percentile(lags_ms, 99)),
        "lag_ms_max": _rounded(lags_ms[-1] if lags_ms else None),
    }


async def _stages(api: httpx.AsyncClient, finished: dict[str, float]) -> dict[str, Any]:
    """Where the first phase's lag went, from the delivery history.

    Run finished → delivery written (the consumer), → first attempt started (the loop).
    """
    consumed: list[float] = []
    queued: list[float] = []
    token = None
    while True:
        params = {"page_size": "500", **({"page_token": token} if token else {})}
        page = (await api.get("/api/v1/deliveries", params=params)).json()
        for delivery in page["deliveries"]:
            end = finished.get(delivery["run_id"])
            if end is None or not delivery["attempts"]:
                continue
            created = datetime.fromisoformat(delivery["created_at"]).timestamp()
            first = datetime.fromisoformat(delivery["attempts"][0]["started_at"]).timestamp()
            consumed.append((created - end) * 1000)
            queued.append((first - created) * 1000)
        token = page["next_page_token"]
        if not token:
            break
    return {
        "consumed_ms_p50": _rounded(stats.percentile(consumed, 50)),
        "consumed_ms_p99": _rounded(stats.percentile(consumed, 99)),
        "queued_ms_p50": _rounded(stats.percentile(queued, 50)),
        "queued_ms_p99": _rounded(stats.percentile(queued, 99)),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def _wait_for(count: Any, expected: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while count() < expected and time.monotonic() < deadline:  # noqa: ASYNC110 - a poll
        await asyncio.sleep(0.2)


async def run_benchmark(
    runs: int, rate: float, drain_timeout_s: float, board: ProgressBoard | None = None
) -> dict[str, Any]:
    """Both phases on a fresh platform; the figures as a dict."""
    note = board.note if board is not None else print
    steady, flaky = Receiver(), Receiver(fail_half_of_first_attempts=True)
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as folder:
        base = Path(folder)
        note(f"notifications: starting PostgreSQL, broker, SMTP and the service in {base}")
        servers = _platform(base)
        platform = await asyncio.to_thread(servers.__enter__)
        try:
            async with (
                _receiver_server({"/steady": steady, "/flaky": flaky}) as port,
                httpx.AsyncClient(
                    base_url=platform.service_url,
                    headers=identity_headers(TENANT, roles=["developer"]),
                ) as api,
                EventPublisher(platform.kafka) as publisher,
            ):
                hook = f"http://{LOOPBACK}:{port}"
                only = {"workflows": [WORKFLOW]}
                await _subscribe(
                    api, name="hook", channel="webhook", target=f"{hook}/steady", filter=only
                )
                await _subscribe(
                    api, name="mail", channel="email", target=["ops@example.com"], filter=only
                )
                await _subscribe(
                    api,
                    name="flaky",
                    channel="webhook",
                    target=f"{hook}/flaky",
                    filter={"workflows": [FLAKY_WORKFLOW]},
                )
                note(f"notifications: {runs} runs finishing at {rate:g}/s, two subscriptions")
                finished = await _finish_runs(publisher, WORKFLOW, runs, rate)
                # Counting files is cheap; parsing every mail on every poll would load the
                # machine (and this process, the receiver) it measures.
                await _wait_for(
                    lambda: len(steady.arrivals) + _mail_count(platform.mail_dir),
                    2 * runs,
                    drain_timeout_s,
                )
                mails = _mail_arrivals(platform.mail_dir)
                note(f"notifications: {runs} runs, a receiver failing half the first attempts")
                flaky_finished = await _finish_runs(publisher, FLAKY_WORKFLOW, runs, rate)
                await _wait_for(lambda: len(flaky.arrivals), runs, drain_timeout_s + 30)
                stages = await _stages(api, finished)
        finally:
            await asyncio.to_thread(servers.__exit__, None, None, None)
    webhook_lags = [at - finished[run] for at, run in steady.arrivals.values() if run in finished]
    mail_lags = [at - finished[run] for run, at in mails.items() if run in finished]
    flaky_lags = [
        at - flaky_finished[run] for at, run in flaky.arrivals.values() if run in flaky_finished
    ]
    retried = sum(1 for count in flaky.attempts.values() if count > 1)
    return {
        "stages": stages,
        "runs": runs,
        "rate_per_s": rate,
        "webhooks": _lag_figures(webhook_lags, runs, _duplicates(steady)),
        "emails": _lag_figures(mail_lags, runs, 0),
        "all": _lag_figures(webhook_lags + mail_lags, 2 * runs, _duplicates(steady)),
        "flaky_receiver": {
            **_lag_figures(flaky_lags, runs, _duplicates(flaky)),
            "first_attempts_failed": retried,
        },
    }


def _duplicates(receiver: Receiver) -> int:
    return sum(count - 1 for count in receiver.answered_ok.values() if count > 1)


async def measure_notifications(config: BenchConfig, board: ProgressBoard) -> dict[str, Any]:
    """The notification workload, sized by ``BENCH_SCALE`` (1,000 runs at scale 1)."""
    runs = max(50, round(1000 * config.scale))
    return await run_benchmark(runs, 100.0, config.drain_timeout_s, board)


def main() -> None:
    """Run both phases once and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="run finishes per second")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    args = parser.parse_args()
    result = asyncio.run(run_benchmark(args.runs, args.rate, args.drain_timeout))
    print(json.dumps(result, indent=2))  # noqa: T201 - the command's output


if __name__ == "__main__":
    main()
