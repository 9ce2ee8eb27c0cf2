"""The worker's artifact client: references, text artifacts, refusals before any request."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from interlock.worker.artifacts import ArtifactClient, ArtifactFailure, write_text_artifact
from interlock.worker.context import ArtifactData, ArtifactRef, ArtifactsUnavailable, TaskContext
from interlock.worker.settings import WorkerSettings


def make_context() -> TaskContext:
    return TaskContext(
        tenant="t",
        run_id="r",
        task_id="a",
        attempt=2,
        task_type="python",
        idempotency_key="r/a/2",
        worker_id="w",
    )


class Recording:
    """An artifact store that keeps what it is given."""

    def __init__(self) -> None:
        self.stored: list[tuple[str, Any, str]] = []

    async def upload(
        self, name: str, data: ArtifactData, *, content_type: str = "application/octet-stream"
    ) -> ArtifactRef:
        self.stored.append((name, data, content_type))
        assert isinstance(data, bytes)
        return ArtifactRef(
            artifact_id="id-1",
            name=name,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )

    async def download(self, name_or_id: str) -> bytes:
        raise AssertionError("not called")


async def test_a_text_artifact_is_utf8_text_and_returns_its_reference() -> None:
    context = make_context()
    store = Recording()
    context.artifacts = store
    reference = await write_text_artifact(context, "hello.txt", "héllo")
    assert store.stored == [("hello.txt", "héllo".encode(), "text/plain; charset=utf-8")]
    assert reference == {
        "artifact_id": "id-1",
        "name": "hello.txt",
        "size": 6,
        "sha256": hashlib.sha256("héllo".encode()).hexdigest(),
    }


async def test_the_default_store_says_downloads_are_unavailable() -> None:
    with pytest.raises(ArtifactsUnavailable):
        await make_context().artifacts.download("report.csv")


async def test_without_a_credential_uploads_fail_for_good() -> None:
    client = ArtifactClient(WorkerSettings(service_credential=None))
    async with client:
        store = client.store_for(make_context())
        with pytest.raises(ArtifactFailure) as failure:
            await store.upload("a.txt", b"x")
    assert failure.value.retryable is False
