"""Wires the worker service: the broker and the HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from interlock.common.http import create_app as create_service_app
from interlock.common.kafka import KafkaBroker
from interlock.worker.settings import WorkerSettings


def create_app(settings: WorkerSettings | None = None) -> FastAPI:
    """Build the worker service's app. Default settings come from the environment."""
    settings = settings or WorkerSettings()
    broker = KafkaBroker(settings)
    return create_service_app(settings, resources=[broker])
