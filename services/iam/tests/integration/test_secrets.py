"""Tenant secrets in IAM: write-only over REST, sealed at rest, read only by a service
credential over gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import grpc
import httpx
import pytest
from pydantic import SecretStr

from interlock.common.service_credentials import credential_metadata
from interlock.common.testing import TEST_IDENTITY, app_client, identity_headers
from interlock.devstack import PostgresDatabase
from interlock.devstack._process import free_ports
from interlock.iam import IamSettings, create_app
from interlock.iam.domain import new_key_encryption_key
from interlock.secrets.v1 import secrets_pb2, secrets_pb2_grpc

pytestmark = pytest.mark.integration

VALUE = "postgres://app:hunter2-very-secret@db/app"
CREDENTIAL = SecretStr("worker-credential")


def headers(roles: str, tenant: str = "default") -> dict[str, str]:
    return identity_headers(tenant, subject=f"someone-{roles}", roles=roles.split(","))


def settings_for(database: PostgresDatabase, grpc_port: int, **changes: object) -> IamSettings:
    base = IamSettings(
        postgres_dsn=database.dsn,
        postgres_password=database.password,
        grpc_port=grpc_port,
        authz_port=0,
        key_encryption_keys=SecretStr(new_key_encryption_key()),
        service_credentials=CREDENTIAL,
        identity_jwks=TEST_IDENTITY.jwks,
    )
    return base.model_copy(update=changes)


@pytest.fixture
async def iam(postgres_database: PostgresDatabase) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    (grpc_port,) = free_ports(1)
    async with app_client(create_app(settings_for(postgres_database, grpc_port))) as client:
        yield client, f"127.0.0.1:{grpc_port}"


async def resolve(
    target: str, tenant: str, names: list[str], *, credential: SecretStr | None = CREDENTIAL
) -> dict[str, str]:
    async with grpc.aio.insecure_channel(target) as channel:
        response = await secrets_pb2_grpc.SecretResolutionStub(channel).ResolveSecrets(
            secrets_pb2.ResolveSecretsRequest(
                tenant=tenant, names=names, run_id="r1", task_id="t1", attempt=1
            ),
            metadata=credential_metadata(credential) if credential else None,
            timeout=10,
        )
    return dict(response.values)


async def test_secrets_are_write_only_and_listed_by_name(
    iam: tuple[httpx.AsyncClient, str], postgres_database: PostgresDatabase
) -> None:
    client, _ = iam
    put = await client.put(
        "/api/v1/secrets/DB_URL", json={"value": VALUE}, headers=headers("operator")
    )
    assert put.status_code == 200, put.text
    assert VALUE not in put.text
    listed = await client.get("/api/v1/secrets", headers=headers("developer"))
    assert [secret["name"] for secret in listed.json()["secrets"]] == ["DB_URL"]
    assert VALUE not in listed.text
    assert listed.json()["secrets"][0]["updated_by"] == "someone-operator"
    # At rest the value is sealed: nothing of it is in the row.
    conn = await asyncpg.connect(postgres_database.dsn, password=postgres_database.password)
    try:
        row = await conn.fetchrow("SELECT * FROM tenant_secrets")
    finally:
        await conn.close()
    assert "hunter2" not in repr(dict(row))
    deleted = await client.delete("/api/v1/secrets/DB_URL", headers=headers("operator"))
    assert deleted.status_code == 204
    gone = await client.delete("/api/v1/secrets/DB_URL", headers=headers("operator"))
    assert gone.status_code == 404


async def test_who_may_manage_secrets(iam: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = iam
    assert (await client.get("/api/v1/secrets", headers=headers("viewer"))).status_code == 403
    for roles in ("viewer", "developer"):
        put = await client.put("/api/v1/secrets/X", json={"value": "v"}, headers=headers(roles))
        assert put.status_code == 403
        delete = await client.delete("/api/v1/secrets/X", headers=headers(roles))
        assert delete.status_code == 403


async def test_bad_names_and_sizes_are_refused(iam: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = iam
    for name in ("1ABC", "a-b", "x" * 65):
        put = await client.put(
            f"/api/v1/secrets/{name}", json={"value": "v"}, headers=headers("admin")
        )
        assert put.status_code == 400, name
    big = await client.put(
        "/api/v1/secrets/BIG", json={"value": "x" * 70_000}, headers=headers("admin")
    )
    assert big.status_code == 413


async def test_workers_read_values_with_a_service_credential_in_the_tenant_only(
    iam: tuple[httpx.AsyncClient, str],
) -> None:
    client, target = iam
    await client.put("/api/v1/secrets/DB_URL", json={"value": VALUE}, headers=headers("admin"))
    assert await resolve(target, "default", ["DB_URL"]) == {"DB_URL": VALUE}
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await resolve(target, "default", ["DB_URL"], credential=None)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as forged:
        await resolve(target, "default", ["DB_URL"], credential=SecretStr("guess"))
    assert forged.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as other_tenant:
        await resolve(target, "acme", ["DB_URL"])
    assert other_tenant.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await resolve(target, "default", ["DB_URL", "NOPE"])
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert "NOPE" in (missing.value.details() or "")
