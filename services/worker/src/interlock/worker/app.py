"""Wires the worker service: the broker, the executors and the worker runtime."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI

from interlock.common.http import create_app as create_service_app
from interlock.common.kafka import KafkaBroker
from interlock.worker.artifacts import ArtifactClient, artifact_store_factory
from interlock.worker.context import ArtifactStoreFactory
from interlock.worker.executors import Executor, load_executors
from interlock.worker.runtime import Worker
from interlock.worker.settings import WorkerSettings


def create_app(
    settings: WorkerSettings | None = None,
    *,
    executors: Mapping[str, Executor] | None = None,
    artifacts: ArtifactStoreFactory | None = None,
) -> FastAPI:
    """Build the worker service's app. Default settings come from the environment.

    Args:
        settings: The settings. Default: read from the environment.
        executors: Executors by task type. Default: every executor registered under
            the ``interlock.executors`` entry point group.
        artifacts: Gives each attempt its artifact store. Default: the artifact
            service's (:mod:`interlock.worker.artifacts`).

    Returns:
        The app; its lifespan runs the worker and drains it at shut-down.
    """
    settings = settings or WorkerSettings()
    broker = KafkaBroker(settings)
    artifact_client = ArtifactClient(settings)
    worker = Worker(
        settings,
        broker,
        executors if executors is not None else load_executors(settings),
        artifacts=artifacts or artifact_store_factory(artifact_client),
    )
    app = create_service_app(settings, resources=[broker, artifact_client, worker])
    app.state.worker = worker
    return app
