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
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from interlock.common.resources import Lifecycle
from interlock.common.settings import MongoOptions

__all__ = [
    "DUPLICATE_KEY",
    "MongoDatabase",
    "MongoDocument",
    "check_mongo",
    "create_mongo_client",
    "insert_new",
]

MongoDocument = dict[str, Any]
"""The document type the client returns."""

DUPLICATE_KEY = 11000
"""MongoDB's error code for a write that would duplicate a unique key (``_id`` too)."""


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


async def insert_new(
    collection: AsyncCollection[MongoDocument], documents: list[MongoDocument]
) -> set[Any]:
    """Insert ``documents`` in one unordered insert; those whose ``_id`` exists stay out.

    Where a document may exist already (a redelivered batch, say) and the stored one
    is to be kept, this is one command where an upsert per document is one statement
    each.

    Returns:
        The ``_id`` of every document not inserted because its ``_id`` was stored.

    Raises:
        pymongo.errors.BulkWriteError: A document failed for another reason.
    """
    if not documents:
        return set()
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        failures = error.details.get("writeErrors", [])
        if error.details.get("writeConcernErrors") or any(
            failure.get("code") != DUPLICATE_KEY for failure in failures
        ):
            raise
        return {documents[failure["index"]]["_id"] for failure in failures}
    return set()


class MongoDatabase(Lifecycle):
    """The service's MongoDB database as a resource (see ``interlock.common.resources``).

    Args:
        options: URL, database name and server selection timeout.
        app_name: Shown in the server's logs. Default: the options' ``service_name``
            when they have one.
        name: Name ``/readyz`` reports. Default: ``"mongo"``.
    """

    def __init__(
        self, options: MongoOptions, *, app_name: str | None = None, name: str = "mongo"
    ) -> None:
        self.name = name
        self._options = options
        self._app_name = app_name or getattr(options, "service_name", None)
        self._client: AsyncMongoClient[MongoDocument] | None = None

    @property
    def client(self) -> AsyncMongoClient[MongoDocument]:
        """The open client.

        Raises:
            RuntimeError: When the database is not open.
        """
        if self._client is None:
            raise RuntimeError(f"{self.name} is not open")
        return self._client

    @property
    def db(self) -> AsyncDatabase[MongoDocument]:
        """The database named ``options.mongo_database``."""
        return self.client[self._options.mongo_database]

    async def start(self) -> None:
        """Create the client (it connects lazily)."""
        self._client = create_mongo_client(self._options, app_name=self._app_name)

    async def stop(self) -> None:
        """Close the client. Safe to call more than once."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def check(self) -> None:
        """Raise unless the server answers ``ping`` (see :func:`check_mongo`)."""
        await check_mongo(self.client)
