"""``interlock.auth.v1.TokenValidation`` through the shared client, against the real IAM."""

from __future__ import annotations

import time

import grpc
import pytest

from interlock.auth.v1 import auth_pb2, auth_pb2_grpc
from interlock.common.auth_client import InvalidToken, TokenValidationClient

from .conftest import Gateway, bearer

pytestmark = pytest.mark.integration


async def test_validate_returns_the_principal(gateway: Gateway) -> None:
    username, password = gateway.create_user(["operator"])
    token = gateway.login(username, password)["access_token"]
    async with TokenValidationClient(gateway.iam_grpc) as iam:
        await iam.check()
        principal = await iam.validate(token)
    assert principal.kind == "user"
    assert principal.tenant == "default"
    assert principal.roles == {"operator"}
    assert principal.expires_at is not None
    assert 0 < principal.expires_at.timestamp() - time.time() <= 900


async def test_validate_api_key(gateway: Gateway) -> None:
    with gateway.client() as client:
        created = client.post(
            "/api/v1/api-keys",
            json={"name": "svc", "roles": ["viewer"], "expires_in_s": 3600},
            headers=bearer(gateway.admin_token()),
        ).json()
    async with TokenValidationClient(gateway.iam_grpc) as iam:
        principal = await iam.validate(created["key"])
    assert (principal.subject, principal.kind, principal.roles) == (
        created["id"],
        "api_key",
        {"viewer"},
    )
    assert principal.expires_at is not None


async def test_bad_tokens_raise_invalid_token(gateway: Gateway) -> None:
    async with TokenValidationClient(gateway.iam_grpc) as iam:
        for token in ("", "not-a-token", "ilk_nope"):
            with pytest.raises(InvalidToken):
                await iam.validate(token)


async def test_statuses_are_proper_grpc_codes(gateway: Gateway) -> None:
    async with grpc.aio.insecure_channel(gateway.iam_grpc) as channel:
        stub = auth_pb2_grpc.TokenValidationStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as empty:
            await stub.ValidateToken(auth_pb2.ValidateTokenRequest(token=""))
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.ValidateToken(auth_pb2.ValidateTokenRequest(token="x.y.z"))
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.value.code() == grpc.StatusCode.UNAUTHENTICATED
