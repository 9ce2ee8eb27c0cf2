"""Helpers for testing a service's app in-process, against real servers.

Requires the ``testing`` extra (httpx).

A service verifies the identity token the gateway forwards (:mod:`interlock.common.identity`);
a test that calls a service directly signs its own with :data:`TEST_IDENTITY`, whose key
the service trusts when its settings carry ``identity_jwks=TEST_IDENTITY.jwks``::

    settings = WorkflowSettings(..., identity_jwks=TEST_IDENTITY.jwks)
    async with app_client(create_app(settings)) as client:
        await client.get("/api/v1/runs", headers=identity_headers("acme", roles=["viewer"]))
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from jwt.algorithms import OKPAlgorithm
from pydantic import SecretStr

from interlock.common.identity import (
    IDENTITY_ALGORITHM,
    IDENTITY_HEADER,
    IDENTITY_TOKEN_TYPE,
    identity_claims,
)
from interlock.common.service_credentials import is_valid_credential
from interlock.tasks.v1 import tasks_pb2, tasks_pb2_grpc


@asynccontextmanager
async def app_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan (opening its resources) and yield a client for it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


class TestIdentity:
    """Signs identity tokens as IAM would, with a key of its own.

    Args:
        issuer: ``iss`` of its tokens. Default: ``"interlock"`` (the services' default).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, issuer: str = "interlock") -> None:
        self._key = Ed25519PrivateKey.generate()
        self._kid = f"test-{secrets.token_hex(4)}"
        self._issuer = issuer

    @property
    def jwks(self) -> str:
        """Its public key as a JWKS document (a service's ``identity_jwks`` setting)."""
        jwk = OKPAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return json.dumps({"keys": [{**jwk, "kid": self._kid, "alg": IDENTITY_ALGORITHM}]})

    def token(
        self,
        tenant: str,
        *,
        subject: str = "tester",
        roles: Iterable[str] = ("admin",),
        ttl_s: float = 3600.0,
    ) -> str:
        """An identity token for ``subject`` of ``tenant`` with ``roles``."""
        claims = identity_claims(
            subject=subject,
            tenant=tenant,
            roles=list(roles),
            issuer=self._issuer,
            now=time.time(),
            ttl_s=ttl_s,
        )
        return jwt.encode(
            claims,
            self._key,
            algorithm=IDENTITY_ALGORITHM,
            headers={"kid": self._kid, "typ": IDENTITY_TOKEN_TYPE},
        )

    def headers(
        self, tenant: str, *, subject: str = "tester", roles: Iterable[str] = ("admin",)
    ) -> dict[str, str]:
        """The header the gateway would forward for this caller."""
        return {IDENTITY_HEADER: self.token(tenant, subject=subject, roles=roles)}


TEST_IDENTITY = TestIdentity()
"""One signer per test process: put ``TEST_IDENTITY.jwks`` in the settings of the
service under test."""


def identity_headers(
    tenant: str, *, subject: str = "tester", roles: Iterable[str] = ("admin",)
) -> dict[str, str]:
    """:meth:`TestIdentity.headers` of :data:`TEST_IDENTITY`."""
    return TEST_IDENTITY.headers(tenant, subject=subject, roles=roles)


class StandInTaskState(tasks_pb2_grpc.TaskStateServiceServicer):
    """The scheduler's ``GetRun`` and ``ListRunTasks``, answering from :attr:`runs`.

    Like the scheduler, it requires a service credential. Tests of the reconcilers that
    ask the scheduler about runs whose events were lost use it in the scheduler's place.
    """

    def __init__(self, credential: SecretStr) -> None:
        self.runs: dict[str, tuple[tasks_pb2.Run, list[tasks_pb2.Task]]] = {}
        """Run id → the run and its tasks as the scheduler would hold them."""
        self.asked: list[str] = []
        """The run ids ``GetRun`` was asked about, in order."""
        self._credential = credential

    async def GetRun(
        self, request: tasks_pb2.GetRunRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tasks_pb2.Run:
        """The run, as :attr:`runs` holds it."""
        await self._authenticate(context)
        self.asked.append(request.run_id)
        run, _ = await self._known(request.run_id, context)
        return run

    async def ListRunTasks(
        self, request: tasks_pb2.ListRunTasksRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tasks_pb2.ListRunTasksResponse:
        """The run's tasks, as :attr:`runs` holds them."""
        await self._authenticate(context)
        _, tasks = await self._known(request.run_id, context)
        return tasks_pb2.ListRunTasksResponse(tasks=tasks)

    async def _authenticate(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if not is_valid_credential(context.invocation_metadata() or (), self._credential):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no credential")

    async def _known(
        self, run_id: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[tasks_pb2.Run, list[tasks_pb2.Task]]:
        if run_id not in self.runs:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown run")
        return self.runs[run_id]


@asynccontextmanager
async def serving_task_state(servicer: StandInTaskState) -> AsyncIterator[str]:
    """Serve ``servicer`` on a free loopback port; yields its ``host:port``."""
    server = grpc.aio.server()
    tasks_pb2_grpc.add_TaskStateServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)
