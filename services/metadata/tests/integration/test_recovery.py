"""MongoDB stopped mid-load: no commits, not ready, and everything caught up on its return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from interlock.common.testing import app_client, identity_headers
from interlock.devstack import KafkaServer, MongoServer
from interlock.devstack._runner import RestartableServer
from interlock.metadata import create_app

from .conftest import RunEvents, eventually, metadata_settings, publish

pytestmark = pytest.mark.integration

TENANT = "acme"


async def test_mongodb_stopped_and_restarted_mid_load_loses_nothing(
    restartable_mongo: tuple[MongoServer, RestartableServer], kafka_server: KafkaServer
) -> None:
    mongo, control = restartable_mongo
    settings = metadata_settings(mongo.url, kafka_server)
    start = datetime.now(UTC) - timedelta(minutes=1)
    runs = [
        RunEvents(TENANT, "load", start=start)
        .started({"a": "noop"})
        .attempt("a", 1, 1)
        .completed(2)
        for _ in range(40)
    ]
    async with app_client(create_app(settings)) as client:
        client.headers.update(identity_headers(TENANT, roles=["viewer"]))

        async def succeeded() -> int:
            answer = await client.get(
                "/api/v1/executions", params={"status": "succeeded", "page_size": 500}
            )
            return len(answer.json()["executions"]) if answer.status_code == 200 else -1

        await publish(settings, [e for run in runs[:20] for e in run.events])
        await eventually(lambda: _equals(succeeded(), 20))
        control.stop(graceful=False)
        await publish(settings, [e for run in runs[20:] for e in run.events])

        async def unready() -> bool:
            answer = await client.get("/readyz")
            return answer.status_code == 503

        await eventually(unready)
        control.start()
        await eventually(lambda: _equals(succeeded(), 40), timeout_s=60)
        ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text


async def _equals(count: object, expected: int) -> bool:
    return await count == expected  # type: ignore[misc]
