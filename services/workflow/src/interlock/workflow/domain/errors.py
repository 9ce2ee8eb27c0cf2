"""The workflow domain's errors; :mod:`interlock.workflow.errors` draws their tree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interlock.common.errors import InterlockError
from interlock.workflow.domain.issues import Issue


class WorkflowError(InterlockError):
    """Base of the workflow service's domain errors (a 400 unless a subclass says otherwise)."""

    status = 400
    title = "Bad request"
    problem_type = "bad-request"


class InvalidDefinitionError(WorkflowError):
    """The definition has problems.

    Args:
        issues: One entry per problem, each with a JSON Pointer.
    """

    status = 422
    title = "Invalid workflow definition"
    problem_type = "invalid-definition"

    def __init__(self, issues: Sequence[Issue]) -> None:
        super().__init__(f"{len(issues)} problem(s) in the definition")
        self.issues = list(issues)

    def problem_extensions(self) -> dict[str, Any]:
        """``errors``: one ``{"pointer", "detail"}`` entry per issue."""
        return {"errors": [issue.as_dict() for issue in self.issues]}


class InvalidInputError(WorkflowError):
    """The run's input fails the definition's ``input_schema``.

    Args:
        issues: One entry per problem, pointers into the request body (``/input/...``).
    """

    status = 422
    title = "Invalid run input"
    problem_type = "invalid-input"

    def __init__(self, issues: Sequence[Issue]) -> None:
        super().__init__(f"{len(issues)} problem(s) in the input")
        self.issues = list(issues)

    def problem_extensions(self) -> dict[str, Any]:
        """``errors``: one ``{"pointer", "detail"}`` entry per issue."""
        return {"errors": [issue.as_dict() for issue in self.issues]}


class InvalidDocumentError(WorkflowError):
    """The request body does not parse."""

    status = 400
    title = "Invalid request body"
    problem_type = "invalid-request"


class PayloadTooLargeError(InvalidDocumentError):
    """The request body is larger than its limit (definition or run input)."""

    status = 413
    title = "Request body too large"
    problem_type = "payload-too-large"


class UnsupportedMediaTypeError(WorkflowError):
    """The body's media type is not one this endpoint reads.

    Args:
        media_type: What was sent.
        accepted: What would be read.
    """

    status = 415
    title = "Unsupported media type"
    problem_type = "unsupported-media-type"

    def __init__(self, media_type: str, *, accepted: Sequence[str]) -> None:
        super().__init__(f"media type {media_type!r} is not accepted; use {', '.join(accepted)}")


class WorkflowExistsError(WorkflowError):
    """A workflow with this name already exists (create only)."""

    status = 409
    title = "Workflow exists"
    problem_type = "workflow-exists"


class WorkflowNotFoundError(WorkflowError):
    """No such workflow or version for the caller's tenant."""

    status = 404
    title = "Workflow not found"
    problem_type = "workflow-not-found"


class WorkflowArchivedError(WorkflowError):
    """The workflow is archived: no new runs."""

    status = 409
    title = "Workflow archived"
    problem_type = "workflow-archived"


class RunNotFoundError(WorkflowError):
    """No such run for the caller's tenant."""

    status = 404
    title = "Run not found"
    problem_type = "run-not-found"


class IdempotencyConflictError(WorkflowError):
    """The Idempotency-Key was used before with a different request."""

    status = 409
    title = "Idempotency key reused"
    problem_type = "idempotency-conflict"


class TransitionNotAllowedError(WorkflowError):
    """The run's status does not allow the requested control action."""

    status = 409
    title = "Transition not allowed"
    problem_type = "transition-not-allowed"


class TasksUnavailableError(WorkflowError):
    """The scheduler, which holds a run's tasks, could not be asked for them (try again)."""

    status = 503
    title = "Run tasks unavailable: the scheduler did not answer"
    problem_type = "tasks-unavailable"
