"""Wires the metadata service: MongoDB, broker, execution projection, reconciler, HTTP."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from interlock.common.http import create_app as create_service_app
from interlock.common.kafka import EventConsumer, EventConsumerTask, KafkaBroker
from interlock.common.mongo import MongoDatabase
from interlock.common.resources import Resource
from interlock.common.scheduler_state import SchedulerState
from interlock.metadata.api import build_router
from interlock.metadata.handlers import CONSUMER, EVENT_TYPES, ExecutionProjection
from interlock.metadata.logs import build_logs
from interlock.metadata.reconciler import Reconciler
from interlock.metadata.service import ExecutionService
from interlock.metadata.settings import MetadataSettings
from interlock.metadata.store import ExecutionIndexes, ExecutionStore


def create_app(settings: MetadataSettings | None = None) -> FastAPI:
    """Build the metadata service's app. Default settings come from the environment."""
    settings = settings or MetadataSettings()
    mongo = MongoDatabase(settings)
    broker = KafkaBroker(settings)
    store = ExecutionStore(lambda: mongo.db)
    retention = timedelta(days=settings.execution_retention_days)
    executions = ExecutionService(store, retention=retention)
    projection = EventConsumerTask(
        EventConsumer(
            settings.model_copy(
                update={"kafka_max_batch_size": settings.projection_max_batch_size}
            ),
            group_id=CONSUMER,
            event_types=EVENT_TYPES,
            handler=ExecutionProjection(executions).handle,
            client_id=settings.service_name,
            fetch_max_wait_ms=settings.projection_fetch_max_wait_ms,
            on_partitions_changed=executions.forget_kept,
        ),
        name="executions",
    )
    logs = build_logs(settings, mongo, broker, source=settings.service_name)
    resources: list[Resource] = [
        mongo,
        ExecutionIndexes(store, retention=retention),
        broker,
        projection,
        *logs.resources,
    ]
    if settings.service_credential is not None:
        scheduler = SchedulerState(settings.scheduler_grpc_target, settings.service_credential)
        reconciler = Reconciler(
            executions,
            scheduler.run,
            quiet_after=timedelta(seconds=settings.reconcile_quiet_after_s),
            interval_s=settings.reconcile_interval_s,
            batch_size=settings.reconcile_batch_size,
        )
        resources += [scheduler, reconciler]
    return create_service_app(
        settings, resources=resources, routers=[build_router(executions), logs.router]
    )
