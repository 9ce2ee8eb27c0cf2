"""One run is one trace: the platform's spans, exported over OTLP/HTTP, followed end to end.

The stack (the seven services, Envoy, real workers; shared with ``test_task_logs``,
see ``conftest.py``) has every service's exporter pointed at a receiver in this
process; what arrives is decoded with ``opentelemetry-proto``. A 3-task run whose middle task fails
once (an HTTP call answered 500, then 200) and is scheduled again by its retry timer
must give one trace holding the workflow, scheduler and worker spans, the retried
task's included, each span's parent in the trace up to the REST root. Services ship
their log records to the same receiver.
"""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from interlock.devstack import Platform as SharedPlatform

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    span: Span

    @property
    def attributes(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for attribute in self.span.attributes:
            kind = attribute.value.WhichOneof("value")
            values[attribute.key] = getattr(attribute.value, kind) if kind else None
        return values


class Exports(Protocol):
    """The OTLP/HTTP exports the services sent (``conftest.TelemetrySink``)."""

    def since(self, start: int) -> list[tuple[str, bytes]]: ...


@dataclass
class Receiver:
    """What the services exported: spans, and log records' trace ids."""

    sink: Exports
    spans: list[ReceivedSpan] = field(default_factory=list)
    log_trace_ids: set[bytes] = field(default_factory=set)
    decoded: int = 0
    """How many of the sink's exports are decoded into the two above."""

    def refresh(self) -> None:
        exports = self.sink.since(self.decoded)
        self.decoded += len(exports)
        for path, body in exports:
            self.take(path, body)

    def take(self, path: str, body: bytes) -> None:
        if path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                service = next(
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                )
                for scope in resource_spans.scope_spans:
                    self.spans += [ReceivedSpan(service, span) for span in scope.spans]
        elif path == "/v1/logs":
            logs = ExportLogsServiceRequest.FromString(body)
            for resource_logs in logs.resource_logs:
                for scope_logs in resource_logs.scope_logs:
                    self.log_trace_ids |= {r.trace_id for r in scope_logs.log_records}

    def trace(self, trace_id: bytes) -> list[ReceivedSpan]:
        self.refresh()
        return [s for s in self.spans if s.span.trace_id == trace_id]

    def of_run(self, run_id: str) -> list[ReceivedSpan]:
        self.refresh()
        return [s for s in self.spans if s.attributes.get("interlock.run_id") == run_id]

    def logged(self, trace_id: bytes) -> bool:
        self.refresh()
        return trace_id in self.log_trace_ids


class _FailsOnce(http.server.BaseHTTPRequestHandler):
    """Answers 500 to its first request, 200 to every later one."""

    calls = 0

    def do_GET(self) -> None:
        type(self).calls += 1
        self.send_response(500 if type(self).calls == 1 else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass(frozen=True)
class Platform:
    client: httpx.Client
    receiver: Receiver
    flaky_url: str


@pytest.fixture(scope="module")
def platform(traced_shell_platform: SharedPlatform, telemetry_sink: Exports) -> Iterator[Platform]:
    flaky = _serve(_FailsOnce)
    try:
        with httpx.Client(
            base_url=traced_shell_platform.url, trust_env=False, timeout=30
        ) as client:
            client.headers["authorization"] = f"Bearer {traced_shell_platform.login()}"
            yield Platform(
                client, Receiver(telemetry_sink), f"http://127.0.0.1:{flaky.server_port}/flaky"
            )
    finally:
        flaky.shutdown()


def _eventually(check: Any, what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _run_succeeded(platform: Platform) -> str:
    name = f"traced-{uuid.uuid4().hex[:8]}"
    definition = f"""
name: {name}
tasks:
  - {{id: prepare, type: noop}}
  - id: call
    type: http
    depends_on: [prepare]
    params: {{url: "{platform.flaky_url}"}}
    retry: {{max_attempts: 3, initial_interval: 100ms}}
  - {{id: finish, type: noop, depends_on: [call]}}
"""
    defined = platform.client.post(
        "/api/v1/workflows", content=definition, headers={"content-type": "application/yaml"}
    )
    assert defined.status_code == 201, defined.text
    started = platform.client.post(f"/api/v1/workflows/{name}/runs", json={"input": {}})
    assert started.status_code == 201, started.text
    run_id: str = started.json()["run_id"]

    def ended() -> str | None:
        status: str = platform.client.get(f"/api/v1/runs/{run_id}").json()["status"]
        return status if status in {"succeeded", "failed", "cancelled"} else None

    assert _eventually(ended, f"run {run_id} to end") == "succeeded"
    return run_id


def _chain_is_whole(spans: list[ReceivedSpan]) -> str | None:
    """Why the spans do not form one tree under one REST root, or ``None`` when they do."""
    ids = {s.span.span_id for s in spans}
    roots = [s for s in spans if not s.span.parent_span_id]
    if len(roots) != 1:
        return f"{len(roots)} roots"
    orphans = [
        s.span.name for s in spans if s.span.parent_span_id and s.span.parent_span_id not in ids
    ]
    return f"spans whose parent is missing: {orphans}" if orphans else None


def _executed(spans: list[ReceivedSpan], task_id: str) -> list[int]:
    return sorted(
        s.attributes["interlock.attempt"]
        for s in spans
        if s.service == "worker"
        and s.span.name.startswith("execute ")
        and s.attributes.get("interlock.task_id") == task_id
    )


def test_a_run_with_a_retried_task_is_one_trace_with_an_unbroken_parent_chain(
    platform: Platform,
) -> None:
    run_id = _run_succeeded(platform)
    receiver = platform.receiver
    trace_ids = _eventually(
        lambda: {s.span.trace_id for s in receiver.of_run(run_id)}, "the run's spans"
    )
    assert len(trace_ids) == 1, f"the run's spans are in {len(trace_ids)} traces"
    (trace_id,) = trace_ids

    def complete() -> list[ReceivedSpan] | None:
        spans = receiver.trace(trace_id)
        done = (
            _executed(spans, "call") == [1, 2]
            and _executed(spans, "finish") == [1]
            and {"workflow", "scheduler", "worker"} <= {s.service for s in spans}
            and _chain_is_whole(spans) is None
        )
        return spans if done else None

    spans = _eventually(complete, "a whole trace", timeout_s=30)
    (root,) = [s for s in spans if not s.span.parent_span_id]
    assert root.service == "workflow"
    assert root.span.kind == Span.SPAN_KIND_SERVER
    assert _executed(spans, "prepare") == [1]
    by_id = {s.span.span_id: s for s in spans}
    retried = next(
        s
        for s in spans
        if s.service == "worker"
        and s.span.name.startswith("execute ")
        and s.attributes.get("interlock.task_id") == "call"
        and s.attributes.get("interlock.attempt") == 2
    )
    path = []
    current: ReceivedSpan | None = retried
    while current is not None:
        path.append((current.service, current.span.name))
        current = by_id.get(current.span.parent_span_id)
    # Attempt 2 was scheduled by the retry timer: it hangs off the run's trace context
    # the scheduler kept, through the scheduler's span of workflow.started.
    assert ("scheduler", "workflow.started process") in path, path
    assert path[-1] == ("workflow", root.span.name), path
    assert any(s.attributes.get("interlock.tenant") for s in spans)
    assert _eventually(lambda: receiver.logged(trace_id), "a log record of the run")
