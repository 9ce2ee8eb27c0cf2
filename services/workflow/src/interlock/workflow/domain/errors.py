"""What the workflow domain refuses, as exceptions.

``WorkflowError``
 ├── ``InvalidDefinitionError``    the definition has problems (one :class:`Issue` each)
 ├── ``InvalidInputError``         the run input fails the definition's ``input_schema``
 ├── ``InvalidDocumentError``      the body does not parse
 │    └── ``PayloadTooLargeError``  the body is larger than its limit
 ├── ``UnsupportedMediaTypeError`` neither JSON nor YAML
 ├── ``InvalidPageTokenError``     a page token that this list did not issue
 ├── ``WorkflowExistsError``       create, but the name is taken
 ├── ``WorkflowNotFoundError``     no such workflow (or version) for this tenant
 ├── ``WorkflowArchivedError``     runs cannot start on an archived workflow
 ├── ``RunNotFoundError``          no such run for this tenant
 ├── ``IdempotencyConflictError``  an Idempotency-Key reused with another request
 └── ``TransitionNotAllowedError`` a control action the run's status does not allow

:mod:`interlock.workflow.errors` maps each to its problem+json response.
"""

from __future__ import annotations

from collections.abc import Sequence

from interlock.workflow.domain.issues import Issue


class WorkflowError(Exception):
    """Base of the workflow service's domain errors."""


class InvalidDefinitionError(WorkflowError):
    """The definition has problems.

    Args:
        issues: One entry per problem, each with a JSON Pointer.
    """

    def __init__(self, issues: Sequence[Issue]) -> None:
        super().__init__(f"{len(issues)} problem(s) in the definition")
        self.issues = list(issues)


class InvalidInputError(WorkflowError):
    """The run's input fails the definition's ``input_schema``.

    Args:
        issues: One entry per problem, pointers into the request body (``/input/...``).
    """

    def __init__(self, issues: Sequence[Issue]) -> None:
        super().__init__(f"{len(issues)} problem(s) in the input")
        self.issues = list(issues)


class InvalidDocumentError(WorkflowError):
    """The request body does not parse."""


class PayloadTooLargeError(InvalidDocumentError):
    """The request body is larger than its limit (definition or run input)."""


class UnsupportedMediaTypeError(WorkflowError):
    """The body's media type is not one this endpoint reads.

    Args:
        media_type: What was sent.
        accepted: What would be read.
    """

    def __init__(self, media_type: str, *, accepted: Sequence[str]) -> None:
        super().__init__(f"media type {media_type!r} is not accepted; use {', '.join(accepted)}")


class InvalidPageTokenError(WorkflowError):
    """A page token that is malformed or belongs to another list or filter."""


class WorkflowExistsError(WorkflowError):
    """A workflow with this name already exists (create only)."""


class WorkflowNotFoundError(WorkflowError):
    """No such workflow or version for the caller's tenant."""


class WorkflowArchivedError(WorkflowError):
    """The workflow is archived: no new runs."""


class RunNotFoundError(WorkflowError):
    """No such run for the caller's tenant."""


class IdempotencyConflictError(WorkflowError):
    """The Idempotency-Key was used before with a different request."""


class TransitionNotAllowedError(WorkflowError):
    """The run's status does not allow the requested control action."""
