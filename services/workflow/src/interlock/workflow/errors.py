"""The workflow service's domain errors as RFC 9457 problem+json responses.

=============================  ======  ====================
error                          status  problem type
=============================  ======  ====================
InvalidDefinitionError         422     invalid-definition
InvalidInputError              422     invalid-input
InvalidDocumentError           400     invalid-request
PayloadTooLargeError           413     payload-too-large
UnsupportedMediaTypeError      415     unsupported-media-type
InvalidPageTokenError          400     invalid-page-token
WorkflowExistsError            409     workflow-exists
WorkflowNotFoundError          404     workflow-not-found
WorkflowArchivedError          409     workflow-archived
RunNotFoundError               404     run-not-found
IdempotencyConflictError       409     idempotency-conflict
TransitionNotAllowedError      409     transition-not-allowed
=============================  ======  ====================

Validation problems carry ``errors``: one ``{"pointer", "detail"}`` entry per problem.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from interlock.common.problems import Problem, problem_response
from interlock.workflow.domain import (
    IdempotencyConflictError,
    InvalidDefinitionError,
    InvalidDocumentError,
    InvalidInputError,
    InvalidPageTokenError,
    PayloadTooLargeError,
    RunNotFoundError,
    TransitionNotAllowedError,
    UnsupportedMediaTypeError,
    WorkflowArchivedError,
    WorkflowError,
    WorkflowExistsError,
    WorkflowNotFoundError,
)

_STATUS: dict[type[WorkflowError], tuple[int, str, str]] = {
    InvalidDefinitionError: (422, "Invalid workflow definition", "invalid-definition"),
    InvalidInputError: (422, "Invalid run input", "invalid-input"),
    InvalidDocumentError: (400, "Invalid request body", "invalid-request"),
    PayloadTooLargeError: (413, "Request body too large", "payload-too-large"),
    UnsupportedMediaTypeError: (415, "Unsupported media type", "unsupported-media-type"),
    InvalidPageTokenError: (400, "Invalid page token", "invalid-page-token"),
    WorkflowExistsError: (409, "Workflow exists", "workflow-exists"),
    WorkflowNotFoundError: (404, "Workflow not found", "workflow-not-found"),
    WorkflowArchivedError: (409, "Workflow archived", "workflow-archived"),
    RunNotFoundError: (404, "Run not found", "run-not-found"),
    IdempotencyConflictError: (409, "Idempotency key reused", "idempotency-conflict"),
    TransitionNotAllowedError: (409, "Transition not allowed", "transition-not-allowed"),
}


def problem_for(error: WorkflowError) -> Problem:
    """The problem answering ``error``."""
    status, title, type_ = _STATUS.get(type(error), (400, "Bad request", "bad-request"))
    if isinstance(error, InvalidDefinitionError | InvalidInputError):
        return Problem(
            status,
            title,
            detail=str(error),
            type_=type_,
            extensions={"errors": [issue.as_dict() for issue in error.issues]},
        )
    return Problem(status, title, detail=str(error), type_=type_)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every :class:`WorkflowError` raised by a route as its problem."""

    async def on_workflow_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WorkflowError)
        return problem_response(problem_for(exc), request)

    app.add_exception_handler(WorkflowError, on_workflow_error)
