"""The platform the task-log and tracing modules share, and what its services export.

Both need settings of their own: shell tasks (this interpreter alone) and a short
heartbeat of the log stream for ``test_task_logs``; every span exported within a
fraction of a second to a receiver in this process for ``test_tracing``. Neither
setting changes what the other module checks, so one platform with both serves the
two, one after the other, instead of a stack each (a start costs CI ~30 s).
"""

from __future__ import annotations

import gzip
import http.server
import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from interlock.devstack import Platform
from interlock.devstack.pytest_plugin import shared_platform

OFFSETS = (2250, 3100, 3150, 3200, 3350)
"""Port offsets of this platform (other tests use others at the same time)."""
LOGS_STREAM_HEARTBEAT_S = 0.5
"""The log stream's heartbeat: short, so a test sees one between a task's lines."""


@dataclass
class TelemetrySink:
    """Every OTLP/HTTP export the services sent: its path and its (unzipped) body."""

    url: str
    exports: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def since(self, start: int) -> list[tuple[str, bytes]]:
        """The exports received after the first ``start``."""
        with self.lock:
            return self.exports[start:]


def _sink_handler(
    sink: list[tuple[str, bytes]], lock: threading.Lock
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            with lock:
                sink.append((self.path, body))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="session")
def telemetry_sink() -> Iterator[TelemetrySink]:
    """A receiver of the platform's spans and log records (it outlives the platform)."""
    exports: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _sink_handler(exports, lock))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield TelemetrySink(f"http://127.0.0.1:{server.server_port}", exports, lock)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def traced_shell_platform(
    request: pytest.FixtureRequest, telemetry_sink: TelemetrySink
) -> Iterator[Platform]:
    """The whole platform with shell tasks allowed and every span exported at once."""
    settings = {
        "INTERLOCK_SHELL_ENABLED": "true",
        "INTERLOCK_SHELL_ALLOWED_COMMANDS": json.dumps([sys.executable]),
        "INTERLOCK_LOGS_STREAM_HEARTBEAT_S": str(LOGS_STREAM_HEARTBEAT_S),
        "INTERLOCK_OTEL_EXPORTER_OTLP_ENDPOINT": telemetry_sink.url,
        "INTERLOCK_TRACE_SAMPLE_RATIO": "1",
        # Export within a fraction of a second rather than the SDK's 5 s.
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_BLRP_SCHEDULE_DELAY": "200",
    }
    yield from shared_platform(request, settings, OFFSETS)
