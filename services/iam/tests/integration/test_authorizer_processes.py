"""IAM with two authorizer processes sharing the authorizer ports behind the gateway.

Each test runs in both authorizer modes: gRPC Check (the default) and HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from interlock.devstack import PostgresServer
from interlock.devstack._process import port_is_free
from interlock.devstack._stack import AUTHZ_MODES

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
    grpc_port = int(running.iam_grpc.rsplit(":", 1)[1])
    assert port_is_free(running.iam_authz_port), "an authorizer process outlived IAM"
    assert port_is_free(grpc_port), "an authorizer process outlived IAM"


@pytest.fixture(params=AUTHZ_MODES)
def shared(shared_gateway: Gateway, request: pytest.FixtureRequest) -> Gateway:
    return shared_gateway.via(request.param)


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


def test_every_process_is_ready_and_authorizes(shared: Gateway) -> None:
    ready = httpx.get(f"{shared.iam_url}/readyz", trust_env=False)
    assert ready.json()["checks"]["authorizer-processes"] == "ok"
    token = shared.admin_token()
    with shared.client() as client:
        statuses = {
            client.get("/api/v1/runs", headers=bearer(token)).status_code for _ in range(100)
        }
        assert statuses == {200}
        assert client.get("/api/v1/runs", headers=bearer("garbage")).status_code == 401


def test_revocations_reach_every_process(shared: Gateway) -> None:
    tokens = shared.login(*ADMIN)
    with shared.client() as client:
        _eventually_status(client, tokens["access_token"], 200)
        logout = client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
        assert logout.status_code == 204
        _eventually_status(client, tokens["access_token"], 401)


def test_processes_follow_key_rotation(shared: Gateway) -> None:
    admin = bearer(shared.admin_token())
    with shared.client() as client:
        assert client.post("/api/v1/signing-keys/rotate", headers=admin).status_code == 201
        fresh = shared.admin_token()
        _eventually_status(client, fresh, 200)
