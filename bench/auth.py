"""Benchmark: what the gateway's authorization costs (``make bench``; not a test).

Starts its own small stack on free loopback ports: PostgreSQL, IAM
(``python -m interlock.iam``), the Envoy gateway rendered from the real template (asking
IAM in the default mode, Envoy's gRPC Check, or with ``--authz http`` over IAM's HTTP
authorizer), and a
second Envoy that answers every request with a fixed 200 (the "trivial upstream",
standing in for every service but IAM, so the upstream costs next to nothing). Then,
with a keep-alive HTTP/1.1 load generator written on asyncio streams:

- latency at concurrency 1: ``GET /api/v1/runs`` (ext_authz on, access token) against
  ``GET /health/workflow`` (ext_authz disabled, same upstream); the authorization
  overhead is the difference of their medians;
- throughput at concurrency ``--connections`` for ``--seconds`` each: the same two
  routes, the same route with an API key, and ``GET /api/v1/auth/me`` (IAM is both the
  authorizer and the upstream).

Everything, load generator included, shares this machine's cores: the figures are
for the whole system on one box. Results go to stdout (Markdown) and
``bench/results/auth.json`` (``auth-http.json`` with ``--authz http``).

Usage: ``python bench/auth.py [--seconds 10] [--connections 32] [--latency-requests 2000]
[--authorizer-processes 1] [--authz grpc|http]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

from interlock.devstack._binaries import envoy_binary
from interlock.devstack._envoy import IAM_AUTHZ, IAM_GRPC, render_envoy_config
from interlock.devstack._probes import http_probe
from interlock.devstack._process import LOOPBACK, free_ports
from interlock.devstack._runner import RunningServer, scratch_postgres, start_server
from interlock.devstack._servers import ServerSpec, gateway_spec
from interlock.devstack._stack import AUTHZ_MODES, DEFAULT_GATEWAY_AUTHZ, SERVICES, AuthzMode
from interlock.iam.domain import new_key_encryption_key

RESULTS = Path(__file__).resolve().parent / "results"
ADMIN_PASSWORD = secrets.token_urlsafe(16)

_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def _static_upstream_config(port: int, admin: int) -> str:
    """An Envoy that answers every request with 200 ``{"ok":true}`` (JSON is YAML)."""
    route = {
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": '{"ok":true}'}},
    }
    manager = {
        "@type": f"{_HCM}.HttpConnectionManager",
        "stat_prefix": "upstream",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}],
    }
    listener = {
        "address": {"socket_address": {"address": LOOPBACK, "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }
    return json.dumps(
        {
            "static_resources": {"listeners": [listener]},
            "admin": {"address": {"socket_address": {"address": LOOPBACK, "port_value": admin}}},
        }
    )


@dataclass(frozen=True)
class Stack:
    """The running benchmark stack."""

    gateway: str
    host: str
    port: int
    pids: dict[str, int]
    """Process (group leader) of each component whose CPU time is measured."""


@dataclass(frozen=True)
class Result:
    """One measured workload."""

    name: str
    route: str
    authorized: bool
    connections: int
    requests: int
    errors: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    cpu_ms_per_1k: dict[str, float]
    """CPU time each component spent per 1,000 requests (user + system)."""


# --- the stack ----------------------------------------------------------------------


@contextlib.contextmanager
def _running(spec: ServerSpec, log_path: Path) -> Iterator[RunningServer]:
    server = start_server(spec, log_path=log_path)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def _stack(base: Path, authorizer_processes: int, authz: AuthzMode) -> Iterator[Stack]:
    iam_http, iam_grpc, iam_authz, listener, admin, upstream, upstream_admin = free_ports(7)
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(scratch_postgres())
        dsn = postgres.create_database("iam_bench")
        iam_env = {
            "INTERLOCK_HTTP_PORT": str(iam_http),
            "INTERLOCK_GRPC_PORT": str(iam_grpc),
            "INTERLOCK_AUTHZ_PORT": str(iam_authz),
            "INTERLOCK_POSTGRES_DSN": dsn,
            "INTERLOCK_POSTGRES_PASSWORD": postgres.password,
            "INTERLOCK_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "INTERLOCK_BOOTSTRAP_ADMIN_MUST_CHANGE_PASSWORD": "false",
            "INTERLOCK_KEY_ENCRYPTION_KEYS": new_key_encryption_key(),
            "INTERLOCK_LOG_LEVEL": "WARNING",
            "INTERLOCK_AUTHORIZER_PROCESSES": str(authorizer_processes),
        }
        iam = stack.enter_context(
            _running(
                ServerSpec(
                    name="iam",
                    argv=(sys.executable, "-m", "interlock.iam"),
                    probe=http_probe(f"http://{LOOPBACK}:{iam_http}/readyz"),
                    ports={"iam": iam_http, "iam-grpc": iam_grpc, "iam-authz": iam_authz},
                    env=iam_env,
                ),
                base / "iam.log",
            )
        )
        upstream_config = base / "upstream.yaml"
        upstream_config.write_text(_static_upstream_config(upstream, upstream_admin))
        static = stack.enter_context(
            _running(
                ServerSpec(
                    name="upstream",
                    argv=(
                        str(envoy_binary()),
                        "--config-path",
                        str(upstream_config),
                        "--disable-hot-restart",
                        "--concurrency",
                        "1",
                        "--log-level",
                        "warning",
                    ),
                    probe=http_probe(f"http://{LOOPBACK}:{upstream_admin}/ready"),
                    ports={"upstream": upstream, "upstream-admin": upstream_admin},
                ),
                base / "upstream.log",
            )
        )
        upstreams = {service.name: (LOOPBACK, upstream) for service in SERVICES}
        upstreams["iam"] = (LOOPBACK, iam_http)
        upstreams[IAM_GRPC] = (LOOPBACK, iam_grpc)
        upstreams[IAM_AUTHZ] = (LOOPBACK, iam_authz)
        config = base / "gateway.yaml"
        config.write_text(
            render_envoy_config(
                upstreams=upstreams,
                listener=(LOOPBACK, listener),
                admin=(LOOPBACK, admin),
                authz=authz,
            )
        )
        gateway = stack.enter_context(
            _running(
                gateway_spec(config, listener_port=listener, admin_port=admin),
                base / "gateway.log",
            )
        )
        yield Stack(
            gateway=f"http://{LOOPBACK}:{listener}",
            host=LOOPBACK,
            port=listener,
            pids={
                "iam": iam.pid,
                "gateway": gateway.pid,
                "upstream": static.pid,
                "load generator": os.getpid(),
            },
        )


# --- CPU accounting -----------------------------------------------------------------


def _cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU time of each component, its child processes included."""
    used = {}
    for name, pid in pids.items():
        process = psutil.Process(pid)
        # This process started every server: count only its own time for the load generator.
        children = [] if pid == os.getpid() else process.children(recursive=True)
        total = 0.0
        for member in [process, *children]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = member.cpu_times()
                total += times.user + times.system
        used[name] = total
    return used


# --- the load generator -------------------------------------------------------------


def _request(host: str, port: int, path: str, token: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _connection(
    stack: Stack,
    request: bytes,
    *,
    deadline: float,
    budget: list[int],
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(stack.host, stack.port)
    try:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                errors[0] += 1
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _load(
    stack: Stack,
    name: str,
    path: str,
    token: str | None,
    *,
    connections: int,
    seconds: float,
    max_requests: int = 1 << 62,
) -> Result:
    request = _request(stack.host, stack.port, path, token)
    latencies: list[float] = []
    errors = [0]
    budget = [max_requests]
    cpu_before = _cpu_seconds(stack.pids)
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(
            _connection(
                stack,
                request,
                deadline=deadline,
                budget=budget,
                latencies=latencies,
                errors=errors,
            )
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    cpu_after = _cpu_seconds(stack.pids)
    thousands = len(latencies) / 1000
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return Result(
        name=name,
        route=path,
        authorized=token is not None,
        connections=connections,
        requests=len(latencies),
        errors=errors[0],
        seconds=round(elapsed, 2),
        requests_per_s=round(len(latencies) / elapsed),
        p50_ms=round(statistics.median(latencies) * 1000, 3),
        p90_ms=round(quantiles[89] * 1000, 3),
        p99_ms=round(quantiles[98] * 1000, 3),
        cpu_ms_per_1k={
            name: round((cpu_after[name] - cpu_before[name]) * 1000 / thousands, 1)
            for name in stack.pids
        },
    )


# --- the benchmark ------------------------------------------------------------------


def _credentials(stack: Stack) -> tuple[str, str]:
    with httpx.Client(base_url=stack.gateway, trust_env=False, timeout=30) as client:
        login = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        key = client.post(
            "/api/v1/api-keys",
            json={"name": "bench", "roles": ["viewer"]},
            headers={"authorization": f"Bearer {token}"},
        )
        key.raise_for_status()
    return token, key.json()["key"]


async def _run(stack: Stack, args: argparse.Namespace) -> list[Result]:
    token, api_key = _credentials(stack)
    for warm_up in (token, api_key):
        await _load(stack, "warm-up", "/api/v1/runs", warm_up, connections=8, seconds=2)
    results = []
    latency: tuple[tuple[str, str, str | None], ...] = (
        ("latency, ext_authz disabled", "/health/workflow", None),
        ("latency, ext_authz on (JWT)", "/api/v1/runs", token),
    )
    for name, path, credential in latency:
        results.append(
            await _load(
                stack,
                name,
                path,
                credential,
                connections=1,
                seconds=args.seconds,
                max_requests=args.latency_requests,
            )
        )
    throughput: tuple[tuple[str, str, str | None], ...] = (
        ("throughput, ext_authz disabled", "/health/workflow", None),
        ("throughput, ext_authz on (JWT)", "/api/v1/runs", token),
        ("throughput, ext_authz on (API key)", "/api/v1/runs", api_key),
        ("throughput, ext_authz on, IAM upstream", "/api/v1/auth/me", token),
    )
    for name, path, credential in throughput:
        results.append(
            await _load(
                stack, name, path, credential, connections=args.connections, seconds=args.seconds
            )
        )
    return results


def _report(results: list[Result]) -> str:
    lines = [
        "| workload | route | connections | requests | errors | req/s | p50 ms | p90 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | `{r.route}` | {r.connections} | {r.requests} | {r.errors} "
            f"| {r.requests_per_s} | {r.p50_ms} | {r.p90_ms} | {r.p99_ms} |"
        )
    overhead = results[1].p50_ms - results[0].p50_ms
    lines += ["", f"Authorization overhead at p50 (concurrency 1): {overhead:.3f} ms", ""]
    components = list(results[0].cpu_ms_per_1k)
    lines.append("| workload | " + " | ".join(components) + " | total | req/s per idle core |")
    lines.append("|---|" + "---|" * (len(components) + 2))
    for r in results[2:]:
        total = sum(r.cpu_ms_per_1k.values())
        cells = " | ".join(str(r.cpu_ms_per_1k[name]) for name in components)
        lines.append(f"| {r.name} | {cells} | {total:.1f} | {1_000_000 / total:.0f} |")
    lines.append("")
    lines.append(
        "CPU ms per 1,000 requests by component (user + system, children included); "
        "'req/s per idle core' = 1,000,000 / total: the rate one otherwise idle core "
        "would sustain for the whole chain, whatever else ran on the machine."
    )
    return "\n".join(lines)


def main() -> None:
    """Start the stack, run the workloads, print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per workload (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="for throughput (default 32)")
    parser.add_argument(
        "--latency-requests", type=int, default=2000, help="per latency workload (default 2000)"
    )
    parser.add_argument(
        "--authorizer-processes",
        type=int,
        default=1,
        help="IAM's INTERLOCK_AUTHORIZER_PROCESSES (default 1, as make up runs it)",
    )
    parser.add_argument(
        "--authz",
        choices=AUTHZ_MODES,
        default=DEFAULT_GATEWAY_AUTHZ,
        help="how the gateway asks IAM: grpc (Envoy's ext_authz Check) or http "
        f"(IAM's HTTP authorizer) (default {DEFAULT_GATEWAY_AUTHZ}, as make up runs it)",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    base = Path(tempfile.mkdtemp(prefix="interlock-bench-auth-"))
    try:
        with _stack(base, args.authorizer_processes, args.authz) as stack:
            results = asyncio.run(_run(stack, args))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    load_after = os.getloadavg()[0]
    report = _report(results)
    report += (
        f"\nLoad average (1 min) before / after: {load_before:.2f} / {load_after:.2f} "
        f"on {os.cpu_count()} CPUs (other work on the machine skews every figure); "
        f"IAM authorizer processes: {args.authorizer_processes}; gateway asks IAM over "
        f"{args.authz}"
    )
    sys.stdout.write(report + "\n")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "auth.json" if args.authz == DEFAULT_GATEWAY_AUTHZ else f"auth-{args.authz}.json"
    (RESULTS / name).write_text(
        json.dumps(
            {
                "machine": {
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "load_average_before": load_before,
                    "load_average_after": load_after,
                },
                "authorizer_processes": args.authorizer_processes,
                "authz": args.authz,
                "results": [asdict(r) for r in results],
                "overhead_p50_ms": round(results[1].p50_ms - results[0].p50_ms, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
