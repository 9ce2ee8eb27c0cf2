"""Log lines the broker lost: asked back from the worker, or counted in a marker line.

A real worker (echo tasks) and the metadata app share a real broker and MongoDB; the
worker's broker never sends some ``task.log`` events, as a broker restarted empty
loses what it acknowledged and nobody had consumed yet. Everything else is real.
"""

import json
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from interlock.common import topics
from interlock.common.events import Event
from interlock.common.kafka import EventPublisher, KafkaBroker
from interlock.common.testing import app_client, identity_headers
from interlock.devstack import KafkaServer, MongoServer
from interlock.events.v1 import task_pb2
from interlock.metadata import MetadataSettings, create_app
from interlock.worker import Worker, WorkerSettings
from interlock.worker.executors.builtin import EchoExecutor

from .conftest import eventually, metadata_settings

TENANT = "tenant-gaps"
LINES = [f"echo {n}" for n in range(1, 11)]
LOST_SEQS = {3, 4, 5}


class LossyBroker(KafkaBroker):
    """A real broker client that never sends the ``task.log`` events ``lose`` picks."""

    def __init__(self, settings: WorkerSettings, lose: Callable[[Event], bool]) -> None:
        super().__init__(settings)
        self._lose = lose

    async def publish(self, events: Sequence[Event]) -> None:
        await super().publish([event for event in events if not self._lose(event)])


def loses_middle_lines(run_id: str) -> Callable[[Event], bool]:
    """Loses the first events carrying lines 3-5 of the run (not their copies sent again)."""
    to_lose = set(LOST_SEQS)

    def lose(event: Event) -> bool:
        payload = event.payload
        if not isinstance(payload, task_pb2.TaskLog) or event.run_id != run_id:
            return False
        seqs = {line.seq for line in payload.lines}
        if not seqs & to_lose:
            return False
        to_lose.difference_update(seqs)
        return True

    return lose


@asynccontextmanager
async def running_worker(
    settings: MetadataSettings, lose: Callable[[Event], bool], **overrides: Any
) -> AsyncIterator[Worker]:
    worker_settings = WorkerSettings(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        kafka_topic_prefix=settings.kafka_topic_prefix,
        kafka_session_timeout_ms=3000,
        kafka_heartbeat_interval_ms=500,
        worker_group_id=f"worker-{secrets.token_hex(4)}",
        worker_id=f"gaps-{secrets.token_hex(3)}",
        log_format="text",
        **overrides,
    )
    broker = LossyBroker(worker_settings, lose)
    await broker.start()
    try:
        executors = {"echo": EchoExecutor(worker_settings)}
        async with Worker(worker_settings, broker, executors) as worker:
            yield worker
    finally:
        await broker.stop()


async def run_echo(settings: MetadataSettings, run_id: str) -> None:
    async with EventPublisher(settings, client_id="test-scheduler") as publisher:
        await publisher.publish(
            [
                Event(
                    type=topics.TASK_SCHEDULED,
                    payload=task_pb2.TaskScheduled(
                        task_id="talk",
                        attempt=1,
                        type="echo",
                        params_json=json.dumps({"lines": LINES, "interval": "20ms"}).encode(),
                        idempotency_key=f"{run_id}/talk/1",
                    ),
                    tenant=TENANT,
                    run_id=run_id,
                    source="test-scheduler",
                )
            ]
        )


async def log_lines(client: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    response = await client.get(
        f"/api/v1/executions/{run_id}/logs",
        headers=identity_headers(TENANT, roles=["viewer"]),
    )
    return list(response.json()["lines"]) if response.status_code == 200 else []


def gap_settings(mongo_server: MongoServer, kafka_server: KafkaServer) -> MetadataSettings:
    return metadata_settings(
        mongo_server.url,
        kafka_server,
        logs_gap_check_interval_s=0.2,
        logs_gap_ask_interval_s=1.0,
        logs_gap_lost_after_s=3.0,
    )


async def test_lines_lost_in_transit_are_sent_again_by_the_worker(
    mongo_server: MongoServer, kafka_server: KafkaServer
) -> None:
    settings = gap_settings(mongo_server, kafka_server)
    await topics.ensure_topics(settings)
    run_id = f"run-{secrets.token_hex(4)}"
    async with (
        app_client(create_app(settings)) as client,
        running_worker(settings, loses_middle_lines(run_id)),
    ):
        await run_echo(settings, run_id)
        lines = await eventually(
            lambda: _complete(client, run_id, len(LINES)), timeout_s=45, interval_s=0.2
        )
    assert sorted(line["seq"] for line in lines) == list(range(1, 11))
    assert {line["message"] for line in lines} == set(LINES)
    # Sent again after the rest was stored: the late lines come last in the log.
    assert [line["seq"] for line in lines][-3:] == sorted(LOST_SEQS)


async def test_lines_the_worker_no_longer_has_are_counted_in_one_marker_line(
    mongo_server: MongoServer, kafka_server: KafkaServer
) -> None:
    settings = gap_settings(mongo_server, kafka_server)
    await topics.ensure_topics(settings)
    run_id = f"run-{secrets.token_hex(4)}"
    async with (
        app_client(create_app(settings)) as client,
        running_worker(settings, loses_middle_lines(run_id), log_resend_max_bytes=0),
    ):
        await run_echo(settings, run_id)
        lines = await eventually(
            lambda: _complete(client, run_id, len(LINES) - len(LOST_SEQS) + 1),
            timeout_s=45,
            interval_s=0.2,
        )
    *echoed, marker = lines
    assert [line["message"] for line in echoed] == [
        message for seq, message in enumerate(LINES, 1) if seq not in LOST_SEQS
    ]
    assert (marker["seq"], marker["level"], marker["task_id"]) == (3, "WARNING", "talk")
    assert marker["message"].startswith("3 lines of this attempt (seq 3-5) never reached the log")


async def _complete(
    client: httpx.AsyncClient, run_id: str, count: int
) -> list[dict[str, Any]] | None:
    lines = await log_lines(client, run_id)
    return lines if len(lines) >= count else None
