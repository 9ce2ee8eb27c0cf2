"""A real gateway in front of a real IAM: Envoy, ``python -m interlock.iam``, PostgreSQL.

One IAM serves both authorizers, and one Envoy per authorizer mode stands in front of
it: :attr:`Gateway.url` is the default (gRPC Check), :meth:`Gateway.via` picks a mode,
and the ``any_gateway`` fixture runs a test in every mode.

Every other service is played by one echo upstream that answers 200 with the path and
the headers it received (the identity token among them), so a test sees exactly what a
service would.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import secrets
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from interlock.devstack import PostgresServer
from interlock.devstack._envoy import IAM_AUTHZ, IAM_GRPC, render_envoy_config
from interlock.devstack._probes import http_probe
from interlock.devstack._process import free_ports
from interlock.devstack._runner import start_server
from interlock.devstack._servers import ServerSpec, gateway_spec
from interlock.devstack._stack import AUTHZ_MODES, DEFAULT_GATEWAY_AUTHZ, SERVICES, AuthzMode
from interlock.iam.domain import new_key_encryption_key

ADMIN = ("admin", "bootstrap-secret-password")
"""The bootstrap admin of the test IAM (tenant ``default``)."""
KEY_ENCRYPTION_KEYS = new_key_encryption_key()
"""The test IAM's key-encryption key (it seals the signing keys in the database)."""
MAX_LOGIN_FAILURES = 3


class _Echo(http.server.BaseHTTPRequestHandler):
    """Any method: 200 with the request's path and headers as JSON."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {"path": self.path, "method": self.command, "headers": dict(self.headers.items())}
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class Gateway:
    """The running gateway and IAM."""

    url: str
    """The gateway in the mode of this view (default: gRPC Check)."""
    urls: Mapping[AuthzMode, str]
    """The gateway in every authorizer mode."""
    iam_url: str
    iam_grpc: str
    iam_authz_port: int
    postgres_dsn: str
    postgres_password: str
    iam_log: Path

    def via(self, authz: AuthzMode) -> Gateway:
        """This gateway as seen through the Envoy that asks IAM in mode ``authz``."""
        return replace(self, url=self.urls[authz])

    def client(self) -> httpx.Client:
        """A client of the gateway (no proxies from the environment)."""
        return httpx.Client(base_url=self.url, trust_env=False, timeout=30)

    def login(self, username: str, password: str, tenant: str | None = None) -> dict[str, str]:
        """Log in through the gateway; the token pair."""
        body = {"username": username, "password": password}
        if tenant:
            body["tenant"] = tenant
        with self.client() as client:
            response = client.post("/api/v1/auth/login", json=body)
        assert response.status_code == 200, response.text
        tokens: dict[str, str] = response.json()
        return tokens

    def admin_token(self) -> str:
        """A fresh access token of the bootstrap admin."""
        return self.login(*ADMIN)["access_token"]

    def create_user(self, roles: list[str], token: str | None = None) -> tuple[str, str]:
        """A new user of the admin's tenant with ``roles``; its name and password."""
        username, password = f"user-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
        with self.client() as client:
            response = client.post(
                "/api/v1/users",
                json={"username": username, "password": password, "roles": roles},
                headers=bearer(token or self.admin_token()),
            )
        assert response.status_code == 201, response.text
        return username, password


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def echo_upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def running_gateway(
    postgres_server: PostgresServer,
    echo_upstream: int,
    base: Path,
    iam_settings: Mapping[str, str] = {},
    login_rate_limit_per_min: int = 100_000,
) -> Iterator[Gateway]:
    """IAM (with extra ``INTERLOCK_*`` settings) and an Envoy per authorizer mode in front.

    The gateway's per-address login limit is high by default: every test logs in from
    the same address.
    """
    database = f"iam_{secrets.token_hex(6)}"
    dsn = postgres_server.create_database(database)
    iam_http, iam_grpc, iam_authz = free_ports(3)
    iam_env = {
        "INTERLOCK_HTTP_PORT": str(iam_http),
        "INTERLOCK_GRPC_PORT": str(iam_grpc),
        "INTERLOCK_AUTHZ_PORT": str(iam_authz),
        "INTERLOCK_POSTGRES_DSN": dsn,
        "INTERLOCK_POSTGRES_PASSWORD": postgres_server.password,
        "INTERLOCK_BOOTSTRAP_ADMIN_USERNAME": ADMIN[0],
        "INTERLOCK_BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
        "INTERLOCK_BOOTSTRAP_ADMIN_TENANT": "default",
        "INTERLOCK_BOOTSTRAP_ADMIN_MUST_CHANGE_PASSWORD": "false",
        "INTERLOCK_LOGIN_MAX_FAILURES": str(MAX_LOGIN_FAILURES),
        "INTERLOCK_LOG_FORMAT": "text",
        "INTERLOCK_KEY_ENCRYPTION_KEYS": KEY_ENCRYPTION_KEYS,
        **iam_settings,
    }
    iam = start_server(
        ServerSpec(
            name="iam",
            argv=(sys.executable, "-m", "interlock.iam"),
            probe=http_probe(f"http://127.0.0.1:{iam_http}/readyz"),
            ports={"iam-http": iam_http, "iam-grpc": iam_grpc, "iam-authz": iam_authz},
            env=iam_env,
        ),
        log_path=base / "iam.log",
    )
    try:
        upstreams = {service.name: ("127.0.0.1", echo_upstream) for service in SERVICES}
        upstreams["iam"] = ("127.0.0.1", iam_http)
        upstreams[IAM_GRPC] = ("127.0.0.1", iam_grpc)
        upstreams[IAM_AUTHZ] = ("127.0.0.1", iam_authz)
        with contextlib.ExitStack() as envoys:
            urls: dict[AuthzMode, str] = {}
            for authz in AUTHZ_MODES:
                listener, admin = free_ports(2)
                config = base / f"envoy-{authz}.yaml"
                config.write_text(
                    render_envoy_config(
                        upstreams=upstreams,
                        listener=("127.0.0.1", listener),
                        admin=("127.0.0.1", admin),
                        authz=authz,
                        login_rate_limit_per_min=login_rate_limit_per_min,
                    )
                )
                envoy = start_server(
                    gateway_spec(config, listener_port=listener, admin_port=admin),
                    log_path=base / f"gateway-{authz}.log",
                )
                envoys.callback(envoy.stop)
                urls[authz] = f"http://127.0.0.1:{listener}"
            yield Gateway(
                url=urls[DEFAULT_GATEWAY_AUTHZ],
                urls=urls,
                iam_url=f"http://127.0.0.1:{iam_http}",
                iam_grpc=f"127.0.0.1:{iam_grpc}",
                iam_authz_port=iam_authz,
                postgres_dsn=dsn,
                postgres_password=postgres_server.password,
                iam_log=base / "iam.log",
            )
    finally:
        iam.stop()
        postgres_server.drop_database(database)


@pytest.fixture(scope="module")
def gateway(
    postgres_server: PostgresServer,
    echo_upstream: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    with running_gateway(
        postgres_server, echo_upstream, tmp_path_factory.mktemp("iam-gateway")
    ) as running:
        yield running


@pytest.fixture(params=AUTHZ_MODES)
def any_gateway(gateway: Gateway, request: pytest.FixtureRequest) -> Gateway:
    """The module's gateway in each authorizer mode (gRPC Check, HTTP) in turn."""
    return gateway.via(request.param)
