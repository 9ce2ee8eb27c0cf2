"""The auth matrix: every way in, against the real platform (`make up`'s stack, its own ports).

One parametrized test: each case is a request someone could send, through the gateway
or straight to a service's port, and the status it must get. The platform runs with
the seven real services, Envoy and IAM (its default authorizer mode) in a data folder of
its own, on a port offset no `make up` of the machine uses.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from interlock.common.identity import IDENTITY_HEADER
from interlock.common.permissions import PERMISSIONS
from interlock.common.testing import TestIdentity
from interlock.devstack._probes import run_sync
from interlock.devstack._process import port_is_free
from interlock.devstack._stack import ADMIN_PASSWORD, ADMIN_USERNAME, SERVICES, Stack, StackSecrets
from interlock.iam.domain import KeyEncryptionKeys

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

OFFSETS = (20000, 21000, 22000, 23000, 24000, 25000, 26000)
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


def _free_offset() -> int:
    for offset in OFFSETS:
        stack = Stack(data_dir=Path("/unused"), port_offset=offset)
        ports = [p for group in stack.ports_by_program().values() for p in group.values()]
        if all(port_is_free(port) for port in ports):
            return offset
    pytest.skip(f"no free port range for a stack among offsets {OFFSETS}")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.devstack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
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


def _credentials(stack: Stack, secrets: StackSecrets) -> dict[str, str]:
    """Every credential the matrix uses, good and bad."""
    with httpx.Client(base_url=stack.gateway_url, trust_env=False, timeout=30) as client:

        def login(username: str, password: str, tenant: str = "default") -> str:
            response = client.post(
                "/api/v1/auth/login",
                json={"username": username, "password": password, "tenant": tenant},
            )
            assert response.status_code == 200, response.text
            token: str = response.json()["access_token"]
            return token

        admin = login(ADMIN_USERNAME, ADMIN_PASSWORD)
        viewer_name = f"viewer-{int(time.time() * 1000)}"
        created = client.post(
            "/api/v1/users",
            json={"username": viewer_name, "password": "viewer-password", "roles": ["viewer"]},
            headers=_bearer(admin),
        )
        assert created.status_code == 201, created.text
        other = f"other-{int(time.time() * 1000)}"
        tenant = client.post(
            "/api/v1/tenants",
            json={"name": other, "admin_username": "root", "admin_password": "other-password"},
            headers=_bearer(admin),
        )
        assert tenant.status_code == 201, tenant.text
        other_admin = login("root", "other-password", other)
        defined = client.post(
            "/api/v1/workflows",
            content=WORKFLOW,
            headers={**_bearer(other_admin), "content-type": "application/yaml"},
        )
        assert defined.status_code == 201, defined.text
        revoked = login(ADMIN_USERNAME, ADMIN_PASSWORD)
        assert client.post("/api/v1/auth/logout", headers=_bearer(revoked)).status_code == 204
        key = client.post(
            "/api/v1/api-keys", json={"name": "revoked", "roles": ["admin"]}, headers=_bearer(admin)
        ).json()
        assert (
            client.delete(f"/api/v1/api-keys/{key['id']}", headers=_bearer(admin)).status_code
            == 204
        )
        jwks = client.get("/.well-known/jwks.json").json()
    kid, private_key = run_sync(lambda: _signing_key(stack, secrets))
    claims = jwt.decode(admin, options={"verify_signature": False})
    header, payload, signature = admin.split(".")
    now = int(time.time())
    public_x = next(k["x"] for k in jwks["keys"] if k["kid"] == kid)
    return {
        "admin": admin,
        "viewer": login_viewer(stack, viewer_name),
        "expired": jwt.encode(
            {**claims, "iat": now - 3600, "exp": now - 60},
            private_key,
            algorithm="EdDSA",
            headers={"kid": kid},
        ),
        "tampered": f"{header}.{_b64(json.dumps({**claims, 'tid': other}).encode())}.{signature}",
        "alg none": f"{_b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{payload}.",
        "HS256 with the public key": jwt.api_jws.PyJWS().encode(
            json.dumps(claims).encode(), public_x.encode(), algorithm="HS256", headers={"kid": kid}
        ),
        "revoked session": revoked,
        "revoked API key": key["key"],
        "made-up identity token": TestIdentity().token("default", roles=["admin"]),
    }


def login_viewer(stack: Stack, username: str) -> str:
    with httpx.Client(base_url=stack.gateway_url, trust_env=False, timeout=30) as client:
        response = client.post(
            "/api/v1/auth/login", json={"username": username, "password": "viewer-password"}
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    # Not under pytest's tmp dir: it is 0700 root, and PostgreSQL runs unprivileged.
    data_dir = Path(tempfile.mkdtemp(prefix="ilk-matrix-"))
    data_dir.chmod(0o755)
    env = {
        **os.environ,
        "INTERLOCK_DEV_DATA_DIR": str(data_dir),
        "INTERLOCK_DEV_PORT_OFFSET": str(_free_offset()),
    }
    env.pop("INTERLOCK_DEV_SERVICE_COMMAND", None)
    env.pop("INTERLOCK_DEV_GATEWAY_AUTHZ", None)
    stack = Stack.from_env(env)
    try:
        started = _cli(env, "up")
        assert started.returncode == 0, f"up failed:\n{started.stdout}\n{started.stderr}"
        secrets = StackSecrets.load_or_create(stack.secrets_file)[0]
        yield Platform(stack, secrets, _credentials(stack, secrets))
    finally:
        # clean, not down: as root, PostgreSQL's folder lives outside the data folder.
        _cli(env, "clean")
        shutil.rmtree(data_dir, ignore_errors=True)


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
