"""The FastAPI application every service serves, with health, metrics and errors.

:func:`create_app` builds an app with ``/healthz`` (liveness: "restart me" when it
fails, see :mod:`interlock.common.supervision`), ``/readyz`` (readiness: "send me no
traffic" while a dependency or a background piece does not work), ``/metrics``
(Prometheus), request ids, tracing and problem+json errors; ``/health/<service>`` is
readiness again under the path the gateway serves it on, so the service's OpenAPI
document describes it. A service adds its routers and its lifespan. :func:`serve`
runs it with uvicorn.

Every request passes one guard first (:class:`RequestMiddleware`): a NUL character
in the path or query, or a JSON body that :mod:`interlock.common.strict_json` refuses
(``NaN``, huge numbers, NUL, lone surrogates) or larger than
:data:`MAX_JSON_BODY_BYTES`, is answered 400/413 problem+json before any route runs.
An exception no handler took is answered 500 problem+json by the same layer, so the
server never sees it: uvicorn closes the connection of a request whose exception
reaches it without saying ``Connection: close``, and the gateway, which keeps
connections alive, then sent the next request (often someone else's) into the
closing socket and answered it 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, Literal

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlock.common import strict_json
from interlock.common.identity import IdentityVerifier, JwksKeys
from interlock.common.logs import request_id_var
from interlock.common.metrics import metrics_endpoint, observe_request
from interlock.common.problems import (
    PROBLEM_CONTENT_TYPE,
    PUBLIC_PROBLEMS,
    PUBLIC_ROUTE,
    Problem,
    install_openapi_schemas,
    install_problem_handlers,
    problem_responses,
)
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

MAX_JSON_BODY_BYTES = 1_048_576
"""Largest JSON request body a service reads (413 beyond): the gateway's limit too."""

logger = logging.getLogger(__name__)


def create_app(
    settings: ServiceSettings,
    *,
    resources: Sequence[Resource] = (),
    routers: Sequence[APIRouter] = (),
    openapi_schemas: Mapping[str, Mapping[str, Any]] | None = None,
    identity: IdentityVerifier | None = None,
) -> FastAPI:
    """Build a service's FastAPI app.

    Args:
        settings: The service's settings (name, readiness timeout, IAM's keys are used).
        resources: What the service holds open, in dependency order: opened at
            start-up, closed in reverse at shut-down, each probed by ``/readyz``.
            Default: none (ready whenever alive).
        routers: The service's REST routers.
        openapi_schemas: Named schemas routes refer to in ``openapi_extra``, added to
            the OpenAPI document with the ``Problem`` schema. Default: none.
        identity: What verifies callers' identity tokens (``require_principal``); its
            key source, when a resource, is opened before ``resources``. Default: one
            with :meth:`JwksKeys.from_settings`.

    Returns:
        The app, ready for :func:`serve` or a test client.
    """
    if identity is None:
        identity = IdentityVerifier(JwksKeys.from_settings(settings), issuer=settings.jwt_issuer)
    opened = list(resources)
    if isinstance(identity.keys, Resource):
        # Opened first, but not a readiness check: IAM down must not make every
        # service unready (a known key verifies without IAM).
        opened.insert(0, identity.keys)
    app = FastAPI(
        title=f"Interlock {settings.service_name}",
        lifespan=_lifespan(opened),
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
    app.state.identity = identity
    install_problem_handlers(app)
    install_openapi_schemas(app, openapi_schemas)
    app.add_api_route(
        "/healthz", _liveness_endpoint(resources), methods=["GET"], include_in_schema=False
    )
    readiness = _readiness_endpoint(resources, settings.readiness_timeout_s)
    app.add_api_route("/readyz", readiness, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        f"/health/{settings.service_name}",
        readiness,
        methods=["GET"],
        tags=["health"],
        summary="Readiness, as the gateway serves it",
        response_model=Readiness,
        responses={
            503: {"model": Readiness, "description": "A dependency is unreachable."},
            **problem_responses(*PUBLIC_PROBLEMS),
        },
        openapi_extra=PUBLIC_ROUTE,
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
    await uvicorn.Server(server_config(app, settings)).serve()


def server_config(app: ASGIApp, settings: ServiceSettings) -> uvicorn.Config:
    """How :func:`serve` runs uvicorn: the settings' address, httptools, keep-alive."""
    return uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        http="httptools",
        timeout_keep_alive=KEEP_ALIVE_S,
    )


class RequestMiddleware:
    """Binds the request id, guards the input, answers unhandled errors, records metrics.

    The 500 is a problem document carrying the request id.
    The request id is the gateway's ``x-request-id`` (or a new one); metrics go through
    :func:`interlock.common.metrics.observe_request`. One pure-ASGI layer does all of
    it: each layer wraps ``send`` and costs a coroutine per request, a measurable share
    of a small request's CPU.
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
        response_started = False
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            refusal = _refused_target(scope)
            if refusal is None and _carries_json(scope):
                receive, refusal = await _guard_json_body(receive)
            if refusal is not None:
                await _send_problem(send_with_id, refusal, scope)
            else:
                await self._app(scope, receive, send_with_id)
        except Exception:
            if response_started:
                raise  # half a response is out: only closing the connection can end it
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            await _send_problem(
                send_with_id, Problem(500, "Internal server error", type_="internal"), scope
            )
        finally:
            observe_request(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)


def _refused_target(scope: Scope) -> Problem | None:
    if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
        return Problem(
            400,
            "Invalid request target",
            type_="invalid-request-target",
            detail="The path or a query parameter holds a NUL character (%00).",
        )
    return None


def _carries_json(scope: Scope) -> bool:
    """Whether FastAPI would read the body as JSON: a JSON media type, or none at all."""
    if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
        return False
    content_type = _header(scope, "content-type")
    if content_type is None:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


async def _guard_json_body(receive: Receive) -> tuple[Receive, Problem | None]:
    """Read the whole body; refuse it, or hand it on as one message to the app."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return _replay(message, receive), None  # the client left: let the app see it
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_JSON_BODY_BYTES:
            return receive, Problem(
                413,
                "Request body too large",
                type_="payload-too-large",
                detail=f"A JSON request body may hold at most {MAX_JSON_BODY_BYTES} bytes.",
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    if body.strip():
        try:
            strict_json.loads(body)
        except strict_json.UnacceptableJsonError as error:
            return receive, Problem(
                400, "Invalid JSON body", type_="invalid-json", detail=f"Refused: {error}."
            )
    return _replay({"type": "http.request", "body": body, "more_body": False}, receive), None


def _replay(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that returns ``first`` once, then what the server sends next."""
    pending: list[Message] = [first]

    async def replaying() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replaying


async def _send_problem(send: Send, problem: Problem, scope: Scope) -> None:
    body = json.dumps(problem.to_dict(scope.get("path"))).encode()
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [
                (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Readiness(BaseModel):
    """Whether the service can serve: each dependency's check."""

    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(
        description='By dependency: "ok", "timed out after <n>s" or "failed: <error type>".'
    )


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


RESOURCE_CLOSE_TIMEOUT_S = 30.0
"""How long shut-down waits for one resource to close before it logs and goes on."""


def _lifespan(resources: Sequence[Resource]) -> Lifespan:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for resource in resources:
                await resource.__aenter__()
                stack.push_async_exit(_bounded_close(resource))
            yield

    return lifespan


def _bounded_close(resource: Resource) -> Callable[..., Awaitable[bool]]:
    """``resource``'s exit, given up after :data:`RESOURCE_CLOSE_TIMEOUT_S`.

    A resource that never finishes closing (a connection never handed back, a task
    that ignores its cancellation) must not hold the process's exit for ever.
    """

    async def close(
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        try:
            await asyncio.wait_for(
                resource.__aexit__(exc_type, exc, traceback), RESOURCE_CLOSE_TIMEOUT_S
            )
        except TimeoutError:
            logger.error("a resource did not close in time", extra={"resource": resource.name})
        return False

    return close


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
