"""Wires the artifact service: its database, the object store, the scheduler, the app."""

from __future__ import annotations

from fastapi import FastAPI

from interlock.artifact.api import build_router
from interlock.artifact.collector import Collector
from interlock.artifact.domain import Limits
from interlock.artifact.internal import build_internal_router
from interlock.artifact.runs import RunDirectory
from interlock.artifact.service import ArtifactService
from interlock.artifact.settings import ArtifactSettings
from interlock.artifact.storage import ObjectStore
from interlock.common.http import create_app as create_service_app
from interlock.common.outbox import OUTBOX_MIGRATIONS
from interlock.common.postgres import MigrationSource, PostgresDatabase

MIGRATIONS = MigrationSource(component="artifact", location="interlock.artifact.migrations")
"""The artifact service's own tables."""


def create_app(settings: ArtifactSettings | None = None) -> FastAPI:
    """Build the artifact service's app. Default settings come from the environment."""
    settings = settings or ArtifactSettings()
    database = PostgresDatabase(settings, migrations=[OUTBOX_MIGRATIONS, MIGRATIONS])
    objects = ObjectStore(settings)
    runs = RunDirectory(settings)
    service = ArtifactService(
        lambda: database.pool,
        objects,
        runs,
        limits=Limits(
            max_artifact_bytes=settings.max_artifact_bytes,
            tenant_quota_bytes=settings.tenant_quota_bytes,
            default_retention_s=settings.default_retention_s,
            max_retention_s=settings.max_retention_s,
        ),
        upload_grace_s=settings.upload_grace_s,
    )
    collector = Collector(
        service, interval_s=settings.collect_interval_s, batch_size=settings.collect_batch_size
    )
    app = create_service_app(
        settings,
        resources=[database, objects, runs, collector],
        routers=[
            build_router(service, public_base_url=settings.public_url),
            build_internal_router(service, settings.service_credentials),
        ],
    )
    app.state.artifacts = service
    app.state.collector = collector
    return app
