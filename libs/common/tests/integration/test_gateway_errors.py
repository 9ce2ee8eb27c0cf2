"""A 500 leaves the gateway's kept-alive connection to the service healthy.

The service app (:func:`interlock.common.http.create_app`, served by uvicorn as
:func:`interlock.common.http.serve` configures it) stands behind a real Envoy rendered
from the project's template. Its public login route raises: before the fix, uvicorn
closed the connection after each such 500 without ``Connection: close``, Envoy sent
the next request into the closing socket and answered it 503.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import APIRouter

from interlock.common.http import create_app, server_config
from interlock.common.settings import ServiceSettings
from interlock.devstack._envoy import IAM_AUTHZ, IAM_GRPC, render_envoy_config
from interlock.devstack._process import free_ports
from interlock.devstack._runner import start_server
from interlock.devstack._servers import gateway_spec
from interlock.devstack._stack import SERVICES

pytestmark = pytest.mark.integration

router = APIRouter()


@router.post("/api/v1/auth/login")
async def failing_login() -> None:
    raise RuntimeError("a bug the service did not foresee")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base: Path = tmp_path_factory.mktemp("gateway-errors")
    service_port, listener, admin = free_ports(3)
    settings = ServiceSettings(service_name="iam", http_host="127.0.0.1", http_port=service_port)
    app = create_app(settings, routers=[router])
    server = uvicorn.Server(server_config(app, settings))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.01)
    try:
        upstreams = {s.name: ("127.0.0.1", service_port) for s in SERVICES}
        upstreams[IAM_GRPC] = upstreams[IAM_AUTHZ] = ("127.0.0.1", service_port)
        config = base / "envoy.yaml"
        config.write_text(
            render_envoy_config(
                upstreams=upstreams, listener=("127.0.0.1", listener), admin=("127.0.0.1", admin)
            )
        )
        envoy = start_server(
            gateway_spec(config, listener_port=listener, admin_port=admin),
            log_path=base / "gateway.log",
        )
        try:
            yield f"http://127.0.0.1:{listener}"
        finally:
            envoy.stop()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_after_a_500_the_next_request_is_served(gateway: str) -> None:
    statuses = []
    with httpx.Client(base_url=gateway, trust_env=False, timeout=30) as client:
        for _ in range(20):
            failed = client.post("/api/v1/auth/login", json={"username": "u", "password": "p"})
            statuses.append(failed.status_code)
            assert failed.headers["content-type"] == "application/problem+json"
            assert "did not foresee" not in failed.text
            statuses.append(client.get("/health/iam").status_code)
    assert statuses == [500, 200] * 20
