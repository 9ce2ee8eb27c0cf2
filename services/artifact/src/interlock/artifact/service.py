"""Use cases of the artifact service: upload, complete, read, list, delete, collect.

A row is written ``pending`` before any byte goes to S3 and becomes ``available`` only
once the bytes are stored and their size and SHA-256 verified, in a transaction that
holds the tenant's quota lock. Whatever fails on the way removes the object and the row
(nothing kept); whatever crashes on the way leaves a pending row or an object without a
row, which :meth:`ArtifactService.sweep_orphans` removes once its deadline passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from interlock.artifact import metrics, store
from interlock.artifact.domain import (
    ArtifactNotFoundError,
    ArtifactStateError,
    ArtifactTooLargeError,
    ByteRange,
    ChecksumMismatchError,
    InvalidArtifactError,
    Limits,
    QuotaExceededError,
    check_name,
    check_run_id,
    check_task_id,
    content_disposition,
    link_lifetime_s,
    object_key,
    parse_range,
)
from interlock.artifact.runs import RunDirectory
from interlock.artifact.storage import ObjectStore, StoredObject, StreamReader
from interlock.artifact.store import StoredArtifact
from interlock.common.paging import Page, PageKey

__all__ = ["ArtifactService", "Content", "Handoff", "NewArtifact", "Uploader"]

_log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # PostgreSQL's text and jsonb refuse them
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][\w.+-]*/[\w.+-]+(?:\s*;[ -~]*)?")
_MAX_CONTENT_TYPE = 255
_MAX_LABELS = 64
_MAX_LABEL_CHARS = 256
_PAGE = PageKey("artifacts", datetime, uuid.UUID)
_SWEEP_KEYS_PER_QUERY = 500
_HANDOFF_LIFETIME_S = 60
"""Lifetime of the pre-signed GET a download is handed to the gateway with: the gateway
follows it at once, so a minute covers any delay and leaves little worth replaying."""


@dataclass(frozen=True, kw_only=True)
class Uploader:
    """Who stores an artifact."""

    tenant: str
    created_by: str
    """A user's subject, or ``worker`` for a task's upload."""
    identity_token: str | None = None
    """The caller's identity token, with which the scheduler is asked whether the run
    exists; ``None`` for a worker, which runs the task and so knows the run exists."""
    attempt: int | None = None
    """The task's attempt, for a worker's upload."""


@dataclass(frozen=True, kw_only=True)
class NewArtifact:
    """What an upload says about the artifact, as received (checked by the service)."""

    run_id: str
    name: str
    task_id: str | None = None
    content_type: str | None = None
    sha256: str | None = None
    """The client's hex SHA-256: the stored bytes must have it (422 otherwise)."""
    size_bytes: int | None = None
    """The declared size (pre-signed uploads)."""
    labels: dict[str, str] = field(default_factory=dict)
    retention: str | None = None
    """How long to keep it, a duration such as ``7d``. Default: the service's."""


@dataclass(frozen=True, kw_only=True)
class Content:
    """An artifact being downloaded: the whole of it or one range."""

    artifact: StoredArtifact
    byte_range: ByteRange | None
    body: AsyncIterator[bytes]
    content_disposition: str


@dataclass(frozen=True, kw_only=True)
class Handoff:
    """A download the gateway serves from S3 itself, on the service's word."""

    artifact: StoredArtifact
    path: str
    """Path and query of a short-lived pre-signed GET of the object (signed for S3's
    host, for the gateway's S3 route)."""


class ArtifactService:
    """The use cases, over the database, the object store and the scheduler.

    Args:
        pool: Returns the open database pool.
        objects: The bucket.
        runs: Says whether a run exists in the caller's tenant.
        limits: Sizes, quota and retention.
        upload_grace_s: How long an upload may stay pending after its URL expired (a
            streamed one: after it started), and how old an object without a row must
            be, before the sweeper removes them.
    """

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        objects: ObjectStore,
        runs: RunDirectory,
        *,
        limits: Limits,
        upload_grace_s: int,
    ) -> None:
        self._pool = pool
        self._objects = objects
        self._runs = runs
        self._limits = limits
        self._grace = timedelta(seconds=upload_grace_s)

    def _acquire(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        acquired: AbstractAsyncContextManager[asyncpg.Connection] = self._pool().acquire()
        return acquired

    # --- uploads ---------------------------------------------------------------------

    async def upload(
        self, uploader: Uploader, new: NewArtifact, chunks: AsyncIterator[bytes]
    ) -> StoredArtifact:
        """Store the bytes ``chunks`` yields as a new artifact, streaming them to S3.

        Raises:
            InvalidArtifactError: A field breaks the rules (422).
            RunNotFoundError: The run is not the caller's tenant's (404).
            ArtifactTooLargeError, QuotaExceededError: Beyond a limit (413).
            ChecksumMismatchError: Not the declared SHA-256 (422); nothing is kept.
        """
        now = datetime.now(UTC)
        pending = await self._reserve(uploader, new, now=now, deadline=now + self._grace)
        async with self._acquire() as conn:
            usage = await store.tenant_usage(conn, uploader.tenant, excluding=pending.id)
        try:
            room = self._limits.room(usage)
            reader = StreamReader(
                chunks,
                asyncio.get_running_loop(),
                limit=room,
                on_too_large=lambda size: self._too_large(size, usage),
            )
            await self._objects.put(pending.object_key, reader, pending.content_type)
            sha256 = reader.digest.hexdigest()
            if pending.sha256 is not None and sha256 != pending.sha256:
                raise ChecksumMismatchError(
                    f"the bytes have SHA-256 {sha256}, not the declared {pending.sha256}"
                )
            return await self._make_available(
                pending, size_bytes=reader.size_bytes, sha256=sha256, upload="stream"
            )
        except BaseException:
            await self._discard(pending)
            raise

    async def start_upload(
        self, uploader: Uploader, new: NewArtifact, *, expires_in: int | None
    ) -> tuple[StoredArtifact, str, datetime]:
        """Reserve an artifact and sign a URL its bytes are PUT to.

        ``new`` must declare the size and the SHA-256: the quota counts the size from
        now on, and :meth:`complete_upload` checks both.

        Returns:
            The pending artifact, the URL's path and query (signed for S3's host) and
            when the URL expires.
        """
        if new.size_bytes is None or new.sha256 is None:
            raise InvalidArtifactError("a pre-signed upload declares size_bytes and sha256")
        lifetime_s = link_lifetime_s(expires_in)
        now = datetime.now(UTC)
        pending = await self._reserve(
            uploader, new, now=now, deadline=now + timedelta(seconds=lifetime_s) + self._grace
        )
        path, expires_at = self._objects.presigned_url(
            "PUT", pending.object_key, lifetime_s=lifetime_s
        )
        return pending, path, expires_at

    async def complete_upload(self, tenant: str, artifact_id: str) -> StoredArtifact:
        """Verify the bytes PUT to a pre-signed URL, then make the artifact available.

        Raises:
            ArtifactNotFoundError: No such artifact (404).
            ArtifactStateError: Already available, or no bytes arrived yet (409).
            ChecksumMismatchError: Not the declared size or SHA-256 (422); the artifact
                and its bytes are deleted.
        """
        pending = await self._artifact(tenant, artifact_id)
        if pending.state != store.PENDING:
            raise ArtifactStateError("the artifact is available already")
        size = await self._objects.size(pending.object_key)
        if size is None:
            raise ArtifactStateError("no bytes were uploaded to the URL yet")
        try:
            if size != pending.size_bytes:
                raise ChecksumMismatchError(
                    f"{size} bytes arrived, {pending.size_bytes} were declared"
                )
            stored = await self._objects.open(pending.object_key)
            digest = hashlib.sha256()
            async for chunk in stored.chunks():
                await asyncio.to_thread(digest.update, chunk)
            if digest.hexdigest() != pending.sha256:
                raise ChecksumMismatchError(
                    f"the bytes have SHA-256 {digest.hexdigest()}, not the declared "
                    f"{pending.sha256}"
                )
            return await self._make_available(
                pending, size_bytes=size, sha256=digest.hexdigest(), upload="presigned"
            )
        except ChecksumMismatchError:
            await self._discard(pending)
            raise

    async def _reserve(
        self, uploader: Uploader, new: NewArtifact, *, now: datetime, deadline: datetime
    ) -> StoredArtifact:
        run_id = check_run_id(new.run_id)
        row = store.NewRow(
            id=uuid.uuid4(),
            tenant=uploader.tenant,
            run_id=run_id,
            task_id=check_task_id(new.task_id),
            attempt=uploader.attempt,
            name=check_name(new.name),
            content_type=_content_type(new.content_type),
            size_bytes=_declared_size(new.size_bytes),
            sha256=_sha256(new.sha256),
            labels=_labels(new.labels),
            object_key="",
            created_by=uploader.created_by,
            expires_at=now + timedelta(seconds=self._limits.retention_s(new.retention)),
            upload_deadline=deadline,
        )
        row = _with_key(row)
        if uploader.identity_token is not None:
            await self._runs.require(str(run_id), uploader.identity_token)
        async with self._acquire() as conn, conn.transaction():
            await store.lock_tenant(conn, uploader.tenant)
            usage = await store.tenant_usage(conn, uploader.tenant)
            if row.size_bytes:
                self._limits.check_size(row.size_bytes, usage)
            else:
                self._limits.room(usage)
            return await store.insert_pending(conn, row)

    async def _make_available(
        self, pending: StoredArtifact, *, size_bytes: int, sha256: str, upload: str
    ) -> StoredArtifact:
        """Mark ``pending`` available within the tenant's quota; ``upload`` labels metrics."""
        async with self._acquire() as conn, conn.transaction():
            await store.lock_tenant(conn, pending.tenant)
            usage = await store.tenant_usage(conn, pending.tenant, excluding=pending.id)
            self._limits.check_size(size_bytes, usage)
            available = await store.make_available(
                conn, pending.id, size_bytes=size_bytes, sha256=sha256
            )
        if available is None:  # swept meanwhile: its bytes went with it
            raise ArtifactStateError("the upload took longer than its deadline")
        metrics.ARTIFACTS_STORED.labels(upload).inc()
        metrics.BYTES_IN.labels(upload).inc(size_bytes)
        return available

    def _too_large(self, size: int, usage: int) -> Exception:
        if size > self._limits.max_artifact_bytes:
            return ArtifactTooLargeError(self._limits.too_large_detail())
        return QuotaExceededError(
            f"the tenant keeps {usage} bytes of a quota of {self._limits.tenant_quota_bytes}"
        )

    async def _discard(self, pending: StoredArtifact) -> None:
        """Remove a failed upload's bytes, then its row; the sweeper retries a failure."""
        try:
            await asyncio.shield(self._remove_quietly(pending.object_key))
            async with self._acquire() as conn:
                await store.delete(conn, pending.id)
        except Exception:
            _log.exception("could not discard a failed upload; the sweeper will")

    async def _remove_quietly(self, key: str) -> bool:
        try:
            await self._objects.remove(key)
        except Exception:
            _log.warning("could not delete object %s; trying again later", key, exc_info=True)
            return False
        return True

    # --- reads -----------------------------------------------------------------------

    async def get(self, tenant: str, artifact_id: str) -> StoredArtifact:
        """The tenant's artifact (404 for another tenant's, an expired or unknown one)."""
        return await self._artifact(tenant, artifact_id)

    async def find(self, tenant: str, run_id: str, name_or_id: str) -> StoredArtifact:
        """An available artifact of the run, by id, or the newest by that name."""
        run = check_run_id(run_id)
        with contextlib.suppress(ValueError):
            artifact = await self._artifact(tenant, str(uuid.UUID(name_or_id)))
            if artifact.run_id == run and artifact.state == store.AVAILABLE:
                return artifact
        async with self._acquire() as conn:
            found = await store.latest_by_name(conn, tenant, run, name_or_id, now=datetime.now(UTC))
        if found is None:
            raise ArtifactNotFoundError(f"no artifact {name_or_id!r} in run {run_id}")
        return found

    async def content(self, tenant: str, artifact_id: str, *, range_header: str | None) -> Content:
        """Start streaming an available artifact's bytes, all or the one range asked."""
        artifact = await self._available(tenant, artifact_id)
        byte_range = parse_range(range_header, artifact.size_bytes)
        if byte_range is None:
            stored: StoredObject = await self._objects.open(artifact.object_key)
        else:
            stored = await self._objects.open(
                artifact.object_key, offset=byte_range.start, length=byte_range.length
            )
        return Content(
            artifact=artifact,
            byte_range=byte_range,
            body=metrics.counted(stored.chunks()),
            content_disposition=content_disposition(artifact.name),
        )

    async def download_url(
        self, tenant: str, artifact_id: str, *, expires_in: int | None
    ) -> tuple[str, datetime]:
        """A pre-signed GET's path and query (signed for S3's host) and its expiry."""
        artifact = await self._available(tenant, artifact_id)
        return self._presigned_get(artifact, link_lifetime_s(expires_in))

    async def handoff(
        self, tenant: str, artifact_id: str, *, range_header: str | None
    ) -> Handoff | None:
        """Hand an available artifact's download to the gateway: a pre-signed GET of it.

        The gateway follows it at once, so the bytes go from S3 through the gateway
        alone, with the client's ``Range`` header, which S3 reads as the service would.

        Returns:
            The hand-off, or ``None`` for a ``Range`` the service ignores (several
            ranges, another unit, all the bytes), which S3 would answer otherwise:
            the service streams those itself (:meth:`content`).

        Raises:
            ArtifactNotFoundError: No such available artifact in the tenant (404).
            RangeNotSatisfiableError: The range starts beyond the end (416).
        """
        artifact = await self._available(tenant, artifact_id)
        if range_header is not None and parse_range(range_header, artifact.size_bytes) is None:
            return None
        path, _ = self._presigned_get(artifact, _HANDOFF_LIFETIME_S)
        metrics.DOWNLOADS_HANDED_OFF.inc()
        return Handoff(artifact=artifact, path=path)

    def _presigned_get(self, artifact: StoredArtifact, lifetime_s: int) -> tuple[str, datetime]:
        return self._objects.presigned_url(
            "GET",
            artifact.object_key,
            lifetime_s=lifetime_s,
            response_headers={
                "response-content-disposition": content_disposition(artifact.name),
                "response-content-type": artifact.content_type,
            },
        )

    async def list(
        self,
        tenant: str,
        *,
        run_id: str | None,
        task_id: str | None,
        name_prefix: str | None,
        page_size: int,
        page_token: str | None,
    ) -> Page[StoredArtifact]:
        """The tenant's artifacts, newest first, one page (AIP-158)."""
        run = check_run_id(run_id) if run_id else None
        task = check_task_id(task_id)
        filters = {"run_id": str(run) if run else None, "task_id": task, "prefix": name_prefix}
        before = _PAGE.decode(page_token, filters) if page_token else None
        async with self._acquire() as conn:
            rows = await store.list_artifacts(
                conn,
                tenant,
                run_id=run,
                task_id=task,
                name_prefix=name_prefix or None,
                before=(before[0], before[1]) if before else None,
                now=datetime.now(UTC),
                limit=page_size + 1,
            )
        return _PAGE.page(rows, page_size, lambda row: [row.created_at, row.id], filters)

    async def delete(self, tenant: str, artifact_id: str) -> None:
        """Delete the row, then the bytes (an object left behind is swept as an orphan)."""
        artifact = await self._artifact(tenant, artifact_id)
        async with self._acquire() as conn:
            await store.delete(conn, artifact.id)
        await self._remove_quietly(artifact.object_key)

    async def _artifact(self, tenant: str, artifact_id: str) -> StoredArtifact:
        try:
            key = uuid.UUID(artifact_id)
        except ValueError:
            raise ArtifactNotFoundError(f"no artifact {artifact_id[:64]!r}") from None
        async with self._acquire() as conn:
            artifact = await store.get(conn, tenant, key, now=datetime.now(UTC))
        if artifact is None:
            raise ArtifactNotFoundError(f"no artifact {artifact_id}")
        return artifact

    async def _available(self, tenant: str, artifact_id: str) -> StoredArtifact:
        artifact = await self._artifact(tenant, artifact_id)
        if artifact.state != store.AVAILABLE:
            raise ArtifactStateError("the artifact's bytes have not been stored and verified yet")
        return artifact

    # --- retention and consistency ---------------------------------------------------

    async def collect_expired(self, *, batch_size: int) -> int:
        """Delete expired artifacts: the object first, then the row.

        An object S3 fails to delete keeps its row (locked rows are skipped by other
        instances) and is tried again next pass; the others go on.

        Returns:
            How many artifacts were deleted.
        """
        return await self._delete_rows(store.expired, batch_size)

    async def sweep_orphans(self, *, batch_size: int) -> int:
        """Remove uploads that never finished and objects that no row holds.

        Pending rows past their upload deadline go with their object; objects older
        than the grace period that no row holds (a crash between the S3 write and the
        row) are deleted.

        Returns:
            How many pending rows and orphan objects were removed.
        """
        removed = await self._delete_rows(store.stale_pending, batch_size)
        cutoff = datetime.now(UTC) - self._grace
        keys = await asyncio.to_thread(lambda: list(self._objects.older_keys(cutoff)))
        for start in range(0, len(keys), _SWEEP_KEYS_PER_QUERY):
            batch = keys[start : start + _SWEEP_KEYS_PER_QUERY]
            async with self._acquire() as conn:
                held = await store.keys_with_rows(conn, batch)
            for key in batch:
                if key not in held and await self._remove_quietly(key):
                    removed += 1
        return removed

    async def _delete_rows(self, select: Any, batch_size: int) -> int:
        deleted = 0
        async with self._acquire() as conn, conn.transaction():
            rows: list[StoredArtifact] = await select(conn, now=datetime.now(UTC), limit=batch_size)
            for row in rows:
                if await self._remove_quietly(row.object_key):
                    await store.delete(conn, row.id)
                    deleted += 1
        return deleted


def _with_key(row: store.NewRow) -> store.NewRow:
    key = object_key(row.tenant, row.run_id, row.task_id, row.id)
    return store.NewRow(**{**row.__dict__, "object_key": key})


def _content_type(value: str | None) -> str:
    if not value:
        return "application/octet-stream"
    if len(value) > _MAX_CONTENT_TYPE or _CONTENT_TYPE.fullmatch(value) is None:
        raise InvalidArtifactError("content_type is not a media type such as text/plain")
    return value


def _sha256(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if _SHA256.fullmatch(value.lower()) is None:
        raise InvalidArtifactError("sha256 is not 64 hexadecimal digits")
    return value.lower()


def _declared_size(value: int | None) -> int:
    if value is None:
        return 0
    if value < 0:
        raise InvalidArtifactError("size_bytes may not be negative")
    return value


def _labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > _MAX_LABELS:
        raise InvalidArtifactError(f"at most {_MAX_LABELS} labels")
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArtifactError("labels map strings to strings")
        if not key or len(key) > _MAX_LABEL_CHARS or len(value) > _MAX_LABEL_CHARS:
            raise InvalidArtifactError(
                f"a label's key and value have 1 to {_MAX_LABEL_CHARS} characters"
            )
        if _UNSTORABLE.search(key) or _UNSTORABLE.search(value):
            raise InvalidArtifactError("labels may not hold NUL or lone surrogates")
    return labels
