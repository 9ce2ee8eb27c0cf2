"""Wires the workflow service: database, broker, outbox relay, projection, reconciler."""

from __future__ import annotations

from fastapi import FastAPI

from interlock.common.http import create_app as create_service_app
from interlock.common.kafka import EventConsumerTask, KafkaBroker
from interlock.common.outbox import OUTBOX_MIGRATIONS, OutboxRelayTask
from interlock.common.postgres import MigrationSource, PostgresDatabase
from interlock.workflow.api import build_router, openapi_schemas
from interlock.workflow.handlers import CONSUMER, EVENT_TYPES, RunProjection
from interlock.workflow.reconciler import StartReconciler
from interlock.workflow.service import WorkflowService
from interlock.workflow.settings import WorkflowSettings

MIGRATIONS = MigrationSource(component="workflow", location="interlock.workflow.migrations")
"""The workflow service's own tables."""


def create_app(settings: WorkflowSettings | None = None) -> FastAPI:
    """Build the workflow service's app. Default settings come from the environment."""
    settings = settings or WorkflowSettings()
    database = PostgresDatabase(settings, migrations=[OUTBOX_MIGRATIONS, MIGRATIONS])
    broker = KafkaBroker(settings)
    relay = OutboxRelayTask(database, broker)
    projection = EventConsumerTask(
        broker.consumer(
            group_id=CONSUMER,
            event_types=EVENT_TYPES,
            handler=RunProjection(lambda: database.pool).handle,
            fetch_max_wait_ms=settings.projection_fetch_max_wait_ms,
        ),
        name="projection",
    )
    service = WorkflowService(lambda: database.pool, source=settings.service_name)
    reconciler = StartReconciler(
        service,
        interval_s=settings.reconcile_interval_s,
        grace_s=settings.start_grace_s,
        max_republishes=settings.max_start_republishes,
    )
    return create_service_app(
        settings,
        resources=[database, broker, relay, projection, reconciler],
        routers=[build_router(service)],
        openapi_schemas=openapi_schemas(),
    )
