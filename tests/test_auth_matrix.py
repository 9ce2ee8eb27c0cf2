"""The auth matrix: every way in, against the real platform (`make up`'s stack).

One parametrized test: each case is a request someone could send, through the gateway
or straight to a service's port, and the status it must get. The platform is the
session's ``default_platform`` (the seven real services, Envoy and IAM in its default
authorizer mode); the matrix works in two tenants of its own.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from interlock.common.identity import IDENTITY_HEADER
from interlock.common.permissions import PERMISSIONS
from interlock.common.testing import TestIdentity
from interlock.devstack import Platform as DefaultPlatform
from interlock.devstack import Tenant
from interlock.devstack._probes import run_sync
from interlock.devstack._stack import SERVICES, Stack, StackSecrets
from interlock.iam.domain import KeyEncryptionKeys

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

WORKFLOW = "name: matrix\ntasks:\n  - id: a\n    type: noop\n"
MADE_UP = {
    "x-interlock-principal": "mallory",
    "x-interlock-tenant": "default",
    "x-interlock-roles": "admin",
}
"""The identity headers services once believed."""


@dataclass(frozen=True)
class Request:
    """One request of the matrix."""

    method: str
    path: str
    headers: dict[str, str]
    port: int | None = None
    """A service's own port; ``None``: through the gateway."""
    body: str | None = None


@dataclass(frozen=True)
class Platform:
    stack: Stack
    secrets: StackSecrets
    credentials: dict[str, str]
    """Tokens and keys by name (see :func:`_credentials`)."""

    def send(self, request: Request) -> httpx.Response:
        base = (
            self.stack.gateway_url if request.port is None else f"http://127.0.0.1:{request.port}"
        )
        headers = dict(request.headers)
        if request.body is not None:
            headers["content-type"] = "application/yaml"
        with httpx.Client(base_url=base, trust_env=False, timeout=30) as client:
            return client.request(
                request.method, request.path, headers=headers, content=request.body
            )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def _signing_key(stack: Stack, secrets: StackSecrets) -> tuple[str, Ed25519PrivateKey]:
    """IAM's current signing key, read as IAM's own role and unsealed with its KEK."""
    conn = await asyncpg.connect(
        stack.postgres_dsn("iam"), password=secrets.postgres_passwords["iam"]
    )
    try:
        row = await conn.fetchrow(
            "SELECT kid, sealed_private_key FROM signing_keys WHERE retired_at IS NULL"
            " ORDER BY created_at DESC LIMIT 1"
        )
    finally:
        await conn.close()
    pem = KeyEncryptionKeys(secrets.key_encryption_keys).unseal(
        row["sealed_private_key"], context=row["kid"]
    )
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return row["kid"], key


def _credentials(platform: DefaultPlatform) -> dict[str, str]:
    """Every credential the matrix uses, good and bad, in two tenants of its own."""
    stack, own, other = platform.stack, platform.new_tenant("matrix"), platform.new_tenant("other")

    def login(tenant: Tenant) -> str:
        return platform.login(tenant.admin_username, tenant.admin_password, tenant.name)

    with httpx.Client(base_url=stack.gateway_url, trust_env=False, timeout=30) as client:
        admin = login(own)
        created = client.post(
            "/api/v1/users",
            json={"username": "viewer", "password": "viewer-password", "roles": ["viewer"]},
            headers=_bearer(admin),
        )
        assert created.status_code == 201, created.text
        other_admin = login(other)
        defined = client.post(
            "/api/v1/workflows",
            content=WORKFLOW,
            headers={**_bearer(other_admin), "content-type": "application/yaml"},
        )
        assert defined.status_code == 201, defined.text
        revoked = login(own)
        assert client.post("/api/v1/auth/logout", headers=_bearer(revoked)).status_code == 204
        key = client.post(
            "/api/v1/api-keys", json={"name": "revoked", "roles": ["admin"]}, headers=_bearer(admin)
        ).json()
        assert (
            client.delete(f"/api/v1/api-keys/{key['id']}", headers=_bearer(admin)).status_code
            == 204
        )
        jwks = client.get("/.well-known/jwks.json").json()
    kid, private_key = run_sync(lambda: _signing_key(stack, platform.secrets))
    claims = jwt.decode(admin, options={"verify_signature": False})
    header, payload, signature = admin.split(".")
    now = int(time.time())
    other_tenant_claims = _b64(json.dumps({**claims, "tid": other.name}).encode())
    public_x = next(k["x"] for k in jwks["keys"] if k["kid"] == kid)
    return {
        "admin": admin,
        "viewer": platform.login("viewer", "viewer-password", own.name),
        "expired": jwt.encode(
            {**claims, "iat": now - 3600, "exp": now - 60},
            private_key,
            algorithm="EdDSA",
            headers={"kid": kid},
        ),
        "tampered": f"{header}.{other_tenant_claims}.{signature}",
        "alg none": f"{_b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{payload}.",
        "HS256 with the public key": jwt.api_jws.PyJWS().encode(
            json.dumps(claims).encode(), public_x.encode(), algorithm="HS256", headers={"kid": kid}
        ),
        "revoked session": revoked,
        "revoked API key": key["key"],
        "made-up identity token": TestIdentity().token(own.name, roles=["admin"]),
    }


@pytest.fixture(scope="module")
def platform(default_platform: DefaultPlatform) -> Platform:
    return Platform(
        default_platform.stack, default_platform.secrets, _credentials(default_platform)
    )


Case = Callable[[Platform], tuple[Request, int]]


def _through_gateway(credential: str | None, expected: int, **request: str) -> Case:
    def build(platform: Platform) -> tuple[Request, int]:
        headers = {} if credential is None else _bearer(platform.credentials[credential])
        method, path = request.get("method", "GET"), request.get("path", "/api/v1/workflows")
        return Request(method, path, headers, body=request.get("body")), expected

    return build


def _spoofed_at_gateway(platform: Platform) -> tuple[Request, int]:
    # A viewer adds the headers services once believed and an identity token of another
    # key: the gateway drops the token, IAM judges the viewer, a viewer may not define.
    headers = {
        **_bearer(platform.credentials["viewer"]),
        **MADE_UP,
        IDENTITY_HEADER: platform.credentials["made-up identity token"],
    }
    return Request("POST", "/api/v1/workflows", headers, body=WORKFLOW), 403


def _spoofed_at_port(service: str) -> Case:
    def build(platform: Platform) -> tuple[Request, int]:
        definition = next(s for s in SERVICES if s.name == service)
        port = platform.stack.http_port(definition)
        path = next(
            (
                rule.path
                for rule in PERMISSIONS
                if rule.service == service
                and rule.method == "GET"
                and "{" not in rule.path
                and rule.role is not None
            ),
            "/api/v1/runs",
        )
        with httpx.Client(trust_env=False, timeout=30) as client:
            document = client.get(f"http://127.0.0.1:{port}/api/v1/{service}/openapi.json")
        served = path in document.json().get("paths", {})
        headers = {**MADE_UP, IDENTITY_HEADER: platform.credentials["made-up identity token"]}
        # Refused: 401 where the service serves the route, 404 where it serves none yet.
        return Request("GET", path, headers, port=port), 401 if served else 404

    return build


CASES: dict[str, Case] = {
    "valid token (control)": _through_gateway("admin", 200),
    "no token": _through_gateway(None, 401),
    "garbage": lambda p: (Request("GET", "/api/v1/workflows", _bearer("garbage")), 401),
    "expired": _through_gateway("expired", 401),
    "tampered": _through_gateway("tampered", 401),
    "alg none": _through_gateway("alg none", 401),
    "HS256 with the public key": _through_gateway("HS256 with the public key", 401),
    "revoked session": _through_gateway("revoked session", 401),
    "revoked API key": _through_gateway("revoked API key", 401),
    "wrong tenant": _through_gateway("admin", 404, path="/api/v1/workflows/matrix"),
    "wrong role": _through_gateway("viewer", 403, method="POST", body=WORKFLOW),
    "spoofed headers at the gateway": _spoofed_at_gateway,
    **{f"spoofed headers at {s.name}'s port": _spoofed_at_port(s.name) for s in SERVICES},
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_auth_matrix(platform: Platform, case: Case) -> None:
    request, expected = case(platform)
    response = platform.send(request)
    assert response.status_code == expected, response.text
    if expected != 200:
        assert response.headers["content-type"] == "application/problem+json"
