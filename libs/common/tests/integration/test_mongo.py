import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.errors import PyMongoError

from interlock.common.mongo import check_mongo, create_mongo_client
from interlock.common.settings import MongoOptions

pytestmark = pytest.mark.integration


async def test_client_talks_to_the_server_and_check_passes(mongo_server: Any) -> None:
    client = create_mongo_client(
        MongoOptions(mongo_url=mongo_server.url, mongo_database="common_tests"),
        app_name="interlock-tests",
    )
    try:
        await check_mongo(client)
        collection = client["common_tests"]["things"]
        now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
        await collection.insert_one({"_id": "a", "at": now})
        found = await collection.find_one({"_id": "a"})
        assert found is not None
        assert found["at"] == now and found["at"].tzinfo is not None
    finally:
        await client.close()


async def test_check_fails_fast_when_the_server_is_unreachable() -> None:
    client = create_mongo_client(
        MongoOptions(mongo_url="mongodb://127.0.0.1:1/?directConnection=true")
    )
    try:
        began = time.monotonic()
        with pytest.raises(PyMongoError):
            await check_mongo(client, timeout_s=0.5)
        assert time.monotonic() - began < 2.0
    finally:
        await client.close()
