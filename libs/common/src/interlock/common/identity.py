"""Who is calling: the principal the gateway's authorization put on the request.

Envoy strips any client-sent ``x-interlock-*`` headers, asks IAM to authorize
the request, and on success forwards the principal in these headers. A service
trusts nothing else: a request without them did not come through the gateway
and is refused. Use :func:`require_principal` as a FastAPI dependency::

    @router.get("/api/v1/runs")
    async def list_runs(principal: Principal = Depends(require_principal)) -> ...:
        ...  # every query filtered by principal.tenant
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from interlock.common.problems import Problem

PRINCIPAL_HEADER = "x-interlock-principal"
TENANT_HEADER = "x-interlock-tenant"
ROLES_HEADER = "x-interlock-roles"
IDENTITY_HEADERS = (PRINCIPAL_HEADER, TENANT_HEADER, ROLES_HEADER)
"""Headers only the gateway may set (it removes client-sent copies first)."""


@dataclass(frozen=True, kw_only=True)
class Principal:
    """An authenticated caller, as IAM described it to the gateway."""

    subject: str
    """User id or API key id."""
    tenant: str
    """The tenant every resource the caller touches must belong to."""
    roles: frozenset[str]
    """Role names, e.g. ``{"developer"}``."""

    def has_role(self, *roles: str) -> bool:
        """Whether the caller holds any of ``roles``."""
        return not self.roles.isdisjoint(roles)


def principal_from_headers(
    subject: str | None, tenant: str | None, roles: str | None
) -> Principal | None:
    """Build the principal from the three gateway headers, or ``None`` if any is missing."""
    if not subject or not tenant or roles is None:
        return None
    names = frozenset(role.strip() for role in roles.split(",") if role.strip())
    return Principal(subject=subject, tenant=tenant, roles=names)


async def require_principal(connection: HTTPConnection) -> Principal:
    """FastAPI dependency: the caller, or a 401 problem when the gateway did not vouch for one.

    Reads the headers itself rather than declaring them as FastAPI ``Header``
    parameters: every route depends on this, and FastAPI's per-parameter
    validation of three plain strings cost a sizeable share of a request's CPU.
    """
    headers = connection.headers
    principal = principal_from_headers(
        headers.get(PRINCIPAL_HEADER), headers.get(TENANT_HEADER), headers.get(ROLES_HEADER)
    )
    if principal is None:
        raise Problem(
            401,
            "Unauthenticated",
            type_="unauthenticated",
            detail="This API is reachable only through the gateway, with a valid token.",
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
"""Annotate a route parameter with this to receive the caller."""
