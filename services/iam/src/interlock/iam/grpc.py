"""IAM's gRPC server (thin): ``interlock.auth.v1`` ValidateToken, for other services.

The server is grpcio's synchronous one, on a small thread pool, beside the event
loop: for this unary, cache-answered workload it served about 1.5 times the calls per
second of ``grpc.aio`` on the same machine. Cache misses run on the event loop
(:meth:`Credentials.validate_from_thread`). The gateway's authorizer is not here but
in :mod:`interlock.iam.authz_server` (HTTP: far cheaper per call).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent import futures

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from interlock.auth.v1 import auth_pb2, auth_pb2_grpc
from interlock.common.resources import Lifecycle
from interlock.iam.credentials import Credentials
from interlock.iam.domain import PrincipalKind
from interlock.iam.errors import Unauthenticated
from interlock.iam.settings import IamSettings

logger = logging.getLogger(__name__)

_KINDS = {
    PrincipalKind.USER: auth_pb2.Principal.KIND_USER,
    PrincipalKind.API_KEY: auth_pb2.Principal.KIND_API_KEY,
}


class TokenValidationService(auth_pb2_grpc.TokenValidationServicer):
    """``interlock.auth.v1.TokenValidation``: who a token names, for other services."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def ValidateToken(
        self, request: auth_pb2.ValidateTokenRequest, context: grpc.ServicerContext
    ) -> auth_pb2.Principal:
        """Validate ``request.token``; UNAUTHENTICATED or INVALID_ARGUMENT otherwise."""
        if not request.token:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "token is required")
        try:
            principal = self._credentials.validate_from_thread(request.token)
        except Unauthenticated as exc:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        expires_at = None
        if principal.expires_at is not None:
            expires_at = Timestamp()
            expires_at.FromNanoseconds(int(principal.expires_at * 1e9))
        return auth_pb2.Principal(
            subject=principal.subject,
            kind=_KINDS[principal.kind],
            tenant=principal.tenant,
            roles=principal.roles,
            expires_at=expires_at,
        )


class GrpcServer(Lifecycle):
    """IAM's gRPC listener as a resource: started after credentials load, stopped first.

    Args:
        credentials: What both services validate with.
        settings: ``grpc_host`` and ``grpc_port`` (0 picks a free port, see :attr:`port`),
            ``grpc_threads``.
    """

    name = "grpc"

    def __init__(self, credentials: Credentials, settings: IamSettings) -> None:
        self._credentials = credentials
        self._address = f"{settings.grpc_host}:{settings.grpc_port}"
        self._threads = settings.grpc_threads
        self._server: grpc.Server | None = None
        self.port: int | None = None
        """The bound port while open."""

    async def start(self) -> None:
        """Open it (see the class docstring)."""
        # No SO_REUSEPORT (grpcio's default): a second IAM started on the same port must
        # fail, not share it.
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="iam-grpc"),
            options=[("grpc.so_reuseport", 0)],
        )
        auth_pb2_grpc.add_TokenValidationServicer_to_server(
            TokenValidationService(self._credentials), server
        )
        self.port = server.add_insecure_port(self._address)
        server.start()
        self._server = server
        logger.info("gRPC listening", extra={"address": self._address, "port": self.port})

    async def stop(self) -> None:
        """Close it; safe to call more than once."""
        server, self._server = self._server, None
        if server is not None:
            # Calls in flight may wait for the event loop (cache misses): keep it running.
            stopped = server.stop(grace=2.0)
            await asyncio.to_thread(stopped.wait)

    async def check(self) -> None:
        """Raise unless the server is running."""
        if self._server is None:
            raise RuntimeError("gRPC server is not running")
