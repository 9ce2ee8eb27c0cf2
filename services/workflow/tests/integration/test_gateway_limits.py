"""Through the real gateway: hostile requests get a fast 4xx problem, never a hang or 500.

Envoy, IAM's ext_authz and this service as processes (the stack of
:mod:`.test_gateway_rbac`).
"""

from __future__ import annotations

import pytest

from .test_gateway_rbac import ADMIN, Stack, stack  # noqa: F401 - the fixture, shared

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
TWO_MB = 2 * 1024 * 1024


@pytest.mark.timeout(120)  # a hang guard: these waited for the 300 s idle timeout
@pytest.mark.parametrize("path", ["/api/v1/workflows", "/api/v1/workflows/x/runs", "/api/v1/users"])
def test_a_body_over_the_limit_on_an_authorized_route_is_a_413(stack: Stack, path: str) -> None:  # noqa: F811
    with stack.client(stack.token(*ADMIN)) as client:
        client.timeout = 20  # well under the gateway's idle timeout
        for content_type in ("application/json", "application/yaml"):
            response = client.post(
                path, content=b" " * TWO_MB, headers={"content-type": content_type}
            )
            assert response.status_code == 413, response.text
            assert response.headers["content-type"] == PROBLEM
        # The connection still serves the next request.
        assert client.get("/api/v1/workflows").status_code == 200


@pytest.mark.timeout(120)
def test_a_body_over_the_limit_without_a_token_is_a_413_or_401(stack: Stack) -> None:  # noqa: F811
    with stack.client() as client:
        client.timeout = 20
        response = client.post("/api/v1/workflows", content=b" " * TWO_MB)
        assert response.status_code in (401, 413), response.text
        assert response.headers["content-type"] == PROBLEM


def test_nul_in_a_login_username_is_400_and_keeps_the_connection(stack: Stack) -> None:  # noqa: F811
    with stack.client() as client:
        for _ in range(10):
            response = client.post(
                "/api/v1/auth/login", json={"username": "ad\u0000min", "password": "x" * 12}
            )
            assert response.status_code == 400, response.text
            assert response.headers["content-type"] == PROBLEM
            assert client.get("/health/iam").status_code == 200


def test_nul_in_an_api_key_name_is_400(stack: Stack) -> None:  # noqa: F811
    with stack.client(stack.token(*ADMIN)) as client:
        response = client.post("/api/v1/api-keys", json={"name": "k\u0000", "roles": ["viewer"]})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
