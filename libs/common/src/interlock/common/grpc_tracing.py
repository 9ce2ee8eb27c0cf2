"""gRPC client and server spans (OpenTelemetry's gRPC instrumentation, wired once).

A client span per call, its context sent in the call's metadata (``traceparent``); a
server span per call, parented from that metadata. Token validation, task-state
queries, secret resolution and the gateway's ``Check`` all get them. Envoy sends no
trace context to ``Check``, so its span starts a trace of its own (sampled like any
new trace).

Example::

    server = grpc.aio.server(interceptors=aio_server_interceptors())
    channel = traced_channel("127.0.0.1:50051")
"""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry.instrumentation import grpc as instrumentation

__all__ = ["aio_server_interceptors", "server_interceptors", "traced_channel"]

_UNTYPED: Any = instrumentation
"""The instrumentation's functions carry no annotations: called through ``Any``."""


def aio_server_interceptors() -> list[grpc.aio.ServerInterceptor[Any, Any]]:
    """The interceptors of an asyncio server: a span per call."""
    return [_UNTYPED.aio_server_interceptor()]


def server_interceptors() -> list[grpc.ServerInterceptor[Any, Any]]:
    """The interceptors of a thread-pool server: a span per call."""
    return [_UNTYPED.server_interceptor()]


def traced_channel(target: str, **options: Any) -> grpc.aio.Channel:
    """An insecure asyncio channel to ``target`` whose calls make client spans."""
    interceptors: list[grpc.aio.ClientInterceptor] = _UNTYPED.aio_client_interceptors()
    return grpc.aio.insecure_channel(target, interceptors=interceptors, **options)
