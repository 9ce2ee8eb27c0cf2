"""Ask IAM who a token names: a small async client of ``interlock.auth.v1.TokenValidation``.

Services behind the gateway already receive the caller as an identity token IAM signed
(:mod:`interlock.common.identity`); this client is for the rare service that is handed
a user's access token or API key some other way (e.g. a callback) and must validate it::

    async with TokenValidationClient("127.0.0.1:9101") as iam:
        principal = await iam.validate(token)   # raises InvalidToken
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import grpc

from interlock.auth.v1 import auth_pb2, auth_pb2_grpc
from interlock.common.grpc_tracing import traced_channel
from interlock.common.resources import Lifecycle

__all__ = ["InvalidToken", "TokenValidationClient", "ValidatedToken"]


class InvalidToken(Exception):
    """IAM refused the token (missing, malformed, expired or revoked)."""


@dataclass(frozen=True, kw_only=True)
class ValidatedToken:
    """Who a valid token names."""

    subject: str
    """User id or API key id."""
    kind: str
    """``"user"`` or ``"api_key"``."""
    tenant: str
    roles: frozenset[str]
    expires_at: datetime | None
    """When the token stops being valid; ``None`` for an API key without expiry."""


_KINDS = {auth_pb2.Principal.KIND_USER: "user", auth_pb2.Principal.KIND_API_KEY: "api_key"}


class TokenValidationClient(Lifecycle):
    """A channel to IAM's gRPC listener.

    Args:
        target: ``host:port`` of IAM's gRPC listener, e.g. ``127.0.0.1:9101`` locally or
            ``iam:9101`` in compose. A service that uses this client adds a setting for
            it; none does yet.
        timeout_s: Deadline of each call. Default: 2 s.
    """

    name = "iam"

    def __init__(self, target: str, *, timeout_s: float = 2.0) -> None:
        self._target = target
        self._timeout_s = timeout_s
        self._channel: grpc.aio.Channel | None = None
        self._stub: auth_pb2_grpc.TokenValidationAsyncStub | None = None

    async def start(self) -> None:
        """Open the channel (connections are made on first use)."""
        self._channel = traced_channel(self._target)
        self._stub = auth_pb2_grpc.TokenValidationStub(self._channel)

    async def stop(self) -> None:
        """Close the channel."""
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close(None)

    async def check(self) -> None:
        """Raise unless IAM's listener accepts a connection within the timeout."""
        if self._channel is None:
            raise RuntimeError("the IAM client is not started")
        await self._channel.channel_ready()

    async def validate(self, token: str) -> ValidatedToken:
        """Who ``token`` (an access token or API key) names.

        Raises:
            InvalidToken: IAM refused it.
            grpc.aio.AioRpcError: IAM could not answer (unavailable, deadline).
        """
        if self._stub is None:
            raise RuntimeError("the IAM client is not started")
        if not token:
            raise InvalidToken("no token")
        try:
            principal = await self._stub.ValidateToken(
                auth_pb2.ValidateTokenRequest(token=token), timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
                raise InvalidToken(exc.details() or "invalid token") from None
            raise
        expires_at = (
            principal.expires_at.ToDatetime(tzinfo=UTC)
            if principal.HasField("expires_at")
            else None
        )
        return ValidatedToken(
            subject=principal.subject,
            kind=_KINDS.get(principal.kind, "unknown"),
            tenant=principal.tenant,
            roles=frozenset(principal.roles),
            expires_at=expires_at,
        )
