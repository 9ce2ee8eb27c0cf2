"""Envoy's ext_authz ``Check`` on IAM's gRPC server: a real server, a stand-in authorizer.

Also pins our subset of Envoy's protos to upstream's wire format: field numbers from
envoyproxy/envoy's api/ tree (see the comments in proto/interlock/envoy/).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from concurrent import futures

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import code_pb2  # type: ignore[import-untyped]

from interlock.envoy.config.core.v3 import base_pb2
from interlock.envoy.service.auth.v3 import (
    attribute_context_pb2,
    external_auth_pb2,
    external_auth_pb2_grpc,
)
from interlock.envoy.type.v3 import http_status_pb2
from interlock.iam.authorizer import Authorizer
from interlock.iam.domain import AuthPrincipal, PrincipalKind
from interlock.iam.errors import Unauthenticated
from interlock.iam.grpc import AuthorizationService

VIEWER = AuthPrincipal(
    subject="u1", kind=PrincipalKind.USER, tenant="acme", roles=("viewer",), expires_at=None
)
INJECTOR = AuthPrincipal(
    subject="u2",
    kind=PrincipalKind.USER,
    tenant="acme\r\nx-interlock-roles: admin",
    roles=("viewer",),
    expires_at=None,
)
OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def _identity_token(principal: AuthPrincipal) -> str:
    """A stand-in for the signed token: who, tenant and roles in plain text."""
    return f"{principal.subject};{principal.tenant};{principal.roles_header}"


def _remembered(token: str) -> AuthPrincipal | None:
    if token == "revoked":
        raise Unauthenticated("This token has been revoked.")
    return {"known": VIEWER, "known-injector": INJECTOR}.get(token)


async def _validate(token: str) -> AuthPrincipal:
    if token == "new":
        return VIEWER
    if token == "injector":
        return INJECTOR
    if token == "broken":
        raise ConnectionError("database unreachable")
    raise Unauthenticated("bad token")


@pytest.fixture
async def authz() -> AsyncIterator[external_auth_pb2_grpc.AuthorizationAsyncStub]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    service = AuthorizationService(
        Authorizer(_remembered, _validate, _identity_token), asyncio.get_running_loop()
    )
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        # An asyncio channel: lookups run on this test's loop, which must stay free.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield external_auth_pb2_grpc.AuthorizationStub(channel)
    finally:
        server.stop(grace=None)


def _check(method: str, path: str, token: str | None = None) -> external_auth_pb2.CheckRequest:
    headers = {":authority": "gateway", "x-request-id": "r1"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    http = attribute_context_pb2.AttributeContext.HttpRequest(
        method=method, path=path, headers=headers
    )
    return external_auth_pb2.CheckRequest(
        attributes=attribute_context_pb2.AttributeContext(
            request=attribute_context_pb2.AttributeContext.Request(http=http)
        )
    )


def _headers(options: list[base_pb2.HeaderValueOption]) -> dict[str, str]:
    assert all(option.append_action == OVERWRITE for option in options)
    return {option.header.key: option.header.value for option in options}


@pytest.mark.parametrize("token", ["known", "new"])
async def test_allowed_requests_get_the_identity_headers(
    authz: external_auth_pb2_grpc.AuthorizationAsyncStub, token: str
) -> None:
    response = await authz.Check(_check("GET", "/api/v1/runs?limit=5", token))
    assert response.status.code == code_pb2.OK
    assert response.WhichOneof("http_response") == "ok_response"
    assert _headers(list(response.ok_response.headers)) == {
        "x-interlock-identity": "u1;acme;viewer",
    }


@pytest.mark.parametrize("token", [None, "revoked", "unknown"])
async def test_unauthenticated_requests_are_denied_401_with_a_problem(
    authz: external_auth_pb2_grpc.AuthorizationAsyncStub, token: str | None
) -> None:
    response = await authz.Check(_check("GET", "/api/v1/runs", token))
    assert response.status.code == code_pb2.UNAUTHENTICATED
    denied = response.denied_response
    assert denied.status.code == http_status_pb2.Unauthorized
    headers = _headers(list(denied.headers))
    assert headers["content-type"] == "application/problem+json"
    assert headers["www-authenticate"].startswith("Bearer")
    problem = json.loads(denied.body)
    assert (problem["status"], problem["instance"]) == (401, "/api/v1/runs")


async def test_roles_below_the_route_are_denied_403(
    authz: external_auth_pb2_grpc.AuthorizationAsyncStub,
) -> None:
    response = await authz.Check(_check("POST", "/api/v1/workflows/etl/runs", "known"))
    assert response.status.code == code_pb2.PERMISSION_DENIED
    assert response.denied_response.status.code == http_status_pb2.Forbidden
    assert "www-authenticate" not in _headers(list(response.denied_response.headers))
    assert json.loads(response.denied_response.body)["status"] == 403


async def test_a_failing_lookup_is_an_error_so_the_gateway_fails_closed(
    authz: external_auth_pb2_grpc.AuthorizationAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await authz.Check(_check("GET", "/api/v1/runs", "broken"))
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    still = await authz.Check(_check("GET", "/api/v1/runs", "known"))
    assert still.status.code == code_pb2.OK


@pytest.mark.parametrize("token", ["injector", "known-injector"])
async def test_identity_values_that_cannot_be_headers_fail_closed(
    authz: external_auth_pb2_grpc.AuthorizationAsyncStub, token: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await authz.Check(_check("GET", "/api/v1/runs", token))
    assert raised.value.code() == grpc.StatusCode.INTERNAL


def test_messages_round_trip_on_the_wire() -> None:
    request = _check("GET", "/api/v1/runs", "known")
    assert external_auth_pb2.CheckRequest.FromString(request.SerializeToString()) == request
    response = external_auth_pb2.CheckResponse(
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=http_status_pb2.Forbidden),
            headers=[
                base_pb2.HeaderValueOption(
                    header=base_pb2.HeaderValue(key="content-type", value="x"),
                    append_action=OVERWRITE,
                )
            ],
            body="{}",
        )
    )
    parsed = external_auth_pb2.CheckResponse.FromString(response.SerializeToString())
    assert parsed == response and parsed.denied_response.status.code == 403


UPSTREAM_FIELD_NUMBERS: list[tuple[type[Message], dict[str, int]]] = [
    (external_auth_pb2.CheckRequest, {"attributes": 1}),
    (external_auth_pb2.CheckResponse, {"status": 1, "denied_response": 2, "ok_response": 3}),
    (external_auth_pb2.DeniedHttpResponse, {"status": 1, "headers": 2, "body": 3}),
    (
        external_auth_pb2.OkHttpResponse,
        {"headers": 2, "headers_to_remove": 5, "response_headers_to_add": 6},
    ),
    (attribute_context_pb2.AttributeContext, {"request": 4, "context_extensions": 10}),
    (attribute_context_pb2.AttributeContext.Request, {"http": 2}),
    (
        attribute_context_pb2.AttributeContext.HttpRequest,
        {"id": 1, "method": 2, "headers": 3, "path": 4, "host": 5, "scheme": 6, "protocol": 10},
    ),
    (base_pb2.HeaderValue, {"key": 1, "value": 2}),
    (
        base_pb2.HeaderValueOption,
        {"header": 1, "append": 2, "append_action": 3, "keep_empty_value": 4},
    ),
    (http_status_pb2.HttpStatus, {"code": 1}),
]


@pytest.mark.parametrize(("message", "numbers"), UPSTREAM_FIELD_NUMBERS)
def test_names_and_field_numbers_are_upstream_envoys(
    message: type[Message], numbers: dict[str, int]
) -> None:
    descriptor = message.DESCRIPTOR
    assert descriptor.full_name.startswith(
        ("envoy.service.auth.v3.", "envoy.config.core.v3.", "envoy.type.v3.")
    )
    assert {name: descriptor.fields_by_name[name].number for name in numbers} == numbers


def test_the_service_has_envoys_method_path() -> None:
    service = external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"]
    assert service.full_name == "envoy.service.auth.v3.Authorization"
    assert service.methods_by_name["Check"].input_type.full_name == (
        "envoy.service.auth.v3.CheckRequest"
    )
