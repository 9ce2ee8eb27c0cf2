"""IAM with two authorizer processes sharing the authorizer port behind the gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from interlock.devstack import PostgresServer
from interlock.devstack._process import port_is_free

from .conftest import ADMIN, Gateway, bearer, running_gateway

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shared_gateway(
    postgres_server: PostgresServer,
    echo_upstream: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    with running_gateway(
        postgres_server,
        echo_upstream,
        tmp_path_factory.mktemp("iam-processes"),
        {"INTERLOCK_AUTHORIZER_PROCESSES": "2"},
    ) as running:
        yield running
    assert port_is_free(running.iam_authz_port), "an authorizer process outlived IAM"


def _eventually_status(client: httpx.Client, token: str, status: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        statuses = {
            client.get("/api/v1/runs", headers=bearer(token)).status_code for _ in range(20)
        }
        if statuses == {status}:
            return
        assert time.monotonic() < deadline, statuses
        time.sleep(0.05)


def test_every_process_is_ready_and_authorizes(shared_gateway: Gateway) -> None:
    ready = httpx.get(f"{shared_gateway.iam_url}/readyz", trust_env=False)
    assert ready.json()["checks"]["authorizer-processes"] == "ok"
    token = shared_gateway.admin_token()
    with shared_gateway.client() as client:
        statuses = {
            client.get("/api/v1/runs", headers=bearer(token)).status_code for _ in range(100)
        }
        assert statuses == {200}
        assert client.get("/api/v1/runs", headers=bearer("garbage")).status_code == 401


def test_revocations_reach_every_process(shared_gateway: Gateway) -> None:
    tokens = shared_gateway.login(*ADMIN)
    with shared_gateway.client() as client:
        _eventually_status(client, tokens["access_token"], 200)
        logout = client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
        assert logout.status_code == 204
        _eventually_status(client, tokens["access_token"], 401)


def test_processes_follow_key_rotation(shared_gateway: Gateway) -> None:
    admin = bearer(shared_gateway.admin_token())
    with shared_gateway.client() as client:
        assert client.post("/api/v1/signing-keys/rotate", headers=admin).status_code == 201
        fresh = shared_gateway.admin_token()
        _eventually_status(client, fresh, 200)
