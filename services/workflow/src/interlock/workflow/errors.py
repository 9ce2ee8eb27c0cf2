"""The workflow service's errors, rooted in :class:`interlock.common.errors.InterlockError`.

The domain and the store raise them; the REST adapter answers each with the RFC 9457
problem its class declares (``interlock.common.problems``)::

    InterlockError
     ├── InvalidPageTokenError         400  invalid-page-token      a page token this list
     │                                                              did not issue
     └── WorkflowError                 400  bad-request
          ├── InvalidDefinitionError    422  invalid-definition      one ``errors`` entry per
          │                                                          problem
          ├── InvalidInputError         422  invalid-input           the run input fails the
          │                                                          definition's input_schema
          ├── InvalidDocumentError      400  invalid-request         the body does not parse
          │    └── PayloadTooLargeError 413  payload-too-large       larger than its limit
          ├── UnsupportedMediaTypeError 415  unsupported-media-type  neither JSON nor YAML
          ├── WorkflowExistsError       409  workflow-exists         create, but the name is
          │                                                          taken
          ├── WorkflowNotFoundError     404  workflow-not-found      also another tenant's
          ├── WorkflowArchivedError     409  workflow-archived       no new runs
          ├── RunNotFoundError          404  run-not-found           also another tenant's
          ├── IdempotencyConflictError  409  idempotency-conflict    an Idempotency-Key reused
          │                                                          with another request
          ├── TransitionNotAllowedError 409  transition-not-allowed  a control action the
          │                                                          run's status forbids
          └── TasksUnavailableError     503  tasks-unavailable       the scheduler, asked
                                                                     for a run's tasks, did
                                                                     not answer

Validation problems carry ``errors``: one ``{"pointer", "detail"}`` entry per problem.
"""

from __future__ import annotations

from interlock.common.errors import InvalidPageTokenError
from interlock.workflow.domain.errors import (
    IdempotencyConflictError,
    InvalidDefinitionError,
    InvalidDocumentError,
    InvalidInputError,
    PayloadTooLargeError,
    RunNotFoundError,
    TasksUnavailableError,
    TransitionNotAllowedError,
    UnsupportedMediaTypeError,
    WorkflowArchivedError,
    WorkflowError,
    WorkflowExistsError,
    WorkflowNotFoundError,
)

__all__ = [
    "IdempotencyConflictError",
    "InvalidDefinitionError",
    "InvalidDocumentError",
    "InvalidInputError",
    "InvalidPageTokenError",
    "PayloadTooLargeError",
    "RunNotFoundError",
    "TasksUnavailableError",
    "TransitionNotAllowedError",
    "UnsupportedMediaTypeError",
    "WorkflowArchivedError",
    "WorkflowError",
    "WorkflowExistsError",
    "WorkflowNotFoundError",
]
