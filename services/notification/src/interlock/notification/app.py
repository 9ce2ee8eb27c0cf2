"""Wires the notification service: its database, the broker, the outbox relay and the HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from interlock.common.http import create_app as create_service_app
from interlock.common.kafka import KafkaBroker
from interlock.common.outbox import OUTBOX_MIGRATIONS, OutboxRelayTask
from interlock.common.postgres import PostgresDatabase
from interlock.notification.settings import NotificationSettings


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    """Build the notification service's app. Default settings come from the environment."""
    settings = settings or NotificationSettings()
    database = PostgresDatabase(settings, migrations=[OUTBOX_MIGRATIONS])
    broker = KafkaBroker(settings)
    relay = OutboxRelayTask(database, broker)
    return create_service_app(settings, resources=[database, broker, relay])
