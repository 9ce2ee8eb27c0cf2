"""REST routes of the artifact service (behind the gateway, which sets the caller).

``/api/v1/artifacts``: upload (multipart, streamed), pre-signed upload and its
completion, reads, downloads (streamed, ``Range``), pre-signed download URLs, list,
delete. Every route is tenant-scoped by :data:`CurrentPrincipal`; another tenant's
artifact answers 404. Pre-signed URLs point at the gateway, which forwards
``/<bucket>/...`` to S3 with the host they were signed for (docs/architecture.md).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from interlock.artifact.domain import InvalidArtifactError
from interlock.artifact.forms import read_upload
from interlock.artifact.service import ArtifactService, Handoff, NewArtifact, Uploader
from interlock.artifact.store import StoredArtifact
from interlock.common.identity import IDENTITY_HEADER, CurrentPrincipal
from interlock.common.paging import DEFAULT_PAGE_SIZE, PageSize, PageToken
from interlock.common.problems import GATEWAY_PROBLEMS, problem_responses

ExpiresIn = Annotated[
    int | None, Query(description="Seconds the URL is valid: 1 to 604800. Default: 3600.")
]

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["run_id", "name", "file"],
                    "properties": {
                        "run_id": {"type": "string", "format": "uuid"},
                        "task_id": {"type": "string"},
                        "name": {"type": "string", "maxLength": 255},
                        "content_type": {"type": "string"},
                        "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                        "labels": {"type": "string", "description": "A JSON object."},
                        "retention": {"type": "string", "description": "E.g. 7d."},
                        "file": {"type": "string", "format": "binary"},
                    },
                    "description": "Every field before `file` (the file part is streamed).",
                }
            }
        },
    }
}


_BINARY = {"schema": {"type": "string", "format": "binary"}}

GATEWAY_REDIRECT_HEADER = "x-interlock-gateway-redirect"
"""Set to ``follow`` by the gateway on downloads: it follows the service's redirect to
S3 itself (an internal redirect), so the service hands the download off rather than
stream it. Without it (a caller on the service's own port) the service streams."""
GATEWAY_SHA256_HEADER = "x-interlock-content-sha256"
"""The artifact's SHA-256 on a hand-off, for the gateway to answer as ``x-content-sha256``."""


class ArtifactView(BaseModel):
    """An artifact's record."""

    artifact_id: str
    run_id: str
    task_id: str | None
    attempt: int | None
    name: str
    content_type: str
    size_bytes: int
    sha256: str | None = Field(description="Hex SHA-256 of the bytes (declared while pending).")
    labels: dict[str, str]
    state: str = Field(description="`pending` until the bytes are stored and verified.")
    created_by: str
    created_at: str
    available_at: str | None
    expires_at: str


class ArtifactList(BaseModel):
    """One page of artifacts, newest first."""

    artifacts: list[ArtifactView]
    next_page_token: str | None = Field(description="Pass as `page_token` for the next page.")


class UploadRequest(BaseModel):
    """A pre-signed upload: what the bytes will be."""

    run_id: str
    task_id: str | None = None
    name: str = Field(max_length=1024)
    content_type: str | None = Field(default=None, max_length=255)
    size_bytes: int = Field(ge=0)
    sha256: str = Field(max_length=64)
    labels: dict[str, str] = Field(default_factory=dict)
    retention: str | None = Field(default=None, max_length=32)
    expires_in: int | None = Field(default=None, description="URL lifetime, s. Default: 3600.")


class UploadTicket(BaseModel):
    """Where to PUT the bytes, then call `complete`."""

    artifact_id: str
    upload_url: str
    method: str = "PUT"
    expires_at: str


class DownloadUrl(BaseModel):
    """A pre-signed GET: no credentials needed, valid until `expires_at`."""

    url: str
    expires_at: str


def rfc3339(time: datetime | None) -> str | None:
    """``time`` as RFC 3339 UTC with milliseconds, e.g. ``2026-01-01T09:00:00.000Z``."""
    if time is None:
        return None
    return time.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def artifact_view(artifact: StoredArtifact) -> dict[str, Any]:
    """An artifact as the API shows it."""
    return {
        "artifact_id": str(artifact.id),
        "run_id": str(artifact.run_id),
        "task_id": artifact.task_id,
        "attempt": artifact.attempt,
        "name": artifact.name,
        "content_type": artifact.content_type,
        "size_bytes": artifact.size_bytes,
        "sha256": artifact.sha256,
        "labels": artifact.labels,
        "state": artifact.state,
        "created_by": artifact.created_by,
        "created_at": rfc3339(artifact.created_at),
        "available_at": rfc3339(artifact.available_at),
        "expires_at": rfc3339(artifact.expires_at),
    }


def public_url(request: Request, configured: str | None, path_and_query: str) -> str:
    """``path_and_query`` on the gateway the client reached (or the configured base)."""
    if configured:
        return configured.rstrip("/") + path_and_query
    scheme = request.headers.get("x-forwarded-proto", request.url.scheme)
    host = request.headers.get("host", request.url.netloc)
    return f"{scheme}://{host}{path_and_query}"


def _handed_off(request: Request, handoff: Handoff) -> Response:
    """The 302 the gateway follows to S3 itself: the client sees S3's answer.

    The redirect is to the gateway the request came through, as it saw it (the scheme
    the gateway set): the gateway follows only a redirect of the scheme it was reached
    by, whatever public address it has. The SHA-256 rides along in a header the gateway
    copies to its request to S3 and answers as ``x-content-sha256``.
    """
    headers = {"location": public_url(request, None, handoff.path)}
    if handoff.artifact.sha256:
        headers[GATEWAY_SHA256_HEADER] = handoff.artifact.sha256
    return Response(status_code=302, headers=headers)


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return problem_responses(*GATEWAY_PROBLEMS, *statuses)


def _labels(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        labels = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise InvalidArtifactError("labels is not a JSON object") from None
    if not isinstance(labels, dict):
        raise InvalidArtifactError("labels is not a JSON object")
    return labels


def build_router(service: ArtifactService, *, public_base_url: str | None) -> APIRouter:
    """The service's routes, calling ``service``."""
    router = APIRouter(prefix="/api/v1/artifacts", tags=["artifacts"])

    @router.post(
        "",
        status_code=201,
        openapi_extra=_UPLOAD_BODY,
        response_model=ArtifactView,
        responses=_problems(404, 413, 422, 503),
    )
    async def upload(principal: CurrentPrincipal, request: Request) -> JSONResponse:
        """Upload a file (multipart form; streamed to S3, SHA-256 computed on the way)."""
        form = await read_upload(request)
        fields = form.fields
        new = NewArtifact(
            run_id=fields.get("run_id", ""),
            task_id=fields.get("task_id"),
            name=fields.get("name") or form.filename or "",
            content_type=fields.get("content_type") or form.content_type,
            sha256=fields.get("sha256"),
            labels=_labels(fields.get("labels")),
            retention=fields.get("retention"),
        )
        uploader = Uploader(
            tenant=principal.tenant,
            created_by=principal.subject,
            identity_token=request.headers.get(IDENTITY_HEADER),
        )
        artifact = await service.upload(uploader, new, form.chunks)
        return JSONResponse(
            artifact_view(artifact),
            status_code=201,
            headers={"location": f"/api/v1/artifacts/{artifact.id}"},
        )

    @router.post(
        "/uploads",
        status_code=201,
        response_model=UploadTicket,
        responses=_problems(404, 413, 422, 503),
    )
    async def start_upload(
        principal: CurrentPrincipal, body: UploadRequest, request: Request
    ) -> JSONResponse:
        """Reserve an artifact and get a pre-signed URL to PUT its bytes to."""
        uploader = Uploader(
            tenant=principal.tenant,
            created_by=principal.subject,
            identity_token=request.headers.get(IDENTITY_HEADER),
        )
        new = NewArtifact(
            run_id=body.run_id,
            task_id=body.task_id,
            name=body.name,
            content_type=body.content_type,
            sha256=body.sha256,
            size_bytes=body.size_bytes,
            labels=body.labels,
            retention=body.retention,
        )
        artifact, path, expires_at = await service.start_upload(
            uploader, new, expires_in=body.expires_in
        )
        return JSONResponse(
            {
                "artifact_id": str(artifact.id),
                "upload_url": public_url(request, public_base_url, path),
                "method": "PUT",
                "expires_at": rfc3339(expires_at),
            },
            status_code=201,
        )

    @router.post(
        "/{artifact_id}/complete",
        response_model=ArtifactView,
        responses=_problems(404, 409, 422, 503),
    )
    async def complete_upload(principal: CurrentPrincipal, artifact_id: str) -> JSONResponse:
        """Verify the PUT bytes (size, SHA-256) and make the artifact available."""
        return JSONResponse(
            artifact_view(await service.complete_upload(principal.tenant, artifact_id))
        )

    @router.get("", response_model=ArtifactList, responses=_problems(400, 422))
    async def list_artifacts(
        principal: CurrentPrincipal,
        run_id: str | None = None,
        task_id: str | None = None,
        name_prefix: Annotated[str | None, Query(max_length=255)] = None,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
        page_token: PageToken = None,
    ) -> JSONResponse:
        """The tenant's artifacts, newest first."""
        page = await service.list(
            principal.tenant,
            run_id=run_id,
            task_id=task_id,
            name_prefix=name_prefix,
            page_size=page_size,
            page_token=page_token,
        )
        return JSONResponse(
            {
                "artifacts": [artifact_view(item) for item in page.items],
                "next_page_token": page.next_page_token,
            }
        )

    @router.get("/{artifact_id}", response_model=ArtifactView, responses=_problems(404))
    async def get_artifact(principal: CurrentPrincipal, artifact_id: str) -> JSONResponse:
        """An artifact's record."""
        return JSONResponse(artifact_view(await service.get(principal.tenant, artifact_id)))

    @router.get(
        "/{artifact_id}/content",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"application/octet-stream": _BINARY}, "description": "The bytes."},
            206: {
                "content": {"application/octet-stream": _BINARY},
                "description": "The range asked for.",
            },
            **_problems(404, 409, 416, 503),
        },
    )
    async def download(principal: CurrentPrincipal, artifact_id: str, request: Request) -> Response:
        """The bytes, streamed; one `Range` (`bytes=a-b`, `a-`, `-n`) answers 206."""
        range_header = request.headers.get("range")
        if request.headers.get(GATEWAY_REDIRECT_HEADER) == "follow":
            handoff = await service.handoff(
                principal.tenant, artifact_id, range_header=range_header
            )
            if handoff is not None:
                return _handed_off(request, handoff)
        content = await service.content(principal.tenant, artifact_id, range_header=range_header)
        artifact = content.artifact
        headers = {
            "content-disposition": content.content_disposition,
            "accept-ranges": "bytes",
            "x-content-sha256": artifact.sha256 or "",
            "x-content-type-options": "nosniff",
        }
        if content.byte_range is None:
            headers["content-length"] = str(artifact.size_bytes)
            status = 200
        else:
            headers["content-length"] = str(content.byte_range.length)
            headers["content-range"] = content.byte_range.content_range
            status = 206
        return StreamingResponse(
            content.body, status_code=status, media_type=artifact.content_type, headers=headers
        )

    @router.get(
        "/{artifact_id}/url", response_model=DownloadUrl, responses=_problems(404, 409, 422)
    )
    async def download_url(
        principal: CurrentPrincipal,
        artifact_id: str,
        request: Request,
        expires_in: ExpiresIn = None,
    ) -> JSONResponse:
        """A pre-signed GET URL through the gateway: works without credentials."""
        path, expires_at = await service.download_url(
            principal.tenant, artifact_id, expires_in=expires_in
        )
        return JSONResponse(
            {"url": public_url(request, public_base_url, path), "expires_at": rfc3339(expires_at)}
        )

    @router.delete("/{artifact_id}", status_code=204, responses=_problems(404))
    async def delete_artifact(principal: CurrentPrincipal, artifact_id: str) -> Response:
        """Delete an artifact and its bytes."""
        await service.delete(principal.tenant, artifact_id)
        return Response(status_code=204)

    return router
