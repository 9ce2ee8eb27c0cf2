"""MongoDB: the client (PyMongo's native async API) and a readiness check.

Example::

    client = create_mongo_client(settings, app_name="metadata")
    db = client[settings.mongo_database]
    ...
    await client.close()
"""

from __future__ import annotations

from typing import Any

import pymongo
from pymongo import AsyncMongoClient

from interlock.common.settings import MongoOptions

__all__ = ["MongoDocument", "check_mongo", "create_mongo_client"]

MongoDocument = dict[str, Any]
"""The document type the client returns."""


def create_mongo_client(
    options: MongoOptions, *, app_name: str | None = None
) -> AsyncMongoClient[MongoDocument]:
    """Create an ``AsyncMongoClient`` for ``options.mongo_url``.

    The client connects lazily, on its first operation. Datetimes come back
    timezone-aware (UTC).

    Args:
        options: URL and server selection timeout.
        app_name: Shown in the server's logs and ``currentOp``. Default: unset.

    Returns:
        The client; close it with ``await client.close()``.
    """
    kwargs: dict[str, Any] = {
        "tz_aware": True,
        "serverSelectionTimeoutMS": options.mongo_server_selection_timeout_ms,
    }
    if app_name:
        kwargs["appname"] = app_name
    return AsyncMongoClient(options.mongo_url, **kwargs)


async def check_mongo(client: AsyncMongoClient[Any], *, timeout_s: float = 2.0) -> None:
    """Raise unless the server answers ``ping`` within ``timeout_s``.

    Args:
        client: The client to check.
        timeout_s: Bound on server selection and the command. Default: 2 s.

    Raises:
        pymongo.errors.PyMongoError: When no server answers in time (e.g.
            ``ServerSelectionTimeoutError`` or another timeout error).
    """
    with pymongo.timeout(timeout_s):
        await client.admin.command("ping")
