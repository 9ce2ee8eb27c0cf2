"""Wires the workflow service: database, broker, outbox relay, projection, reconcilers."""

from __future__ import annotations

from fastapi import FastAPI

from interlock.common.http import create_app as create_service_app
from interlock.common.kafka import EventConsumerTask, KafkaBroker
from interlock.common.outbox import OUTBOX_MIGRATIONS, OutboxRelayTask
from interlock.common.parking import parked_events_router, postgres_parking
from interlock.common.postgres import MigrationSource, PostgresDatabase
from interlock.common.resources import Resource
from interlock.common.scheduler_state import SchedulerState
from interlock.workflow.api import build_router, openapi_schemas
from interlock.workflow.handlers import CONSUMER, EVENT_TYPES, RunProjection
from interlock.workflow.reconciler import StartReconciler, ViewReconciler
from interlock.workflow.service import WorkflowService
from interlock.workflow.settings import WorkflowSettings
from interlock.workflow.tasks import SchedulerTasks

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
            fetch_max_wait_ms=settings.view_fetch_max_wait_ms,
            park=postgres_parking(lambda: database.pool),
        ),
        name="projection",
    )
    scheduler = None
    if settings.service_credential is not None:
        scheduler = SchedulerState(settings.scheduler_grpc_target, settings.service_credential)
    service = WorkflowService(
        lambda: database.pool,
        source=settings.service_name,
        run_tasks=None if scheduler is None else SchedulerTasks(scheduler),
    )
    reconciler = StartReconciler(
        service,
        interval_s=settings.reconcile_interval_s,
        grace_s=settings.start_grace_s,
        max_republishes=settings.max_start_republishes,
    )
    resources: list[Resource] = [database, broker, relay, projection, reconciler]
    if scheduler is not None:
        views = ViewReconciler(
            service,
            scheduler.run,
            quiet_s=settings.view_quiet_after_s,
            interval_s=settings.view_reconcile_interval_s,
            batch_size=settings.view_reconcile_batch_size,
        )
        resources += [scheduler, views]
    return create_service_app(
        settings,
        resources=resources,
        routers=[build_router(service), parked_events_router("workflow", lambda: database.pool)],
        openapi_schemas=openapi_schemas(),
    )
