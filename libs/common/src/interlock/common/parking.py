"""Parking: an event that can never be published or applied leaves the queue, with its reason.

A queue is only as fast as its worst event. The outbox relay publishes in order and a
consumer commits a partition's offsets in order, so one event that fails every time
(a record larger than the broker accepts, a value PostgreSQL refuses) used to stop
everything behind it, for every tenant on that partition. Such an event is *poison*:
retrying cannot help. It is moved to ``interlock_parked_events`` (with the reason, its
tenant and run, and the record as it was), counted in
``interlock_parked_events_total{origin}``, listed by :func:`parked_events_router`,
and the queue goes on.

What is poison and what is transient is decided in one place, :func:`is_poison`:

- poison: PostgreSQL data exceptions (SQLSTATE class 22: NUL in text, bad encoding,
  numbers out of range), integrity violations (23) and program limits (54: a value
  too large for an index); text that cannot be encoded (lone surrogates); a record
  the broker refuses for its size or form; :class:`PoisonEventError` raised on
  purpose by a handler.
- transient (everything else): lost connections, timeouts, a database that is
  restarting, a broker without a leader. These are retried with backoff, as before:
  parking them would drop good events during an outage.

The outbox relay and :class:`~interlock.common.kafka.EventConsumer` park through this
module; the table comes with :data:`interlock.common.postgres.COMMON_MIGRATIONS`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from prometheus_client import Counter
from pydantic import BaseModel

from interlock.common.errors import PoisonEventError
from interlock.common.events import Event, KafkaRecord
from interlock.common.identity import CurrentPrincipal
from interlock.common.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageKey
from interlock.common.problems import GATEWAY_PROBLEMS, problem_responses
from interlock.common.strict_json import storable

__all__ = [
    "MAX_REASON_CHARS",
    "PARKED_EVENTS",
    "ParkEvents",
    "ParkedEvent",
    "PoisonEventError",
    "describe",
    "is_poison",
    "log_parked",
    "park",
    "parked_events_router",
    "postgres_parking",
]

_log = logging.getLogger(__name__)

PARKED_EVENTS = Counter(
    "interlock_parked_events_total",
    "Events moved out of a queue because they can never be published or applied.",
    ["origin"],
)

MAX_REASON_CHARS = 1000
"""Longest reason kept: an error message may quote the whole offending value."""

_POISON_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})
_POISON_KAFKA_ERRORS = frozenset(
    {
        "MessageSizeTooLargeError",
        "RecordTooLargeError",
        "RecordBatchTooLargeError",
        "InvalidTopicError",
        "CorruptRecordException",
        "UnsupportedForMessageFormatError",
    }
)


@dataclass(frozen=True, kw_only=True)
class ParkedEvent:
    """One event leaving its queue, and why."""

    origin: str
    """``"outbox"`` or the consumer group that could not apply it."""
    reason: str
    event_id: str
    tenant: str
    run_id: str
    record: KafkaRecord

    @classmethod
    def of(cls, event: Event, *, origin: str, reason: str) -> ParkedEvent:
        """The parking entry of a decoded event."""
        return cls(
            origin=origin,
            reason=reason,
            event_id=event.id,
            tenant=event.tenant,
            run_id=event.run_id,
            record=event.to_record(),
        )


ParkEvents = Callable[[Sequence[ParkedEvent]], Awaitable[None]]
"""Stores parked events somewhere durable; raising means "not parked" (retry later)."""


def is_poison(error: BaseException) -> bool:
    """Whether ``error`` (or the error it was raised from) will recur on every retry."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_poison_itself(current):
            return True
        current = current.__cause__
    return False


def _is_poison_itself(error: BaseException) -> bool:
    if isinstance(error, PoisonEventError | UnicodeError):
        return True
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _POISON_SQLSTATE_CLASSES
    return type(error).__name__ in _POISON_KAFKA_ERRORS and type(error).__module__.startswith(
        "aiokafka"
    )


def describe(error: BaseException) -> str:
    """A bounded, storable one-line reason for ``error`` and the errors it came from."""
    parts: list[str] = []
    current: BaseException | None = error
    while current is not None and len(parts) < 3:
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__
    return storable(" <- ".join(parts))[:MAX_REASON_CHARS]


_INSERT = """
INSERT INTO interlock_parked_events
    (origin, reason, event_id, tenant, run_id, topic, key, headers, value)
SELECT * FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[],
    $8::text[], $9::bytea[]
)
"""


async def park(conn: Any, parked: Sequence[ParkedEvent]) -> None:
    """Store ``parked`` on ``conn`` (an asyncpg connection), log and count them.

    Run it in the transaction that takes the events out of their queue (the outbox
    relay's), or on its own (a consumer's, before it commits the offsets).
    """
    if not parked:
        return
    columns: list[list[Any]] = [[] for _ in range(9)]
    for entry in parked:
        record = entry.record
        headers = json.dumps(
            [[name, value.decode("utf-8", "replace")] for name, value in record.headers]
        )
        values = (
            entry.origin,
            entry.reason,
            entry.event_id,
            entry.tenant,
            entry.run_id,
            record.topic,
            record.key,
            headers,
            record.value or b"",
        )
        for column, value in zip(columns, values, strict=True):
            column.append(storable(value) if isinstance(value, str) else value)
    await conn.execute(_INSERT, *columns)
    log_parked(parked)


def log_parked(parked: Sequence[ParkedEvent]) -> None:
    """Log and count ``parked`` (what :func:`park` does after storing them)."""
    for entry in parked:
        PARKED_EVENTS.labels(entry.origin).inc()
        _log.error(
            "event parked: it can never be published or applied as it is",
            extra={
                "origin": entry.origin,
                "event_id": entry.event_id,
                "event_type": entry.record.topic,
                "tenant": entry.tenant,
                "run_id": entry.run_id,
                "size_bytes": len(entry.record.value or b""),
                "reason": entry.reason,
            },
        )


def postgres_parking(pool: Callable[[], Any]) -> ParkEvents:
    """A :data:`ParkEvents` storing into the service's database.

    Args:
        pool: Returns the service's open ``asyncpg.Pool`` (it opens after wiring).
    """

    async def store(parked: Sequence[ParkedEvent]) -> None:
        async with pool().acquire() as conn:
            await park(conn, parked)

    return store


_LIST = """
SELECT id, parked_at, origin, reason, event_id, run_id, topic, octet_length(value) AS size
FROM interlock_parked_events
WHERE tenant = $1 AND id > $2
ORDER BY id
LIMIT $3
"""

_PARKED_PAGE = PageKey("parked-events", int)
"""Parked events list oldest first, by id."""


class ParkedEventView(BaseModel):
    """One event that could not be published or applied, with the reason."""

    id: int
    parked_at: str
    origin: str
    reason: str
    event_id: str
    event_type: str
    run_id: str
    size_bytes: int


class ParkedEventPage(BaseModel):
    """A page of parked events (AIP-158)."""

    parked_events: list[ParkedEventView]
    next_page_token: str | None


def parked_events_router(service: str, pool: Callable[[], Any]) -> APIRouter:
    """``GET /api/v1/parked-events/<service>``: the caller's tenant's parked events.

    Oldest first, paged with ``page_size`` / ``page_token`` (:mod:`interlock.common.paging`).
    """
    router = APIRouter(prefix="/api/v1/parked-events", tags=["parked-events"])

    @router.get(
        f"/{service}",
        response_model=ParkedEventPage,
        responses=problem_responses(*GATEWAY_PROBLEMS, 422),
    )
    async def list_parked_events(
        principal: CurrentPrincipal,
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
        page_token: str | None = None,
    ) -> ParkedEventPage:
        """Events this service parked for the caller's tenant, with the reason."""
        (after,) = _PARKED_PAGE.decode(page_token, {}) if page_token else (0,)
        async with pool().acquire() as conn:
            rows = await conn.fetch(_LIST, principal.tenant, after, page_size)
        views = [
            ParkedEventView(
                id=row["id"],
                parked_at=_rfc3339(row["parked_at"]),
                origin=row["origin"],
                reason=row["reason"],
                event_id=row["event_id"],
                event_type=row["topic"],
                run_id=row["run_id"],
                size_bytes=row["size"],
            )
            for row in rows
        ]
        full = len(views) == page_size
        return ParkedEventPage(
            parked_events=views,
            next_page_token=_PARKED_PAGE.encode([views[-1].id], {}) if full else None,
        )

    return router


def _rfc3339(time: datetime) -> str:
    return time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
