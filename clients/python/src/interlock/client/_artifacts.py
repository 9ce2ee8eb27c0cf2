"""The artifact service: files tasks produce, uploaded and downloaded as streams.

Written to the routes of the artifact service's specification; fields the server adds
are kept on the models.
"""

from __future__ import annotations

import hashlib
import mimetypes
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from interlock.client._calls import Call, PagedCall, Upload, get_pages, model, nothing, page_of
from interlock.client._models import ApiModel
from interlock.client._operations import Mode, Resource, operation, paged
from interlock.client._workflows import DEFAULT_PAGE_SIZE

_CHUNK_BYTES = 1 << 20


class Artifact(ApiModel):
    """A file of a run."""

    artifact_id: str
    run_id: str
    task_id: str | None = None
    attempt: int | None = None
    name: str
    content_type: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    labels: dict[str, str] = {}
    state: str | None = None
    """``pending`` until the bytes are stored and verified, then ``available``."""
    created_at: datetime | None = None
    expires_at: datetime | None = None


class PresignedUrl(ApiModel):
    """A URL that downloads an artifact without credentials until it expires."""

    url: str
    expires_at: datetime | None = None


def sha256_of(path: Path) -> str:
    """The file's SHA-256 (hex), read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _path(artifact_id: str) -> str:
    return f"/api/v1/artifacts/{quote(artifact_id, safe='')}"


class Artifacts(Resource[Mode]):
    """Upload, list, download and share artifacts (``/api/v1/artifacts``)."""

    @operation
    def upload(
        self,
        run_id: str,
        path: Path,
        *,
        name: str | None = None,
        task_id: str | None = None,
        content_type: str | None = None,
    ) -> Call[Artifact]:
        """Upload a file to a run, streamed from disk; the server checks its SHA-256.

        Args:
            run_id: The run it belongs to.
            path: The file.
            name: Its name in the run. Default: the file's name.
            task_id: The task that produced it. Default: none.
            content_type: Default: guessed from the name, else ``application/octet-stream``.
        """
        artifact_name = name or path.name
        guessed = mimetypes.guess_type(artifact_name)[0]
        form = {"run_id": run_id, "name": artifact_name, "sha256": sha256_of(path)}
        if task_id:
            form["task_id"] = task_id
        upload = Upload(
            path=path,
            filename=artifact_name,
            content_type=content_type or guessed or "application/octet-stream",
            form=form,
        )
        return Call(method="POST", path="/api/v1/artifacts", upload=upload, parse=model(Artifact))

    @operation
    def get(self, artifact_id: str) -> Call[Artifact]:
        """An artifact's record."""
        return Call(method="GET", path=_path(artifact_id), parse=model(Artifact))

    @operation
    def download(self, artifact_id: str, path: Path) -> Call[Path]:
        """Stream an artifact's bytes into ``path`` (replaced); answers ``path``."""
        return Call(
            method="GET",
            path=f"{_path(artifact_id)}/content",
            download_to=path,
            parse=lambda _: path,
        )

    @operation
    def url(self, artifact_id: str, expires_in_s: int = 300) -> Call[PresignedUrl]:
        """A pre-signed download URL. ``expires_in_s`` default: 300 (at most 7 days)."""
        return Call(
            method="GET",
            path=f"{_path(artifact_id)}/url",
            params={"expires_in": expires_in_s},
            parse=model(PresignedUrl),
        )

    @operation
    def delete(self, artifact_id: str) -> Call[None]:
        """Delete an artifact and its bytes."""
        return Call(method="DELETE", path=_path(artifact_id), parse=nothing)

    @paged
    def list(
        self,
        *,
        run_id: str | None = None,
        task_id: str | None = None,
        name_prefix: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> PagedCall[Artifact]:
        """Artifacts, every page; each filter defaults to all. ``page_size`` default: 50."""
        params = {
            "run_id": run_id,
            "task_id": task_id,
            "name_prefix": name_prefix,
            "page_size": page_size,
        }
        return get_pages("/api/v1/artifacts", page_of(Artifact, "artifacts", "items"), params)
