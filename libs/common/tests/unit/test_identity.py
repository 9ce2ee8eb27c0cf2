from fastapi import APIRouter

from interlock.common.http import create_app
from interlock.common.identity import CurrentPrincipal, principal_from_headers
from interlock.common.settings import ServiceSettings
from interlock.common.testing import app_client

router = APIRouter()


@router.get("/whoami")
async def whoami(principal: CurrentPrincipal) -> dict[str, object]:
    return {
        "subject": principal.subject,
        "tenant": principal.tenant,
        "roles": sorted(principal.roles),
    }


def test_roles_are_parsed_from_a_comma_separated_header() -> None:
    principal = principal_from_headers("u1", "acme", "viewer, developer")
    assert principal is not None
    assert principal.roles == frozenset({"viewer", "developer"})
    assert principal.has_role("admin", "developer")
    assert not principal.has_role("admin")


def test_any_missing_header_means_no_principal() -> None:
    assert principal_from_headers(None, "acme", "viewer") is None
    assert principal_from_headers("u1", "", "viewer") is None
    assert principal_from_headers("u1", "acme", None) is None


async def test_requests_without_gateway_headers_are_refused() -> None:
    app = create_app(ServiceSettings(), routers=[router])
    async with app_client(app) as client:
        refused = await client.get("/whoami")
        accepted = await client.get(
            "/whoami",
            headers={
                "x-interlock-principal": "u1",
                "x-interlock-tenant": "acme",
                "x-interlock-roles": "viewer",
            },
        )
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert accepted.json() == {"subject": "u1", "tenant": "acme", "roles": ["viewer"]}
