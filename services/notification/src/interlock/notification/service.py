"""Use cases: subscriptions, fanning events out to deliveries, attempts, history.

Each use case is one transaction. Events become deliveries in the transaction that
claims them in the inbox (:mod:`interlock.notification.handlers`); the delivery loop
(:mod:`interlock.notification.delivery`) claims due deliveries, sends them outside any
transaction, and records each attempt with the delivery's next state.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from interlock.common import inbox
from interlock.common.identity import Principal
from interlock.common.paging import Page, PageKey
from interlock.notification import store
from interlock.notification.domain import (
    AttemptOutcome,
    Channel,
    DeliveryNotFoundError,
    EventName,
    InvalidSubscriptionError,
    NotAWebhookError,
    RunFacts,
    RunFilter,
    SecretSealer,
    SubscriptionNotFoundError,
    Verdict,
    check_events,
    check_filter,
    check_name,
    check_target,
    new_secret,
    next_delay_s,
    run_message,
    test_message,
)

SUBSCRIPTIONS = PageKey("subscriptions", datetime, uuid.UUID)
"""Sort key of the subscription list: oldest first."""
DELIVERIES = PageKey("deliveries", datetime, uuid.UUID)
"""Sort key of the delivery list: newest first."""

DEFAULT_GRACE_PERIOD = timedelta(hours=24)
"""How long a rotated-out secret still signs, unless the rotation says otherwise."""
MAX_GRACE_PERIOD = timedelta(days=7)
"""Longest grace period a rotation may ask for."""
DELIVERY_STATUSES = ("pending", "succeeded", "failed")
"""What a delivery's ``status`` can be."""
RUN_ENDS = frozenset({EventName.RUN_SUCCEEDED, EventName.RUN_FAILED, EventName.RUN_CANCELLED})
"""The events that end a run: one message per run end and subscription."""


@dataclass(frozen=True, kw_only=True)
class DeliveryPolicy:
    """How deliveries are retried and when a subscription gives up.

    Attributes:
        schedule_s: Delay before each attempt, the first one's included.
        jitter: Largest fraction of a delay added or taken away at random.
        max_retry_after_s: Longest wait a receiver's ``Retry-After`` can ask for.
        max_consecutive_failures: Failed attempts in a row that disable a subscription.
        lease_s: How long a claimed delivery stays with its instance.
        per_subscription: Most attempts in flight at once for one subscription (per
            instance), so one slow receiver cannot hold every slot.
    """

    schedule_s: tuple[float, ...]
    jitter: float = 0.2
    max_retry_after_s: float = 86_400.0
    max_consecutive_failures: int = 100
    lease_s: float = 60.0
    per_subscription: int = 25


@dataclass(frozen=True, kw_only=True)
class Notice:
    """One event the service can notify about, as the event handler read it.

    ``facts.workflow`` is empty for a ``task.dead_lettered``, whose event does not name
    the workflow: it comes from the run's ``workflow.started``.
    """

    event_id: str
    tenant: str
    event: EventName
    time: datetime
    facts: RunFacts


@dataclass(frozen=True, kw_only=True)
class StartedRun:
    """A run start worth remembering: later events about the run do not say these."""

    tenant: str
    run_id: str
    workflow: str
    version: int
    labels: dict[str, str] = field(default_factory=dict)
    started_at: datetime


@dataclass(frozen=True, kw_only=True)
class SubscriptionChanges:
    """A PATCH: the fields given, ``None`` for the others."""

    name: str | None = None
    target: Any = None
    events: list[str] | None = None
    run_filter: RunFilter | None = None
    enabled: bool | None = None


class NotificationService:
    """Subscriptions and deliveries of every tenant.

    Args:
        pool: Returns the service's open ``asyncpg.Pool``.
        vet_url: Raises :class:`TargetNotAllowedError` for a webhook URL the SSRF guard
            refuses (resolving its host).
        public_url: The gateway's address, for links.
        policy: Retries and disabling.
        sealer: Seals signing secrets at rest; ``None`` when no key-encryption key is
            configured (the service then refuses to start: :meth:`seal_stored_secrets`).
        on_new_deliveries: Called after deliveries due now were committed (wakes the
            delivery loop of this instance).
    """

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        vet_url: Callable[[str], Awaitable[object]],
        public_url: str,
        policy: DeliveryPolicy,
        sealer: SecretSealer | None,
        on_new_deliveries: Callable[[], None] = lambda: None,
    ) -> None:
        self._pool = pool
        self._vet_url = vet_url
        self._public_url = public_url
        self._policy = policy
        self._sealer = sealer
        self._on_new_deliveries = on_new_deliveries
        self._rng = random.Random()  # noqa: S311 - jitter, not a secret

    def pool(self) -> asyncpg.Pool:
        """The service's open pool (the delivery loop listens on one of its connections)."""
        return self._pool()

    # Subscriptions -------------------------------------------------------------------

    async def create_subscription(
        self,
        principal: Principal,
        *,
        name: str,
        channel: Channel,
        target: Any,
        events: list[str],
        run_filter: RunFilter,
        enabled: bool,
    ) -> tuple[store.StoredSubscription, str | None]:
        """Create a subscription; a webhook one comes with its secret (shown this once)."""
        checked_target = check_target(channel, target)
        if isinstance(checked_target, str):
            await self._vet_url(checked_target)
        secret = new_secret() if channel is Channel.WEBHOOK else None
        subscription_id = uuid.uuid4()
        now = datetime.now(UTC)
        sub = store.StoredSubscription(
            tenant=principal.tenant,
            id=subscription_id,
            name=check_name(name),
            channel=channel,
            target=checked_target,
            events=[event.value for event in check_events(events)],
            run_filter=check_filter(run_filter),
            enabled=enabled,
            disabled_reason=None,
            consecutive_failures=0,
            sealed_secret=self._seal(subscription_id, secret),
            sealed_previous_secret=None,
            previous_secret_expires_at=None,
            created_by=principal.subject,
            created_at=now,
            updated_at=now,
        )
        async with self._pool().acquire() as conn:
            await store.insert_subscription(conn, sub)
        return sub, secret

    async def get_subscription(
        self, principal: Principal, subscription_id: uuid.UUID
    ) -> store.StoredSubscription:
        """One subscription of the caller's tenant (404 for another tenant's)."""
        async with self._pool().acquire() as conn:
            sub = await store.get_subscription(conn, principal.tenant, subscription_id)
        if sub is None:
            raise SubscriptionNotFoundError(f"no subscription {subscription_id}")
        return sub

    async def list_subscriptions(
        self, principal: Principal, *, page_size: int, page_token: str | None
    ) -> Page[store.StoredSubscription]:
        """The tenant's subscriptions, oldest first."""
        after = SUBSCRIPTIONS.decode(page_token, {}) if page_token else None
        async with self._pool().acquire() as conn:
            subs = await store.list_subscriptions(
                conn, principal.tenant, after=after, limit=page_size + 1
            )
        return SUBSCRIPTIONS.page(subs, page_size, lambda sub: (sub.created_at, sub.id), {})

    async def update_subscription(
        self, principal: Principal, subscription_id: uuid.UUID, changes: SubscriptionChanges
    ) -> store.StoredSubscription:
        """Change the given fields; enabling a subscription starts its failure count over."""
        target = None
        if changes.target is not None:
            sub = await self.get_subscription(principal, subscription_id)
            target = check_target(sub.channel, changes.target)
            if isinstance(target, str):
                await self._vet_url(target)
        async with self._pool().acquire() as conn, conn.transaction():
            sub = await self._locked(conn, principal, subscription_id)
            if target is not None:
                sub = replace(sub, target=target)
            if changes.name is not None:
                sub = replace(sub, name=check_name(changes.name))
            if changes.events is not None:
                sub = replace(sub, events=[e.value for e in check_events(changes.events)])
            if changes.run_filter is not None:
                sub = replace(sub, run_filter=check_filter(changes.run_filter))
            if changes.enabled is True and not sub.enabled:
                sub = replace(sub, enabled=True, disabled_reason=None, consecutive_failures=0)
            elif changes.enabled is False:
                sub = replace(sub, enabled=False, disabled_reason=None)
            await store.update_subscription(conn, sub)
            updated = await store.get_subscription(conn, principal.tenant, subscription_id)
        assert updated is not None  # locked above, in this transaction
        return updated

    async def delete_subscription(self, principal: Principal, subscription_id: uuid.UUID) -> None:
        """Delete a subscription with its delivery history."""
        async with self._pool().acquire() as conn:
            if not await store.delete_subscription(conn, principal.tenant, subscription_id):
                raise SubscriptionNotFoundError(f"no subscription {subscription_id}")

    async def rotate_secret(
        self, principal: Principal, subscription_id: uuid.UUID, *, grace_period: timedelta
    ) -> tuple[store.StoredSubscription, str]:
        """A new secret; the current one keeps signing, next to it, for ``grace_period``."""
        if not timedelta(0) <= grace_period <= MAX_GRACE_PERIOD:
            raise InvalidSubscriptionError("grace_period: from 0s to 7d")
        secret = new_secret()
        async with self._pool().acquire() as conn, conn.transaction():
            sub = await self._locked(conn, principal, subscription_id)
            if sub.channel is not Channel.WEBHOOK:
                raise NotAWebhookError("only webhook subscriptions have a signing secret")
            rotated = replace(
                sub,
                sealed_secret=self._seal(sub.id, secret),
                sealed_previous_secret=sub.sealed_secret,
                previous_secret_expires_at=datetime.now(UTC) + grace_period,
            )
            await store.update_subscription(conn, rotated)
        return rotated, secret

    async def send_test(self, principal: Principal, subscription_id: uuid.UUID) -> uuid.UUID:
        """Queue a test message; its delivery id (a disabled subscription's is not sent)."""
        sub = await self.get_subscription(principal, subscription_id)
        delivery_id = uuid.uuid4()
        delivery = store.NewDelivery(
            id=delivery_id,
            tenant=sub.tenant,
            subscription_id=sub.id,
            event_id=f"test:{delivery_id}",
            message_id=_message_id(delivery_id),
            event_type="interlock.test",
            run_id=None,
            message=test_message(str(sub.id), sub.name, datetime.now(UTC)),
        )
        async with self._pool().acquire() as conn:
            await store.insert_deliveries(conn, [delivery])
        self._on_new_deliveries()
        return delivery_id

    async def seal_stored_secrets(self) -> int:
        """Seal with the first KEK every stored secret that is plain or sealed with another.

        Run at start-up: secrets written before sealing existed get sealed, and a KEK put
        first (a rotation) takes over every value, after which the older KEK can go.
        Returns how many subscriptions changed.

        Raises:
            ValueError: No key-encryption key is configured.
        """
        sealer = self._required_sealer()
        async with self._pool().acquire() as conn, conn.transaction():
            found = await store.lock_secrets_to_seal(conn, sealer.primary_id)
            for tenant, subscription_id, secret, previous in found:
                await store.store_sealed_secrets(
                    conn,
                    tenant,
                    subscription_id,
                    sealer.reseal(subscription_id, secret),
                    sealer.reseal(subscription_id, previous),
                )
        return len(found)

    def _seal(self, subscription_id: uuid.UUID, secret: str | None) -> str | None:
        return None if secret is None else self._required_sealer().seal(subscription_id, secret)

    def _required_sealer(self) -> SecretSealer:
        if self._sealer is None:
            raise ValueError(
                "INTERLOCK_KEY_ENCRYPTION_KEYS is required: the notification service stores"
                " webhook signing secrets sealed with it"
            )
        return self._sealer

    async def _locked(
        self, conn: asyncpg.Connection, principal: Principal, subscription_id: uuid.UUID
    ) -> store.StoredSubscription:
        sub = await store.get_subscription(conn, principal.tenant, subscription_id, lock=True)
        if sub is None:
            raise SubscriptionNotFoundError(f"no subscription {subscription_id}")
        return sub

    # Events → deliveries -------------------------------------------------------------

    async def fan_out(
        self, conn: asyncpg.Connection, started: Sequence[StartedRun], notices: Sequence[Notice]
    ) -> int:
        """Remember ``started`` runs and write the deliveries ``notices`` cause.

        One delivery per (notice, matching subscription), inside the caller's
        transaction. Returns how many are new.
        """
        await store.save_runs(
            conn,
            [(r.tenant, r.run_id, r.workflow, r.version, r.labels, r.started_at) for r in started],
        )
        await store.mark_runs_ended(
            conn, [(n.tenant, n.facts.run_id) for n in notices if n.event in RUN_ENDS]
        )
        if not notices:
            return 0
        known = await store.runs_started(conn, [(n.tenant, n.facts.run_id) for n in notices])
        subs = await store.subscriptions_for(
            conn, sorted({n.tenant for n in notices}), sorted({n.event.value for n in notices})
        )
        deliveries = []
        for notice in notices:
            facts, labels = _completed(notice, known.get((notice.tenant, notice.facts.run_id)))
            if not facts.workflow:
                continue
            message = run_message(notice.event, notice.time, facts, public_url=self._public_url)
            for sub in subs:
                if (
                    sub.tenant == notice.tenant
                    and notice.event.value in sub.events
                    and sub.run_filter.matches(facts.workflow, labels)
                ):
                    delivery_id = uuid.uuid4()
                    deliveries.append(
                        store.NewDelivery(
                            id=delivery_id,
                            tenant=notice.tenant,
                            subscription_id=sub.id,
                            event_id=notice.event_id,
                            message_id=_message_id(delivery_id),
                            event_type=notice.event.value,
                            run_id=facts.run_id,
                            message=message,
                        )
                    )
        return await store.insert_deliveries(conn, deliveries)

    async def claim_unended_runs(
        self, *, quiet_s: float, look_back_s: float, limit: int
    ) -> list[tuple[str, str]]:
        """Claim runs whose end was not seen, to ask the scheduler about.

        See :func:`store.claim_unended_runs`. Returns ``(tenant, run_id)`` keys.
        """
        async with self._pool().acquire() as conn, conn.transaction():
            return await store.claim_unended_runs(
                conn, quiet_s=quiet_s, look_back_s=look_back_s, limit=limit
            )

    async def notify_run_end(self, notice: Notice) -> int:
        """Fan out a run's end learned from the scheduler, as its lost end event would have been.

        The same :meth:`fan_out`: a message already written for the run's end is not
        written again. Returns how many deliveries are new.
        """
        async with self._pool().acquire() as conn, conn.transaction():
            created = await self.fan_out(conn, [], [notice])
        if created:
            self.deliveries_committed()
        return created

    def deliveries_committed(self) -> None:
        """Tell the delivery loop that deliveries due now were committed."""
        self._on_new_deliveries()

    # Attempts ------------------------------------------------------------------------

    async def claim_due(
        self, limit: int, *, in_flight: Mapping[uuid.UUID, int]
    ) -> list[store.ClaimedDelivery]:
        """Claim up to ``limit`` due deliveries for one attempt each.

        ``in_flight`` counts the attempts this instance has in flight, by subscription:
        none gets more than the policy's ``per_subscription`` at once.
        """
        async with self._pool().acquire() as conn:
            claimed = await store.claim_due(
                conn,
                limit=limit,
                lease_s=self._policy.lease_s,
                per_subscription=self._policy.per_subscription,
                in_flight=in_flight,
            )
        sealer = self._required_sealer()
        return [
            replace(d, secrets=[sealer.open(d.subscription_id, s) for s in d.secrets])
            for d in claimed
        ]

    async def pending_counts(self) -> tuple[int, int]:
        """Pending deliveries, and those of them waiting for a retry (bounded counts)."""
        async with self._pool().acquire() as conn:
            return await store.pending_counts(conn)

    async def drop(self, delivery: store.ClaimedDelivery) -> None:
        """End a claimed delivery whose subscription was disabled meanwhile."""
        async with self._pool().acquire() as conn, conn.transaction():
            await store.drop_claim(conn, delivery, "not sent: the subscription is disabled")

    async def record(
        self,
        delivery: store.ClaimedDelivery,
        *,
        started_at: datetime,
        latency_ms: int,
        outcome: AttemptOutcome,
    ) -> datetime | None:
        """Record an attempt; returns when the next one is due, if one is."""
        status, next_at = self._next_state(delivery, outcome)
        gone = outcome.verdict is Verdict.GONE
        async with self._pool().acquire() as conn:
            recorded = await store.record_attempt(
                conn,
                delivery,
                started_at=started_at,
                latency_ms=latency_ms,
                outcome=outcome,
                status=status,
                next_attempt_at=next_at,
                max_failures=self._policy.max_consecutive_failures,
                disable_reason="the receiver answered 410 Gone" if gone else None,
            )
        return next_at if recorded else None

    async def record_successes(self, successes: Sequence[store.Success]) -> None:
        """Record successful attempts together (one round trip for many deliveries)."""
        async with self._pool().acquire() as conn:
            await store.record_successes(conn, successes)

    def _next_state(
        self, delivery: store.ClaimedDelivery, outcome: AttemptOutcome
    ) -> tuple[str, datetime | None]:
        if outcome.verdict is Verdict.SUCCEEDED:
            return "succeeded", None
        if outcome.verdict is not Verdict.RETRY:
            return "failed", None
        delay = next_delay_s(
            delivery.schedule_step,
            self._policy.schedule_s,
            jitter=self._policy.jitter,
            retry_after_s=outcome.retry_after_s,
            max_retry_after_s=self._policy.max_retry_after_s,
            rng=self._rng,
        )
        if delay is None:
            return "failed", None
        return "pending", datetime.now(UTC) + timedelta(seconds=delay)

    async def prune(self, *, older_than: timedelta) -> None:
        """Forget applied event ids and started runs older than ``older_than``."""
        async with self._pool().acquire() as conn:
            await inbox.prune(conn, older_than=older_than)
            await store.forget_runs(conn, older_than=older_than)

    # History -------------------------------------------------------------------------

    async def list_deliveries(
        self,
        principal: Principal,
        *,
        subscription_id: uuid.UUID | None,
        run_id: str | None,
        status: str | None,
        page_size: int,
        page_token: str | None,
    ) -> Page[store.StoredDelivery]:
        """The tenant's deliveries with their attempts, newest first."""
        filters = {"subscription": subscription_id, "run": run_id, "status": status}
        after = DELIVERIES.decode(page_token, filters) if page_token else None
        async with self._pool().acquire() as conn:
            rows = await store.list_deliveries(
                conn,
                principal.tenant,
                subscription_id=subscription_id,
                run_id=run_id,
                status=status,
                after=after,
                limit=page_size + 1,
            )
        return DELIVERIES.page(rows, page_size, lambda row: (row.created_at, row.id), filters)

    async def get_delivery(
        self, principal: Principal, delivery_id: uuid.UUID
    ) -> store.StoredDelivery:
        """One delivery with its attempts (404 for another tenant's)."""
        async with self._pool().acquire() as conn:
            delivery = await store.get_delivery(conn, principal.tenant, delivery_id)
        if delivery is None:
            raise DeliveryNotFoundError(f"no delivery {delivery_id}")
        return delivery

    async def redeliver(self, principal: Principal, delivery_id: uuid.UUID) -> store.StoredDelivery:
        """Send a delivery again (same ``webhook-id``), the retry schedule started over."""
        async with self._pool().acquire() as conn:
            if not await store.redeliver(conn, principal.tenant, delivery_id):
                raise DeliveryNotFoundError(f"no delivery {delivery_id}")
        self._on_new_deliveries()
        return await self.get_delivery(principal, delivery_id)


def _message_id(delivery_id: uuid.UUID) -> str:
    """The ``webhook-id`` of a delivery: stable across its attempts, unique across deliveries."""
    return f"msg_{delivery_id.hex}"


def _completed(
    notice: Notice, started: tuple[str, int, dict[str, str], datetime] | None
) -> tuple[RunFacts, dict[str, str]]:
    """The notice's facts with what the run's start told (workflow, labels, start time)."""
    if started is None:
        return notice.facts, {}
    workflow, version, labels, started_at = started
    facts = replace(
        notice.facts,
        workflow=notice.facts.workflow or workflow,
        version=notice.facts.version or version,
        started_at=started_at,
    )
    return facts, labels
