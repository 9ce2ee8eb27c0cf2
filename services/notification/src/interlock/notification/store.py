"""SQL for the notification service's tables (migrations/0001)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from interlock.notification.domain import AttemptOutcome, Channel, RunFilter, Verdict


@dataclass(frozen=True, kw_only=True)
class StoredSubscription:
    """A subscription row."""

    tenant: str
    id: uuid.UUID
    name: str
    channel: Channel
    target: str | list[str]
    events: list[str]
    run_filter: RunFilter
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    sealed_secret: str | None
    """The webhook signing secret as stored: sealed (:mod:`interlock.notification.sealing`)."""
    sealed_previous_secret: str | None
    """The rotated-out secret, sealed, while it still signs."""
    previous_secret_expires_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class NewDelivery:
    """A delivery to write."""

    id: uuid.UUID
    tenant: str
    subscription_id: uuid.UUID
    event_id: str
    message_id: str
    event_type: str
    run_id: str | None
    message: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class StoredAttempt:
    """One attempt of a delivery."""

    number: int
    started_at: datetime
    latency_ms: int
    status_code: int | None
    error: str
    response_excerpt: str


@dataclass(frozen=True, kw_only=True)
class StoredDelivery:
    """A delivery row with its attempts."""

    id: uuid.UUID
    tenant: str
    subscription_id: uuid.UUID
    event_id: str
    message_id: str
    event_type: str
    run_id: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    attempt_log: list[StoredAttempt]


@dataclass(frozen=True, kw_only=True)
class ClaimedDelivery:
    """A delivery claimed for one attempt, with what sending it needs."""

    id: uuid.UUID
    tenant: str
    subscription_id: uuid.UUID
    subscription_name: str
    message_id: str
    message: dict[str, Any]
    attempt: int
    schedule_step: int
    channel: Channel
    target: str | list[str]
    secrets: list[str]
    """The signing secrets: sealed as the store reads them, opened by the service."""
    enabled: bool


DUE_CHANNEL = "notification_deliveries_due"
"""The LISTEN/NOTIFY channel signalled when deliveries became due now: every instance's
delivery loop listens, so work written by one instance's consumer (or API) wakes them all."""

_SUBSCRIPTION_COLUMNS = """
tenant, id, name, channel, target::text AS target, events, filter_workflows,
filter_workflow_prefix, filter_labels::text AS filter_labels, enabled, disabled_reason,
consecutive_failures, sealed_secret, sealed_previous_secret, previous_secret_expires_at,
created_by,
created_at, updated_at
"""


def _subscription(row: asyncpg.Record) -> StoredSubscription:
    return StoredSubscription(
        tenant=row["tenant"],
        id=row["id"],
        name=row["name"],
        channel=Channel(row["channel"]),
        target=json.loads(row["target"]),
        events=list(row["events"]),
        run_filter=RunFilter(
            workflows=tuple(row["filter_workflows"]),
            workflow_prefix=row["filter_workflow_prefix"],
            labels=json.loads(row["filter_labels"]),
        ),
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        consecutive_failures=row["consecutive_failures"],
        sealed_secret=row["sealed_secret"],
        sealed_previous_secret=row["sealed_previous_secret"],
        previous_secret_expires_at=row["previous_secret_expires_at"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def insert_subscription(conn: asyncpg.Connection, sub: StoredSubscription) -> None:
    """Write a new subscription."""
    await conn.execute(
        """
        INSERT INTO subscriptions (tenant, id, name, channel, target, events, filter_workflows,
            filter_workflow_prefix, filter_labels, enabled, sealed_secret, created_by, created_at,
            updated_at)
        VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $13)
        """,
        sub.tenant,
        sub.id,
        sub.name,
        sub.channel.value,
        json.dumps(sub.target),
        sub.events,
        list(sub.run_filter.workflows),
        sub.run_filter.workflow_prefix,
        json.dumps(dict(sub.run_filter.labels)),
        sub.enabled,
        sub.sealed_secret,
        sub.created_by,
        sub.created_at,
    )


async def get_subscription(
    conn: asyncpg.Connection, tenant: str, subscription_id: uuid.UUID, *, lock: bool = False
) -> StoredSubscription | None:
    """The subscription, or ``None`` when the tenant has none with that id."""
    row = await conn.fetchrow(
        f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE tenant = $1 AND id = $2"  # noqa: S608
        + (" FOR UPDATE" if lock else ""),
        tenant,
        subscription_id,
    )
    return None if row is None else _subscription(row)


async def list_subscriptions(
    conn: asyncpg.Connection,
    tenant: str,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[StoredSubscription]:
    """The tenant's subscriptions, oldest first, after the sort key ``after``."""
    rows = await conn.fetch(
        f"""
        SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions
        WHERE tenant = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
        ORDER BY created_at, id LIMIT $4
        """,  # noqa: S608 - constant column list
        tenant,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [_subscription(row) for row in rows]


async def update_subscription(conn: asyncpg.Connection, sub: StoredSubscription) -> None:
    """Write back every changeable field of ``sub``."""
    await conn.execute(
        """
        UPDATE subscriptions SET name = $3, target = $4::jsonb, events = $5,
            filter_workflows = $6, filter_workflow_prefix = $7, filter_labels = $8::jsonb,
            enabled = $9, disabled_reason = $10, consecutive_failures = $11,
            sealed_secret = $12, sealed_previous_secret = $13, previous_secret_expires_at = $14,
            updated_at = now()
        WHERE tenant = $1 AND id = $2
        """,
        sub.tenant,
        sub.id,
        sub.name,
        json.dumps(sub.target),
        sub.events,
        list(sub.run_filter.workflows),
        sub.run_filter.workflow_prefix,
        json.dumps(dict(sub.run_filter.labels)),
        sub.enabled,
        sub.disabled_reason,
        sub.consecutive_failures,
        sub.sealed_secret,
        sub.sealed_previous_secret,
        sub.previous_secret_expires_at,
    )


async def delete_subscription(
    conn: asyncpg.Connection, tenant: str, subscription_id: uuid.UUID
) -> bool:
    """Delete a subscription and its deliveries; whether it existed."""
    status: str = await conn.execute(
        "DELETE FROM subscriptions WHERE tenant = $1 AND id = $2", tenant, subscription_id
    )
    return status != "DELETE 0"


async def subscriptions_for(
    conn: asyncpg.Connection, tenants: Sequence[str], events: Sequence[str]
) -> list[StoredSubscription]:
    """The enabled subscriptions of ``tenants`` to any of ``events``."""
    rows = await conn.fetch(
        f"""
        SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions
        WHERE enabled AND tenant = ANY($1::text[]) AND events && $2::text[]
        """,  # noqa: S608 - constant column list
        list(tenants),
        list(events),
    )
    return [_subscription(row) for row in rows]


async def save_runs(
    conn: asyncpg.Connection,
    runs: Sequence[tuple[str, str, str, int, dict[str, str], datetime]],
) -> None:
    """Remember started runs: ``(tenant, run_id, workflow, version, labels, started_at)``."""
    if not runs:
        return
    await conn.executemany(
        """
        INSERT INTO runs (tenant, run_id, workflow, version, labels, started_at)
        VALUES ($1, $2, $3, $4, $5::jsonb, $6) ON CONFLICT DO NOTHING
        """,
        [(t, r, w, v, json.dumps(labels), at) for t, r, w, v, labels, at in runs],
    )


async def runs_started(
    conn: asyncpg.Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, int, dict[str, str], datetime]]:
    """What the starts of the known runs among ``(tenant, run_id)`` keys told.

    Each as ``(workflow, version, labels, started_at)``.
    """
    if not keys:
        return {}
    rows = await conn.fetch(
        """
        SELECT r.tenant, r.run_id, r.workflow, r.version, r.labels::text AS labels, r.started_at
        FROM runs r JOIN unnest($1::text[], $2::text[]) AS k(tenant, run_id)
          ON r.tenant = k.tenant AND r.run_id = k.run_id
        """,
        [tenant for tenant, _ in keys],
        [run_id for _, run_id in keys],
    )
    return {
        (row["tenant"], row["run_id"]): (
            row["workflow"],
            row["version"],
            json.loads(row["labels"]),
            row["started_at"],
        )
        for row in rows
    }


async def mark_runs_ended(conn: asyncpg.Connection, keys: Sequence[tuple[str, str]]) -> None:
    """Record that the runs of ``(tenant, run_id)`` keys ended (the first end seen stays)."""
    if not keys:
        return
    await conn.execute(
        """
        UPDATE runs r SET ended_at = now()
        FROM unnest($1::text[], $2::text[]) AS k(tenant, run_id)
        WHERE r.tenant = k.tenant AND r.run_id = k.run_id AND r.ended_at IS NULL
        """,
        [tenant for tenant, _ in keys],
        [run_id for _, run_id in keys],
    )


async def claim_unended_runs(
    conn: asyncpg.Connection, *, quiet_s: float, look_back_s: float, limit: int
) -> list[tuple[str, str]]:
    """Claim up to ``limit`` runs with no end seen, to ask the scheduler about.

    A run is due when it was seen starting more than ``quiet_s`` ago (but within
    ``look_back_s``) and was not asked about within ``quiet_s``; claiming records the
    asking, so the next pass asks about others. Returns ``(tenant, run_id)`` keys.
    """
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT tenant, run_id FROM runs
            WHERE ended_at IS NULL
              AND seen_at < now() - make_interval(secs => $1)
              AND seen_at > now() - make_interval(secs => $2)
              AND (checked_at IS NULL OR checked_at < now() - make_interval(secs => $1))
            ORDER BY checked_at NULLS FIRST, seen_at
            LIMIT $3
            FOR UPDATE SKIP LOCKED
        )
        UPDATE runs r SET checked_at = now()
        FROM due WHERE r.tenant = due.tenant AND r.run_id = due.run_id
        RETURNING r.tenant, r.run_id
        """,
        quiet_s,
        look_back_s,
        limit,
    )
    return [(row["tenant"], row["run_id"]) for row in rows]


async def insert_deliveries(conn: asyncpg.Connection, deliveries: Sequence[NewDelivery]) -> int:
    """Write deliveries due now; one per (subscription, event) and per (subscription, run end).

    Returns how many are new.

    Signals :data:`DUE_CHANNEL` when any is new (PostgreSQL sends it at commit, once).
    """
    if not deliveries:
        return 0
    rows = await conn.fetch(
        f"""
        WITH inserted AS (
            INSERT INTO deliveries (id, tenant, subscription_id, event_id, message_id, event_type,
                run_id, message, next_attempt_at)
            SELECT d.id, d.tenant, d.subscription_id, d.event_id, d.message_id, d.event_type,
                d.run_id, d.message::jsonb, now()
            FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[])
              AS d(id, tenant, subscription_id, event_id, message_id, event_type, run_id, message)
            ON CONFLICT DO NOTHING
            RETURNING id
        )
        SELECT id, pg_notify('{DUE_CHANNEL}', '') FROM inserted
        """,  # noqa: S608 - a constant channel name
        [d.id for d in deliveries],
        [d.tenant for d in deliveries],
        [d.subscription_id for d in deliveries],
        [d.event_id for d in deliveries],
        [d.message_id for d in deliveries],
        [d.event_type for d in deliveries],
        [d.run_id for d in deliveries],
        [json.dumps(d.message) for d in deliveries],
    )
    return len(rows)


async def claim_due(
    conn: asyncpg.Connection,
    *,
    limit: int,
    lease_s: float,
    per_subscription: int,
    in_flight: Mapping[uuid.UUID, int],
) -> list[ClaimedDelivery]:
    """Claim up to ``limit`` due deliveries for one attempt each (``FOR UPDATE SKIP LOCKED``).

    A claim counts the attempt and moves the due time to the end of the lease, so a
    delivery whose instance dies mid-attempt is due again after ``lease_s``. No
    subscription gets more than ``per_subscription`` attempts in flight, counting the
    ``in_flight`` ones of this instance (by subscription): a slow receiver's backlog
    cannot take every slot, and other subscriptions' deliveries are claimed past it.
    """
    saturated = [sub for sub, count in in_flight.items() if count >= per_subscription]
    rows = await conn.fetch(
        """
        WITH candidates AS (
            SELECT id, subscription_id, next_attempt_at FROM deliveries
            WHERE status = 'pending' AND next_attempt_at <= now()
              AND subscription_id <> ALL($3::uuid[])
            ORDER BY next_attempt_at LIMIT $1 * 4
        ), ranked AS (
            SELECT c.id, c.next_attempt_at, coalesce(b.in_flight, 0)
                + row_number() OVER (PARTITION BY c.subscription_id ORDER BY c.next_attempt_at)
                AS slot
            FROM candidates c
            LEFT JOIN unnest($4::uuid[], $5::int[]) AS b(subscription_id, in_flight)
              ON b.subscription_id = c.subscription_id
        ), due AS (
            SELECT d.id FROM deliveries d JOIN ranked r ON r.id = d.id
            WHERE r.slot <= $6 AND d.status = 'pending' AND d.next_attempt_at <= now()
            ORDER BY r.next_attempt_at LIMIT $1
            FOR UPDATE OF d SKIP LOCKED
        )
        UPDATE deliveries d
        SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
        FROM due, subscriptions s
        WHERE d.id = due.id AND s.tenant = d.tenant AND s.id = d.subscription_id
        RETURNING d.id, d.tenant, d.subscription_id, s.name, d.message_id, d.message::text
            AS message, d.attempts, d.attempts - d.attempts_before_redelivery AS step,
            s.channel, s.target::text AS target, s.enabled, s.sealed_secret,
            CASE WHEN s.previous_secret_expires_at > now() THEN s.sealed_previous_secret END
            AS sealed_previous_secret
        """,
        limit,
        lease_s,
        saturated,
        list(in_flight),
        list(in_flight.values()),
        per_subscription,
    )
    return [
        ClaimedDelivery(
            id=row["id"],
            tenant=row["tenant"],
            subscription_id=row["subscription_id"],
            subscription_name=row["name"],
            message_id=row["message_id"],
            message=json.loads(row["message"]),
            attempt=row["attempts"],
            schedule_step=row["step"],
            channel=Channel(row["channel"]),
            target=json.loads(row["target"]),
            secrets=[s for s in (row["sealed_secret"], row["sealed_previous_secret"]) if s],
            enabled=row["enabled"],
        )
        for row in rows
    ]


async def record_attempt(
    conn: asyncpg.Connection,
    delivery: ClaimedDelivery,
    *,
    started_at: datetime,
    latency_ms: int,
    outcome: AttemptOutcome,
    status: str,
    next_attempt_at: datetime | None,
    max_failures: int,
    disable_reason: str | None,
) -> bool:
    """Record an attempt, the delivery's state after it and its subscription's failure run.

    One statement (so one round trip, atomic): a success ends the subscription's run of
    failures; a failure extends it, and disables the subscription at ``max_failures`` in
    a row, or at once when ``disable_reason`` is given. Returns ``False`` (and records
    nothing) when the delivery was claimed again meanwhile (this instance's lease ran
    out): the newer attempt owns it.
    """
    recorded: int = await conn.fetchval(
        """
        WITH d AS (
            UPDATE deliveries SET status = $3, next_attempt_at = $4,
                finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END
            WHERE id = $1 AND attempts = $2 AND status = 'pending'
            RETURNING id, tenant, subscription_id
        ), attempt AS (
            INSERT INTO delivery_attempts (delivery_id, number, started_at, latency_ms,
                status_code, error, response_excerpt)
            SELECT id, $2, $5, $6, $7, $8, $9 FROM d
            ON CONFLICT DO NOTHING
        ), failures AS (
            UPDATE subscriptions s SET
                consecutive_failures = CASE WHEN $10 THEN 0 ELSE s.consecutive_failures + 1 END,
                enabled = CASE
                    WHEN NOT $10 AND ($12::text IS NOT NULL OR s.consecutive_failures + 1 >= $11)
                        THEN false
                    ELSE s.enabled END,
                disabled_reason = CASE
                    WHEN $10 OR NOT s.enabled THEN s.disabled_reason
                    WHEN $12::text IS NOT NULL THEN $12
                    WHEN s.consecutive_failures + 1 >= $11
                        THEN format('%s failed attempts in a row', s.consecutive_failures + 1)
                    ELSE s.disabled_reason END,
                updated_at = CASE WHEN $10 THEN s.updated_at ELSE now() END
            FROM d
            WHERE s.tenant = d.tenant AND s.id = d.subscription_id
              AND (NOT $10 OR s.consecutive_failures <> 0)
        )
        SELECT count(*) FROM d
        """,
        delivery.id,
        delivery.attempt,
        status,
        next_attempt_at,
        started_at,
        latency_ms,
        outcome.status_code,
        outcome.error,
        outcome.response_excerpt,
        outcome.verdict is Verdict.SUCCEEDED,
        max_failures,
        disable_reason,
    )
    return recorded > 0


@dataclass(frozen=True, kw_only=True)
class Success:
    """A successful attempt to record."""

    delivery_id: uuid.UUID
    attempt: int
    started_at: datetime
    latency_ms: int
    status_code: int | None
    response_excerpt: str


async def record_successes(conn: asyncpg.Connection, successes: Sequence[Success]) -> int:
    """Record successful attempts in one statement.

    The deliveries succeed, the attempts are written and their subscriptions' runs of
    failures end. Like :func:`record_attempt`, an attempt whose delivery was claimed again meanwhile
    records nothing. Returns how many were recorded.
    """
    recorded: int = await conn.fetchval(
        """
        WITH done AS (
            SELECT * FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $4::int[],
                $5::int[], $6::text[])
              AS s(id, number, started_at, latency_ms, status_code, excerpt)
        ), d AS (
            UPDATE deliveries SET status = 'succeeded', next_attempt_at = NULL,
                finished_at = now()
            FROM done
            WHERE deliveries.id = done.id AND deliveries.attempts = done.number
              AND deliveries.status = 'pending'
            RETURNING deliveries.id, deliveries.tenant, deliveries.subscription_id
        ), attempt AS (
            INSERT INTO delivery_attempts (delivery_id, number, started_at, latency_ms,
                status_code, response_excerpt)
            SELECT done.id, done.number, done.started_at, done.latency_ms, done.status_code,
                done.excerpt
            FROM done JOIN d ON d.id = done.id
            ON CONFLICT DO NOTHING
        ), failures AS (
            UPDATE subscriptions s SET consecutive_failures = 0
            FROM (SELECT DISTINCT tenant, subscription_id FROM d) AS ended
            WHERE s.tenant = ended.tenant AND s.id = ended.subscription_id
              AND s.consecutive_failures <> 0
        )
        SELECT count(*) FROM d
        """,
        [s.delivery_id for s in successes],
        [s.attempt for s in successes],
        [s.started_at for s in successes],
        [s.latency_ms for s in successes],
        [s.status_code for s in successes],
        [s.response_excerpt for s in successes],
    )
    return recorded


async def drop_claim(conn: asyncpg.Connection, delivery: ClaimedDelivery, reason: str) -> None:
    """End a claimed delivery without an attempt (its subscription is disabled)."""
    await conn.execute(
        """
        UPDATE deliveries SET status = 'failed', attempts = attempts - 1, next_attempt_at = NULL,
            finished_at = now()
        WHERE id = $1 AND attempts = $2 AND status = 'pending'
        """,
        delivery.id,
        delivery.attempt,
    )
    await conn.execute(
        """
        INSERT INTO delivery_attempts (delivery_id, number, started_at, latency_ms, error)
        VALUES ($1, $2, now(), 0, $3) ON CONFLICT DO NOTHING
        """,
        delivery.id,
        delivery.attempt,
        reason,
    )


async def lock_secrets_to_seal(
    conn: asyncpg.Connection, primary_kek_id: str
) -> list[tuple[str, uuid.UUID, str | None, str | None]]:
    """Lock the subscriptions whose secrets are plain or sealed with another KEK.

    Each as ``(tenant, id, sealed_secret, sealed_previous_secret)``.
    """
    rows = await conn.fetch(
        """
        SELECT tenant, id, sealed_secret, sealed_previous_secret FROM subscriptions
        WHERE split_part(sealed_secret, ':', 1) <> $1
           OR split_part(sealed_previous_secret, ':', 1) <> $1
        FOR UPDATE
        """,
        primary_kek_id,
    )
    return [
        (row["tenant"], row["id"], row["sealed_secret"], row["sealed_previous_secret"])
        for row in rows
    ]


async def store_sealed_secrets(
    conn: asyncpg.Connection,
    tenant: str,
    subscription_id: uuid.UUID,
    sealed_secret: str | None,
    sealed_previous_secret: str | None,
) -> None:
    """Write a subscription's re-sealed secrets."""
    await conn.execute(
        """
        UPDATE subscriptions SET sealed_secret = $3, sealed_previous_secret = $4
        WHERE tenant = $1 AND id = $2
        """,
        tenant,
        subscription_id,
        sealed_secret,
        sealed_previous_secret,
    )


async def forget_runs(conn: asyncpg.Connection, *, older_than: timedelta) -> int:
    """Forget runs seen starting more than ``older_than`` ago; returns how many."""
    status: str = await conn.execute(
        "DELETE FROM runs WHERE seen_at < now() - $1::interval", older_than
    )
    return int(status.rsplit(" ", 1)[-1])


_DELIVERY_COLUMNS = """
d.id, d.tenant, d.subscription_id, d.event_id, d.message_id, d.event_type, d.run_id, d.status,
d.attempts, d.next_attempt_at, d.created_at, d.finished_at
"""


async def _with_attempts(
    conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]
) -> list[StoredDelivery]:
    attempts = await conn.fetch(
        """
        SELECT delivery_id, number, started_at, latency_ms, status_code, error, response_excerpt
        FROM delivery_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY delivery_id, number
        """,
        [row["id"] for row in rows],
    )
    by_delivery: dict[uuid.UUID, list[StoredAttempt]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt["delivery_id"], []).append(
            StoredAttempt(
                number=attempt["number"],
                started_at=attempt["started_at"],
                latency_ms=attempt["latency_ms"],
                status_code=attempt["status_code"],
                error=attempt["error"],
                response_excerpt=attempt["response_excerpt"],
            )
        )
    return [
        StoredDelivery(
            id=row["id"],
            tenant=row["tenant"],
            subscription_id=row["subscription_id"],
            event_id=row["event_id"],
            message_id=row["message_id"],
            event_type=row["event_type"],
            run_id=row["run_id"],
            status=row["status"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            created_at=row["created_at"],
            finished_at=row["finished_at"],
            attempt_log=by_delivery.get(row["id"], []),
        )
        for row in rows
    ]


async def list_deliveries(
    conn: asyncpg.Connection,
    tenant: str,
    *,
    subscription_id: uuid.UUID | None,
    run_id: str | None,
    status: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[StoredDelivery]:
    """The tenant's deliveries matching the filters, newest first, after ``after``."""
    rows = await conn.fetch(
        f"""
        SELECT {_DELIVERY_COLUMNS} FROM deliveries d
        WHERE d.tenant = $1
          AND ($2::uuid IS NULL OR d.subscription_id = $2)
          AND ($3::text IS NULL OR d.run_id = $3)
          AND ($4::text IS NULL OR d.status = $4)
          AND ($5::timestamptz IS NULL OR (d.created_at, d.id) < ($5, $6::uuid))
        ORDER BY d.created_at DESC, d.id DESC LIMIT $7
        """,  # noqa: S608 - constant column list
        tenant,
        subscription_id,
        run_id,
        status,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return await _with_attempts(conn, rows)


async def get_delivery(
    conn: asyncpg.Connection, tenant: str, delivery_id: uuid.UUID
) -> StoredDelivery | None:
    """One delivery of the tenant with its attempts, or ``None``."""
    rows = await conn.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d WHERE d.tenant = $1 AND d.id = $2",  # noqa: S608
        tenant,
        delivery_id,
    )
    found = await _with_attempts(conn, rows)
    return found[0] if found else None


async def redeliver(conn: asyncpg.Connection, tenant: str, delivery_id: uuid.UUID) -> bool:
    """Make a finished delivery due again now; whether the tenant has it."""
    status: str = await conn.execute(
        f"""
        WITH due AS (
            UPDATE deliveries SET status = 'pending', next_attempt_at = now(),
                finished_at = NULL, attempts_before_redelivery = attempts
            WHERE tenant = $1 AND id = $2 AND status <> 'pending'
            RETURNING id
        )
        SELECT pg_notify('{DUE_CHANNEL}', '') FROM due
        """,  # noqa: S608 - a constant channel name
        tenant,
        delivery_id,
    )
    if status != "SELECT 0":
        return True
    return bool(
        await conn.fetchval(
            "SELECT true FROM deliveries WHERE tenant = $1 AND id = $2", tenant, delivery_id
        )
    )


BACKLOG_COUNT_LIMIT = 100_000
"""Most rows :func:`pending_counts` counts, so that it stays cheap however large."""


async def pending_counts(conn: asyncpg.Connection) -> tuple[int, int]:
    """Pending deliveries, and those of them attempted before, each up to a bound."""
    row = await conn.fetchrow(
        f"""
        SELECT count(*) AS pending, count(*) FILTER (WHERE attempts > 0) AS retrying
        FROM (SELECT attempts FROM deliveries WHERE status = 'pending'
              LIMIT {BACKLOG_COUNT_LIMIT}) AS d
        """  # noqa: S608 - constants
    )
    return row["pending"], row["retrying"]
