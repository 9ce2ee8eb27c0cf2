"""The authorizer's HTTP listener on the wire: a real socket, a stand-in for credentials."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from interlock.iam.authorizer import Authorizer
from interlock.iam.authz_server import AuthzServer
from interlock.iam.domain import AuthPrincipal, PrincipalKind
from interlock.iam.errors import Unauthenticated
from interlock.iam.settings import IamSettings

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


def _identity_token(principal: AuthPrincipal) -> str:
    """A stand-in for the signed token: who, tenant and roles in plain text."""
    return f"{principal.subject};{principal.tenant};{principal.roles_header}"


def _remembered(token: str) -> AuthPrincipal | None:
    return {"known": VIEWER, "known-injector": INJECTOR}.get(token)


async def _validate(token: str) -> AuthPrincipal:
    if token == "slow":
        await asyncio.sleep(0.05)  # answered after the requests behind it arrived
        return VIEWER
    if token == "injector":
        return INJECTOR
    if token == "broken":
        raise ConnectionError("database unreachable")
    raise Unauthenticated("bad token")


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server = AuthzServer(
        Authorizer(_remembered, _validate, _identity_token), IamSettings(authz_port=0)
    )
    async with server:
        assert server.port is not None
        yield server.port


def _request(method: str, path: str, token: str | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: iam"]
    if token is not None:
        lines.append(f"authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _exchange(port: int, *requests: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Send ``requests`` at once on one connection; the answers in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"".join(requests))
        answers = []
        for request in requests:
            head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
            headers = dict(line.split(": ", 1) for line in head[1:] if line)
            length = int(headers["content-length"])
            body = b"" if request.startswith(b"HEAD") else await reader.readexactly(length)
            answers.append((int(head[0].split()[1]), headers, body))
        return answers
    finally:
        writer.close()


async def test_allowed_requests_get_the_identity_headers(port: int) -> None:
    [(status, headers, body)] = await _exchange(port, _request("GET", "/api/v1/runs", "known"))
    assert status == 200 and body == b""
    assert headers["x-interlock-identity"] == "u1;acme;viewer"


async def test_denials_carry_a_problem_document(port: int) -> None:
    [(status, headers, body)] = await _exchange(port, _request("GET", "/api/v1/runs", "bad"))
    assert status == 401
    assert headers["content-type"] == "application/problem+json"
    assert headers["www-authenticate"].startswith("Bearer")
    assert b'"status": 401' in body
    [(status, headers, _)] = await _exchange(port, _request("DELETE", "/api/v1/runs/r1", "known"))
    assert status == 404 and "www-authenticate" not in headers


async def test_answers_to_head_have_no_body(port: int) -> None:
    answers = await _exchange(
        port, _request("HEAD", "/api/v1/runs"), _request("GET", "/api/v1/runs", "known")
    )
    assert [status for status, _, _ in answers] == [401, 200]


async def test_answers_keep_the_order_of_requests_behind_a_lookup(port: int) -> None:
    answers = await _exchange(
        port,
        _request("GET", "/api/v1/runs", "slow"),
        _request("GET", "/api/v1/runs", "bad"),
        _request("GET", "/api/v1/runs", "known"),
    )
    assert [status for status, _, _ in answers] == [200, 401, 200]


async def test_a_failing_lookup_is_a_5xx_so_the_gateway_fails_closed(port: int) -> None:
    answers = await _exchange(
        port,
        _request("GET", "/api/v1/runs", "broken"),
        _request("GET", "/api/v1/runs", "known"),
    )
    assert [status for status, _, _ in answers] == [500, 200]


@pytest.mark.parametrize("token", ["injector", "known-injector"])
async def test_identity_values_cannot_inject_headers(port: int, token: str) -> None:
    answers = await _exchange(
        port, _request("GET", "/api/v1/runs", token), _request("GET", "/api/v1/runs", "known")
    )
    assert [status for status, _, _ in answers] == [500, 200]
    assert "x-interlock-roles" not in answers[0][1]


async def test_malformed_requests_are_400_and_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")


async def test_overlong_urls_are_refused_and_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_request("GET", "/api/v1/runs/" + "x" * 70_000, "known"))
    try:
        answer = await reader.read()
    except ConnectionResetError:  # closed with the rest of the URL unread: a reset
        answer = b""
    writer.close()
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400 ")
