"""Inbox: the event ids a consumer has applied, so redelivered events apply zero times.

Delivery is at-least-once, so a handler records the ids it applies in the same
transaction as the change, and applies only the events it claims::

    async def handle(events: Sequence[Event]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            for event in await inbox.claim_events(conn, "scheduler", events):
                await apply(conn, event)

Two transactions claiming the same id serialize on its row: the second sees it taken
once the first commits (and gets it if the first rolls back). Claims are kept per
consumer name, so two services (or two handlers of one service) reading the same
events each apply them once. :func:`prune` deletes old claims. The table comes from
:data:`interlock.common.postgres.COMMON_MIGRATIONS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import asyncpg

from interlock.common.errors import TransactionRequiredError
from interlock.common.events import Event

__all__ = ["claim", "claim_events", "prune"]

_CLAIM = """
INSERT INTO interlock_inbox (consumer, event_id)
SELECT $1, event_id FROM unnest($2::text[]) AS ids(event_id)
ON CONFLICT DO NOTHING
RETURNING event_id
"""

_PRUNE = "DELETE FROM interlock_inbox WHERE received_at < now() - $1::interval"


async def claim(conn: asyncpg.Connection, consumer: str, event_ids: Sequence[str]) -> set[str]:
    """Record the ids ``consumer`` has not seen before and return them (one statement).

    Args:
        conn: A connection inside the transaction that applies the events.
        consumer: Who applies them, e.g. ``"scheduler"`` or ``"scheduler.timers"``.
        event_ids: Ids of the events about to be applied; repeats are allowed.

    Returns:
        The ids seen for the first time: apply those events, skip the others.

    Raises:
        TransactionRequiredError: When ``conn`` is not inside a transaction.
    """
    if not event_ids:
        return set()
    if not conn.is_in_transaction():
        raise TransactionRequiredError("inbox.claim must run inside the caller's transaction")
    rows = await conn.fetch(_CLAIM, consumer, list(dict.fromkeys(event_ids)))
    return {row["event_id"] for row in rows}


async def claim_events(
    conn: asyncpg.Connection, consumer: str, events: Sequence[Event]
) -> list[Event]:
    """Claim ``events`` (see :func:`claim`) and return the ones to apply, in order.

    An event that appears twice in ``events`` is returned once.

    Args:
        conn: A connection inside the transaction that applies the events.
        consumer: Who applies them.
        events: A consumed batch.

    Returns:
        The events not applied before by ``consumer``, in batch order.

    Raises:
        TransactionRequiredError: When ``conn`` is not inside a transaction.
    """
    fresh = await claim(conn, consumer, [event.id for event in events])
    selected: list[Event] = []
    for event in events:
        if event.id in fresh:
            fresh.discard(event.id)
            selected.append(event)
    return selected


async def prune(conn: asyncpg.Connection, *, older_than: timedelta) -> int:
    """Delete claims recorded more than ``older_than`` ago.

    Keep claims longer than any redelivery can take (the broker's retention and the
    reconcilers' re-publishing horizon).

    Args:
        conn: A connection.
        older_than: Age of the claims to delete.

    Returns:
        How many claims were deleted.
    """
    status: str = await conn.execute(_PRUNE, older_than)
    return int(status.rsplit(" ", 1)[-1])
