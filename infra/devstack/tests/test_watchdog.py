"""The stack's liveness watchdog: restarts on failing /healthz, never on refusals."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from interlock.devstack._process import free_ports
from interlock.devstack._watchdog import FAILURES_TO_RESTART, Watchdog, probe_liveness


class Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def health_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/healthz"
    finally:
        server.shutdown()
        Health.status = 200


class Supervisord:
    """Records what the watchdog asks of supervisord (its XML-RPC namespace)."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.calls: list[tuple[str, str]] = []
        self.supervisor = self

    def getAllProcessInfo(self) -> list[dict[str, str]]:
        return [{"name": "scheduler", "statename": self.state}]

    def stopProcess(self, name: str, wait: bool) -> None:
        self.calls.append(("stop", name))

    def startProcess(self, name: str, wait: bool) -> None:
        self.calls.append(("start", name))


def test_probe_tells_failing_from_not_listening_yet(health_url: str) -> None:
    assert probe_liveness(health_url) is None
    Health.status = 503
    assert probe_liveness(health_url) == "HTTP 503"
    (port,) = free_ports(1)
    assert probe_liveness(f"http://127.0.0.1:{port}/healthz") is None


def test_restarts_after_consecutive_failures_only(health_url: str) -> None:
    rpc = Supervisord("RUNNING")
    watchdog = Watchdog({"scheduler": health_url}, rpc, io.StringIO())
    Health.status = 503
    for _ in range(FAILURES_TO_RESTART - 1):
        watchdog.tick()
    Health.status = 200
    watchdog.tick()  # recovered: the count starts again
    Health.status = 503
    for _ in range(FAILURES_TO_RESTART - 1):
        watchdog.tick()
    assert rpc.calls == []
    watchdog.tick()
    assert rpc.calls == [("stop", "scheduler"), ("start", "scheduler")]


def test_a_fatal_program_is_started_again(health_url: str) -> None:
    rpc = Supervisord("FATAL")
    watchdog = Watchdog({"scheduler": health_url}, rpc, io.StringIO())
    watchdog.tick()
    watchdog.tick()  # not again before FATAL_RETRY_S
    assert rpc.calls == [("start", "scheduler")]
