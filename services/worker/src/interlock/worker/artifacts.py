r"""Tasks' artifacts, stored by the artifact service: the worker's client of it.

The worker is no user: it calls the artifact service's worker routes on the service's
own port (``artifact_url``; the gateway routes none of them) with its service
credential (:mod:`interlock.common.service_credentials`), and names the tenant, run,
task and attempt of the task it runs. Each attempt gets a :class:`ServiceArtifactStore`
bound to its ids, as ``ctx.artifacts``::

    ref = await ctx.artifacts.upload("report.csv", b"a,b\\n1,2\\n", content_type="text/csv")
    return {"report": ref.reference()}        # {artifact_id, name, size, sha256}
    data = await ctx.artifacts.download("report.csv")   # the run's newest by that name

A file is streamed from disk (``upload(name, "/tmp/out.parquet")``); bytes are sent with
their SHA-256, which the service checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from interlock.common.resources import Lifecycle
from interlock.common.service_credentials import SERVICE_CREDENTIAL_METADATA
from interlock.worker.context import (
    ArtifactData,
    ArtifactRef,
    ArtifactStore,
    ArtifactStoreFactory,
    TaskContext,
)
from interlock.worker.errors import TaskFailure
from interlock.worker.settings import WorkerSettings

__all__ = [
    "ArtifactClient",
    "ArtifactFailure",
    "ServiceArtifactStore",
    "write_text_artifact",
]

_FILE_CHUNK_BYTES = 1024 * 1024


class ArtifactFailure(TaskFailure):
    """The artifact service refused or did not answer; retryable unless it refused."""


class ArtifactClient(Lifecycle):
    """One HTTP client of the artifact service for the whole worker (a resource).

    Args:
        settings: ``artifact_url``, ``service_credential``, ``artifact_timeout_ms``.
    """

    name = "artifact-client"

    def __init__(self, settings: WorkerSettings) -> None:
        self._base_url = settings.artifact_url.rstrip("/")
        self._credential = settings.service_credential
        self._timeout_s = settings.artifact_timeout_ms / 1000
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Open the connection pool."""
        self._client = httpx.AsyncClient(
            base_url=self._base_url, timeout=self._timeout_s, trust_env=False
        )

    async def stop(self) -> None:
        """Close the connection pool."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def check(self) -> None:
        """Always ready: only tasks that store artifacts need the service."""

    def store_for(self, context: TaskContext) -> ArtifactStore:
        """The artifact store of one attempt (an :data:`ArtifactStoreFactory`)."""
        return ServiceArtifactStore(self, context)

    def _open(self) -> tuple[httpx.AsyncClient, dict[str, str]]:
        if self._client is None:
            raise ArtifactFailure("the worker is not running", retryable=True)
        if self._credential is None:
            raise ArtifactFailure(
                "this worker has no service credential to store artifacts", retryable=False
            )
        return self._client, {SERVICE_CREDENTIAL_METADATA: self._credential.get_secret_value()}

    async def upload(
        self,
        context: TaskContext,
        name: str,
        data: ArtifactData,
        *,
        content_type: str,
    ) -> ArtifactRef:
        """Store ``data`` (bytes, or a file's path) as an artifact of ``context``'s task."""
        client, headers = self._open()
        # Sent as bytes: services read a body of a JSON type as JSON, whatever its size.
        headers["content-type"] = "application/octet-stream"
        headers["x-artifact-content-type"] = content_type
        content: bytes | AsyncIterator[bytes]
        if isinstance(data, bytes):
            headers["x-content-sha256"] = hashlib.sha256(data).hexdigest()
            content = data
        else:
            path = Path(os.fspath(data))
            try:
                size = (await asyncio.to_thread(path.stat)).st_size
            except OSError as error:
                raise ArtifactFailure(f"cannot read {path}: {error}", retryable=False) from None
            headers["content-length"] = str(size)
            content = _file_chunks(path)
        url = f"{_run_path(context)}/{quote(name, safe='')}"
        params: dict[str, Any] = {"task_id": context.task_id, "attempt": context.attempt}
        try:
            response = await client.put(url, params=params, headers=headers, content=content)
        except httpx.HTTPError as error:
            raise ArtifactFailure(f"storing artifact {name!r} failed: {error!r}") from None
        body = _answer(response, f"storing artifact {name!r}")
        return ArtifactRef(
            artifact_id=body["artifact_id"],
            name=body["name"],
            size_bytes=body["size_bytes"],
            sha256=body["sha256"] or "",
        )

    async def download(self, context: TaskContext, name_or_id: str) -> bytes:
        """The bytes of an artifact of ``context``'s run, by id or newest by name."""
        client, headers = self._open()
        url = f"{_run_path(context)}/{quote(name_or_id, safe='')}"
        try:
            response = await client.get(url, headers=headers)
        except httpx.HTTPError as error:
            raise ArtifactFailure(f"reading artifact {name_or_id!r} failed: {error!r}") from None
        _answer(response, f"reading artifact {name_or_id!r}", json_body=False)
        return response.content


class ServiceArtifactStore:
    """``ctx.artifacts`` of one attempt: uploads and downloads name its run and task."""

    def __init__(self, client: ArtifactClient, context: TaskContext) -> None:
        self._client = client
        self._context = context

    async def upload(
        self,
        name: str,
        data: ArtifactData,
        *,
        content_type: str = "application/octet-stream",
    ) -> ArtifactRef:
        """Store ``data`` (bytes, or the path of a file, streamed) as artifact ``name``."""
        return await self._client.upload(self._context, name, data, content_type=content_type)

    async def download(self, name_or_id: str) -> bytes:
        """The bytes of the run's artifact with this id, or its newest with this name."""
        return await self._client.download(self._context, name_or_id)


def artifact_store_factory(client: ArtifactClient) -> ArtifactStoreFactory:
    """The factory the worker calls for each attempt."""
    return client.store_for


async def write_text_artifact(ctx: TaskContext, name: str, text: str) -> dict[str, Any]:
    """Store ``text`` (UTF-8, ``text/plain``) as the task's artifact ``name``.

    Returns:
        The reference a task's output carries: ``{artifact_id, name, size, sha256}``.
    """
    ref = await ctx.artifacts.upload(
        name, text.encode("utf-8"), content_type="text/plain; charset=utf-8"
    )
    return ref.reference()


def _run_path(context: TaskContext) -> str:
    tenant = quote(context.tenant, safe="")
    return f"/internal/v1/tenants/{tenant}/runs/{quote(context.run_id, safe='')}/artifacts"


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, _FILE_CHUNK_BYTES):
            yield chunk


def _answer(response: httpx.Response, doing: str, *, json_body: bool = True) -> Any:
    if response.is_success:
        return response.json() if json_body else None
    detail = response.text[:500]
    with contextlib.suppress(ValueError, AttributeError):
        detail = response.json().get("detail") or detail
    # A refusal (4xx) will be refused again; an outage (5xx) may pass.
    raise ArtifactFailure(
        f"{doing}: {response.status_code} {detail}",
        retryable=response.status_code >= 500 or response.status_code == 429,
    )
