"""The scheduler's errors, rooted in :class:`interlock.common.errors.InterlockError`.

The domain, the store and the use cases raise them; the REST adapter answers each with
the RFC 9457 problem its class declares (:mod:`interlock.common.problems`), the gRPC
adapter with the status code of :func:`interlock.common.errors.grpc_code_name`::

    InterlockError
     ├── InvalidPageTokenError          400  invalid-page-token     INVALID_ARGUMENT
     │                                       a page token this list did not issue
     └── SchedulerError                 400  bad-request            INVALID_ARGUMENT
          ├── NotFoundError             404  not-found              NOT_FOUND
          │    ├── RunNotFoundError          404  run-not-found          also another
          │    │                                                         tenant's run
          │    ├── DeadLetterNotFoundError   404  dead-letter-not-found  also another
          │    │                                                         tenant's letter
          │    └── PendingDelayNotFoundError 404  delay-not-found        the task is no
          │                                                              delay waiting
          ├── ReplayNotAllowedError     409  replay-not-allowed     FAILED_PRECONDITION
          │                                  the task is no longer dead-lettered, or its
          │                                  run cannot resume
          ├── ForeignEventError         (consumer only) an event of another tenant than
          │                             its run's: rejected into ``rejected_events``
          ├── InvalidTransitionError    409  transition-not-allowed FAILED_PRECONDITION
          └── InvalidDelayError         422  invalid-delay          INVALID_ARGUMENT
"""

from __future__ import annotations

from interlock.common.errors import InvalidPageTokenError
from interlock.scheduler.domain.errors import (
    DeadLetterNotFoundError,
    ForeignEventError,
    InvalidDelayError,
    InvalidTransitionError,
    NotFoundError,
    PendingDelayNotFoundError,
    ReplayNotAllowedError,
    RunNotFoundError,
    SchedulerError,
)

__all__ = [
    "DeadLetterNotFoundError",
    "ForeignEventError",
    "InvalidDelayError",
    "InvalidPageTokenError",
    "InvalidTransitionError",
    "NotFoundError",
    "PendingDelayNotFoundError",
    "ReplayNotAllowedError",
    "RunNotFoundError",
    "SchedulerError",
]
