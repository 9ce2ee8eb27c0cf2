"""Logins, lockouts and user management: in-process IAM on a real PostgreSQL, and through
a real gateway where the authorizer's view of a user matters."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from interlock.common.testing import TEST_IDENTITY, app_client, identity_headers
from interlock.devstack import PostgresDatabase, PostgresServer
from interlock.iam import IamSettings, create_app

from .conftest import ADMIN, KEY_ENCRYPTION_KEYS, Gateway, bearer, running_gateway

pytestmark = pytest.mark.integration

MAX_FAILURES = 3
ADMIN_HEADERS = identity_headers("default", subject="admin", roles=["admin"])


def settings_for(database: PostgresDatabase, **changes: object) -> IamSettings:
    base = IamSettings(
        postgres_dsn=database.dsn,
        postgres_password=database.password,
        grpc_port=0,
        authz_port=0,
        bootstrap_admin_username=ADMIN[0],
        bootstrap_admin_password=SecretStr(ADMIN[1]),
        bootstrap_admin_must_change_password=False,
        login_max_failures=MAX_FAILURES,
        key_encryption_keys=SecretStr(KEY_ENCRYPTION_KEYS),
        identity_jwks=TEST_IDENTITY.jwks,
    )
    return base.model_copy(update=changes)


@pytest.fixture
async def iam(postgres_database: PostgresDatabase) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings_for(postgres_database))) as client:
        yield client


async def new_user(client: httpx.AsyncClient, roles: list[str]) -> tuple[str, str, str]:
    """A new user of tenant ``default``: id, name, password."""
    username, password = f"user-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    created = await client.post(
        "/api/v1/users",
        json={"username": username, "password": password, "roles": roles},
        headers=ADMIN_HEADERS,
    )
    assert created.status_code == 201, created.text
    return created.json()["id"], username, password


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )


def problem_type(response: httpx.Response) -> str:
    slug: str = response.json()["type"].rsplit(":", 1)[-1]
    return slug


# --- lockout ------------------------------------------------------------------------


async def test_parallel_guesses_get_no_more_tries_than_the_limit(iam: httpx.AsyncClient) -> None:
    _, username, password = await new_user(iam, ["viewer"])
    answers = await asyncio.gather(*(login(iam, username, f"guess-{i}") for i in range(40)))
    statuses = sorted(answer.status_code for answer in answers)
    # Each attempt is reserved before the slow password check: 40 at once still get
    # only MAX_FAILURES checks.
    assert statuses == [401] * MAX_FAILURES + [429] * (40 - MAX_FAILURES)
    assert (await login(iam, username, password)).status_code == 429


async def test_unknown_names_are_answered_like_known_ones(iam: httpx.AsyncClient) -> None:
    _, known, _ = await new_user(iam, ["viewer"])
    answers = {}
    for name in (known, f"nobody-{secrets.token_hex(4)}"):
        responses = [await login(iam, name, "wrong-password") for _ in range(MAX_FAILURES + 2)]
        answers[name] = [(r.status_code, r.json()["type"], r.json()["detail"]) for r in responses]
    known_answers, unknown_answers = answers.values()
    assert known_answers == unknown_answers
    assert [status for status, _, _ in known_answers] == [401] * MAX_FAILURES + [429] * 2


async def test_a_lockout_ends_and_one_wrong_guess_does_not_lock_again(
    iam: httpx.AsyncClient, postgres_database: PostgresDatabase
) -> None:
    _, username, password = await new_user(iam, ["viewer"])
    for _ in range(MAX_FAILURES):
        await login(iam, username, "wrong-password")
    assert (await login(iam, username, password)).status_code == 429
    # The lockout's end, without waiting for it: its time moves to the past.
    conn = await asyncpg.connect(postgres_database.dsn, password=postgres_database.password)
    try:
        await conn.execute("UPDATE login_attempts SET locked_until = now() - interval '1 s'")
    finally:
        await conn.close()
    assert (await login(iam, username, "wrong-password")).status_code == 401
    assert (await login(iam, username, password)).status_code == 200


async def test_an_admin_ends_a_lockout(iam: httpx.AsyncClient) -> None:
    user_id, username, password = await new_user(iam, ["viewer"])
    for _ in range(MAX_FAILURES):
        await login(iam, username, "wrong-password")
    locked = await iam.get(f"/api/v1/users/{user_id}", headers=ADMIN_HEADERS)
    assert locked.json()["locked_until"] is not None
    unlock = await iam.post(f"/api/v1/users/{user_id}/unlock", headers=ADMIN_HEADERS)
    assert unlock.status_code == 204
    assert (await login(iam, username, password)).status_code == 200


def test_a_locked_out_admin_recovers_with_the_local_command(gateway: Gateway) -> None:
    with gateway.client() as client:
        for _ in range(MAX_FAILURES + 1):
            client.post("/api/v1/auth/login", json={"username": ADMIN[0], "password": "nope"})
        locked = client.post(
            "/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}
        )
        assert locked.status_code == 429
        env = {
            **os.environ,
            "INTERLOCK_POSTGRES_DSN": gateway.postgres_dsn,
            "INTERLOCK_POSTGRES_PASSWORD": gateway.postgres_password,
            "INTERLOCK_KEY_ENCRYPTION_KEYS": KEY_ENCRYPTION_KEYS,
        }
        recovered = subprocess.run(
            [sys.executable, "-m", "interlock.iam", "recover-user", ADMIN[0]],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert recovered.returncode == 0, recovered.stderr
        again = client.post("/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        assert again.status_code == 200, again.text


# --- the bootstrap admin's first password -------------------------------------------


async def test_the_bootstrap_password_must_be_changed_before_a_session(
    postgres_database: PostgresDatabase,
) -> None:
    settings = settings_for(postgres_database, bootstrap_admin_must_change_password=True)
    async with app_client(create_app(settings)) as client:
        first = await login(client, *ADMIN)
        assert first.status_code == 403
        assert problem_type(first) == "password-change-required"
        wrong = await client.post(
            "/api/v1/auth/password",
            json={"username": ADMIN[0], "current_password": "nope", "new_password": "n" * 12},
        )
        assert wrong.status_code == 401
        same = await client.post(
            "/api/v1/auth/password",
            json={"username": ADMIN[0], "current_password": ADMIN[1], "new_password": ADMIN[1]},
        )
        assert same.status_code == 400
        changed = await client.post(
            "/api/v1/auth/password",
            json={"username": ADMIN[0], "current_password": ADMIN[1], "new_password": "n" * 12},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["access_token"]
        assert (await login(client, *ADMIN)).status_code == 401
        assert (await login(client, ADMIN[0], "n" * 12)).status_code == 200


# --- user management, as the gateway sees it ------------------------------------------


def test_disabling_a_user_stops_their_sessions_and_keys_at_once(any_gateway: Gateway) -> None:
    gateway = any_gateway
    admin = bearer(gateway.admin_token())
    username, password = gateway.create_user(["admin"])
    tokens = gateway.login(username, password)
    with gateway.client() as client:
        key = client.post(
            "/api/v1/api-keys",
            json={"name": "theirs", "roles": ["viewer"]},
            headers=bearer(tokens["access_token"]),
        ).json()["key"]
        me = client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200  # now cached by the authorizer
        assert client.get("/api/v1/auth/me", headers=bearer(key)).status_code == 200
        user_id = me.json()["id"]

        disabled = client.patch(f"/api/v1/users/{user_id}", json={"disabled": True}, headers=admin)
        assert disabled.status_code == 200, disabled.text
        assert disabled.json()["disabled_at"] is not None
        assert (
            client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 401
        )
        assert client.get("/api/v1/auth/me", headers=bearer(key)).status_code == 401
        refreshed = client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code in (401, 403)
        refused = client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert refused.status_code == 403
        assert problem_type(refused) == "user-disabled"

        enabled = client.patch(f"/api/v1/users/{user_id}", json={"disabled": False}, headers=admin)
        assert enabled.json()["disabled_at"] is None
        fresh = gateway.login(username, password)["access_token"]
        assert client.get("/api/v1/auth/me", headers=bearer(fresh)).status_code == 200
        # Sessions ended by disabling stay ended.
        assert (
            client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 401
        )


def test_new_roles_end_the_users_sessions(gateway: Gateway) -> None:
    admin = bearer(gateway.admin_token())
    username, password = gateway.create_user(["admin"])
    old = gateway.login(username, password)["access_token"]
    with gateway.client() as client:
        me = client.get("/api/v1/auth/me", headers=bearer(old)).json()
        changed = client.patch(
            f"/api/v1/users/{me['id']}", json={"roles": ["viewer"]}, headers=admin
        )
        assert changed.json()["roles"] == ["viewer"]
        assert client.get("/api/v1/users", headers=bearer(old)).status_code == 401
        new = gateway.login(username, password)["access_token"]
        assert client.get("/api/v1/users", headers=bearer(new)).status_code == 403
        assert client.get("/api/v1/auth/me", headers=bearer(new)).json()["roles"] == ["viewer"]
        bad = client.patch(f"/api/v1/users/{me['id']}", json={"roles": ["root"]}, headers=admin)
        assert bad.status_code == 400


def test_deleting_a_user_ends_everything_they_had(gateway: Gateway) -> None:
    admin = bearer(gateway.admin_token())
    username, password = gateway.create_user(["admin"])
    tokens = gateway.login(username, password)
    with gateway.client() as client:
        key = client.post(
            "/api/v1/api-keys",
            json={"name": "k", "roles": ["viewer"]},
            headers=bearer(tokens["access_token"]),
        ).json()["key"]
        user_id = client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).json()["id"]
        assert client.get("/api/v1/auth/me", headers=bearer(key)).status_code == 200
        assert client.delete(f"/api/v1/users/{user_id}", headers=admin).status_code == 204
        assert (
            client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 401
        )
        assert client.get("/api/v1/auth/me", headers=bearer(key)).status_code == 401
        assert client.get(f"/api/v1/users/{user_id}", headers=admin).status_code == 404
        assert client.delete(f"/api/v1/users/{user_id}", headers=admin).status_code == 404
        gone = client.post("/api/v1/auth/login", json={"username": username, "password": password})
        assert gone.status_code == 401


async def test_the_last_enabled_admin_cannot_be_removed(iam: httpx.AsyncClient) -> None:
    users = (await iam.get("/api/v1/users", headers=ADMIN_HEADERS)).json()["users"]
    admin_id = next(user["id"] for user in users if user["username"] == ADMIN[0])
    for change in ({"disabled": True}, {"roles": ["operator"]}):
        refused = await iam.patch(f"/api/v1/users/{admin_id}", json=change, headers=ADMIN_HEADERS)
        assert refused.status_code == 409, refused.text
    assert (await iam.delete(f"/api/v1/users/{admin_id}", headers=ADMIN_HEADERS)).status_code == 409
    other_id, _, _ = await new_user(iam, ["admin"])
    demoted = await iam.patch(
        f"/api/v1/users/{admin_id}", json={"roles": ["viewer"]}, headers=ADMIN_HEADERS
    )
    assert demoted.status_code == 200
    assert (await iam.delete(f"/api/v1/users/{other_id}", headers=ADMIN_HEADERS)).status_code == 409


async def test_a_reset_password_must_be_changed_at_the_next_login(iam: httpx.AsyncClient) -> None:
    user_id, username, _ = await new_user(iam, ["viewer"])
    reset = await iam.patch(
        f"/api/v1/users/{user_id}", json={"password": "temporary-1"}, headers=ADMIN_HEADERS
    )
    assert reset.json()["must_change_password"] is True
    refused = await login(iam, username, "temporary-1")
    assert problem_type(refused) == "password-change-required"
    changed = await iam.post(
        "/api/v1/auth/password",
        json={
            "username": username,
            "current_password": "temporary-1",
            "new_password": "mine-12345",
        },
    )
    assert changed.status_code == 200


# --- the gateway's per-address limit ------------------------------------------------


def test_the_gateway_limits_logins_per_client_address(
    postgres_server: PostgresServer, echo_upstream: int, tmp_path: Path
) -> None:
    def guess() -> dict[str, str]:
        # A new name each time, so IAM's own lockout (per name) never answers.
        return {"username": f"nobody-{secrets.token_hex(4)}", "password": "x"}

    with running_gateway(
        postgres_server, echo_upstream, tmp_path, login_rate_limit_per_min=3
    ) as gateway:
        with gateway.client() as client:
            answers = [client.post("/api/v1/auth/login", json=guess()) for _ in range(5)]
            changes = [
                client.post(
                    "/api/v1/auth/password",
                    json={**guess(), "current_password": "x", "new_password": "y" * 8},
                )
                for _ in range(4)
            ]
            health = client.get("/health/iam")
        assert [answer.status_code for answer in answers] == [401, 401, 401, 429, 429]
        assert answers[3].json()["type"] == "about:blank"  # the gateway's, not IAM's lockout
        assert [change.status_code for change in changes] == [401, 401, 401, 429]
        assert changes[3].headers["content-type"] == "application/problem+json"
        assert health.status_code == 200  # other routes are not limited
        # Another client address has its own allowance.
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=gateway.url, trust_env=False, transport=transport) as other:
            assert other.post("/api/v1/auth/login", json=guess()).status_code == 401


async def every_page(
    client: httpx.AsyncClient, path: str, member: str, page_size: int
) -> tuple[list[dict[str, object]], int]:
    """Every item of a list read page by page, and the number of pages."""
    items: list[dict[str, object]] = []
    token, pages = None, 0
    while True:
        params: dict[str, str | int] = {"page_size": page_size}
        if token:
            params["page_token"] = token
        response = await client.get(path, params=params, headers=ADMIN_HEADERS)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body[member]) <= page_size
        items, token, pages = items + body[member], body["next_page_token"], pages + 1
        if not token:
            return items, pages


async def test_users_keys_tenants_and_secrets_are_listed_page_by_page(
    iam: httpx.AsyncClient,
) -> None:
    names = [(await new_user(iam, ["viewer"]))[1] for _ in range(4)]
    users, pages = await every_page(iam, "/api/v1/users", "users", 2)
    assert [user["username"] for user in users] == [ADMIN[0], *names]  # oldest first
    assert pages == 3
    for number in range(3):
        created = await iam.post(
            "/api/v1/api-keys",
            json={"name": f"k{number}", "roles": ["viewer"]},
            headers=ADMIN_HEADERS,
        )
        assert created.status_code == 201, created.text
    keys, pages = await every_page(iam, "/api/v1/api-keys", "api_keys", 2)
    assert [(key["name"], key["key"]) for key in keys] == [("k0", None), ("k1", None), ("k2", None)]
    assert pages == 2
    for tenant in ("tenant-b", "tenant-a"):
        body = {"name": tenant, "admin_username": "root", "admin_password": "a-long-password"}
        assert (
            await iam.post("/api/v1/tenants", json=body, headers=ADMIN_HEADERS)
        ).status_code == 201
    tenants, pages = await every_page(iam, "/api/v1/tenants", "tenants", 1)
    assert [tenant["name"] for tenant in tenants] == ["default", "tenant-a", "tenant-b"]
    assert pages == 3
    for name in ("C", "A", "B"):
        stored = await iam.put(
            f"/api/v1/secrets/{name}", json={"value": "v"}, headers=ADMIN_HEADERS
        )
        assert stored.status_code == 200, stored.text
    secrets_, pages = await every_page(iam, "/api/v1/secrets", "secrets", 3)
    assert [secret["name"] for secret in secrets_] == ["A", "B", "C"]
    assert pages == 1


async def test_a_bad_page_token_or_size_is_a_problem_not_a_500(iam: httpx.AsyncClient) -> None:
    await new_user(iam, ["viewer"])
    first = (await iam.get("/api/v1/users?page_size=1", headers=ADMIN_HEADERS)).json()
    token = first["next_page_token"]
    refused = {
        "garbage": await iam.get("/api/v1/users?page_token=not-a-token", headers=ADMIN_HEADERS),
        "another list's": await iam.get(
            "/api/v1/api-keys", params={"page_token": token}, headers=ADMIN_HEADERS
        ),
        "size 0": await iam.get("/api/v1/secrets?page_size=0", headers=ADMIN_HEADERS),
        "size 501": await iam.get("/api/v1/tenants?page_size=501", headers=ADMIN_HEADERS),
    }
    assert {why: r.status_code for why, r in refused.items()} == {
        "garbage": 400,
        "another list's": 400,
        "size 0": 422,
        "size 501": 422,
    }
    assert all(r.headers["content-type"] == "application/problem+json" for r in refused.values())
    assert refused["another list's"].json()["type"].endswith("invalid-page-token")
