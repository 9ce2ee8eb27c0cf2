"""The S3 bucket that holds artifact bytes (SeaweedFS locally, MinIO in compose).

The MinIO SDK is synchronous: every call runs in a worker thread so the event loop
never blocks on S3. An upload streams: :class:`StreamReader` hands the SDK the request's
bytes as they arrive, hashing and counting them on the way, and the SDK sends them in
parts of ``s3_part_size_bytes``, two at a time (about three parts in memory).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import BinaryIO, cast
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from interlock.artifact.domain import DependencyUnavailableError
from interlock.artifact.settings import ArtifactSettings
from interlock.common.resources import Lifecycle

__all__ = ["ObjectStore", "StoredObject", "StreamReader"]

_CONNECT_TIMEOUT_S = 2.0
_READ_TIMEOUT_S = 60.0
_READ_CHUNK_BYTES = 4 * 1024 * 1024
"""A download's read size. Against 1 MiB, a 100 MB download through the gateway on a
busy 2-core machine went from ~55% to ~70% of a direct one (fewer crossings between
threads, each of which waits to be scheduled); a download holds two such chunks."""
_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchBucket"}


class StreamReader:
    """A blocking ``read()`` over an async stream of chunks, for the SDK's thread.

    Counts and hashes (SHA-256) the bytes as they pass; :meth:`read` raises what
    ``on_too_large`` raises once the count grows beyond ``limit`` (the SDK then aborts
    its multipart upload). Each :meth:`read` crosses to the event loop once, for all
    the chunks it needs (a part's worth when the SDK asks for a part), rather than once
    a chunk: on a busy machine every crossing waits for both threads to be scheduled.
    The hashing stays in the SDK's thread, which hashlib runs without the GIL.

    Args:
        chunks: The bytes, as they arrive.
        loop: The event loop ``chunks`` belongs to.
        limit: Most bytes accepted.
        on_too_large: Builds the error raised beyond ``limit``, given the count.
    """

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        loop: asyncio.AbstractEventLoop,
        *,
        limit: int,
        on_too_large: Callable[[int], Exception],
    ) -> None:
        self._chunks = chunks
        self._loop = loop
        self._limit = limit
        self._on_too_large = on_too_large
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._received = 0
        self._ended = False
        self.size_bytes = 0
        """Bytes read from the stream so far."""
        self.digest = hashlib.sha256()
        """SHA-256 of those bytes."""

    async def _gather(self, wanted: int) -> list[bytes]:
        """Chunks holding at least ``wanted`` bytes (all that is left when negative)."""
        chunks: list[bytes] = []
        held = 0
        while wanted < 0 or held < wanted:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                self._ended = True
                break
            self._received += len(chunk)
            if self._received > self._limit:
                raise self._on_too_large(self._received)
            chunks.append(chunk)
            held += len(chunk)
        return chunks

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all when negative); empty at the end."""
        if not self._ended and (size < 0 or self._held_bytes < size):
            wanted = -1 if size < 0 else size - self._held_bytes
            future = asyncio.run_coroutine_threadsafe(self._gather(wanted), self._loop)
            for chunk in future.result():
                self.digest.update(chunk)
                self._held.append(chunk)
                self._held_bytes += len(chunk)
            self.size_bytes = self._received
        if size < 0 or size >= self._held_bytes:
            taken, self._held, self._held_bytes = self._held, [], 0
            return b"".join(taken)
        return self._take(size)

    def _take(self, size: int) -> bytes:
        """The first ``size`` held bytes, copied once; fewer than all that is held."""
        count = taken = 0
        while taken + len(self._held[count]) <= size:
            taken += len(self._held[count])
            count += 1
        cut = size - taken
        last = self._held[count]
        parts = [*self._held[:count], last[:cut]]
        self._held[: count + 1] = [last[cut:]]
        self._held_bytes -= size
        return b"".join(parts)


class StoredObject:
    """An object being read: its bytes in chunks, closed at the end or on :meth:`close`.

    The next chunk is read from S3 (in a thread) while the one before it is sent on,
    so S3 and the client are not waited for in turn.
    """

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    async def chunks(self) -> AsyncIterator[bytes]:
        """The bytes, about 4 MiB at a time."""
        ahead = self._read_ahead()
        try:
            # Shielded: a cancelled download must not close the response under a read.
            while chunk := await asyncio.shield(ahead):
                ahead = self._read_ahead()
                yield chunk
        finally:
            # A read may still run in its thread (the client went away): close after it.
            ahead.add_done_callback(self._close_after)

    def _read_ahead(self) -> asyncio.Future[bytes]:
        return asyncio.ensure_future(asyncio.to_thread(self._response.read, _READ_CHUNK_BYTES))

    def _close_after(self, read: asyncio.Future[bytes]) -> None:
        if not read.cancelled():
            read.exception()  # retrieved: a read cut short by the close is expected
        self.close()

    def close(self) -> None:
        """Give the connection back."""
        self._response.close()
        self._response.release_conn()


class ObjectStore(Lifecycle):
    """The artifact bucket, created at start-up when missing."""

    name = "s3"

    def __init__(self, settings: ArtifactSettings) -> None:
        self.bucket = settings.s3_bucket
        self._part_size = settings.s3_part_size_bytes
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            # Known up front, so signing a URL asks S3 nothing.
            region=settings.s3_region,
            http_client=urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=_CONNECT_TIMEOUT_S, read=_READ_TIMEOUT_S),
                retries=urllib3.Retry(total=2, backoff_factor=0.2),
                maxsize=32,
            ),
        )

    async def start(self) -> None:
        """Create the bucket when it does not exist yet."""
        if not await asyncio.to_thread(self.client.bucket_exists, self.bucket):
            await asyncio.to_thread(self.client.make_bucket, self.bucket)

    async def stop(self) -> None:
        """Nothing to close: the SDK's pool holds no resource worth waiting for."""

    async def check(self) -> None:
        """Raise unless the bucket answers."""
        if not await asyncio.to_thread(self.client.bucket_exists, self.bucket):
            raise LookupError(f"bucket {self.bucket!r} does not exist")

    async def put(self, key: str, reader: StreamReader, content_type: str) -> None:
        """Store what ``reader`` yields under ``key`` (multipart beyond one part).

        Raises:
            DependencyUnavailableError: S3 refused or did not answer.
            Exception: Whatever ``reader`` raised (the upload is aborted).
        """
        try:
            await asyncio.to_thread(
                self.client.put_object,
                self.bucket,
                key,
                cast(BinaryIO, reader),  # the SDK calls read() only
                length=-1,
                content_type=content_type,
                part_size=self._part_size,
                # Two: one part goes to S3 while the next arrives from the client (with
                # one, the client waits while each part is sent). The SDK's pool takes
                # a part only when an uploader is free, so at most three are held.
                num_parallel_uploads=2,
            )
        except (MinioException, urllib3.exceptions.HTTPError) as error:
            raise DependencyUnavailableError(f"the object store failed: {error}") from error

    async def size(self, key: str) -> int | None:
        """The stored object's size, or ``None`` when there is none."""
        try:
            stat = await asyncio.to_thread(self.client.stat_object, self.bucket, key)
        except S3Error as error:
            if error.code in _MISSING:
                return None
            raise DependencyUnavailableError(f"the object store failed: {error.code}") from error
        return stat.size

    async def open(self, key: str, *, offset: int = 0, length: int = 0) -> StoredObject:
        """Start reading ``length`` bytes (0: to the end) of ``key`` from ``offset``."""
        try:
            response = await asyncio.to_thread(
                self.client.get_object, self.bucket, key, offset=offset, length=length
            )
        except (MinioException, urllib3.exceptions.HTTPError) as error:
            raise DependencyUnavailableError(f"the object store failed: {error}") from error
        return StoredObject(response)

    async def remove(self, key: str) -> None:
        """Delete ``key`` (nothing to do when it is gone)."""
        await asyncio.to_thread(self.client.remove_object, self.bucket, key)

    def presigned_url(
        self,
        method: str,
        key: str,
        *,
        lifetime_s: int,
        response_headers: dict[str, str] | None = None,
    ) -> tuple[str, datetime]:
        """A pre-signed URL's path and query (signed for the S3 host), and its expiry.

        Pure computation: the region is configured, so nothing is sent.
        """
        now = datetime.now(UTC)
        url = self.client.get_presigned_url(
            method,
            self.bucket,
            key,
            expires=timedelta(seconds=lifetime_s),
            response_headers=dict(response_headers or {}),
            request_date=now,
        )
        parts = urlsplit(url)
        return f"{parts.path}?{parts.query}", now + timedelta(seconds=lifetime_s)

    def older_keys(self, cutoff: datetime) -> Iterator[str]:
        """Keys of objects last modified before ``cutoff`` (blocking: run in a thread)."""
        for item in self.client.list_objects(self.bucket, recursive=True):
            modified = item.last_modified
            if item.object_name and modified is not None and modified < cutoff:
                yield item.object_name
