"""The scheduler's errors as the adapters answer them: problem+json and gRPC status codes.

The tree (:mod:`interlock.scheduler.domain.errors`) and what each error answers::

    SchedulerError                        HTTP  problem type          gRPC
     ├── NotFoundError                    404   not-found             NOT_FOUND
     │    ├── RunNotFoundError            404   run-not-found         NOT_FOUND
     │    ├── DeadLetterNotFoundError     404   dead-letter-not-found NOT_FOUND
     │    └── PendingDelayNotFoundError   404   delay-not-found       NOT_FOUND
     ├── ReplayNotAllowedError            409   conflict              FAILED_PRECONDITION
     ├── InvalidPageTokenError            400   invalid-page-token    INVALID_ARGUMENT
     ├── ForeignEventError                (consumer only: the event is rejected and kept)
     ├── InvalidTransitionError           409   conflict              FAILED_PRECONDITION
     └── InvalidDelayError                422   invalid-delay         INVALID_ARGUMENT

Another tenant's run or dead letter is not found, like an unknown one.
"""

from __future__ import annotations

from typing import TypeVar

import grpc
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from interlock.common.problems import Problem, problem_response
from interlock.scheduler.domain.errors import (
    DeadLetterNotFoundError,
    InvalidDelayError,
    InvalidPageTokenError,
    InvalidTransitionError,
    NotFoundError,
    PendingDelayNotFoundError,
    ReplayNotAllowedError,
    RunNotFoundError,
    SchedulerError,
)

__all__ = ["grpc_status_for", "install_error_handlers", "problem_for"]

_V = TypeVar("_V")

_HTTP: dict[type[SchedulerError], tuple[int, str, str]] = {
    NotFoundError: (404, "Not found", "not-found"),
    RunNotFoundError: (404, "Run not found", "run-not-found"),
    DeadLetterNotFoundError: (404, "Dead letter not found", "dead-letter-not-found"),
    PendingDelayNotFoundError: (404, "Pending delay not found", "delay-not-found"),
    ReplayNotAllowedError: (409, "Conflict", "conflict"),
    InvalidTransitionError: (409, "Conflict", "conflict"),
    InvalidPageTokenError: (400, "Invalid page token", "invalid-page-token"),
    InvalidDelayError: (422, "Invalid delay", "invalid-delay"),
}

_GRPC: dict[type[SchedulerError], grpc.StatusCode] = {
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    ReplayNotAllowedError: grpc.StatusCode.FAILED_PRECONDITION,
    InvalidTransitionError: grpc.StatusCode.FAILED_PRECONDITION,
    InvalidPageTokenError: grpc.StatusCode.INVALID_ARGUMENT,
    InvalidDelayError: grpc.StatusCode.INVALID_ARGUMENT,
}


def _nearest(table: dict[type[SchedulerError], _V], error: SchedulerError, default: _V) -> _V:
    """The entry of ``error``'s class, else of its nearest ancestor in ``table``."""
    for kind in type(error).__mro__:
        found = table.get(kind)
        if found is not None:
            return found
    return default


def problem_for(error: SchedulerError) -> Problem:
    """The problem answering ``error``."""
    status, title, type_ = _nearest(_HTTP, error, (500, "Internal error", "internal-error"))
    return Problem(status, title, detail=str(error), type_=type_)


def grpc_status_for(error: SchedulerError) -> grpc.StatusCode:
    """The gRPC status code answering ``error``."""
    return _nearest(_GRPC, error, grpc.StatusCode.INTERNAL)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every :class:`SchedulerError` raised by a route as its problem."""

    async def on_scheduler_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SchedulerError)
        return problem_response(problem_for(exc), request)

    app.add_exception_handler(SchedulerError, on_scheduler_error)
