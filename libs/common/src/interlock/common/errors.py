"""Errors raised by Interlock's shared data plumbing (events, Kafka, outbox, migrations).

The tree::

    InterlockError                  base of every error below
     ├── EventDecodeError           a Kafka record is not an Interlock event:
     │    │                         skip it or dead-letter it, never retry it
     │    ├── MalformedEventError   a CloudEvents header is missing or invalid, the
     │    │                         time is not RFC 3339, the payload does not parse
     │    └── UnknownEventTypeError ``ce_type`` names no type in ``interlock.common.topics``
     ├── PublishError               the broker did not acknowledge every record of a batch
     ├── PoisonEventError           a handler can never apply these events: park them
     ├── TransactionRequiredError   the outbox or inbox was used outside a transaction
     └── MigrationError             a migration file is misnamed, a version repeats, or an
                                    applied migration was edited afterwards

Errors of the client libraries underneath (``aiokafka.errors.KafkaError``,
``asyncpg.PostgresError``, ``pymongo.errors.PyMongoError``) pass through unchanged
unless a function documents otherwise.
"""

from __future__ import annotations

__all__ = [
    "EventDecodeError",
    "InterlockError",
    "MalformedEventError",
    "MigrationError",
    "PoisonEventError",
    "PublishError",
    "TransactionRequiredError",
    "UnknownEventTypeError",
]


class InterlockError(Exception):
    """Base class of the errors raised by ``interlock.common``."""


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


class PoisonEventError(InterlockError):
    """Raised by an event handler for events it can never apply.

    The consumer parks them (:mod:`interlock.common.parking`) instead of retrying.
    """


class TransactionRequiredError(InterlockError):
    """The outbox or inbox was called on a connection outside a transaction."""


class MigrationError(InterlockError):
    """A migration set is invalid, or an applied migration no longer matches its file."""
