"""Every service starts against real servers and serves health, readiness and metrics."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from interlock import artifact, iam, metadata, notification, scheduler, worker, workflow
from interlock.common.testing import app_client
from interlock.iam.domain import new_key_encryption_key

pytestmark = pytest.mark.integration

AppFactory = Callable[[pytest.FixtureRequest], FastAPI]


def _postgres(request: pytest.FixtureRequest, service: str) -> dict[str, Any]:
    server = request.getfixturevalue("postgres_server")
    return {
        "postgres_dsn": server.create_database(f"{service}_smoke"),
        "postgres_password": server.password,
    }


def _kafka(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"kafka_bootstrap_servers": request.getfixturevalue("kafka_server").bootstrap_servers}


def _mongo(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"mongo_url": request.getfixturevalue("mongo_server").url}


def _s3(request: pytest.FixtureRequest) -> dict[str, Any]:
    server = request.getfixturevalue("s3_server")
    return {
        "s3_endpoint": server.endpoint,
        "s3_access_key": server.access_key,
        "s3_secret_key": server.secret_key,
        "s3_bucket": "artifact-smoke",
    }


SERVICES: dict[str, tuple[AppFactory, list[str]]] = {
    "iam": (
        lambda r: iam.create_app(
            iam.IamSettings(
                **_postgres(r, "iam"),
                grpc_port=0,
                authz_port=0,
                key_encryption_keys=SecretStr(new_key_encryption_key()),
            )
        ),
        ["accounts", "authz", "credentials", "grpc", "postgres"],
    ),
    "workflow": (
        lambda r: workflow.create_app(
            workflow.WorkflowSettings(**_postgres(r, "workflow"), **_kafka(r))
        ),
        ["kafka", "outbox-relay", "postgres", "projection", "reconciler"],
    ),
    "scheduler": (
        lambda r: scheduler.create_app(
            scheduler.SchedulerSettings(**_postgres(r, "scheduler"), **_kafka(r), grpc_port=0)
        ),
        [
            "admission",
            "consumer:scheduler",
            "grpc",
            "kafka",
            "outbox-relay",
            "postgres",
            "reconciler",
            "timers",
        ],
    ),
    "worker": (
        lambda r: worker.create_app(worker.WorkerSettings(**_kafka(r))),
        ["artifact-client", "kafka", "worker"],
    ),
    "metadata": (
        lambda r: metadata.create_app(metadata.MetadataSettings(**_mongo(r), **_kafka(r))),
        ["executions", "indexes", "kafka", "log-gaps", "log-indexes", "logs-consumer", "mongo"],
    ),
    "notification": (
        lambda r: notification.create_app(
            notification.NotificationSettings(
                **_postgres(r, "notification"),
                **_kafka(r),
                key_encryption_keys=SecretStr(new_key_encryption_key()),
            )
        ),
        ["consumer", "deliveries", "kafka", "outbox-relay", "postgres", "secrets"],
    ),
    "artifact": (
        lambda r: artifact.create_app(
            artifact.ArtifactSettings(**_postgres(r, "artifact"), **_s3(r))
        ),
        ["collector", "postgres", "s3", "scheduler"],
    ),
}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_service_is_alive_ready_and_measured(
    service: str, request: pytest.FixtureRequest
) -> None:
    factory, dependencies = SERVICES[service]
    async with app_client(factory(request)) as client:
        alive = await client.get("/healthz")
        ready = await client.get("/readyz")
        missing = await client.get("/no/such/route")
        metrics = await client.get("/metrics")
    assert alive.status_code == 200
    assert ready.status_code == 200, ready.text
    assert sorted(ready.json()["checks"]) == dependencies
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 404
    assert metrics.status_code == 200
    assert 'interlock_http_requests_total{method="GET",route="/readyz",status="200"}' in (
        metrics.text
    )
