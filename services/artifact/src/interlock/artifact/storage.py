"""The S3 bucket that holds artifact bytes (SeaweedFS locally, MinIO in compose)."""

from __future__ import annotations

import asyncio

import urllib3
from minio import Minio

from interlock.artifact.settings import ArtifactSettings
from interlock.common.resources import Lifecycle

_CONNECT_TIMEOUT_S = 2.0
_READ_TIMEOUT_S = 60.0


class ObjectStore(Lifecycle):
    """The artifact bucket, created at start-up when missing.

    The MinIO SDK is synchronous; every call runs in a worker thread so the
    event loop never blocks on S3.
    """

    name = "s3"

    def __init__(self, settings: ArtifactSettings) -> None:
        self.bucket = settings.s3_bucket
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            http_client=urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=_CONNECT_TIMEOUT_S, read=_READ_TIMEOUT_S),
                retries=urllib3.Retry(total=2, backoff_factor=0.2),
            ),
        )

    async def start(self) -> None:
        """Create the bucket when it does not exist yet."""
        """Create the bucket when it does not exist yet."""
        if not await asyncio.to_thread(self.client.bucket_exists, self.bucket):
            await asyncio.to_thread(self.client.make_bucket, self.bucket)

    async def stop(self) -> None:
        """Nothing to close: the SDK opens connections per request."""
        """Nothing to close: the SDK opens connections per request."""

    async def check(self) -> None:
        """Raise unless the bucket answers."""
        if not await asyncio.to_thread(self.client.bucket_exists, self.bucket):
            raise LookupError(f"bucket {self.bucket!r} does not exist")
