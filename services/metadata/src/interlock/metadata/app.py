"""Wires the metadata service: MongoDB, the broker and the HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from interlock.common.http import create_app as create_service_app
from interlock.common.kafka import KafkaBroker
from interlock.common.mongo import MongoDatabase
from interlock.metadata.logs import build_logs
from interlock.metadata.settings import MetadataSettings


def create_app(settings: MetadataSettings | None = None) -> FastAPI:
    """Build the metadata service's app. Default settings come from the environment."""
    settings = settings or MetadataSettings()
    mongo = MongoDatabase(settings)
    broker = KafkaBroker(settings)
    logs = build_logs(settings, mongo, broker)
    return create_service_app(
        settings, resources=[mongo, broker, *logs.resources], routers=[logs.router]
    )
