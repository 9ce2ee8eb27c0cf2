"""Wires the artifact service: its database, the object store and the HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from interlock.artifact.settings import ArtifactSettings
from interlock.artifact.storage import ObjectStore
from interlock.common.http import create_app as create_service_app
from interlock.common.outbox import OUTBOX_MIGRATIONS
from interlock.common.postgres import PostgresDatabase


def create_app(settings: ArtifactSettings | None = None) -> FastAPI:
    """Build the artifact service's app. Default settings come from the environment."""
    settings = settings or ArtifactSettings()
    database = PostgresDatabase(settings, migrations=[OUTBOX_MIGRATIONS])
    store = ObjectStore(settings)
    return create_service_app(settings, resources=[database, store])
