"""The secrets REST API (thin): write, list names, delete. No route returns a value."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from interlock.common.paging import DEFAULT_PAGE_SIZE, PageSize, PageToken
from interlock.common.problems import GATEWAY_PROBLEMS, problem_responses
from interlock.iam.api import Caller
from interlock.iam.secrets_store import SecretRecord
from interlock.iam.tenant_secrets import TenantSecrets


class PutSecretRequest(BaseModel):
    """``PUT /api/v1/secrets/{name}``."""

    value: str = Field(min_length=1)
    """The value; its size limit is IAM's ``secret_max_bytes`` (413 beyond)."""


class SecretResponse(BaseModel):
    """A secret's metadata (its value is never shown)."""

    name: str
    created_at: datetime
    updated_at: datetime
    updated_by: str


class SecretList(BaseModel):
    """One page of secrets, by name."""

    secrets: list[SecretResponse]
    next_page_token: str | None = Field(description="Pass as `page_token` for the next page.")


def _secret(record: SecretRecord) -> SecretResponse:
    return SecretResponse(
        name=record.name,
        created_at=datetime.fromtimestamp(record.created_at, UTC),
        updated_at=datetime.fromtimestamp(record.updated_at, UTC),
        updated_by=record.updated_by,
    )


def build_secrets_router(secrets: TenantSecrets) -> APIRouter:
    """The secrets routes, bound to their use cases."""
    router = APIRouter()

    @router.put(
        "/api/v1/secrets/{name}",
        response_model=SecretResponse,
        responses=problem_responses(*GATEWAY_PROBLEMS, 413, 422),
    )
    async def put_secret(name: str, body: PutSecretRequest, caller: Caller) -> SecretResponse:
        record = await secrets.put_secret(
            caller.tenant, name, body.value, updated_by=caller.subject
        )
        return _secret(record)

    @router.get(
        "/api/v1/secrets",
        response_model=SecretList,
        responses=problem_responses(*GATEWAY_PROBLEMS, 400, 422),
    )
    async def list_secrets(
        caller: Caller, page_size: PageSize = DEFAULT_PAGE_SIZE, page_token: PageToken = None
    ) -> SecretList:
        page = await secrets.list_secrets(caller.tenant, page_size=page_size, page_token=page_token)
        return SecretList(
            secrets=[_secret(record) for record in page.items],
            next_page_token=page.next_page_token,
        )

    @router.delete(
        "/api/v1/secrets/{name}",
        status_code=204,
        responses=problem_responses(*GATEWAY_PROBLEMS, 404, 422),
    )
    async def delete_secret(name: str, caller: Caller) -> Response:
        await secrets.delete_secret(caller.tenant, name, deleted_by=caller.subject)
        return Response(status_code=204)

    return router
