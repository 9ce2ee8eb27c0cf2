"""Wires the notification service: database, broker, relay, consumer, deliveries, HTTP.

With a service credential, also the run-end reconciler and its scheduler client.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from interlock.common.http import create_app as create_service_app
from interlock.common.kafka import EventConsumerTask, KafkaBroker
from interlock.common.outbox import OUTBOX_MIGRATIONS, OutboxRelayTask
from interlock.common.parking import parked_events_router, postgres_parking
from interlock.common.postgres import MigrationSource, PostgresDatabase
from interlock.common.resources import Resource
from interlock.common.scheduler_state import SchedulerState
from interlock.common.sealing import KeyEncryptionKeys
from interlock.notification.api import build_router
from interlock.notification.delivery import DeliveryLoop
from interlock.notification.domain import SecretSealer
from interlock.notification.handlers import CONSUMER, EVENT_TYPES, DeliveryFanOut
from interlock.notification.mail import EmailSender
from interlock.notification.reconciler import RunEndReconciler
from interlock.notification.sealing import StoredSecretsSealing
from interlock.notification.service import DeliveryPolicy, NotificationService
from interlock.notification.settings import NotificationSettings
from interlock.notification.webhooks import WebhookSender

MIGRATIONS = MigrationSource(component="notification", location="interlock.notification.migrations")
"""The notification service's own tables."""


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    """Build the notification service's app. Default settings come from the environment."""
    settings = settings or NotificationSettings()
    database = PostgresDatabase(settings, migrations=[OUTBOX_MIGRATIONS, MIGRATIONS])
    broker = KafkaBroker(settings)
    relay = OutboxRelayTask(database, broker)
    webhooks = WebhookSender(
        timeout_s=settings.webhook_timeout_s,
        allowed_networks=settings.webhook_allowed_networks,
        excerpt_bytes=settings.response_excerpt_bytes,
    )
    mail = EmailSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_sender,
        username=settings.smtp_username,
        password=settings.smtp_password,
        use_tls=settings.smtp_tls,
        start_tls=settings.smtp_starttls,
        timeout_s=settings.smtp_timeout_s,
        max_sessions=settings.smtp_sessions,
    )
    keks = settings.key_encryption_keys
    sealer = SecretSealer(KeyEncryptionKeys(keks.get_secret_value())) if keks else None
    due = asyncio.Event()
    service = NotificationService(
        lambda: database.pool,
        vet_url=webhooks.vet,
        public_url=settings.public_url,
        policy=DeliveryPolicy(
            schedule_s=settings.retry_delays_s(),
            jitter=settings.retry_jitter,
            max_retry_after_s=settings.max_retry_after_s,
            max_consecutive_failures=settings.max_consecutive_failures,
            lease_s=settings.delivery_lease_s,
            per_subscription=settings.delivery_concurrency_per_subscription,
        ),
        sealer=sealer,
        on_new_deliveries=due.set,
    )
    deliveries = DeliveryLoop(
        service,
        webhooks=webhooks,
        mail=mail,
        due=due,
        batch_size=settings.delivery_batch_size,
        concurrency=settings.delivery_concurrency,
        poll_interval_s=settings.delivery_poll_interval_s,
    )
    consumer = EventConsumerTask(
        broker.consumer(
            group_id=CONSUMER,
            event_types=EVENT_TYPES,
            handler=DeliveryFanOut(lambda: database.pool, service).handle,
            fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
            park=postgres_parking(lambda: database.pool),
        ),
        name="consumer",
    )
    resources: list[Resource] = [
        database,
        StoredSecretsSealing(service),
        broker,
        relay,
        deliveries,
        consumer,
    ]
    if settings.service_credential is not None:
        scheduler = SchedulerState(settings.scheduler_grpc_target, settings.service_credential)
        run_ends = RunEndReconciler(
            service,
            scheduler.run,
            quiet_s=settings.notify_reconcile_quiet_after_s,
            look_back_s=settings.notify_reconcile_look_back_s,
            interval_s=settings.notify_reconcile_interval_s,
            batch_size=settings.notify_reconcile_batch_size,
        )
        resources += [scheduler, run_ends]
    return create_service_app(
        settings,
        resources=resources,
        routers=[
            build_router(service),
            parked_events_router("notification", lambda: database.pool),
        ],
    )
