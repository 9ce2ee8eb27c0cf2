"""IAM's REST API (thin): logins, sessions, users, tenants, API keys, signing keys, JWKS.

Domain errors (:mod:`interlock.iam.errors`) become problem documents in the app's
handler. Protected routes verify the identity token IAM signed and check the caller's roles
against the shared permission table again (defence in depth).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, Field

from interlock.common.identity import CurrentPrincipal, Principal
from interlock.common.paging import DEFAULT_PAGE_SIZE, PageSize, PageToken
from interlock.common.permissions import find_rule, is_allowed
from interlock.common.problems import (
    GATEWAY_PROBLEMS,
    PUBLIC_PROBLEMS,
    PUBLIC_ROUTE,
    Problem,
    problem_responses,
)
from interlock.iam import store
from interlock.iam.accounts import Accounts, TokenPair
from interlock.iam.credentials import Credentials
from interlock.iam.errors import Forbidden

_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$"


class LoginRequest(BaseModel):
    """``POST /api/v1/auth/login``."""

    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)
    tenant: str | None = Field(default=None, max_length=63)
    """Default: the system tenant (``default`` locally)."""


class ChangePasswordRequest(BaseModel):
    """``POST /api/v1/auth/password``: one's own password, proven by the current one."""

    username: str = Field(min_length=1, max_length=200)
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=8, max_length=1024)
    tenant: str | None = Field(default=None, max_length=63)
    """Default: the system tenant (``default`` locally)."""


class RefreshRequest(BaseModel):
    """``POST /api/v1/auth/refresh``."""

    refresh_token: str = Field(min_length=1, max_length=200)


class TokenResponse(BaseModel):
    """A token pair."""

    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth 2 token type, not a secret
    expires_in: int


class PrincipalResponse(BaseModel):
    """``GET /api/v1/auth/me``."""

    id: str
    tenant: str
    roles: list[str]


class CreateUserRequest(BaseModel):
    """``POST /api/v1/users``."""

    username: str = Field(pattern=_NAME)
    password: str = Field(min_length=8, max_length=1024)
    roles: list[str] = Field(min_length=1, max_length=4)
    must_change_password: bool = False
    """Whether the user must change this password before their first session.
    Default: no."""


class UpdateUserRequest(BaseModel):
    """``PATCH /api/v1/users/{user_id}``: each field given is changed."""

    roles: list[str] | None = Field(default=None, min_length=1, max_length=4)
    """New roles; the user's sessions end (the roles apply from the next login)."""
    disabled: bool | None = None
    """``true``: no logins, and the user's sessions and API keys stop at once;
    ``false``: enabled again (API keys work again, sessions stay ended)."""
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    """A new password (the user's sessions end); it must be changed at the next login
    unless ``must_change_password`` is ``false``."""
    must_change_password: bool | None = None


class UserResponse(BaseModel):
    """A user (never the password hash)."""

    id: str
    tenant: str
    username: str
    roles: list[str]
    created_at: datetime
    locked_until: datetime | None
    """End of the current or last login lockout of this name."""
    disabled_at: datetime | None
    must_change_password: bool


class UserList(BaseModel):
    """One page of users, oldest first."""

    users: list[UserResponse]
    next_page_token: str | None = Field(description="Pass as `page_token` for the next page.")


class CreateTenantRequest(BaseModel):
    """``POST /api/v1/tenants``: a tenant and its first admin."""

    name: str = Field(pattern=_NAME)
    admin_username: str = Field(pattern=_NAME)
    admin_password: str = Field(min_length=8, max_length=1024)


class TenantResponse(BaseModel):
    """A tenant."""

    name: str
    created_at: datetime


class TenantList(BaseModel):
    """One page of tenants, by name."""

    tenants: list[TenantResponse]
    next_page_token: str | None = Field(description="Pass as `page_token` for the next page.")


class CreateApiKeyRequest(BaseModel):
    """``POST /api/v1/api-keys``."""

    name: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(min_length=1, max_length=4)
    expires_in_s: int | None = Field(default=None, gt=0)
    """Default: never expires (until revoked)."""


class ApiKeyResponse(BaseModel):
    """An API key's record; ``key`` is set only in the response that created it."""

    id: str
    name: str
    prefix: str
    roles: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    key: str | None = None


class ApiKeyList(BaseModel):
    """One page of API keys, oldest first."""

    api_keys: list[ApiKeyResponse]
    next_page_token: str | None = Field(description="Pass as `page_token` for the next page.")


class JwksResponse(BaseModel):
    """The public signing keys (RFC 7517 JWK Set) that verify IAM's tokens."""

    keys: list[dict[str, Any]]


class RotatedKeyResponse(BaseModel):
    """``POST /api/v1/signing-keys/rotate``: the new key's id."""

    kid: str


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    # Behind the gateway's authorization; IAM checks the caller's roles again (403).
    return problem_responses(*GATEWAY_PROBLEMS, *statuses)


def _user(record: store.UserRecord) -> UserResponse:
    return UserResponse(
        id=record.id,
        tenant=record.tenant,
        username=record.username,
        roles=list(record.roles),
        created_at=_time(record.created_at),
        locked_until=store.to_time(record.locked_until),
        disabled_at=store.to_time(record.disabled_at),
        must_change_password=record.must_change_password,
    )


def _api_key(record: store.ApiKeyRecord, key: str | None = None) -> ApiKeyResponse:
    return ApiKeyResponse(
        id=record.id,
        name=record.name,
        prefix=record.prefix,
        roles=list(record.roles),
        created_by=record.created_by,
        created_at=_time(record.created_at),
        expires_at=store.to_time(record.expires_at),
        last_used_at=store.to_time(record.last_used_at),
        revoked_at=store.to_time(record.revoked_at),
        key=key,
    )


def _time(unix: float) -> datetime:
    value = store.to_time(unix)
    assert value is not None
    return value


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


async def authorized(request: Request, principal: CurrentPrincipal) -> Principal:
    """The caller, if the permission table lets their roles use this route.

    Raises:
        Problem: 403 otherwise.
    """
    rule = find_rule(request.method, request.url.path)
    if rule is None or not is_allowed(rule, principal.roles):
        raise Forbidden("Your roles do not allow this.")
    return principal


Caller = Annotated[Principal, Depends(authorized)]


def authorization_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header.

    Raises:
        Problem: 401 without one.
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "Unauthenticated", type_="unauthenticated", detail="No bearer token.")
    return token.strip()


def build_router(accounts: Accounts, credentials: Credentials) -> APIRouter:
    """IAM's routes, bound to its use cases."""
    router = APIRouter()

    @router.post(
        "/api/v1/auth/login",
        response_model=TokenResponse,
        responses=problem_responses(*PUBLIC_PROBLEMS, 401, 403, 422),
        openapi_extra=PUBLIC_ROUTE,
    )
    async def login(body: LoginRequest) -> TokenResponse:
        return _tokens(await accounts.login(body.username, body.password, body.tenant))

    @router.post(
        "/api/v1/auth/password",
        response_model=TokenResponse,
        responses=problem_responses(*PUBLIC_PROBLEMS, 401, 403, 413, 422),
        openapi_extra=PUBLIC_ROUTE,
    )
    async def change_password(body: ChangePasswordRequest) -> TokenResponse:
        pair = await accounts.change_password(
            body.username, body.tenant, body.current_password, body.new_password
        )
        return _tokens(pair)

    @router.post(
        "/api/v1/auth/refresh",
        response_model=TokenResponse,
        responses=problem_responses(*PUBLIC_PROBLEMS, 401, 422),
        openapi_extra=PUBLIC_ROUTE,
    )
    async def refresh(body: RefreshRequest) -> TokenResponse:
        return _tokens(await accounts.refresh(body.refresh_token))

    @router.post("/api/v1/auth/logout", status_code=204, responses=_problems(400, 422))
    async def logout(_: Caller, authorization: Annotated[str | None, Header()] = None) -> Response:
        await accounts.logout(authorization_token(authorization))
        return Response(status_code=204)

    @router.get("/api/v1/auth/me", response_model=PrincipalResponse, responses=_problems())
    async def me(caller: Caller) -> PrincipalResponse:
        return PrincipalResponse(
            id=caller.subject, tenant=caller.tenant, roles=sorted(caller.roles)
        )

    @router.get(
        "/.well-known/jwks.json",
        response_model=JwksResponse,
        responses=problem_responses(*PUBLIC_PROBLEMS),
        openapi_extra=PUBLIC_ROUTE,
    )
    async def jwks(response: Response) -> dict[str, Any]:
        response.headers["cache-control"] = "public, max-age=60"
        return credentials.jwks()

    @router.post(
        "/api/v1/users",
        status_code=201,
        response_model=UserResponse,
        responses=_problems(400, 409, 422),
    )
    async def create_user(body: CreateUserRequest, caller: Caller) -> UserResponse:
        record = await accounts.create_user(
            caller.tenant,
            body.username,
            body.password,
            body.roles,
            must_change_password=body.must_change_password,
        )
        return _user(record)

    @router.get("/api/v1/users", response_model=UserList, responses=_problems(400, 422))
    async def list_users(
        caller: Caller, page_size: PageSize = DEFAULT_PAGE_SIZE, page_token: PageToken = None
    ) -> UserList:
        page = await accounts.list_users(caller.tenant, page_size=page_size, page_token=page_token)
        return UserList(
            users=[_user(record) for record in page.items], next_page_token=page.next_page_token
        )

    @router.get("/api/v1/users/{user_id}", response_model=UserResponse, responses=_problems(404))
    async def get_user(user_id: str, caller: Caller) -> UserResponse:
        return _user(await accounts.get_user(caller.tenant, user_id))

    @router.patch(
        "/api/v1/users/{user_id}",
        response_model=UserResponse,
        responses=_problems(404, 409, 413, 422),
    )
    async def update_user(user_id: str, body: UpdateUserRequest, caller: Caller) -> UserResponse:
        record = await accounts.update_user(
            caller.tenant,
            user_id,
            roles=body.roles,
            disabled=body.disabled,
            password=body.password,
            must_change_password=body.must_change_password,
        )
        return _user(record)

    @router.delete("/api/v1/users/{user_id}", status_code=204, responses=_problems(404, 409))
    async def delete_user(user_id: str, caller: Caller) -> Response:
        await accounts.delete_user(caller.tenant, user_id)
        return Response(status_code=204)

    @router.post("/api/v1/users/{user_id}/unlock", status_code=204, responses=_problems(404))
    async def unlock_user(user_id: str, caller: Caller) -> Response:
        await accounts.unlock_user(caller.tenant, user_id)
        return Response(status_code=204)

    @router.post(
        "/api/v1/tenants",
        status_code=201,
        response_model=TenantResponse,
        responses=_problems(400, 409, 422),
    )
    async def create_tenant(body: CreateTenantRequest, caller: Caller) -> TenantResponse:
        created_at = await accounts.create_tenant(
            caller.tenant, body.name, body.admin_username, body.admin_password
        )
        return TenantResponse(name=body.name, created_at=created_at)

    @router.get("/api/v1/tenants", response_model=TenantList, responses=_problems(400, 422))
    async def list_tenants(
        caller: Caller, page_size: PageSize = DEFAULT_PAGE_SIZE, page_token: PageToken = None
    ) -> TenantList:
        page = await accounts.list_tenants(
            caller.tenant, page_size=page_size, page_token=page_token
        )
        return TenantList(
            tenants=[TenantResponse(name=name, created_at=created) for name, created in page.items],
            next_page_token=page.next_page_token,
        )

    @router.post(
        "/api/v1/api-keys",
        status_code=201,
        response_model=ApiKeyResponse,
        responses=_problems(400, 422),
    )
    async def create_api_key(body: CreateApiKeyRequest, caller: Caller) -> ApiKeyResponse:
        created = await accounts.create_api_key(
            caller.tenant,
            name=body.name,
            roles=body.roles,
            created_by=caller.subject,
            expires_in_s=body.expires_in_s,
        )
        return _api_key(created.record, key=created.key)

    @router.get("/api/v1/api-keys", response_model=ApiKeyList, responses=_problems(400, 422))
    async def list_api_keys(
        caller: Caller, page_size: PageSize = DEFAULT_PAGE_SIZE, page_token: PageToken = None
    ) -> ApiKeyList:
        page = await accounts.list_api_keys(
            caller.tenant, page_size=page_size, page_token=page_token
        )
        return ApiKeyList(
            api_keys=[_api_key(record) for record in page.items],
            next_page_token=page.next_page_token,
        )

    @router.delete("/api/v1/api-keys/{key_id}", status_code=204, responses=_problems(404))
    async def revoke_api_key(key_id: str, caller: Caller) -> Response:
        await accounts.revoke_api_key(caller.tenant, key_id)
        return Response(status_code=204)

    @router.get("/api/v1/signing-keys", response_model=list[dict[str, Any]], responses=_problems())
    async def list_signing_keys(caller: Caller) -> list[dict[str, Any]]:
        accounts.require_system_tenant(caller.tenant)
        return credentials.signing_keys()

    @router.post(
        "/api/v1/signing-keys/rotate",
        status_code=201,
        response_model=RotatedKeyResponse,
        responses=_problems(),
    )
    async def rotate_signing_key(caller: Caller) -> RotatedKeyResponse:
        accounts.require_system_tenant(caller.tenant)
        return RotatedKeyResponse(kid=await credentials.rotate())

    return router
