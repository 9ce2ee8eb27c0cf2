"""The delivery loop: claims due deliveries and makes one attempt of each (a resource).

Any number of instances share the work: a claim is ``FOR UPDATE SKIP LOCKED`` and
leases the delivery for ``delivery_lease_s``; an instance killed mid-attempt leaves
the delivery due again when the lease ends, and the next attempt carries the same
``webhook-id`` (at-least-once). Attempts run concurrently, at most
``delivery_concurrency`` at a time and at most ``delivery_concurrency_per_subscription``
for one subscription, so one slow receiver (its tenant's) cannot stall the others'
deliveries. New deliveries wake the loop at once: those of this instance directly,
those of any instance through PostgreSQL's ``NOTIFY`` on :data:`store.DUE_CHANNEL`; the
poll interval only bounds the wait for retries due later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from interlock.common.postgres import NotificationListener
from interlock.common.resources import Lifecycle
from interlock.notification.domain import AttemptOutcome, Channel, Verdict, render
from interlock.notification.mail import EmailSender
from interlock.notification.metrics import (
    PENDING_DELIVERIES,
    RETRY_BACKLOG,
    observe_attempt,
)
from interlock.notification.service import NotificationService
from interlock.notification.store import DUE_CHANNEL, ClaimedDelivery, Success
from interlock.notification.webhooks import WebhookSender

_log = logging.getLogger(__name__)

_MEASURE_EVERY_S = 10.0
"""How often the loop counts pending deliveries (metrics), at most."""


class DeliveryLoop(Lifecycle):
    """Claims due deliveries and sends them.

    Args:
        service: Claims and records.
        webhooks: Sends webhook attempts.
        mail: Sends email attempts.
        due: Set when deliveries due now were committed: the loop claims at once.
        batch_size: Most deliveries one claim takes.
        concurrency: Most attempts in flight.
        poll_interval_s: Longest sleep between claims when nothing woke the loop.
        retention_s: Age after which applied event ids and started runs are forgotten
            (longer than any redelivery, and than any run lasts). Default: 7 days.
        name: Name ``/readyz`` reports. Default: ``"deliveries"``.
    """

    def __init__(
        self,
        service: NotificationService,
        *,
        webhooks: WebhookSender,
        mail: EmailSender,
        due: asyncio.Event,
        batch_size: int,
        concurrency: int,
        poll_interval_s: float,
        retention_s: float = 7 * 86_400,
        name: str = "deliveries",
    ) -> None:
        self.name = name
        self._service = service
        self._webhooks = webhooks
        self._mail = mail
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._claim_at_least = max(1, min(batch_size, concurrency) // 4)
        self._poll_interval_s = poll_interval_s
        self._retention = timedelta(seconds=retention_s)
        self._next_prune = 0.0
        self._next_measure = 0.0
        self._wake = due
        self._in_flight: dict[asyncio.Task[None], uuid.UUID] = {}
        self._by_subscription: Counter[uuid.UUID] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._listening: asyncio.Task[None] | None = None
        self._successes = _SuccessRecorder(service)

    async def start(self) -> None:
        """Start claiming in the background, and listening for due deliveries."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)
            listener = NotificationListener(self._service.pool(), [DUE_CHANNEL], self._wake.set)
            self._listening = asyncio.create_task(listener.run(), name=f"{self.name}-listener")

    async def stop(self) -> None:
        """Stop claiming; attempts in flight are abandoned (their leases hand them on)."""
        task, self._task = self._task, None
        listening, self._listening = self._listening, None
        tasks = [each for each in (task, listening) if each is not None]
        tasks += list(self._in_flight)
        for each in tasks:
            each.cancel()
        for each in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await each
        await self._successes.stop()
        await self._webhooks.aclose()
        await self._mail.aclose()

    async def check(self) -> None:
        """Raise when the loop is not running."""
        if self._task is None or self._task.done():
            raise RuntimeError(f"{self.name} is not running")

    async def _run(self) -> None:
        while True:
            await self._prune_hourly()
            await self._measure_backlog()
            self._wake.clear()
            free = self._concurrency - len(self._in_flight)
            claimed: list[ClaimedDelivery] = []
            # Claim in batches: a claim per finished attempt would double the queries.
            if free >= self._claim_at_least or not self._in_flight:
                try:
                    claimed = await self._service.claim_due(
                        min(free, self._batch_size), in_flight=dict(self._by_subscription)
                    )
                except Exception:
                    _log.exception("claiming deliveries failed; trying again")
            for delivery in claimed:
                task = asyncio.create_task(self._attempt(delivery))
                self._in_flight[task] = delivery.subscription_id
                self._by_subscription[delivery.subscription_id] += 1
                task.add_done_callback(self._finished)
            if claimed and len(claimed) == min(free, self._batch_size):
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)

    async def _prune_hourly(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + 3600
        try:
            await self._service.prune(older_than=self._retention)
        except Exception:
            _log.exception("pruning the inbox and the runs failed; trying again in an hour")

    async def _measure_backlog(self) -> None:
        if time.monotonic() < self._next_measure:
            return
        self._next_measure = time.monotonic() + _MEASURE_EVERY_S
        try:
            pending, retrying = await self._service.pending_counts()
        except Exception as error:
            _log.warning("delivery backlog not measured", extra={"error": repr(error)})
            return
        PENDING_DELIVERIES.set(pending)
        RETRY_BACKLOG.set(retrying)

    def _finished(self, task: asyncio.Task[None]) -> None:
        subscription_id = self._in_flight.pop(task, None)
        if subscription_id is not None:
            self._by_subscription[subscription_id] -= 1
            if self._by_subscription[subscription_id] <= 0:
                del self._by_subscription[subscription_id]
        self._wake.set()

    async def _attempt(self, delivery: ClaimedDelivery) -> None:
        try:
            if not delivery.enabled:
                await self._service.drop(delivery)
                return
            started_at = datetime.now(UTC)
            clock = time.monotonic()
            outcome = await self._send(delivery)
            seconds = time.monotonic() - clock
            observe_attempt(delivery.channel, delivery.attempt, outcome, seconds)
            latency_ms = round(seconds * 1000)
            if outcome.verdict is Verdict.SUCCEEDED:
                await self._successes.record(
                    Success(
                        delivery_id=delivery.id,
                        attempt=delivery.attempt,
                        started_at=started_at,
                        latency_ms=latency_ms,
                        status_code=outcome.status_code,
                        response_excerpt=outcome.response_excerpt,
                    )
                )
                return
            next_at = await self._service.record(
                delivery, started_at=started_at, latency_ms=latency_ms, outcome=outcome
            )
        except Exception:
            _log.exception(
                "a delivery attempt failed to run; its lease hands it on",
                extra={"delivery_id": str(delivery.id)},
            )
            return
        if next_at is not None:
            delay_s = (next_at - datetime.now(UTC)).total_seconds()
            if delay_s < self._poll_interval_s:
                asyncio.get_running_loop().call_later(max(0.0, delay_s), self._wake.set)

    async def _send(self, delivery: ClaimedDelivery) -> AttemptOutcome:
        if delivery.channel is Channel.WEBHOOK:
            assert isinstance(delivery.target, str)
            body = json.dumps(delivery.message, separators=(",", ":"), ensure_ascii=False)
            return await self._webhooks.send(
                delivery.target,
                message_id=delivery.message_id,
                secrets=delivery.secrets,
                body=body.encode(),
            )
        assert isinstance(delivery.target, list)
        email = render(delivery.message, subscription=delivery.subscription_name)
        return await self._mail.send(delivery.target, email, message_id=delivery.message_id)


class _SuccessRecorder:
    """Records successful attempts in batches, one statement each.

    Whatever finished while the previous batch was being written goes in the next one:
    no timer, no added wait. Most attempts succeed; one round trip (and one pooled
    connection) for every success would make recording, not sending, what bounds
    deliveries per second.
    """

    def __init__(self, service: NotificationService) -> None:
        self._service = service
        self._waiting: list[tuple[Success, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, success: Success) -> None:
        """Return once ``success`` is recorded; raise what recording it raised."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((success, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await asyncio.shield(done)

    async def stop(self) -> None:
        """Abandon what is not written (the leases hand those deliveries on)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._service.record_successes([success for success, _ in batch])
            except Exception as error:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
