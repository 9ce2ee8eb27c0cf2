"""Fixtures: the artifact app in-process against real PostgreSQL and S3.

The scheduler, which says whether a run exists, is stood in for by a gRPC server of
the same ``TaskStateService`` that knows the runs :class:`Runs` was told about.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import jwt
import pytest
from minio import Minio

from interlock.artifact import ArtifactSettings, create_app
from interlock.common.identity import IDENTITY_METADATA
from interlock.common.testing import TEST_IDENTITY, app_client, identity_headers
from interlock.tasks.v1 import tasks_pb2, tasks_pb2_grpc

TENANT = "acme"
CREDENTIAL = "worker-credential-for-tests"


def gateway_headers(tenant: str = TENANT, role: str = "developer") -> dict[str, str]:
    """What the gateway adds to a request it authorized: an identity token."""
    return identity_headers(tenant, subject="alice", roles=[role])


class Runs(tasks_pb2_grpc.TaskStateServiceServicer):
    """Answers ``GetRun`` for the runs it was told about, in the token's tenant."""

    def __init__(self) -> None:
        self.known: set[tuple[str, str]] = set()

    def new(self, tenant: str = TENANT) -> str:
        run_id = str(uuid.uuid4())
        self.known.add((tenant, run_id))
        return run_id

    async def GetRun(
        self, request: tasks_pb2.GetRunRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tasks_pb2.Run:
        token = dict(context.invocation_metadata() or ()).get(IDENTITY_METADATA, "")
        tenant = jwt.decode(str(token), options={"verify_signature": False})["tid"]
        if (tenant, request.run_id) not in self.known:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such run")
        return tasks_pb2.Run(run_id=request.run_id)


@pytest.fixture(scope="session")
async def runs() -> AsyncIterator[tuple[Runs, str]]:
    """The stand-in scheduler and its address."""
    servicer = Runs()  # type: ignore[abstract]  # serves GetRun only
    server = grpc.aio.server()
    tasks_pb2_grpc.add_TaskStateServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(grace=None)


@pytest.fixture
def settings(postgres_database: Any, s3_server: Any, runs: tuple[Runs, str]) -> ArtifactSettings:
    """Settings for one test: its own database and bucket, small limits."""
    return ArtifactSettings(
        postgres_dsn=postgres_database.dsn,
        postgres_password=postgres_database.password,
        s3_endpoint=s3_server.endpoint,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        s3_bucket=f"test-{secrets.token_hex(6)}",
        scheduler_grpc_target=runs[1],
        service_credentials=CREDENTIAL,
        identity_jwks=TEST_IDENTITY.jwks,
        max_artifact_bytes=32 * 1024 * 1024,
        tenant_quota_bytes=64 * 1024 * 1024,
        collect_interval_s=3600,
    )


@pytest.fixture
async def app_and_client(
    settings: ArtifactSettings,
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The running app and a client sending the gateway's headers for tenant ``acme``."""
    app = create_app(settings)
    async with app_client(app) as client:
        client.headers.update(gateway_headers())
        yield app, client


@pytest.fixture
def client(app_and_client: tuple[Any, httpx.AsyncClient]) -> httpx.AsyncClient:
    """A client of the running app (tenant ``acme``, developer)."""
    return app_and_client[1]


@pytest.fixture
def s3(settings: ArtifactSettings) -> Minio:
    """A MinIO client of the test's S3, for looking behind the service."""
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=False,
    )


async def upload(
    client: httpx.AsyncClient,
    run_id: str,
    name: str,
    data: bytes,
    *,
    headers: dict[str, str] | None = None,
    **fields: str,
) -> httpx.Response:
    """POST a multipart upload with ``fields`` before the file."""
    return await client.post(
        "/api/v1/artifacts",
        data={"run_id": run_id, "name": name, **fields},
        files={"file": (name, data, "application/octet-stream")},
        headers=headers,
    )
