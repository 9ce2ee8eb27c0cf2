import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from interlock.common.logs import configure_logging, request_id_var


def test_json_lines_carry_service_request_and_trace_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("scheduler", level="INFO", fmt="json")
    tracer = TracerProvider().get_tracer("test")
    token = request_id_var.set("req-42")
    try:
        with tracer.start_as_current_span("work") as span:
            logging.getLogger("interlock.test").info("run %s started", "r1", extra={"run_id": "r1"})
            trace_id = format(span.get_span_context().trace_id, "032x")
    finally:
        request_id_var.reset(token)
        logging.getLogger().handlers.clear()
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "run r1 started"
    assert line["level"] == "INFO"
    assert line["service"] == "scheduler"
    assert line["request_id"] == "req-42"
    assert line["trace_id"] == trace_id
    assert line["run_id"] == "r1"
    assert line["time"].endswith("+00:00")
