import json

import pytest

from interlock.iam.authorizer import Allow, Authorizer, Deny, bearer_token
from interlock.iam.domain import AuthPrincipal, PrincipalKind
from interlock.iam.errors import Unauthenticated

VIEWER = AuthPrincipal(
    subject="u1", kind=PrincipalKind.USER, tenant="acme", roles=("viewer",), expires_at=None
)


def _identity_token(principal: AuthPrincipal) -> str:
    """A stand-in for the signed token: who, tenant and roles in plain text."""
    return f"{principal.subject};{principal.tenant};{principal.roles_header}"


def _remembered(token: str) -> AuthPrincipal | None:
    if token == "good":
        return VIEWER
    if token == "bad":
        raise Unauthenticated("bad token")
    return None  # "new", "new-bad": only a lookup knows


async def _validate(token: str) -> AuthPrincipal:
    if token in {"good", "new"}:
        return VIEWER
    raise Unauthenticated("bad token")


AUTHORIZER = Authorizer(_remembered, _validate, _identity_token)


def test_public_routes_need_no_token() -> None:
    assert AUTHORIZER.decide_from_memory("POST", "/api/v1/auth/login", None) == Allow(())


def test_allowed_requests_carry_the_identity_headers() -> None:
    decision = AUTHORIZER.decide_from_memory("GET", "/api/v1/runs/r1?x=1", "Bearer good")
    assert decision == Allow((("x-interlock-identity", "u1;acme;viewer"),))


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Basic good", "good", "Bearer bad"])
async def test_missing_or_invalid_credentials_are_401(authorization: str | None) -> None:
    decision = await AUTHORIZER.decide("GET", "/api/v1/runs", authorization)
    assert isinstance(decision, Deny)
    assert (decision.status, decision.unauthenticated) == (401, True)
    body = json.loads(decision.body)
    assert body["status"] == 401
    assert body["instance"] == "/api/v1/runs"


def test_unknown_routes_are_401_then_404() -> None:
    anonymous = AUTHORIZER.decide_from_memory("GET", "/api/v1/nope", None)
    known = AUTHORIZER.decide_from_memory("GET", "/api/v1/nope", "Bearer good")
    assert isinstance(anonymous, Deny) and anonymous.status == 401
    assert isinstance(known, Deny) and (known.status, known.unauthenticated) == (404, False)


def test_roles_below_the_route_are_403() -> None:
    decision = AUTHORIZER.decide_from_memory("POST", "/api/v1/workflows/etl/runs", "Bearer good")
    assert isinstance(decision, Deny)
    assert (decision.status, decision.unauthenticated) == (403, False)
    assert "developer" in json.loads(decision.body)["detail"]


async def test_credentials_not_in_memory_are_looked_up() -> None:
    assert AUTHORIZER.decide_from_memory("GET", "/api/v1/runs", "Bearer new") is None
    allowed = await AUTHORIZER.decide("GET", "/api/v1/runs", "Bearer new")
    assert (
        isinstance(allowed, Allow) and ("x-interlock-identity", "u1;acme;viewer") in allowed.headers
    )
    refused = await AUTHORIZER.decide("GET", "/api/v1/runs", "Bearer new-bad")
    assert isinstance(refused, Deny) and refused.status == 401
    forbidden = await AUTHORIZER.decide("DELETE", "/api/v1/workflows/etl", "Bearer new")
    assert isinstance(forbidden, Deny) and forbidden.status == 403


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Token abc") is None
    assert bearer_token(None) is None
