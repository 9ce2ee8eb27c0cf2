"""RFC 9457 problem details for every error a REST API returns, and their declaration.

A route raises an :class:`~interlock.common.errors.InterlockError` (the domain's own) or
a :class:`Problem` (an adapter's own refusal); :func:`install_problem_handlers` turns
those, FastAPI's validation errors and ``HTTPException`` into an
``application/problem+json`` response. An unexpected exception answers a 500 problem
that carries the request id (see :class:`interlock.common.http.RequestMiddleware`); it
is logged and its details never reach the client.

Each route declares the problems it may answer with :func:`problem_responses`, so the
service's OpenAPI document lists them with the :class:`ProblemDetails` schema.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from interlock.common.errors import InterlockError
from interlock.common.logs import request_id_var

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:interlock:problem:"

GATEWAY_PROBLEMS = (400, 401, 403, 429)
"""What the gateway may answer for any authorized route before the service sees it:
a malformed request (e.g. a header name with an underscore), no or bad credentials, a
role too low, the rate limit."""
PUBLIC_PROBLEMS = (400, 429)
"""What the gateway may answer for a public route: a malformed request, the rate limit."""

PUBLIC_ROUTE: dict[str, Any] = {"security": []}
"""``openapi_extra`` of a route that needs no token (the gateway lets it through)."""
BEARER_SCHEME = "bearer"

logger = logging.getLogger(__name__)


class ProblemDetails(BaseModel):
    """An RFC 9457 problem document, as every error response carries it."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(
        description="URI of the problem type, e.g. `urn:interlock:problem:not-found`."
    )
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(default=None, description="What went wrong this time.")
    instance: str | None = Field(default=None, description="The request's path.")
    request_id: str | None = Field(
        default=None, description="The request's `x-request-id`, for the logs."
    )
    errors: list[dict[str, str]] | None = Field(
        default=None,
        description="Validation problems: one `{pointer, detail}` each, the pointer a "
        "JSON Pointer into the request.",
    )


_DESCRIPTIONS = {
    400: "Bad request: a malformed request, body or parameter, or an invalid page token.",
    401: "Missing, invalid, expired or revoked credentials.",
    403: "The caller's roles do not allow this.",
    404: "No such resource in the caller's tenant.",
    409: "The resource's state does not allow this, or it exists already.",
    413: "The request body is larger than its limit.",
    415: "The body's media type is not one this route reads.",
    422: "The request is well-formed but invalid (the `errors` member says where).",
    429: "Too many requests: try again later.",
    503: "A dependency is unavailable.",
}


_PROBLEM_REF = "#/components/schemas/Problem"


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` declaring problem documents for ``statuses``.

    Example: ``@router.get(..., responses=problem_responses(*GATEWAY_PROBLEMS, 404))``.
    """
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, _title(status)),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": _PROBLEM_REF}}},
        }
        for status in sorted(set(statuses))
    }


def install_openapi_schemas(
    app: FastAPI, schemas: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Add the ``Problem`` schema, and ``schemas``, to the app's OpenAPI document.

    They go into ``components/schemas`` when the document is first built; routes refer
    to them as ``#/components/schemas/<name>`` (:func:`problem_responses` does for
    ``Problem``).

    Args:
        app: The app.
        schemas: More named schemas, e.g. a request body FastAPI does not parse
            itself. Default: none.
    """
    extra = {"Problem": ProblemDetails.model_json_schema(), **(schemas or {})}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                routes=app.routes,
                description=app.description,
            )
            components = document.setdefault("components", {}).setdefault("schemas", {})
            components.update(extra)
            _declare_common_problems(document, components)
            # Every route wants a bearer token (an access token or an API key) unless
            # it says ``security: []`` (public routes).
            document["components"]["securitySchemes"] = {
                BEARER_SCHEME: {"type": "http", "scheme": "bearer"}
            }
            document["security"] = [{BEARER_SCHEME: []}]
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook


def _declare_common_problems(document: dict[str, Any], schemas: dict[str, Any]) -> None:
    # FastAPI declares its own 422 body (HTTPValidationError) on every route with
    # parameters; the handlers below answer a problem document instead, so say that.
    # A route with a body also answers 400 (it does not parse) and 413 (the gateway's
    # or the route's size limit).
    for operation in _operations(document):
        responses = operation["responses"]
        if "422" in responses:
            responses["422"] = problem_responses(422)[422]
        if "requestBody" in operation:
            for status in (400, 413):
                responses.setdefault(str(status), problem_responses(status)[status])
        operation["responses"] = dict(sorted(responses.items()))
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)


def _operations(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path_item in document.get("paths", {}).values()
        for operation in path_item.values()
        if isinstance(operation, dict) and "responses" in operation
    ]


class Problem(Exception):
    """An error answered as problem details.

    Args:
        status: HTTP status code.
        title: Short, human-readable summary of the problem type.
        detail: Explanation of this occurrence. Default: none.
        type_: Short problem type slug, expanded to a URI under
            :data:`PROBLEM_TYPE_BASE`. Default: derived from the status.
        extensions: Extra members, e.g. ``errors`` with one entry per problem.
    """

    def __init__(
        self,
        status: int,
        title: str,
        *,
        detail: str | None = None,
        type_: str | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = PROBLEM_TYPE_BASE + (type_ or _slug(status))
        self.extensions = dict(extensions or {})

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        """The problem as the JSON object sent to the client."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        request_id = request_id_var.get()
        if request_id:
            body["request_id"] = request_id
        body.update(self.extensions)
        return body


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    """Render a problem as an ``application/problem+json`` response."""
    instance = request.url.path if request is not None else None
    return JSONResponse(
        problem.to_dict(instance), status_code=problem.status, media_type=PROBLEM_CONTENT_TYPE
    )


def problem_for(error: InterlockError) -> Problem:
    """The problem answering ``error``, from its class's hints.

    The message becomes the ``detail`` unless the status is 500 or more: an internal
    error's message is for the logs.
    """
    detail = str(error) or None if error.status < 500 else None
    return Problem(
        error.status,
        error.title,
        detail=detail,
        type_=error.problem_type,
        extensions=error.problem_extensions(),
    )


def validation_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """FastAPI/pydantic validation errors as ``{"pointer", "detail"}`` entries.

    The pointer is a JSON Pointer (RFC 6901) into the request part the error
    is about, e.g. ``/body/tasks/0/id``.
    """
    entries = []
    for error in errors:
        location = [str(part).replace("~", "~0").replace("/", "~1") for part in error["loc"]]
        entries.append({"pointer": "/" + "/".join(location), "detail": str(error["msg"])})
    return entries


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error response of ``app`` a problem document."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request)

    async def on_interlock_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InterlockError)
        if exc.status >= 500:
            logger.error("error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(problem_for(exc), request)

    async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        problem = Problem(exc.status_code, _title(exc.status_code), detail=_detail(exc))
        response = problem_response(problem, request)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problem = Problem(
            422,
            "Request validation failed",
            type_="validation",
            detail="The request does not match what this endpoint accepts.",
            extensions={"errors": validation_errors(exc.errors())},
        )
        return problem_response(problem, request)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        problem = Problem(500, "Internal server error", type_="internal")
        return problem_response(problem, request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(InterlockError, on_interlock_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _slug(status: int) -> str:
    return _title(status).lower().replace(" ", "-").replace("'", "")


def _detail(exc: StarletteHTTPException) -> str | None:
    detail = exc.detail
    if not detail or detail == _title(exc.status_code):
        return None
    return str(detail)
