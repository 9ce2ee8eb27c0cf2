"""The one base of every Interlock error, and the errors of the shared plumbing.

Every service roots its own tree (its ``errors`` module draws it) in
:class:`InterlockError`. An error carries hints for the edges: the HTTP status, title
and problem type of its RFC 9457 problem document, and the gRPC status code. The
domain and the store raise these errors knowing nothing of HTTP or gRPC; only the REST
adapter (:func:`interlock.common.problems.problem_for`) and the gRPC adapters
(:func:`grpc_code_name`) turn them into answers. An exception that is no
``InterlockError`` answers a 500 problem carrying the request id, and its message
never reaches the client.

The tree of this module::

    InterlockError                  base of every Interlock error; 500 unless a subclass
     │                              says otherwise
     ├── InvalidPageTokenError      400  a page token this list did not issue (garbage,
     │                                   forged, or issued for other filters)
     ├── InvalidDurationError       422  not a duration such as 500ms, 5m or 1h30m
     │                                   (also a ValueError)
     ├── EventDecodeError           a Kafka record is not an Interlock event:
     │    │                         skip it or dead-letter it, never retry it
     │    ├── MalformedEventError   a CloudEvents header is missing or invalid, the
     │    │                         time is not RFC 3339, the payload does not parse
     │    └── UnknownEventTypeError ``ce_type`` names no type in ``interlock.common.topics``
     ├── PublishError               the broker did not acknowledge every record of a batch
     ├── TransactionRequiredError   the outbox or inbox was used outside a transaction
     └── MigrationError             a migration file is misnamed, a version repeats, or an
                                    applied migration was edited afterwards

Errors of the client libraries underneath (``aiokafka.errors.KafkaError``,
``asyncpg.PostgresError``, ``pymongo.errors.PyMongoError``) pass through unchanged
unless a function documents otherwise.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "EventDecodeError",
    "InterlockError",
    "InvalidDurationError",
    "InvalidPageTokenError",
    "MalformedEventError",
    "MigrationError",
    "PublishError",
    "TransactionRequiredError",
    "UnknownEventTypeError",
    "grpc_code_name",
]


class InterlockError(Exception):
    """Base class of every Interlock error.

    Subclasses set the class attributes below; the message (``str(error)``) is the
    problem's ``detail`` and must be safe to show to the caller when ``status`` is
    below 500.
    """

    status: ClassVar[int] = 500
    """HTTP status of the problem document. Default: 500."""
    title: ClassVar[str] = "Internal server error"
    """Short summary of the problem type, the same for every occurrence."""
    problem_type: ClassVar[str] = "internal"
    """Slug of the problem type, expanded to ``urn:interlock:problem:<slug>``."""
    grpc_code: ClassVar[str | None] = None
    """Name of the ``grpc.StatusCode`` answered by gRPC adapters. Default: derived
    from ``status`` by :func:`grpc_code_name`."""

    def problem_extensions(self) -> dict[str, Any]:
        """Extra members of the problem document (e.g. ``errors``). Default: none."""
        return {}


_GRPC_CODE_BY_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "FAILED_PRECONDITION",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def grpc_code_name(error: InterlockError) -> str:
    """The name of the ``grpc.StatusCode`` that answers ``error``.

    The error's own :attr:`~InterlockError.grpc_code`, else the usual code for its HTTP
    status (the mapping of google.rpc.Code), else ``INTERNAL``. A name rather than the
    enum keeps ``grpc`` out of the domain and the store.
    """
    return error.grpc_code or _GRPC_CODE_BY_STATUS.get(error.status, "INTERNAL")


class InvalidPageTokenError(InterlockError):
    """A page token that is malformed, forged, or was issued for another list or filter."""

    status = 400
    title = "Invalid page token"
    problem_type = "invalid-page-token"


class InvalidDurationError(InterlockError, ValueError):
    """Text that is not a duration of :mod:`interlock.common.durations`' grammar."""

    status = 422
    title = "Invalid duration"
    problem_type = "invalid-duration"


class EventDecodeError(InterlockError):
    """A Kafka record could not be decoded into an event.

    Consumers log and skip (or dead-letter) such records: retrying cannot help.

    Attributes:
        topic: Topic the record came from, when known.
    """

    def __init__(self, message: str, *, topic: str | None = None) -> None:
        super().__init__(message)
        self.topic = topic


class MalformedEventError(EventDecodeError):
    """A record breaks the CloudEvents Kafka binding or its payload does not parse."""


class UnknownEventTypeError(EventDecodeError):
    """A record's ``ce_type`` is not an event type this code knows.

    Attributes:
        cloudevents_type: The unknown type string.
    """

    def __init__(self, cloudevents_type: str, *, topic: str | None = None) -> None:
        super().__init__(f"unknown event type {cloudevents_type!r}", topic=topic)
        self.cloudevents_type = cloudevents_type


class PublishError(InterlockError):
    """Some records of a batch were not acknowledged by the broker.

    The others may have been written: publishing is at-least-once, so the caller
    retries the whole batch and consumers drop the duplicates. The first failure is
    chained as ``__cause__``.

    Attributes:
        failed: How many records failed.
        total: How many records the batch held.
    """

    def __init__(self, *, failed: int, total: int) -> None:
        super().__init__(f"{failed} of {total} records were not acknowledged")
        self.failed = failed
        self.total = total


class TransactionRequiredError(InterlockError):
    """The outbox or inbox was called on a connection outside a transaction."""


class MigrationError(InterlockError):
    """A migration set is invalid, or an applied migration no longer matches its file."""
