"""IAM's gRPC server (thin): ``interlock.auth.v1`` ValidateToken and Envoy's ext_authz Check.

The server is grpcio's synchronous one, on a small thread pool, beside the event
loop: for this unary, cache-answered workload it served about 1.5 times the calls per
second of ``grpc.aio`` on the same machine. Cache misses run on the event loop
(:meth:`Credentials.validate_from_thread`, :meth:`Authorizer.decide`).

``envoy.service.auth.v3.Authorization/Check`` is the gateway's default authorizer (the
design's choice); :mod:`interlock.iam.authz_server` answers the same question over
plain HTTP for several times less CPU per request, for gateways configured to use it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent import futures

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped]

from interlock.auth.v1 import auth_pb2, auth_pb2_grpc
from interlock.common.errors import grpc_code_name
from interlock.common.grpc_tracing import server_interceptors
from interlock.common.problems import PROBLEM_CONTENT_TYPE
from interlock.common.resources import Lifecycle
from interlock.envoy.config.core.v3 import base_pb2
from interlock.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from interlock.envoy.type.v3 import http_status_pb2
from interlock.iam.authorizer import SAFE_HEADER_VALUE, Allow, Authorizer, Deny
from interlock.iam.credentials import Credentials
from interlock.iam.domain import CSRF_HEADER, PrincipalKind
from interlock.iam.errors import IamError
from interlock.iam.secrets_grpc import SecretResolutionService
from interlock.iam.settings import IamSettings
from interlock.iam.tenant_secrets import TenantSecrets
from interlock.secrets.v1 import secrets_pb2_grpc

logger = logging.getLogger(__name__)

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_LOOKUP_TIMEOUT_S = 5.0  # beyond the gateway's 2 s: it has answered 503 by then
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
        except IamError as exc:  # Unauthenticated, or Busy under a flood of made-up keys
            context.abort(grpc.StatusCode[grpc_code_name(exc)], str(exc))
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


class AuthorizationService(external_auth_pb2_grpc.AuthorizationServicer):
    """Envoy's ``envoy.service.auth.v3.Authorization``: the gateway's ext_authz.

    Args:
        authorizer: What decides, e.g. ``Authorizer(credentials.remembered,
            credentials.validate, credentials.identity_token)``.
        loop: The event loop :meth:`Authorizer.decide` runs on when a credential is not
            in memory (calls arrive on the server's threads).
    """

    def __init__(self, authorizer: Authorizer, loop: asyncio.AbstractEventLoop) -> None:
        self._authorizer = authorizer
        self._loop = loop

    def Check(
        self, request: external_auth_pb2.CheckRequest, context: grpc.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        """Allow with the identity token to forward, or deny with a problem document.

        A failure to decide, or an identity that cannot travel as header values, is an
        INTERNAL status, which the gateway turns into 503.
        """
        http = request.attributes.request.http
        authorization = http.headers.get("authorization")
        cookie = http.headers.get("cookie")
        csrf = http.headers.get(CSRF_HEADER)
        try:
            decision = self._authorizer.decide_from_memory(
                http.method, http.path, authorization, cookie, csrf
            )
            if decision is None:
                lookup = self._authorizer.decide(
                    http.method, http.path, authorization, cookie, csrf
                )
                decision = asyncio.run_coroutine_threadsafe(lookup, self._loop).result(
                    timeout=_LOOKUP_TIMEOUT_S
                )
            if isinstance(decision, Allow):
                return _allowed(decision.headers)
            return _denied(decision)
        except Exception:  # the gateway answers 503: never let a failure through
            logger.exception("authorization failed")
            context.abort(grpc.StatusCode.INTERNAL, "authorization failed")


@functools.lru_cache(maxsize=4096)
def _allowed(headers: tuple[tuple[str, str], ...]) -> external_auth_pb2.CheckResponse:
    # One response per identity, built once: the same few callers ask all the time, and
    # building the message is a visible share of a call's time. Never mutated after.
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code_pb2.OK),
        ok_response=external_auth_pb2.OkHttpResponse(headers=_header_options(headers)),
    )


def _denied(decision: Deny) -> external_auth_pb2.CheckResponse:
    headers = [("content-type", PROBLEM_CONTENT_TYPE)]
    if decision.unauthenticated:
        headers.append(("www-authenticate", 'Bearer realm="interlock"'))
    code = code_pb2.UNAUTHENTICATED if decision.unauthenticated else code_pb2.PERMISSION_DENIED
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code),
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(
                code=http_status_pb2.StatusCode.ValueType(decision.status)
            ),
            headers=_header_options(headers),
            body=decision.body,
        ),
    )


def _header_options(
    headers: list[tuple[str, str]] | tuple[tuple[str, str], ...],
) -> list[base_pb2.HeaderValueOption]:
    for key, value in headers:
        if SAFE_HEADER_VALUE.fullmatch(value) is None:
            raise ValueError(f"header {key} has a value that cannot be sent as is")
    # Replace, never append: a client's own copy must not survive beside IAM's.
    return [
        base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key=key, value=value), append_action=_OVERWRITE
        )
        for key, value in headers
    ]


class GrpcServer(Lifecycle):
    """IAM's gRPC listener as a resource: started after credentials load, stopped first.

    Args:
        credentials: What both services validate with.
        settings: ``grpc_host`` and ``grpc_port`` (0 picks a free port, see :attr:`port`),
            ``grpc_threads``; the port is shared when ``authorizer_processes`` > 1.
        tenant_secrets: Served to workers (``SecretResolution``). Default: not served.
    """

    name = "grpc"

    def __init__(
        self,
        credentials: Credentials,
        settings: IamSettings,
        tenant_secrets: TenantSecrets | None = None,
    ) -> None:
        self._credentials = credentials
        self._settings = settings
        self._tenant_secrets = tenant_secrets
        self._address = f"{settings.grpc_host}:{settings.grpc_port}"
        self._threads = settings.grpc_threads
        self._share_port = settings.authorizer_processes > 1
        self._server: grpc.Server | None = None
        self.port: int | None = None
        """The bound port while open."""

    async def start(self) -> None:
        """Open it (see the class docstring)."""
        # SO_REUSEPORT only for IAM's own authorizer processes: otherwise a second IAM
        # started on the same port must fail, not share it.
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="iam-grpc"),
            interceptors=server_interceptors(),
            options=[("grpc.so_reuseport", int(self._share_port))],
        )
        auth_pb2_grpc.add_TokenValidationServicer_to_server(
            TokenValidationService(self._credentials), server
        )
        authorizer = Authorizer(
            self._credentials.remembered,
            self._credentials.validate,
            self._credentials.identity_token,
        )
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(
            AuthorizationService(authorizer, asyncio.get_running_loop()), server
        )
        if self._tenant_secrets is not None:
            secrets_pb2_grpc.add_SecretResolutionServicer_to_server(
                SecretResolutionService(
                    self._tenant_secrets, self._settings, asyncio.get_running_loop()
                ),
                server,
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
