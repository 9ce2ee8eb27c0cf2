"""The gateway's question: may this request through, and as whom?

:meth:`Authorizer.decide` turns a request's method, path and ``Authorization`` header
into an :class:`Allow` (with the identity headers to inject) or a :class:`Deny`
(status and problem document). A credential already in memory is decided at once
(:meth:`Authorizer.decide_from_memory`); only a miss needs :meth:`Authorizer.decide`'s
lookup. The adapters (gRPC :mod:`interlock.iam.grpc`, HTTP :mod:`interlock.iam.authz_server`)
only translate to the wire.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from interlock.common.identity import PRINCIPAL_HEADER, ROLES_HEADER, TENANT_HEADER
from interlock.common.permissions import Rule, find_rule, is_allowed
from interlock.common.problems import PROBLEM_TYPE_BASE
from interlock.iam.domain import AuthPrincipal
from interlock.iam.errors import Forbidden, IamError, NotFound, Unauthenticated

SAFE_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
"""Header values the adapters send as they are (visible ASCII, spaces, tabs): anything
else could split an answer into headers IAM never meant to send, so they fail instead."""


@dataclass(frozen=True)
class Allow:
    """Let the request through with these headers (replacing any client copies)."""

    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Deny:
    """Answer the client directly."""

    status: int
    body: str
    """An ``application/problem+json`` document."""
    unauthenticated: bool
    """Whether credentials were missing or invalid (rather than insufficient)."""


def identity_headers(principal: AuthPrincipal) -> tuple[tuple[str, str], ...]:
    """The headers a service reads its caller from."""
    return (
        (PRINCIPAL_HEADER, principal.subject),
        (TENANT_HEADER, principal.tenant),
        (ROLES_HEADER, principal.roles_header),
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _deny(error: IamError, path: str) -> Deny:
    body = {
        "type": PROBLEM_TYPE_BASE + error.problem_type,
        "title": error.title,
        "status": error.status,
        "detail": str(error),
        "instance": path.split("?", 1)[0],
    }
    return Deny(error.status, json.dumps(body), isinstance(error, Unauthenticated))


class Authorizer:
    """Decides every request the gateway forwards, from the permission table.

    Args:
        remembered: Who a token or API key names if this process knows already, or
            ``None`` when it needs a lookup; raises :class:`Unauthenticated` for a
            credential refused or revoked; e.g. :meth:`Credentials.remembered`.
        validate: Who a token or API key names, looking it up when needed, or
            :class:`Unauthenticated`; e.g. :meth:`Credentials.validate`.
    """

    def __init__(
        self,
        remembered: Callable[[str], AuthPrincipal | None],
        validate: Callable[[str], Awaitable[AuthPrincipal]],
    ) -> None:
        self._remembered = remembered
        self._validate = validate

    def decide_from_memory(
        self, method: str, path: str, authorization: str | None
    ) -> Allow | Deny | None:
        """:meth:`decide` without waiting, or ``None`` when the credential needs a lookup."""
        rule = find_rule(method, path)
        if rule is not None and rule.role is None:
            return _ANONYMOUS
        token = bearer_token(authorization)
        if token is None:
            return _deny(Unauthenticated("A bearer token or API key is required."), path)
        try:
            principal = self._remembered(token)
        except Unauthenticated as exc:
            return _deny(exc, path)
        if principal is None:
            return None
        return _judge(rule, principal, path)

    async def decide(self, method: str, path: str, authorization: str | None) -> Allow | Deny:
        """Authenticate the caller, then check the route's permission.

        Unauthenticated callers get 401 whatever the route; a route missing from the
        permission table gets 404 (deny); roles below the route's get 403.
        """
        decision = self.decide_from_memory(method, path, authorization)
        if decision is not None:
            return decision
        token = bearer_token(authorization)
        assert token is not None  # decide_from_memory answers requests without one
        try:
            principal = await self._validate(token)
        except Unauthenticated as exc:
            return _deny(exc, path)
        return _judge(find_rule(method, path), principal, path)


_ANONYMOUS = Allow(())


def _judge(rule: Rule | None, principal: AuthPrincipal, path: str) -> Allow | Deny:
    if rule is None:
        return _deny(NotFound("No API route matches this method and path."), path)
    if not is_allowed(rule, principal.roles):
        return _deny(Forbidden(f"This route needs the {rule.role} role."), path)
    return Allow(identity_headers(principal))
