"""The gateway's question: may this request through, and as whom?

:meth:`Authorizer.decide` turns a request's method, path and ``Authorization`` header
(or, without one, the browser session cookie and its CSRF header) into an
:class:`Allow` (with the identity token to forward, which the service verifies itself:
:mod:`interlock.common.identity`) or a :class:`Deny` (status and problem document).
A credential already in memory is decided at once
(:meth:`Authorizer.decide_from_memory`); only a miss needs :meth:`Authorizer.decide`'s
lookup. The adapters (gRPC :mod:`interlock.iam.grpc`, HTTP :mod:`interlock.iam.authz_server`)
only translate to the wire.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from interlock.common.identity import IDENTITY_HEADER
from interlock.common.permissions import Rule, find_rule, is_allowed
from interlock.common.problems import PROBLEM_TYPE_BASE
from interlock.iam.domain import (
    SAFE_METHODS,
    SESSION_COOKIE,
    AuthPrincipal,
    cookie_value,
    csrf_matches,
)
from interlock.iam.errors import CsrfRefused, Forbidden, IamError, NotFound, Unauthenticated

SAFE_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
"""Header values the adapters send as they are (visible ASCII, spaces, tabs): anything
else could split an answer into headers IAM never meant to send, so they fail instead."""


@dataclass(frozen=True)
class Credential:
    """What a request presents: a bearer token, or the browser session cookie."""

    token: str
    from_cookie: bool
    """Whether it came from the session cookie (then changes need the CSRF header)."""


def request_credential(authorization: str | None, cookie: str | None) -> Credential | None:
    """The request's bearer token, else its session cookie, else ``None``.

    A bearer token wins: a browser never adds one by itself, so it needs no CSRF token.
    """
    token = bearer_token(authorization)
    if token is not None:
        return Credential(token, from_cookie=False)
    token = cookie_value(cookie, SESSION_COOKIE)
    return None if token is None else Credential(token, from_cookie=True)


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
            :class:`Unauthenticated` (or :class:`Busy`); e.g. :meth:`Credentials.validate`.
        identity_token: The identity token to forward for a principal, from any thread;
            e.g. :meth:`Credentials.identity_token`.
    """

    def __init__(
        self,
        remembered: Callable[[str], AuthPrincipal | None],
        validate: Callable[[str], Awaitable[AuthPrincipal]],
        identity_token: Callable[[AuthPrincipal], str],
    ) -> None:
        self._remembered = remembered
        self._validate = validate
        self._identity_token = identity_token

    def decide_from_memory(
        self,
        method: str,
        path: str,
        authorization: str | None,
        cookie: str | None = None,
        csrf: str | None = None,
    ) -> Allow | Deny | None:
        """:meth:`decide` without waiting, or ``None`` when the credential needs a lookup."""
        rule = find_rule(method, path)
        if rule is not None and rule.role is None:
            return _ANONYMOUS
        credential = request_credential(authorization, cookie)
        if credential is None:
            return _deny(Unauthenticated("A bearer token or API key is required."), path)
        try:
            principal = self._remembered(credential.token)
        except Unauthenticated as exc:
            return _deny(exc, path)
        if principal is None:
            return None
        return self._judge(rule, principal, path, _needs_csrf(method, credential), csrf)

    async def decide(
        self,
        method: str,
        path: str,
        authorization: str | None,
        cookie: str | None = None,
        csrf: str | None = None,
    ) -> Allow | Deny:
        """Authenticate the caller, then check the CSRF token and the route's permission.

        Unauthenticated callers get 401 whatever the route; a state-changing request
        authenticated by the session cookie without the session's CSRF token in
        ``csrf`` (the ``x-interlock-csrf`` header) gets 403; a route missing from the
        permission table gets 404 (deny); roles below the route's get 403.
        """
        decision = self.decide_from_memory(method, path, authorization, cookie, csrf)
        if decision is not None:
            return decision
        credential = request_credential(authorization, cookie)
        assert credential is not None  # decide_from_memory answers requests without one
        try:
            principal = await self._validate(credential.token)
        except IamError as exc:  # Unauthenticated, or Busy (503) under a flood of keys
            return _deny(exc, path)
        needs_csrf = _needs_csrf(method, credential)
        return self._judge(find_rule(method, path), principal, path, needs_csrf, csrf)

    def _judge(
        self,
        rule: Rule | None,
        principal: AuthPrincipal,
        path: str,
        needs_csrf: bool,
        csrf: str | None,
    ) -> Allow | Deny:
        if needs_csrf and not csrf_matches(principal.session_id, csrf):
            return _deny(CsrfRefused(), path)
        if rule is None:
            return _deny(NotFound("No API route matches this method and path."), path)
        if not is_allowed(rule, principal.roles):
            return _deny(Forbidden(f"This route needs the {rule.role} role."), path)
        return Allow(((IDENTITY_HEADER, self._identity_token(principal)),))


def _needs_csrf(method: str, credential: Credential) -> bool:
    # Only a change sent with the session cookie needs the token: a browser never adds
    # a bearer token by itself, and a read changes nothing.
    return credential.from_cookie and method not in SAFE_METHODS


_ANONYMOUS = Allow(())
