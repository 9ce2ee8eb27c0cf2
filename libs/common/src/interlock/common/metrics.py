"""Prometheus metrics: HTTP request figures and the ``/metrics`` exposition."""

from __future__ import annotations

import functools

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

HTTP_REQUESTS = Counter(
    "interlock_http_requests_total",
    "HTTP requests served, by route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "interlock_http_request_duration_seconds",
    "Time to serve an HTTP request, by route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

_UNMATCHED = "unmatched"


def observe_request(scope: Scope, status: int, seconds: float) -> None:
    """Count and time one served request by its route *template*, so labels stay bounded.

    Args:
        scope: The request's ASGI scope, after routing (``route`` set when one matched).
        status: The response status (500 when none was sent).
        seconds: Time taken to serve it.
    """
    template = getattr(scope.get("route"), "path", _UNMATCHED)
    counter, latency = _series(scope["method"], template, status)
    counter.inc()
    latency.observe(seconds)


@functools.lru_cache(maxsize=1024)
def _series(method: str, template: str, status: int) -> tuple[Counter, Histogram]:
    # labels() validates and locks on every call; a request only needs the lookup.
    return (
        HTTP_REQUESTS.labels(method, template, str(status)),
        HTTP_LATENCY.labels(method, template),
    )


async def metrics_endpoint(_: Request) -> Response:
    """Serve every metric of the process in the Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
