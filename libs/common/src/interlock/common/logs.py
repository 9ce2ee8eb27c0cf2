"""Structured logs: one JSON object per line, with request and trace ids.

Call :func:`configure_logging` once at process start. Every record then carries
``service``, ``request_id`` (from the gateway's ``x-request-id``) and the
current OpenTelemetry ``trace_id``/``span_id`` when there is one.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("interlock_request_id", default=None)
"""The id of the request being served, set by the HTTP middleware."""

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s %(trace_id)s] %(message)s"
_JSON_FIELDS = "%(levelname)s %(name)s %(message)s"


class _ContextFilter(logging.Filter):
    """Adds the service name, request id and trace context to every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        record.request_id = request_id_var.get()
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        else:
            record.trace_id = None
            record.span_id = None
        return True


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger (uvicorn's included) to stdout in the chosen format.

    Args:
        service: Name written into every record.
        level: Root level. Default: ``"INFO"``.
        fmt: ``"json"`` (default) or ``"text"``.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_ContextFilter(service))
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                _JSON_FIELDS,
                rename_fields={"levelname": "level"},
                timestamp="time",  # ISO 8601 in UTC, first in every line
            )
        )
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # aiokafka reports every transient broker hiccup at ERROR; our code logs what matters.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
