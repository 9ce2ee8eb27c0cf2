"""RFC 9457 problem details for every error a REST API returns.

Raise :class:`Problem` (or a subclass a service's ``errors`` module defines)
from a route; :func:`install_problem_handlers` turns it, FastAPI's validation
errors, ``HTTPException`` and any unexpected exception into an
``application/problem+json`` response. Unexpected exceptions answer a generic
500 and are logged; their details never reach the client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from interlock.common.logs import request_id_var

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:interlock:problem:"

logger = logging.getLogger(__name__)


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
