"""Through the real gateway: Envoy, IAM's ext_authz and this service as processes.

Roles come from IAM's permission table: viewers read, developers define workflows and
start runs, operators control runs. The service sees only what the gateway vouches for.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from interlock.common.testing import TEST_IDENTITY
from interlock.devstack._envoy import IAM_AUTHZ, IAM_GRPC, render_envoy_config
from interlock.devstack._probes import http_probe
from interlock.devstack._process import free_ports
from interlock.devstack._runner import start_server
from interlock.devstack._servers import ServerSpec, gateway_spec
from interlock.devstack._stack import SERVICES
from interlock.iam.domain import new_key_encryption_key

pytestmark = pytest.mark.integration

ADMIN = ("admin", "bootstrap-secret-password")
DEFINITION = {"name": "rbac", "tasks": [{"id": "a", "type": "noop"}]}


@dataclass(frozen=True)
class Stack:
    url: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, trust_env=False, timeout=30)

    def token(self, username: str, password: str) -> str:
        with self.client() as client:
            response = client.post(
                "/api/v1/auth/login", json={"username": username, "password": password}
            )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def user_token(self, role: str) -> str:
        username, password = f"{role}-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
        with self.client(self.token(*ADMIN)) as client:
            response = client.post(
                "/api/v1/users",
                json={"username": username, "password": password, "roles": [role]},
            )
        assert response.status_code == 201, response.text
        return self.token(username, password)


def _service(name: str, argv_module: str, port: int, env: dict[str, str], base: Path) -> Any:
    return start_server(
        ServerSpec(
            name=name,
            argv=(sys.executable, "-m", argv_module),
            probe=http_probe(f"http://127.0.0.1:{port}/readyz"),
            ports={f"{name}-http": port},
            env={"INTERLOCK_HTTP_PORT": str(port), "INTERLOCK_LOG_FORMAT": "text", **env},
        ),
        log_path=base / f"{name}.log",
    )


@pytest.fixture(scope="module")
def stack(
    postgres_server: Any, kafka_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("workflow-gateway")
    iam_db, workflow_db = (f"{name}_{secrets.token_hex(6)}" for name in ("iam", "workflow"))
    iam_http, iam_grpc, iam_authz, workflow_http, listener, admin = free_ports(6)
    iam = _service(
        "iam",
        "interlock.iam",
        iam_http,
        {
            "INTERLOCK_GRPC_PORT": str(iam_grpc),
            "INTERLOCK_AUTHZ_PORT": str(iam_authz),
            "INTERLOCK_POSTGRES_DSN": postgres_server.create_database(iam_db),
            "INTERLOCK_POSTGRES_PASSWORD": postgres_server.password,
            "INTERLOCK_BOOTSTRAP_ADMIN_USERNAME": ADMIN[0],
            "INTERLOCK_BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
            "INTERLOCK_BOOTSTRAP_ADMIN_TENANT": "default",
            "INTERLOCK_BOOTSTRAP_ADMIN_MUST_CHANGE_PASSWORD": "false",
            "INTERLOCK_KEY_ENCRYPTION_KEYS": new_key_encryption_key(),
        },
        base,
    )
    try:
        workflow = _service(
            "workflow",
            "interlock.workflow",
            workflow_http,
            {
                "INTERLOCK_POSTGRES_DSN": postgres_server.create_database(workflow_db),
                "INTERLOCK_POSTGRES_PASSWORD": postgres_server.password,
                "INTERLOCK_KAFKA_BOOTSTRAP_SERVERS": kafka_server.bootstrap_servers,
                "INTERLOCK_KAFKA_TOPIC_PREFIX": f"gw{secrets.token_hex(4)}.",
                # The service fetches IAM's public keys to verify identity tokens.
                "INTERLOCK_IAM_JWKS_URL": f"http://127.0.0.1:{iam_http}/.well-known/jwks.json",
            },
            base,
        )
        try:
            upstreams = {s.name: ("127.0.0.1", workflow_http) for s in SERVICES}
            upstreams["iam"] = ("127.0.0.1", iam_http)
            upstreams[IAM_GRPC] = ("127.0.0.1", iam_grpc)
            upstreams[IAM_AUTHZ] = ("127.0.0.1", iam_authz)
            config = base / "envoy.yaml"
            config.write_text(
                render_envoy_config(
                    upstreams=upstreams,
                    listener=("127.0.0.1", listener),
                    admin=("127.0.0.1", admin),
                )
            )
            envoy = start_server(
                gateway_spec(config, listener_port=listener, admin_port=admin),
                log_path=base / "gateway.log",
            )
            try:
                yield Stack(url=f"http://127.0.0.1:{listener}")
            finally:
                envoy.stop()
        finally:
            workflow.stop()
    finally:
        iam.stop()
        postgres_server.drop_database(iam_db)
        postgres_server.drop_database(workflow_db)


def test_roles_decide_who_defines_starts_and_controls(stack: Stack) -> None:
    viewer, developer, operator = (stack.user_token(r) for r in ("viewer", "developer", "operator"))
    with stack.client() as anonymous:
        assert anonymous.get("/api/v1/workflows").status_code == 401
    with stack.client(viewer) as client:
        assert client.get("/api/v1/workflows").status_code == 200
        assert client.get("/api/v1/workflows/schema").status_code == 200
        assert client.post("/api/v1/workflows", json=DEFINITION).status_code == 403
    with stack.client(developer) as client:
        created = client.post("/api/v1/workflows", json=DEFINITION)
        assert created.status_code == 201, created.text
        started = client.post(
            "/api/v1/workflows/rbac/runs",
            json={"input": {}},
            headers={
                "idempotency-key": "gw-1",
                "x-interlock-tenant": "evil",
                "x-interlock-identity": TEST_IDENTITY.token("evil"),
            },
        )
        assert started.status_code == 201, started.text
        run_url = f"/api/v1/runs/{started.json()['run_id']}"
        assert client.post(f"{run_url}/cancel").status_code == 403
    with stack.client(viewer) as client:
        # The spoofed identity was replaced: the run is in the caller's tenant (another
        # tenant's would be 404). No scheduler runs here to give its tasks: 503.
        fetched = client.get(run_url)
        assert fetched.status_code == 503, fetched.text
        assert fetched.json()["type"] == "urn:interlock:problem:tasks-unavailable"
        assert client.post(f"{run_url}/pause").status_code == 403
        assert client.post("/api/v1/workflows/rbac/runs", json={}).status_code == 403
    with stack.client(operator) as client:
        cancelled = client.post(f"{run_url}/cancel")
        assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
        assert cancelled.json()["tasks_unavailable"] is True
        assert client.post(f"{run_url}/cancel").status_code == 409
        assert client.delete("/api/v1/workflows/rbac").status_code == 204
