"""Metrics, alert rules and dashboards, checked with promtool against the real platform.

The session's shared platform (the devstack plugin's ``default_platform``) serves some
traffic first: runs that succeed, fail after a retry (a timer, a dead letter) and get
cancelled, an idempotent replay, an email subscription's deliveries, an artifact
uploaded and downloaded. Then every
service's ``/metrics`` must pass ``promtool check metrics``, and every metric named in a
dashboard's PromQL must be exposed (a dashboard of one service: by that service). The
alert rules pass ``promtool check rules`` and their unit tests (``promtool test rules``).

promtool comes with Debian's ``prometheus`` package: the tests install it when missing
(as root with apt-get) and skip, saying why, only where it cannot be installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from interlock.devstack import Platform as DefaultPlatform
from interlock.devstack._stack import DATA_DIR_ENV, PORT_OFFSET_ENV, SERVICES, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
RULES = sorted((ROOT / "infra/prometheus/rules").glob("*.yml"))
RULE_TESTS = sorted((ROOT / "infra/prometheus/tests").glob("*.yml"))
DASHBOARDS = sorted((ROOT / "infra/grafana/dashboards").glob("*.json"))
SERVICE_BY_NAME = {service.name: service for service in SERVICES}
SERVICE_NAMES = sorted(SERVICE_BY_NAME)
_METRIC = re.compile(r"\b(interlock_[a-z0-9_]+)\b")
_WAIT_S = 120.0

WORKFLOWS = {
    "obs-ok": {
        "name": "obs-ok",
        "tasks": [
            {"id": "a", "type": "echo", "params": {"lines": ["one", "two"], "interval": "10ms"}},
            {"id": "b", "type": "noop", "depends_on": ["a"]},
            {"id": "c", "type": "noop", "depends_on": ["a"]},
        ],
    },
    "obs-fail": {
        "name": "obs-fail",
        "tasks": [
            {
                "id": "f",
                "type": "fail",
                "retry": {"max_attempts": 2, "initial_interval": "100ms", "jitter": "none"},
            }
        ],
    },
    "obs-sleep": {
        "name": "obs-sleep",
        "tasks": [{"id": "s", "type": "sleep", "params": {"duration": "60s"}}],
    },
}


@dataclass(frozen=True)
class Platform:
    stack: Stack
    env: dict[str, str]
    """The variables the stack was started with."""
    scrapes: dict[str, str]
    """Each service's ``/metrics`` text, after the traffic."""


def _eventually(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.2)


def _scrape(stack: Stack, service: str) -> str:
    port = stack.http_port(SERVICE_BY_NAME[service])
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def _serve_traffic(stack: Stack, token: str) -> None:
    with httpx.Client(base_url=stack.gateway_url, trust_env=False, timeout=30) as client:
        client.headers["authorization"] = f"Bearer {token}"
        subscribed = client.post(
            "/api/v1/subscriptions",
            json={
                "name": "obs",
                "channel": "email",
                "target": ["ops@example.com"],
                "events": ["run.succeeded", "run.failed", "run.cancelled"],
            },
        )
        assert subscribed.status_code == 201, subscribed.text
        for definition in WORKFLOWS.values():
            defined = client.post("/api/v1/workflows", json=definition)
            assert defined.status_code == 201, defined.text
        runs: dict[str, str] = {}
        for name in WORKFLOWS:
            started = client.post(
                f"/api/v1/workflows/{name}/runs",
                json={"input": {}},
                headers={"idempotency-key": f"obs-{name}"},
            )
            assert started.status_code == 201, started.text
            runs[name] = started.json()["run_id"]
        replayed = client.post(
            "/api/v1/workflows/obs-ok/runs",
            json={"input": {}},
            headers={"idempotency-key": "obs-obs-ok"},
        )
        assert replayed.status_code == 200, replayed.text
        _eventually(
            "the sleeping run's task starts",
            lambda: client.get(f"/api/v1/runs/{runs['obs-sleep']}").json()["status"] == "running",
        )
        cancelled = client.post(f"/api/v1/runs/{runs['obs-sleep']}/cancel", json={"reason": "obs"})
        assert cancelled.status_code == 200, cancelled.text
        uploaded = client.post(
            "/api/v1/artifacts",
            data={"run_id": runs["obs-ok"], "name": "obs.txt"},
            files={"file": ("obs.txt", b"observed\n", "text/plain")},
        )
        assert uploaded.status_code == 201, uploaded.text
        content = client.get(f"/api/v1/artifacts/{uploaded.json()['artifact_id']}/content")
        assert content.content == b"observed\n"
        ends = {"obs-ok": "succeeded", "obs-fail": "failed", "obs-sleep": "cancelled"}
        _eventually(
            f"the runs end {ends}",
            lambda: all(
                client.get(f"/api/v1/runs/{runs[name]}").json()["status"] == status
                for name, status in ends.items()
            ),
        )
    _eventually(
        "the scheduler, metadata and notification count what the runs did",
        lambda: all(
            name in _scrape(stack, service)
            for service, name in (
                ("scheduler", 'interlock_scheduler_runs_finished_total{status="cancelled"}'),
                ("metadata", 'interlock_metadata_write_lag_seconds_count{store="logs"}'),
                ("notification", "interlock_notification_delivery_attempts_total{"),
            )
        ),
    )


@pytest.fixture(scope="module")
def platform(default_platform: DefaultPlatform) -> Platform:
    stack = default_platform.stack
    env = {
        **os.environ,
        DATA_DIR_ENV: str(stack.data_dir),
        PORT_OFFSET_ENV: str(stack.port_offset),
    }
    _serve_traffic(stack, default_platform.login())
    scrapes = {service: _scrape(stack, service) for service in SERVICE_NAMES}
    return Platform(stack, env, scrapes)


@pytest.fixture(scope="module")
def promtool() -> str:
    """promtool's path, installing Debian's ``prometheus`` package when it is missing."""
    found = shutil.which("promtool")
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("promtool is missing and cannot be installed here (needs root and apt-get)")
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"]
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=apt_env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=apt_env, capture_output=True, check=False)
        subprocess.run(install, env=apt_env, capture_output=True, check=False)
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("Debian's prometheus package (promtool) could not be installed")
    return found


def _promtool(promtool: str, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [promtool, *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_the_alert_rules_are_valid(promtool: str) -> None:
    out = _promtool(promtool, "check", "rules", *map(str, RULES))
    assert "SUCCESS" in out


def test_every_alert_has_a_unit_test_and_they_pass(promtool: str) -> None:
    alerts = set(re.findall(r"^\s+- alert: (\w+)$", "".join(p.read_text() for p in RULES), re.M))
    tested = set(re.findall(r"alertname: (\w+)$", "".join(p.read_text() for p in RULE_TESTS), re.M))
    assert alerts and alerts <= tested, f"alerts without a unit test: {alerts - tested}"
    assert "SUCCESS" in _promtool(promtool, "test", "rules", *map(str, RULE_TESTS))


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_service_exposes_metrics_promtool_accepts(
    platform: Platform, promtool: str, service: str
) -> None:
    text = platform.scrapes[service]
    assert "interlock_http_requests_total{" in text
    _promtool(promtool, "check", "metrics", stdin=text)


def _exposed(text: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
    return names


def _dashboard_metrics(dashboard: dict[str, Any]) -> set[str]:
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert exprs, f"{dashboard['title']} has no PromQL"
    return {name for expr in exprs for name in _METRIC.findall(expr)}


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_every_dashboard_names_only_exposed_metrics(platform: Platform, path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"].startswith("Interlock / ")
    named = _dashboard_metrics(dashboard)
    scrapes = platform.scrapes
    if path.stem in scrapes:
        exposed = _exposed(scrapes[path.stem])
    else:  # the overview: the whole platform
        exposed = set().union(*(_exposed(text) for text in scrapes.values()))
    assert named, f"{path.name} names no Interlock metric"
    assert named <= exposed, f"{path.name} names metrics nobody exposes: {named - exposed}"


def test_make_observe_scrapes_the_stack_with_the_rules(platform: Platform, promtool: str) -> None:
    del promtool  # installed the same package, with the prometheus server
    observe = subprocess.Popen(
        [str(ROOT / "scripts/observe")],
        env=platform.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert observe.stdout is not None
        line = observe.stdout.readline()
        address = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert address, f"no address printed: {line!r}"
        expected = {f"127.0.0.1:{platform.stack.http_port(s)}" for s in SERVICE_BY_NAME.values()}

        def interlock_targets_up() -> bool:
            try:
                found = httpx.get(f"{address[0]}/api/v1/targets", trust_env=False, timeout=5)
            except httpx.TransportError:
                return False
            if found.status_code != 200:  # "Service Unavailable" while Prometheus starts
                return False
            targets = found.json()["data"]["activeTargets"]
            up = {t["labels"]["instance"] for t in targets if t["health"] == "up"}
            return expected <= up

        _eventually("Prometheus scrapes every service", interlock_targets_up)
        rules = httpx.get(f"{address[0]}/api/v1/rules", trust_env=False, timeout=5).json()
        loaded = {rule["name"] for group in rules["data"]["groups"] for rule in group["rules"]}
        named = set(re.findall(r"- alert: (\w+)", "".join(p.read_text() for p in RULES)))
        assert named and loaded == named
    finally:
        observe.terminate()
        observe.wait(timeout=30)
