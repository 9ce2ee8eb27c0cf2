"""The Envoy gateway config: committed rendering, validity, and behaviour with real Envoy."""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from interlock.common.http import KEEP_ALIVE_S
from interlock.devstack._envoy import (
    IAM_AUTHZ,
    IAM_GRPC,
    api_reference_path,
    compose_config_path,
    render_compose_config,
    render_envoy_config,
)
from interlock.devstack._process import free_ports
from interlock.devstack._runner import start_server
from interlock.devstack._servers import gateway_spec
from interlock.devstack._stack import (
    AUTHZ_MODES,
    DATA_DIR_ENV,
    GATEWAY_AUTHZ_ENV,
    SERVICES,
    AuthzMode,
    Stack,
)


def test_committed_compose_config_matches_the_template() -> None:
    assert compose_config_path().read_text() == render_compose_config(), (
        "infra/envoy/envoy.compose.yaml is stale: run `python -m interlock.devstack render-envoy`"
    )


def test_compose_config_routes_every_service_by_name() -> None:
    text = render_compose_config()
    for service in SERVICES:
        assert f"path: /health/{service.name}" in text
        assert f"address: {service.name}, port_value: {service.http_port}" in text
    # The authorizer: IAM's gRPC Check by default (the design's choice).
    assert "grpc_service:" in text and "http_service:" not in text
    assert "address: iam, port_value: 9101" in text


def _upstreams_for_every_service(port: int) -> dict[str, tuple[str, int]]:
    upstreams = {s.name: ("127.0.0.1", port) for s in SERVICES}
    upstreams[IAM_GRPC] = upstreams[IAM_AUTHZ] = ("127.0.0.1", port)
    return upstreams


def test_the_http_authorizer_is_one_setting_away() -> None:
    text = render_envoy_config(
        upstreams={**_upstreams_for_every_service(1), IAM_AUTHZ: ("127.0.0.1", 9111)},
        listener=("127.0.0.1", 2),
        admin=("127.0.0.1", 3),
        authz="http",
    )
    assert "http_service:" in text and "grpc_service:" not in text
    assert "uri: http://127.0.0.1:9111" in text
    assert "address: 127.0.0.1, port_value: 9111" in text
    assert "http2_protocol_options" not in text


def test_identity_headers_are_removed_before_authorization_which_fails_closed() -> None:
    text = render_compose_config()
    mutation = text.index("envoy.filters.http.header_mutation")
    authz = text.index("- name: envoy.filters.http.ext_authz")
    assert mutation < authz
    assert text.index("remove: x-interlock-identity") < authz
    assert "failure_mode_allow: false" in text
    # A route's own removals apply after the filters, too late for ext_authz: only the
    # S3 route drops a caller's credentials (authorization, cookie) there.
    route_removals = [line for line in text.splitlines() if "request_headers_to_remove" in line]
    assert all("x-interlock-identity" not in line for line in route_removals)


def test_task_timers_route_to_the_scheduler_before_runs_route_to_the_workflow() -> None:
    text = render_compose_config()
    timer = text.index("name: scheduler-task-timer")
    runs = text.index("name: workflow-runs")
    assert timer < runs


def test_render_requires_every_service() -> None:
    with pytest.raises(KeyError):
        render_envoy_config(upstreams={}, listener=("127.0.0.1", 1), admin=("127.0.0.1", 2))


@pytest.mark.parametrize("authz", AUTHZ_MODES)
def test_envoy_accepts_the_config_in_every_authorizer_mode(
    envoy_binary: Path, authz: AuthzMode, tmp_path: Path
) -> None:
    config = compose_config_path()
    if authz != "grpc":  # the committed compose config is the default
        config = tmp_path / "envoy.yaml"
        config.write_text(
            render_envoy_config(
                upstreams=_upstreams_for_every_service(8000),
                listener=("127.0.0.1", 8080),
                admin=("127.0.0.1", 9901),
                authz=authz,
            )
        )
    result = subprocess.run(
        [str(envoy_binary), "--mode", "validate", "--disable-hot-restart", "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


class _Upstream(http.server.BaseHTTPRequestHandler):
    """Answers like a service: 200 on /readyz, records the paths it saw."""

    seen: list[str] = []

    def do_GET(self) -> None:
        _Upstream.seen.append(self.path)
        status = 200 if self.path == "/readyz" else 418
        body = b'{"status":"ready"}'
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module", params=AUTHZ_MODES)
def gateway(
    upstream: int, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """Envoy (in each authorizer mode) with iam pointing at the stand-in upstream and the
    others, the authorizer included, at a closed port: API routes must fail closed."""
    listener, admin, closed = free_ports(3)
    upstreams = _upstreams_for_every_service(closed)
    upstreams["iam"] = ("127.0.0.1", upstream)
    base = tmp_path_factory.mktemp("gateway")
    config = base / "envoy.yaml"
    config.write_text(
        render_envoy_config(
            upstreams=upstreams,
            listener=("127.0.0.1", listener),
            admin=("127.0.0.1", admin),
            authz=request.param,
        )
    )
    server = start_server(
        gateway_spec(config, listener_port=listener, admin_port=admin),
        log_path=base / "gateway.log",
    )
    try:
        yield f"http://127.0.0.1:{listener}"
    finally:
        server.stop()


@pytest.mark.integration
def test_health_route_reaches_readyz(gateway: str) -> None:
    response = httpx.get(f"{gateway}/health/iam", trust_env=False)
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    assert _Upstream.seen[-1] == "/readyz"
    assert response.headers["x-request-id"]


@pytest.mark.integration
def test_unreachable_service_is_not_healthy(gateway: str) -> None:
    response = httpx.get(f"{gateway}/health/workflow", trust_env=False)
    assert response.status_code == 503


@pytest.mark.integration
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/"),  # GET / is the web console
        ("GET", "/console/nope.js"),
        ("GET", "/health/nope"),
        ("GET", "/health/iamx"),
        ("POST", "/health/iam"),
        ("GET", "/readyz"),
    ],
)
def test_everything_else_is_a_problem_404(gateway: str, method: str, path: str) -> None:
    seen = len(_Upstream.seen)
    response = httpx.request(method, f"{gateway}{path}", trust_env=False)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert response.headers["x-request-id"]
    assert len(_Upstream.seen) == seen


@pytest.mark.integration
def test_the_web_console_is_served_without_a_token(gateway: str) -> None:
    seen = len(_Upstream.seen)
    page = httpx.get(f"{gateway}/", trust_env=False)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/console/app.js">' in page.text
    module = httpx.get(f"{gateway}/console/app.js", trust_env=False)
    assert module.status_code == 200
    assert module.headers["content-type"] == "text/javascript; charset=utf-8"
    assert len(_Upstream.seen) == seen  # answered by the gateway itself


@pytest.mark.integration
def test_request_ids_are_generated_per_request(gateway: str) -> None:
    first = httpx.get(f"{gateway}/health/iam", trust_env=False).headers["x-request-id"]
    second = httpx.get(f"{gateway}/health/iam", trust_env=False).headers["x-request-id"]
    assert first != second


@pytest.mark.integration
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/runs"), ("POST", "/api/v1/users"), ("GET", "/api/v1/nothing")],
)
def test_api_routes_fail_closed_without_the_authorizer(
    gateway: str, method: str, path: str
) -> None:
    seen = len(_Upstream.seen)
    response = httpx.request(method, f"{gateway}{path}", trust_env=False)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 503
    assert len(_Upstream.seen) == seen


@pytest.mark.integration
def test_public_routes_skip_the_authorizer(gateway: str) -> None:
    response = httpx.get(f"{gateway}/.well-known/jwks.json", trust_env=False)
    assert response.status_code == 418  # the stand-in's answer: it reached the upstream
    assert _Upstream.seen[-1] == "/.well-known/jwks.json"


@pytest.mark.integration
def test_openapi_documents_and_the_reference_page_are_public(gateway: str) -> None:
    # The authorizer is unreachable here: a route that asked it would answer 503.
    document = httpx.get(f"{gateway}/api/v1/iam/openapi.json", trust_env=False)
    assert document.status_code == 418  # the stand-in's answer: it reached the upstream
    assert _Upstream.seen[-1] == "/api/v1/iam/openapi.json"
    closed = httpx.get(f"{gateway}/api/v1/workflow/openapi.json", trust_env=False)
    assert closed.status_code == 503  # public, but the workflow service is down
    page = httpx.get(f"{gateway}/api/docs", trust_env=False)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.text == api_reference_path().read_text()
    assert "/api/v1/${service}/openapi.json" in page.text


@pytest.mark.integration
def test_a_malformed_request_is_a_problem_400(gateway: str) -> None:
    # Header names with underscores are refused (they could alias x-interlock-* headers).
    response = httpx.get(f"{gateway}/health/iam", headers={"x_interlock": "1"}, trust_env=False)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 400


@pytest.mark.integration
def test_request_bodies_are_limited(gateway: str) -> None:
    login = f"{gateway}/api/v1/auth/login"
    small = httpx.post(login, content=b"x" * 1024, trust_env=False)
    assert small.status_code not in (413, 503)
    big = httpx.post(login, content=b"x" * (2 * 1024 * 1024), trust_env=False)
    assert big.status_code == 413
    assert big.headers["content-type"] == "application/problem+json"


@pytest.mark.integration
def test_rate_limit_answers_429(upstream: int, tmp_path: Path) -> None:
    listener, admin, closed = free_ports(3)
    upstreams = _upstreams_for_every_service(upstream)
    upstreams[IAM_GRPC] = ("127.0.0.1", closed)
    config = tmp_path / "envoy.yaml"
    config.write_text(
        render_envoy_config(
            upstreams=upstreams,
            listener=("127.0.0.1", listener),
            admin=("127.0.0.1", admin),
            rate_limit_per_s=3,
        )
    )
    server = start_server(
        gateway_spec(config, listener_port=listener, admin_port=admin),
        log_path=tmp_path / "gateway.log",
    )
    try:
        with httpx.Client(trust_env=False) as client:
            statuses = [
                client.get(f"http://127.0.0.1:{listener}/health/iam").status_code for _ in range(10)
            ]
    finally:
        server.stop()
    assert 200 in statuses
    assert 429 in statuses


def test_the_stack_asks_iam_over_grpc_unless_told_otherwise(tmp_path: Path) -> None:
    env = {DATA_DIR_ENV: str(tmp_path)}
    assert Stack.from_env(env).gateway_authz == "grpc"
    assert Stack.from_env({**env, GATEWAY_AUTHZ_ENV: "http"}).gateway_authz == "http"
    with pytest.raises(ValueError, match=GATEWAY_AUTHZ_ENV):
        Stack.from_env({**env, GATEWAY_AUTHZ_ENV: "carrier-pigeon"})
    upstreams = Stack(data_dir=tmp_path, port_offset=100).envoy_upstreams()
    assert (upstreams[IAM_GRPC], upstreams[IAM_AUTHZ]) == (("127.0.0.1", 9201), ("127.0.0.1", 9211))


def _seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def test_the_gateway_never_reuses_a_connection_a_service_is_closing() -> None:
    config = yaml.safe_load(render_compose_config())
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    for service in SERVICES:
        options = clusters[service.name]["typed_extension_protocol_options"]
        http = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        idle = _seconds(http["common_http_protocol_options"]["idle_timeout"])
        assert idle < KEEP_ALIVE_S, service.name
    listener = config["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    (host,) = manager["route_config"]["virtual_hosts"]
    # Only requests the service never received are sent again: a POST is never doubled.
    assert set(host["retry_policy"]["retry_on"].split(",")) == {
        "reset-before-request",
        "connect-failure",
    }


def test_compose_keeps_the_admin_api_on_loopback_and_serves_stats_apart() -> None:
    config = yaml.safe_load(render_compose_config())
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    listeners = {item["name"]: item for item in config["static_resources"]["listeners"]}
    assert set(listeners) == {"gateway", "stats"}
    stats = listeners["stats"]["address"]["socket_address"]
    assert (stats["address"], stats["port_value"]) == ("0.0.0.0", 9902)
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    (endpoint,) = clusters["envoy_admin"]["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert endpoint["endpoint"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 9901,
    }


def test_the_stats_listener_needs_a_loopback_admin() -> None:
    with pytest.raises(ValueError, match="loopback"):
        render_envoy_config(
            upstreams=_upstreams_for_every_service(1),
            listener=("127.0.0.1", 2),
            admin=("0.0.0.0", 3),
            stats=("127.0.0.1", 4),
        )
    plain = render_envoy_config(
        upstreams=_upstreams_for_every_service(1), listener=("127.0.0.1", 2), admin=("0.0.0.0", 3)
    )
    assert "envoy_admin" not in plain and "name: stats" not in plain


@pytest.mark.integration
def test_the_stats_listener_serves_prometheus_stats_and_nothing_else(tmp_path: Path) -> None:
    listener, admin, stats, closed = free_ports(4)
    config = tmp_path / "envoy.yaml"
    config.write_text(
        render_envoy_config(
            upstreams=_upstreams_for_every_service(closed),
            listener=("127.0.0.1", listener),
            admin=("127.0.0.1", admin),
            stats=("127.0.0.1", stats),
        )
    )
    server = start_server(
        gateway_spec(config, listener_port=listener, admin_port=admin),
        log_path=tmp_path / "gateway.log",
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{stats}", trust_env=False) as client:
            scraped = client.get("/stats/prometheus")
            assert scraped.status_code == 200
            assert "envoy_server_live" in scraped.text
            for method, path in [
                ("POST", "/quitquitquit"),
                ("POST", "/runtime_modify?x=1"),
                ("GET", "/config_dump"),
                ("GET", "/ready"),
                ("POST", "/stats/prometheus"),
            ]:
                assert client.request(method, path).status_code == 404, (method, path)
        # Envoy is still up: nothing above reached the admin API's actions.
        ready = httpx.get(f"http://127.0.0.1:{admin}/ready", trust_env=False)
        assert ready.status_code == 200
    finally:
        server.stop()
