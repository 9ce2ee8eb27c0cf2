"""Secrets at the worker: filled in from IAM's SecretResolution just before the task runs,
and hidden in everything the worker reports. IAM is played by a real gRPC server on
loopback that answers like IAM's (its own tests cover the real one)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from pydantic import SecretStr

from interlock.common import topics
from interlock.common.service_credentials import is_valid_credential
from interlock.secrets.v1 import secrets_pb2, secrets_pb2_grpc
from interlock.worker import WorkerSettings
from interlock.worker.domain.redaction import REDACTED
from interlock.worker.sdk import current_context, task

pytestmark = pytest.mark.integration

CREDENTIAL = SecretStr("worker-credential")
TOKEN = 'tok-"s3cr3t"-é'  # quotes and non-ASCII: JSON escapes them in outputs


@task("tests.worker.secret_echo")
def secret_echo(token: str) -> dict[str, Any]:
    current_context().logger.info("calling with %s", token)
    return {"seen": token, "length": len(token)}


@task("tests.worker.secret_fail")
def secret_fail(token: str) -> None:
    raise RuntimeError(f"the server refused {token}")


class StandInIam(secrets_pb2_grpc.SecretResolutionServicer):
    """Answers like IAM: a credential is required, unknown names are NOT_FOUND."""

    def __init__(self) -> None:
        self.requests: list[secrets_pb2.ResolveSecretsRequest] = []

    async def ResolveSecrets(
        self,
        request: secrets_pb2.ResolveSecretsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> secrets_pb2.ResolveSecretsResponse:
        if not is_valid_credential(context.invocation_metadata() or (), CREDENTIAL):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no credential")
        self.requests.append(request)
        known = {"TOKEN": TOKEN}
        missing = [name for name in request.names if name not in known]
        if missing:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"No secret {missing[0]}")
        return secrets_pb2.ResolveSecretsResponse(
            values={name: known[name] for name in request.names}
        )


@pytest.fixture
async def iam() -> AsyncIterator[tuple[str, StandInIam]]:
    server = grpc.aio.server()
    servicer = StandInIam()
    secrets_pb2_grpc.add_SecretResolutionServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        await server.stop(grace=None)


def echo(token: str = "{{ secrets.TOKEN }}") -> dict[str, Any]:
    return {"function": "tests.worker.secret_echo", "args": {"token": token}}


async def test_secrets_are_filled_for_the_task_and_hidden_in_what_it_reports(
    settings: WorkerSettings, running_worker, task_events, publish, kit: Any, iam: Any
) -> None:
    target, stand_in = iam
    run = kit.new_run()
    async with running_worker(settings, iam_grpc_target=target, service_credential=CREDENTIAL):
        await publish(
            [
                kit.scheduled(run, "echo", "python", echo()),
                kit.scheduled(
                    run,
                    "fail",
                    "python",
                    {
                        "function": "tests.worker.secret_fail",
                        "args": {"token": "{{secrets.TOKEN}}"},
                    },
                ),
            ]
        )
        done = await task_events.wait_outcome(run, "echo")
        failed = await task_events.wait_outcome(run, "fail")
        logs = await kit.eventually(lambda: task_events.of(topics.TASK_LOG, run, "echo"))
    # The task saw the real value (its length), the output shows none of it.
    assert json.loads(done.output_json) == {"seen": REDACTED, "length": len(TOKEN)}
    assert "s3cr3t" not in failed.error.message
    assert REDACTED in failed.error.message
    assert "s3cr3t" not in failed.error.traceback_excerpt
    assert [line.message for log in logs for line in log.lines] == [f"calling with {REDACTED}"]
    for event in task_events.events:
        assert b"s3cr3t" not in event.payload.SerializeToString()
    assert {(r.tenant, r.run_id, r.task_id, tuple(r.names)) for r in stand_in.requests} == {
        ("tenant-a", run, "echo", ("TOKEN",)),
        ("tenant-a", run, "fail", ("TOKEN",)),
    }


async def test_tasks_without_secrets_never_ask_iam(
    settings: WorkerSettings, running_worker, task_events, publish, kit: Any, iam: Any
) -> None:
    target, stand_in = iam
    run = kit.new_run()
    async with running_worker(settings, iam_grpc_target=target, service_credential=CREDENTIAL):
        await publish([kit.scheduled(run, "plain", "python", echo("{{ input.token }}"))])
        done = await task_events.wait_outcome(run, "plain")
    assert json.loads(done.output_json)["seen"] == "{{ input.token }}"
    assert stand_in.requests == []


async def test_a_secret_that_cannot_be_read_fails_the_task_without_retry(
    settings: WorkerSettings, running_worker, task_events, publish, kit: Any, iam: Any
) -> None:
    target, _ = iam
    run = kit.new_run()
    async with running_worker(settings, iam_grpc_target=target, service_credential=CREDENTIAL):
        await publish([kit.scheduled(run, "missing", "python", echo("{{ secrets.NOPE }}"))])
        missing = await task_events.wait_outcome(run, "missing")
    async with running_worker(settings, iam_grpc_target=target):  # no credential
        await publish([kit.scheduled(run, "uncredentialed", "python", echo())])
        uncredentialed = await task_events.wait_outcome(run, "uncredentialed")
    for failed in (missing, uncredentialed):
        assert failed.DESCRIPTOR.name == "TaskFailed"
        assert failed.error.type == "SecretsUnavailable"
        assert failed.error.retryable is False
    assert "NOPE" in missing.error.message
