"""Routes for workers, on the service's own port only (the gateway routes none here).

A worker stores and reads the artifacts of the task it runs. It is no user: it proves
it is a worker with its service credential (header ``x-interlock-service-credential``,
:mod:`interlock.common.service_credentials`), and names the tenant, run, task and
attempt it works for. The run exists (the worker runs it), so it is not asked about.

``PUT /internal/v1/tenants/{tenant}/runs/{run_id}/artifacts/{name}?task_id=&attempt=``
    the raw body is the artifact, sent as ``application/octet-stream`` (the service
    reads a body of a JSON type as JSON), its own type in ``x-artifact-content-type``,
    its SHA-256 optionally in ``x-content-sha256``: 201 with its record.
``GET /internal/v1/tenants/{tenant}/runs/{run_id}/artifacts/{name_or_id}``
    the bytes of the run's artifact with that id, or its newest one with that name.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import SecretStr

from interlock.artifact.api import artifact_view
from interlock.artifact.service import ArtifactService, NewArtifact, Uploader
from interlock.common.problems import Problem
from interlock.common.service_credentials import (
    SERVICE_CREDENTIAL_METADATA,
    is_valid_credential,
)

__all__ = ["WORKER", "build_internal_router"]

WORKER = "worker"
"""``created_by`` of what workers upload."""

_PREFIX = "/internal/v1/tenants/{tenant}/runs/{run_id}/artifacts"


def build_internal_router(service: ArtifactService, accepted: SecretStr | None) -> APIRouter:
    """The workers' routes; each call must carry one of the ``accepted`` credentials."""
    router = APIRouter(prefix=_PREFIX, include_in_schema=False)

    def authenticate(request: Request) -> None:
        if not is_valid_credential(request.headers.items(), accepted):
            raise Problem(
                401,
                "Unauthenticated",
                type_="unauthenticated",
                detail=f"a worker's {SERVICE_CREDENTIAL_METADATA} is required",
            )

    @router.put("/{name}", status_code=201)
    async def store_artifact(
        tenant: str,
        run_id: str,
        name: str,
        request: Request,
        task_id: str | None = None,
        attempt: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    ) -> JSONResponse:
        authenticate(request)
        uploader = Uploader(tenant=tenant, created_by=WORKER, attempt=attempt)
        new = NewArtifact(
            run_id=run_id,
            task_id=task_id,
            name=name,
            content_type=request.headers.get("x-artifact-content-type"),
            sha256=request.headers.get("x-content-sha256"),
        )
        artifact = await service.upload(uploader, new, request.stream().__aiter__())
        return JSONResponse(artifact_view(artifact), status_code=201)

    @router.get("/{name_or_id}")
    async def read_artifact(
        tenant: str, run_id: str, name_or_id: str, request: Request
    ) -> StreamingResponse:
        authenticate(request)
        artifact = await service.find(tenant, run_id, name_or_id)
        content = await service.content(tenant, str(artifact.id), range_header=None)
        return StreamingResponse(
            content.body,
            media_type=artifact.content_type,
            headers={
                "content-length": str(artifact.size_bytes),
                "x-artifact-id": str(artifact.id),
                "x-content-sha256": artifact.sha256 or "",
            },
        )

    return router
