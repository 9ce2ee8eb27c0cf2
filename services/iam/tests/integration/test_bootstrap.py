"""The bootstrap admin: created once from the environment, never logged."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from interlock.common.testing import TEST_IDENTITY, app_client, identity_headers
from interlock.devstack import PostgresDatabase
from interlock.iam import IamSettings, create_app

from .conftest import ADMIN, KEY_ENCRYPTION_KEYS, Gateway

pytestmark = pytest.mark.integration


async def test_bootstrap_admin_is_created_once(postgres_database: PostgresDatabase) -> None:
    settings = IamSettings(
        postgres_dsn=postgres_database.dsn,
        postgres_password=postgres_database.password,
        grpc_port=0,
        authz_port=0,
        bootstrap_admin_username="root",
        bootstrap_admin_password=SecretStr("first-password"),
        bootstrap_admin_tenant="ops",
        bootstrap_admin_must_change_password=False,
        key_encryption_keys=SecretStr(KEY_ENCRYPTION_KEYS),
        identity_jwks=TEST_IDENTITY.jwks,
    )
    for password in ("first-password", "second-password"):
        changed = settings.model_copy(update={"bootstrap_admin_password": SecretStr(password)})
        async with app_client(create_app(changed)) as client:
            login = await client.post(
                "/api/v1/auth/login",
                json={"username": "root", "password": "first-password", "tenant": "ops"},
            )
            assert login.status_code == 200, login.text
            headers = identity_headers("ops", subject="p", roles=["admin"])
            users = (await client.get("/api/v1/users", headers=headers)).json()["users"]
    assert [(user["username"], user["roles"]) for user in users] == [("root", ["admin"])]


async def test_without_gateway_headers_protected_routes_are_401(
    postgres_database: PostgresDatabase,
) -> None:
    settings = IamSettings(
        postgres_dsn=postgres_database.dsn,
        postgres_password=postgres_database.password,
        grpc_port=0,
        authz_port=0,
        key_encryption_keys=SecretStr(KEY_ENCRYPTION_KEYS),
        identity_jwks=TEST_IDENTITY.jwks,
    )
    async with app_client(create_app(settings)) as client:
        response = await client.get("/api/v1/users")
        viewer = await client.get(
            "/api/v1/users", headers=identity_headers("default", subject="p", roles=["viewer"])
        )
    assert response.status_code == 401
    assert viewer.status_code == 403
    assert viewer.headers["content-type"] == "application/problem+json"


def test_secrets_never_reach_the_log(gateway: Gateway) -> None:
    gateway.login(*ADMIN)  # something to log about
    log = gateway.iam_log.read_text()
    assert "bootstrap admin created" in log
    assert ADMIN[1] not in log
    assert "PRIVATE KEY" not in log
