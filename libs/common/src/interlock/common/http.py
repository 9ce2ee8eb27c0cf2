"""The FastAPI application every service serves, with health, metrics and errors.

:func:`create_app` builds an app with ``/healthz`` (liveness: "restart me" when it
fails, see :mod:`interlock.common.supervision`), ``/readyz`` (readiness: "send me no
traffic" while a dependency or a background piece does not work), ``/metrics``
(Prometheus), request ids, tracing and problem+json errors; a service adds its
routers and its lifespan. :func:`serve` runs it with uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlock.common.logs import request_id_var
from interlock.common.metrics import metrics_endpoint, observe_request
from interlock.common.problems import install_problem_handlers
from interlock.common.resources import Resource
from interlock.common.settings import ServiceSettings
from interlock.common.supervision import Liveness, restart_requested

ReadinessCheck = Callable[[], Awaitable[None]]
"""An async probe of one dependency: returns when it is reachable, raises otherwise."""

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_PUBLIC_PATHS = ("/healthz", "/readyz", "/metrics")
KEEP_ALIVE_S = 5
"""How long a service keeps an idle HTTP connection open (uvicorn's default). The
gateway closes idle upstream connections sooner (infra/envoy: 4 s), so it never sends
a request on a connection a service is closing."""

logger = logging.getLogger(__name__)


def create_app(
    settings: ServiceSettings,
    *,
    resources: Sequence[Resource] = (),
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """Build a service's FastAPI app.

    Args:
        settings: The service's settings (name and readiness timeout are used).
        resources: What the service holds open, in dependency order: opened at
            start-up, closed in reverse at shut-down, each probed by ``/readyz``.
            Default: none (ready whenever alive).
        routers: The service's REST routers.

    Returns:
        The app, ready for :func:`serve` or a test client.
    """
    app = FastAPI(
        title=f"Interlock {settings.service_name}",
        lifespan=_lifespan(resources),
        openapi_url=f"/api/v1/{settings.service_name}/openapi.json",
        docs_url=None,
        redoc_url=None,
        telemetry={
            "operation_spans": False,
            "metrics": False,
            "logs": False,
            "exclude": _is_public_path,
        },
    )
    install_problem_handlers(app)
    app.add_api_route(
        "/healthz", _liveness_endpoint(resources), methods=["GET"], include_in_schema=False
    )
    app.add_api_route(
        "/readyz",
        _readiness_endpoint(resources, settings.readiness_timeout_s),
        methods=["GET"],
        include_in_schema=False,
    )
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    for router in routers:
        app.include_router(router)
    app.add_middleware(RequestMiddleware)
    return app


def _is_public_path(scope: Scope) -> bool:
    return scope.get("path") in _PUBLIC_PATHS


async def serve(app: ASGIApp, settings: ServiceSettings) -> None:
    """Serve ``app`` on the settings' host and port until cancelled or signalled."""
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        http="httptools",
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    await uvicorn.Server(config).serve()


class RequestMiddleware:
    """Binds the request id to logs and the response, and records the request's metrics.

    The request id is the gateway's ``x-request-id`` (or a new one); metrics go through
    :func:`interlock.common.metrics.observe_request`. One pure-ASGI layer does both:
    each layer wraps ``send`` and costs a coroutine per request, a measurable share of
    a small request's CPU.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _header(scope, REQUEST_ID_HEADER) or uuid.uuid4().hex
        id_header = (_REQUEST_ID_HEADER_BYTES, request_id.encode())
        status = 500
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            observe_request(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)


def _liveness_endpoint(resources: Sequence[Resource]) -> Callable[[], Awaitable[JSONResponse]]:
    """``/healthz``: 503 only when the process cannot recover by itself.

    That is: a piece gave up (:class:`~interlock.common.supervision.Liveness`), or the
    process is shutting down to be restarted. A dependency that is down is not a
    reason (a new process would find it down too): ``/readyz`` reports those.
    """
    probes = [r for r in resources if isinstance(r, Liveness)]

    async def alive() -> JSONResponse:
        problems: dict[str, str] = {}
        reason = restart_requested()
        if reason is not None:
            problems["process"] = f"restarting: {reason}"
        for probe in probes:
            try:
                probe.check_alive()
            except Exception as exc:  # any failure means "restart me": report it
                problems[getattr(probe, "name", type(probe).__name__)] = str(exc)
        if problems:
            return JSONResponse({"status": "failing", "checks": problems}, status_code=503)
        return JSONResponse({"status": "ok"})

    return alive


def _lifespan(resources: Sequence[Resource]) -> Lifespan:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for resource in resources:
                await stack.enter_async_context(resource)
            yield

    return lifespan


def _readiness_endpoint(
    resources: Sequence[Resource], timeout_s: float
) -> Callable[[], Awaitable[JSONResponse]]:
    async def ready() -> JSONResponse:
        results = await asyncio.gather(*(_run_check(r.check, timeout_s) for r in resources))
        report = {
            resource.name: result for resource, result in zip(resources, results, strict=True)
        }
        healthy = all(result == "ok" for result in report.values())
        body: dict[str, Any] = {"status": "ready" if healthy else "not ready", "checks": report}
        return JSONResponse(body, status_code=200 if healthy else 503)

    return ready


async def _run_check(check: ReadinessCheck, timeout_s: float) -> str:
    try:
        await asyncio.wait_for(check(), timeout_s)
    except TimeoutError:
        return f"timed out after {timeout_s:g}s"
    except Exception as exc:  # any failure means "not ready": report it, never raise
        logger.warning("readiness check failed: %s", exc)
        return f"failed: {type(exc).__name__}"
    return "ok"


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            decoded: str = value.decode("latin-1")
            return decoded
    return None
