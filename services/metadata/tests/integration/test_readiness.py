from collections.abc import Callable
from typing import Any

import pytest

from interlock.common.testing import app_client
from interlock.devstack import KafkaServer, MongoServer
from interlock.metadata import MetadataSettings, create_app

pytestmark = pytest.mark.integration


async def test_not_ready_once_mongodb_stops(
    own_mongo_server: tuple[MongoServer, Callable[[], None]], kafka_server: KafkaServer
) -> None:
    mongo, stop_mongo = own_mongo_server
    settings = MetadataSettings(
        mongo_url=mongo.url,
        mongo_server_selection_timeout_ms=500,
        kafka_bootstrap_servers=kafka_server.bootstrap_servers,
    )
    async with app_client(create_app(settings)) as client:
        before = await client.get("/readyz")
        stop_mongo()
        after = await client.get("/readyz")
        alive = await client.get("/healthz")
    assert before.status_code == 200, before.text
    assert after.status_code == 503
    checks: dict[str, Any] = after.json()["checks"]
    assert checks["mongo"] != "ok"
    assert checks["kafka"] == "ok"
    assert alive.status_code == 200
