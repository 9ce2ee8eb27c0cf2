"""The scheduler's errors, raised by its domain, store and use cases.

The tree::

    InterlockError                     interlock.common's base of every Interlock error
     └── SchedulerError                base of the scheduler's errors
          ├── NotFoundError            what a request names does not exist for its tenant
          │    ├── RunNotFoundError          (another tenant's run is not found either)
          │    ├── DeadLetterNotFoundError
          │    └── PendingDelayNotFoundError the task is no delay waiting for its timer
          ├── ReplayNotAllowedError    the task is no longer dead-lettered, or its run
          │                            cannot resume
          ├── InvalidPageTokenError    a page token this API did not issue
          ├── ForeignEventError        an event names a run of another tenant: it is
          │                            rejected (parked), never applied
          ├── InvalidTransitionError   a state change the state machines do not allow
          └── InvalidDelayError        a delay spec that names no instant

Only the adapters turn these into answers: :mod:`interlock.scheduler.errors` maps them
to problem+json and gRPC status codes.
"""

from __future__ import annotations

from interlock.common.errors import InterlockError

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


class SchedulerError(InterlockError):
    """Base of the scheduler's errors."""


class NotFoundError(SchedulerError):
    """What a request names does not exist (or belongs to another tenant)."""


class RunNotFoundError(NotFoundError):
    """No such run for the caller's tenant."""

    def __init__(self) -> None:
        super().__init__("Run not found.")


class DeadLetterNotFoundError(NotFoundError):
    """No such dead letter for the caller's tenant."""

    def __init__(self) -> None:
        super().__init__("Dead letter not found.")


class PendingDelayNotFoundError(NotFoundError):
    """The task is not a delay waiting for its timer."""

    def __init__(self) -> None:
        super().__init__("Pending delay not found.")


class ReplayNotAllowedError(SchedulerError):
    """The dead letter's task is no longer dead-lettered, or its run cannot resume."""

    def __init__(self) -> None:
        super().__init__("The task is no longer dead-lettered, or its run cannot resume.")


class InvalidPageTokenError(SchedulerError):
    """A page token that this API did not issue (or issued for other filters)."""


class ForeignEventError(SchedulerError):
    """An event names a run that belongs to another tenant than the event's.

    Attributes:
        event_tenant: The tenant the event claims.
        run_tenant: The tenant the run belongs to.
    """

    def __init__(self, event_tenant: str, run_tenant: str) -> None:
        super().__init__(f"the event's tenant {event_tenant!r} is not its run's tenant")
        self.event_tenant = event_tenant
        self.run_tenant = run_tenant


class InvalidTransitionError(SchedulerError):
    """A state change the state machine does not allow."""


class InvalidDelayError(SchedulerError):
    """A delay spec that names no instant (bad time, date, weekday or time zone)."""
