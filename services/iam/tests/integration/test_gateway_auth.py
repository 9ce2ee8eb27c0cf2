"""Authorization at the gateway, end to end: real Envoy, real IAM, real PostgreSQL.

Tests taking ``any_gateway`` run once per authorizer mode (Envoy's gRPC Check, the
default, and IAM's HTTP authorizer); the others through the default.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import re
import time

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from interlock.common.identity import IDENTITY_HEADER
from interlock.common.permissions import PERMISSIONS, Rule
from interlock.common.problems import PROBLEM_CONTENT_TYPE
from interlock.iam.domain import KeyEncryptionKeys

from .conftest import ADMIN, KEY_ENCRYPTION_KEYS, MAX_LOGIN_FAILURES, Gateway, bearer

pytestmark = pytest.mark.integration

PROTECTED = [rule for rule in PERMISSIONS if rule.role is not None]


def concrete(path: str) -> str:
    """A path template with every placeholder filled in."""
    return re.sub(r"\{[a-z_]+(\.\.\.)?\}", "x1", path)


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["status"] == status


# --- public routes ------------------------------------------------------------------


def test_public_routes_need_no_token(gateway: Gateway) -> None:
    with gateway.client() as client:
        assert client.get("/health/iam").status_code == 200
        jwks = client.get("/.well-known/jwks.json")
        assert jwks.status_code == 200
        keys = jwks.json()["keys"]
        assert keys and all(key["kty"] == "OKP" and key["alg"] == "EdDSA" for key in keys)
        login = client.post("/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    assert login.status_code == 200
    body = login.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "EdDSA"
    assert header["kid"] in {key["kid"] for key in keys}


@pytest.mark.parametrize("rule", PROTECTED, ids=lambda rule: f"{rule.method} {rule.path}")
def test_every_protected_route_without_a_token_is_401(gateway: Gateway, rule: Rule) -> None:
    with gateway.client() as client:
        response = client.request(rule.method, concrete(rule.path))
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_unknown_api_route_is_401_then_404(any_gateway: Gateway) -> None:
    with any_gateway.client() as client:
        assert_problem(client.get("/api/v1/nothing-here"), 401)
        assert_problem(
            client.get("/api/v1/nothing-here", headers=bearer(any_gateway.admin_token())), 404
        )
        assert_problem(client.post("/api/v1/runs", headers=bearer(any_gateway.admin_token())), 404)


def test_request_bodies_are_limited(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.post("/api/v1/auth/login", content=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413


# --- bad tokens ---------------------------------------------------------------------


async def _signing_key(gateway: Gateway) -> tuple[str, Ed25519PrivateKey]:
    conn = await asyncpg.connect(gateway.postgres_dsn, password=gateway.postgres_password)
    try:
        row = await conn.fetchrow(
            "SELECT kid, private_pem, sealed_private_key FROM signing_keys"
            " WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1"
        )
    finally:
        await conn.close()
    assert row["private_pem"] is None  # sealed at rest
    pem = KeyEncryptionKeys(KEY_ENCRYPTION_KEYS).unseal(
        row["sealed_private_key"], context=row["kid"]
    )
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return row["kid"], key


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_expired_tampered_none_and_wrong_key_tokens_are_401(gateway: Gateway) -> None:
    token = gateway.admin_token()
    claims = _claims(token)
    kid, key = await _signing_key(gateway)
    now = int(time.time())
    expired = jwt.encode(
        {**claims, "iat": now - 3600, "exp": now - 60}, key, algorithm="EdDSA", headers={"kid": kid}
    )
    header, payload, signature = token.split(".")
    forged_payload = _b64(json.dumps({**claims, "tid": "other", "roles": ["admin"]}).encode())
    tampered = f"{header}.{forged_payload}.{signature}"
    none_header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    alg_none = f"{none_header}.{payload}."
    wrong_key = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
    )
    hs256 = jwt.encode(
        claims, "secret-guess-that-is-long-enough!", algorithm="HS256", headers={"kid": kid}
    )
    with gateway.client() as client:
        assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
        for bad in (expired, tampered, alg_none, wrong_key, hs256, "garbage", "ilk_unknown"):
            assert_problem(client.get("/api/v1/auth/me", headers=bearer(bad)), 401)
        assert_problem(client.get("/api/v1/auth/me", headers={"authorization": token}), 401)


def test_logged_out_token_is_401(any_gateway: Gateway) -> None:
    tokens = any_gateway.login(*ADMIN)
    with any_gateway.client() as client:
        me = client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200
        logout = client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
        assert logout.status_code == 204
        assert_problem(client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])), 401)
        refresh = client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert_problem(refresh, 401)


# --- roles --------------------------------------------------------------------------


def test_viewer_reads_but_cannot_write(any_gateway: Gateway) -> None:
    viewer = any_gateway.login(*any_gateway.create_user(["viewer"]))["access_token"]
    with any_gateway.client() as client:
        read = client.get("/api/v1/runs", headers=bearer(viewer))
        assert read.status_code == 200
        assert read.json()["path"] == "/api/v1/runs"
        for method, path in [
            ("POST", "/api/v1/workflows"),
            ("POST", "/api/v1/workflows/etl/runs"),
            ("POST", "/api/v1/runs/r1/cancel"),
            ("POST", "/api/v1/users"),
        ]:
            assert_problem(client.request(method, path, headers=bearer(viewer), json={}), 403)


def test_operator_controls_runs_and_developer_does_not(gateway: Gateway) -> None:
    operator = gateway.login(*gateway.create_user(["operator"]))["access_token"]
    developer = gateway.login(*gateway.create_user(["developer"]))["access_token"]
    with gateway.client() as client:
        cancel = client.post("/api/v1/runs/r1/cancel", headers=bearer(operator))
        assert cancel.status_code == 200
        assert cancel.json()["path"] == "/api/v1/runs/r1/cancel"
        timer = client.patch("/api/v1/runs/r1/tasks/t1/timer", headers=bearer(operator))
        assert timer.status_code == 200
        assert_problem(client.post("/api/v1/runs/r1/cancel", headers=bearer(developer)), 403)
        start = client.post("/api/v1/workflows/etl/runs", headers=bearer(developer), json={})
        assert start.status_code == 200


def test_paths_are_normalized_before_authorization(any_gateway: Gateway) -> None:
    viewer = bearer(any_gateway.login(*any_gateway.create_user(["viewer"]))["access_token"])
    # http.client sends the path as written (httpx would resolve the dots itself).
    host, port = any_gateway.url.removeprefix("http://").split(":")
    raw = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        raw.request("GET", "/api/v1/runs/../users", headers=viewer)
        dotted = raw.getresponse()
        assert dotted.status == 403  # judged as /api/v1/users, which needs admin
    finally:
        raw.close()
    with any_gateway.client() as client:
        merged = client.get("/api/v1//runs", headers=viewer)
        assert merged.status_code == 200
        assert merged.json()["path"] == "/api/v1/runs"
        encoded = client.get("/api/v1/runs/x%2F..%2F..%2Fusers", headers=viewer)
        assert encoded.status_code == 400


def identity_claims(echoed: dict[str, str], gateway: Gateway) -> dict[str, object]:
    """The claims of the identity token a service received, verified with IAM's JWKS."""
    token = echoed[IDENTITY_HEADER]
    kid = jwt.get_unverified_header(token)["kid"]
    with gateway.client() as client:
        jwks = client.get("/.well-known/jwks.json").json()
    jwk = next(key for key in jwks["keys"] if key["kid"] == kid)
    claims: dict[str, object] = jwt.decode(
        token, jwt.PyJWK(jwk).key, algorithms=["EdDSA"], audience="interlock-services"
    )
    return claims


def test_spoofed_identity_headers_are_replaced(any_gateway: Gateway) -> None:
    username, password = any_gateway.create_user(["viewer"])
    token = any_gateway.login(username, password)["access_token"]
    forged = any_gateway.login(*ADMIN)["access_token"]
    spoofed = {
        **bearer(token),
        IDENTITY_HEADER: forged,
        "x-interlock-tenant": "evil",
        "x-interlock-principal": "someone-else",
        "x-interlock-roles": "admin",
    }
    with any_gateway.client() as client:
        echoed = client.get("/api/v1/runs", headers=spoofed).json()["headers"]
        me = client.get("/api/v1/auth/me", headers=spoofed).json()
        assert_problem(client.get("/api/v1/users", headers=spoofed), 403)
        anonymous = client.get("/health/iam", headers={IDENTITY_HEADER: forged})
    claims = identity_claims(echoed, any_gateway)
    assert (claims["tid"], claims["roles"]) == ("default", ["viewer"])
    assert claims["sub"] == me["id"] != "someone-else"
    assert me == {"id": me["id"], "tenant": "default", "roles": ["viewer"]}
    assert anonymous.status_code == 200


def test_iam_refuses_made_up_identities_at_its_own_port(gateway: Gateway) -> None:
    # Anyone on the network could once create an admin user in another tenant this way.
    forged = {
        "x-interlock-principal": "mallory",
        "x-interlock-tenant": "default",
        "x-interlock-roles": "admin",
    }
    body = {"username": "mallory", "password": "mallory-password", "roles": ["admin"]}
    with httpx.Client(base_url=gateway.iam_url, trust_env=False, timeout=30) as client:
        created = client.post("/api/v1/users", json=body, headers=forged)
        access_token = client.post(
            "/api/v1/users", json=body, headers={IDENTITY_HEADER: gateway.admin_token()}
        )
    assert_problem(created, 401)
    assert_problem(access_token, 401)


# --- sessions -----------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_family(gateway: Gateway) -> None:
    first = gateway.login(*ADMIN)
    with gateway.client() as client:
        second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert second.status_code == 200
        rotated = second.json()
        assert rotated["refresh_token"] != first["refresh_token"]
        assert (
            client.get("/api/v1/auth/me", headers=bearer(rotated["access_token"])).status_code
            == 200
        )
        # The old refresh token again: reuse, so the whole family is revoked.
        reuse = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert_problem(reuse, 401)
        after = client.post(
            "/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
        )
        assert_problem(after, 401)
        assert_problem(client.get("/api/v1/auth/me", headers=bearer(rotated["access_token"])), 401)
        # Another session of the same user is untouched.
        other = gateway.login(*ADMIN)
        assert (
            client.get("/api/v1/auth/me", headers=bearer(other["access_token"])).status_code == 200
        )


def test_wrong_passwords_lock_the_user_out(gateway: Gateway) -> None:
    username, password = gateway.create_user(["viewer"])
    with gateway.client() as client:
        for _ in range(MAX_LOGIN_FAILURES):
            wrong = client.post(
                "/api/v1/auth/login", json={"username": username, "password": "nope"}
            )
            assert_problem(wrong, 401)
        locked = client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert_problem(locked, 429)
        assert int(locked.headers["retry-after"]) > 0
        unknown = client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"})
        assert_problem(unknown, 401)


# --- API keys -----------------------------------------------------------------------


def test_api_key_works_until_revoked(any_gateway: Gateway) -> None:
    admin = bearer(any_gateway.admin_token())
    with any_gateway.client() as client:
        created = client.post(
            "/api/v1/api-keys", json={"name": "ci", "roles": ["developer"]}, headers=admin
        )
        assert created.status_code == 201
        key = created.json()
        assert key["key"].startswith("ilk_")
        me = client.get("/api/v1/auth/me", headers=bearer(key["key"]))
        assert me.json() == {"id": key["id"], "tenant": "default", "roles": ["developer"]}
        assert_problem(client.get("/api/v1/users", headers=bearer(key["key"])), 403)
        listed = {
            k["id"]: k for k in client.get("/api/v1/api-keys", headers=admin).json()["api_keys"]
        }
        assert listed[key["id"]]["key"] is None
        assert listed[key["id"]]["last_used_at"] is not None
        assert client.delete(f"/api/v1/api-keys/{key['id']}", headers=admin).status_code == 204
        assert_problem(client.get("/api/v1/auth/me", headers=bearer(key["key"])), 401)
        assert_problem(client.delete("/api/v1/api-keys/not-a-key", headers=admin), 404)


# --- tenants ------------------------------------------------------------------------


def test_another_tenants_resources_are_404(gateway: Gateway) -> None:
    admin = bearer(gateway.admin_token())
    tenant = f"acme-{int(time.time() * 1000)}"
    with gateway.client() as client:
        created = client.post(
            "/api/v1/tenants",
            json={"name": tenant, "admin_username": "root", "admin_password": "acme-password"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        acme = bearer(gateway.login("root", "acme-password", tenant)["access_token"])
        default_users = client.get("/api/v1/users", headers=admin).json()["users"]
        default_admin = next(u for u in default_users if u["username"] == ADMIN[0])
        assert_problem(client.get(f"/api/v1/users/{default_admin['id']}", headers=acme), 404)
        assert client.get(f"/api/v1/users/{default_admin['id']}", headers=admin).status_code == 200
        assert [
            u["username"] for u in client.get("/api/v1/users", headers=acme).json()["users"]
        ] == ["root"]
        echoed = client.get("/api/v1/runs", headers=acme).json()["headers"]
        assert identity_claims(echoed, gateway)["tid"] == tenant
        # A tenant's admin cannot create tenants or see others.
        refused = client.post(
            "/api/v1/tenants",
            json={"name": "x-" + tenant, "admin_username": "a", "admin_password": "password1"},
            headers=acme,
        )
        assert_problem(refused, 403)
        listed = client.get("/api/v1/tenants", headers=acme).json()["tenants"]
        assert [t["name"] for t in listed] == [tenant]


# --- signing keys -------------------------------------------------------------------


def test_rotation_keeps_old_tokens_valid(gateway: Gateway) -> None:
    old = gateway.admin_token()
    with gateway.client() as client:
        rotated = client.post("/api/v1/signing-keys/rotate", headers=bearer(old))
        assert rotated.status_code == 201
        new_kid = rotated.json()["kid"]
        new = gateway.admin_token()
        assert jwt.get_unverified_header(new)["kid"] == new_kid
        assert jwt.get_unverified_header(old)["kid"] != new_kid
        kids = {key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]}
        assert {new_kid, jwt.get_unverified_header(old)["kid"]} <= kids
        assert client.get("/api/v1/auth/me", headers=bearer(old)).status_code == 200
        assert client.get("/api/v1/auth/me", headers=bearer(new)).status_code == 200


async def test_a_flood_of_key_lookups_leaves_remembered_tokens_answered(gateway: Gateway) -> None:
    # IAM's gRPC Check runs on 4 threads; each new API key once held one for its
    # database lookup, so a flood of them made the gateway answer 503 to everyone.
    admin = bearer(gateway.admin_token())
    with gateway.client() as client:
        keys = []
        for number in range(6):
            created = client.post(
                "/api/v1/api-keys",
                json={"name": f"flood-{number}", "roles": ["viewer"]},
                headers=admin,
            )
            assert created.status_code == 201, created.text
            keys.append(created.json()["key"])
        assert client.get("/api/v1/auth/me", headers=admin).status_code == 200  # remembered
    conn = await asyncpg.connect(gateway.postgres_dsn, password=gateway.postgres_password)
    try:
        async with httpx.AsyncClient(base_url=gateway.url, trust_env=False, timeout=60) as client:
            async with conn.transaction():
                # Every lookup now waits, as it would behind a slow or saturated database.
                await conn.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
                flood = [
                    asyncio.create_task(client.get("/api/v1/runs", headers=bearer(key)))
                    for key in keys
                ]
                waiting = (
                    "SELECT count(*) FROM pg_locks"
                    " WHERE NOT granted AND relation = 'api_keys'::regclass"
                )
                async with asyncio.timeout(30):  # a hang guard only
                    while await conn.fetchval(waiting) < 2:  # noqa: ASYNC110 - polls the server
                        await asyncio.sleep(0.02)
                remembered = await client.get("/api/v1/auth/me", headers=admin)
            answers = [response.status_code for response in await asyncio.gather(*flood)]
    finally:
        await conn.close()
    assert remembered.status_code == 200, remembered.text
    assert set(answers) <= {200, 503} and 503 in answers, answers
