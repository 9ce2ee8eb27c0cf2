"""Runs whose outcome event was lost get their end from the scheduler's GetRun."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr

from interlock.common.service_credentials import is_valid_credential
from interlock.common.testing import app_client, identity_headers
from interlock.devstack import KafkaServer, MongoServer
from interlock.metadata import create_app
from interlock.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from .conftest import RunEvents, eventually, metadata_settings, publish

pytestmark = pytest.mark.integration

TENANT = "acme"
CREDENTIAL = SecretStr("metadata-credential")
ENDED_AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


class StandInScheduler(tasks_pb2_grpc.TaskStateServiceServicer):
    """Answers GetRun like the scheduler: a credential is required; some runs ended."""

    def __init__(self) -> None:
        self.ended: set[str] = set()
        self.asked: list[str] = []

    async def GetRun(
        self, request: tasks_pb2.GetRunRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tasks_pb2.Run:
        if not is_valid_credential(context.invocation_metadata() or (), CREDENTIAL):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no credential")
        self.asked.append(request.run_id)
        if request.run_id not in self.ended:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown run")
        ended = Timestamp()
        ended.FromDatetime(ENDED_AT)
        return tasks_pb2.Run(
            run_id=request.run_id, status=tasks_pb2.RUN_STATUS_SUCCEEDED, ended_at=ended
        )


@pytest.fixture
async def scheduler() -> AsyncIterator[tuple[str, StandInScheduler]]:
    server = grpc.aio.server()
    servicer = StandInScheduler()  # type: ignore[abstract]  # GetRun is all it serves
    tasks_pb2_grpc.add_TaskStateServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        await server.stop(grace=None)


async def test_a_quiet_run_gets_its_outcome_from_the_scheduler(
    mongo_server: MongoServer, kafka_server: KafkaServer, scheduler: tuple[str, StandInScheduler]
) -> None:
    target, stand_in = scheduler
    settings = metadata_settings(
        mongo_server.url,
        kafka_server,
        scheduler_grpc_target=target,
        service_credential=CREDENTIAL,
        reconcile_interval_s=0.2,
        reconcile_quiet_after_s=1.0,
    )
    start = datetime.now(UTC) - timedelta(minutes=5)
    lost = RunEvents(TENANT, "quiet", start=start).started({"a": "noop"}).attempt("a", 1, 1)
    unknown = RunEvents(TENANT, "quiet", start=start).started({"a": "noop"})
    stand_in.ended.add(lost.run_id)
    async with app_client(create_app(settings)) as client:
        client.headers.update(identity_headers(TENANT, roles=["viewer"]))
        await publish(settings, lost.events + unknown.events)

        async def status(run: RunEvents) -> str | None:
            answer = await client.get(f"/api/v1/executions/{run.run_id}")
            return str(answer.json()["status"]) if answer.status_code == 200 else None

        await eventually(lambda: _is(status(lost), "succeeded"))
        await eventually(lambda: unknown.run_id in stand_in.asked)
        document = (await client.get(f"/api/v1/executions/{lost.run_id}")).json()
        still = await status(unknown)
    assert document["finished_at"] == "2026-12-01T09:30:00.000Z"
    assert document["tasks"][0]["attempts"][0]["outcome"] == "succeeded"
    assert still == "pending"


async def _is(value: Any, expected: str) -> bool:
    return bool(await value == expected)
