"""The scheduler's errors; :mod:`interlock.scheduler.errors` draws their tree.

Each class carries the hints the adapters answer it with (HTTP status, problem type,
gRPC code by the status), none of which the domain or the store looks at.
"""

from __future__ import annotations

from interlock.common.errors import InterlockError

__all__ = [
    "DeadLetterNotFoundError",
    "ForeignEventError",
    "InvalidDelayError",
    "InvalidTransitionError",
    "NotFoundError",
    "PendingDelayNotFoundError",
    "ReplayNotAllowedError",
    "RunNotFoundError",
    "SchedulerError",
]


class SchedulerError(InterlockError):
    """Base of the scheduler's errors (a 400 unless a subclass says otherwise)."""

    status = 400
    title = "Bad request"
    problem_type = "bad-request"


class NotFoundError(SchedulerError):
    """What a request names does not exist (or belongs to another tenant)."""

    status = 404
    title = "Not found"
    problem_type = "not-found"


class RunNotFoundError(NotFoundError):
    """No such run for the caller's tenant."""

    title = "Run not found"
    problem_type = "run-not-found"

    def __init__(self) -> None:
        super().__init__("Run not found.")


class DeadLetterNotFoundError(NotFoundError):
    """No such dead letter for the caller's tenant."""

    title = "Dead letter not found"
    problem_type = "dead-letter-not-found"

    def __init__(self) -> None:
        super().__init__("Dead letter not found.")


class PendingDelayNotFoundError(NotFoundError):
    """The task is not a delay waiting for its timer."""

    title = "Pending delay not found"
    problem_type = "delay-not-found"

    def __init__(self) -> None:
        super().__init__("Pending delay not found.")


class ReplayNotAllowedError(SchedulerError):
    """The dead letter's task is no longer dead-lettered, or its run cannot resume."""

    status = 409
    title = "Replay not allowed"
    problem_type = "replay-not-allowed"

    def __init__(self) -> None:
        super().__init__("The task is no longer dead-lettered, or its run cannot resume.")


class ForeignEventError(SchedulerError):
    """An event names a run that belongs to another tenant than the event's.

    The consumer rejects such an event (keeps it in ``rejected_events``); no adapter
    answers it.

    Attributes:
        event_tenant: The tenant the event claims.
        run_tenant: The tenant the run belongs to.
    """

    status = 403
    title = "Foreign event"
    problem_type = "foreign-event"

    def __init__(self, event_tenant: str, run_tenant: str) -> None:
        super().__init__(f"the event's tenant {event_tenant!r} is not its run's tenant")
        self.event_tenant = event_tenant
        self.run_tenant = run_tenant


class InvalidTransitionError(SchedulerError):
    """A state change the state machine does not allow."""

    status = 409
    title = "Transition not allowed"
    problem_type = "transition-not-allowed"


class InvalidDelayError(SchedulerError):
    """A delay spec that names no instant (bad time, date, weekday or time zone)."""

    status = 422
    title = "Invalid delay"
    problem_type = "invalid-delay"
