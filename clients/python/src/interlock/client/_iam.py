"""IAM: login and sessions, users, tenants, API keys and tenant secrets."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from interlock.client._calls import Call, PagedCall, get_pages, model, nothing, page_of
from interlock.client._models import ApiModel
from interlock.client._operations import Mode, Resource, operation, paged
from interlock.client._transport import TokenPair
from interlock.client._workflows import DEFAULT_PAGE_SIZE


class Principal(ApiModel):
    """Who the credentials belong to."""

    id: str
    tenant: str
    roles: list[str]


class User(ApiModel):
    """A user of the caller's tenant (never their password)."""

    id: str
    tenant: str
    username: str
    roles: list[str]
    created_at: datetime
    locked_until: datetime | None = None
    disabled_at: datetime | None = None
    must_change_password: bool = False


class Tenant(ApiModel):
    """A tenant."""

    name: str
    created_at: datetime


class ApiKey(ApiModel):
    """An API key's record; ``key`` is set only in the answer that created it."""

    id: str
    name: str
    prefix: str
    roles: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    key: str | None = None


class Secret(ApiModel):
    """A tenant secret's record (its value is never returned)."""

    name: str
    created_at: datetime
    updated_at: datetime
    updated_by: str


class Auth(Resource[Mode]):
    """Login, refresh, logout and who the caller is (``/api/v1/auth``)."""

    @operation
    def login(self, username: str, password: str, tenant: str | None = None) -> Call[TokenPair]:
        """Exchange a password for a token pair (the client's ``login`` keeps it).

        Args:
            username: The user's name.
            password: Their password.
            tenant: Their tenant. Default: the system tenant (``default`` locally).
        """
        body = {"username": username, "password": password, "tenant": tenant}
        return Call(
            method="POST", path="/api/v1/auth/login", json=body, parse=model(TokenPair), public=True
        )

    @operation
    def change_password(
        self, username: str, current_password: str, new_password: str, tenant: str | None = None
    ) -> Call[TokenPair]:
        """Change one's own password, proven by the current one; answers a new token pair.

        Args:
            username: The user's name.
            current_password: Their password now.
            new_password: The new one (at least 8 characters).
            tenant: Their tenant. Default: the system tenant.
        """
        body = {
            "username": username,
            "current_password": current_password,
            "new_password": new_password,
            "tenant": tenant,
        }
        return Call(
            method="POST",
            path="/api/v1/auth/password",
            json=body,
            parse=model(TokenPair),
            public=True,
        )

    @operation
    def logout(self) -> Call[None]:
        """End the session of the access token sent (the client's ``logout`` forgets it)."""
        return Call(method="POST", path="/api/v1/auth/logout", parse=nothing)

    @operation
    def whoami(self) -> Call[Principal]:
        """The caller: user or key id, tenant and roles."""
        return Call(method="GET", path="/api/v1/auth/me", parse=model(Principal))


class Users(Resource[Mode]):
    """Users of the caller's tenant (admin)."""

    @operation
    def create(
        self,
        username: str,
        password: str,
        roles: list[str],
        *,
        must_change_password: bool = False,
    ) -> Call[User]:
        """Create a user.

        Args:
            username: Letters, digits, ``.``, ``_`` and ``-``, up to 63.
            password: At least 8 characters.
            roles: One or more of ``viewer``, ``developer``, ``operator``, ``admin``.
            must_change_password: Whether the first login must change the password.
                Default: no.
        """
        body = {
            "username": username,
            "password": password,
            "roles": roles,
            "must_change_password": must_change_password,
        }
        return Call(method="POST", path="/api/v1/users", json=body, parse=model(User))

    @operation
    def get(self, user_id: str) -> Call[User]:
        """One user."""
        return Call(
            method="GET", path=f"/api/v1/users/{quote(user_id, safe='')}", parse=model(User)
        )

    @operation
    def update(
        self,
        user_id: str,
        *,
        roles: list[str] | None = None,
        disabled: bool | None = None,
        password: str | None = None,
        must_change_password: bool | None = None,
    ) -> Call[User]:
        """Change what is given (``None``: unchanged); new roles or password end sessions."""
        changes = {
            "roles": roles,
            "disabled": disabled,
            "password": password,
            "must_change_password": must_change_password,
        }
        body = {name: value for name, value in changes.items() if value is not None}
        return Call(
            method="PATCH",
            path=f"/api/v1/users/{quote(user_id, safe='')}",
            json=body,
            parse=model(User),
        )

    @operation
    def delete(self, user_id: str) -> Call[None]:
        """Delete a user: their sessions and API keys stop at once."""
        return Call(method="DELETE", path=f"/api/v1/users/{quote(user_id, safe='')}", parse=nothing)

    @operation
    def unlock(self, user_id: str) -> Call[None]:
        """End a login lockout."""
        return Call(
            method="POST", path=f"/api/v1/users/{quote(user_id, safe='')}/unlock", parse=nothing
        )

    @paged
    def list(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> PagedCall[User]:
        """Every user of the tenant, oldest first. ``page_size`` default: 50."""
        return get_pages("/api/v1/users", page_of(User, "users"), {"page_size": page_size})


class Tenants(Resource[Mode]):
    """Tenants (admin of the system tenant)."""

    @operation
    def create(self, name: str, admin_username: str, admin_password: str) -> Call[Tenant]:
        """Create a tenant and its first admin."""
        body = {"name": name, "admin_username": admin_username, "admin_password": admin_password}
        return Call(method="POST", path="/api/v1/tenants", json=body, parse=model(Tenant))

    @paged
    def list(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> PagedCall[Tenant]:
        """Every tenant the caller may see, by name. ``page_size`` default: 50."""
        return get_pages("/api/v1/tenants", page_of(Tenant, "tenants"), {"page_size": page_size})


class ApiKeys(Resource[Mode]):
    """API keys for machines (admin)."""

    @operation
    def create(
        self, name: str, roles: list[str], *, expires_in_s: int | None = None
    ) -> Call[ApiKey]:
        """Create a key; the answer's ``key`` is its only appearance.

        Args:
            name: What the key is for.
            roles: Its roles (at most the creator's).
            expires_in_s: Lifetime. Default: none (valid until revoked).
        """
        body = {"name": name, "roles": roles, "expires_in_s": expires_in_s}
        return Call(method="POST", path="/api/v1/api-keys", json=body, parse=model(ApiKey))

    @operation
    def revoke(self, key_id: str) -> Call[None]:
        """Revoke a key: it stops working at once."""
        return Call(
            method="DELETE", path=f"/api/v1/api-keys/{quote(key_id, safe='')}", parse=nothing
        )

    @paged
    def list(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> PagedCall[ApiKey]:
        """The tenant's keys, oldest first, never their values. ``page_size`` default: 50."""
        return get_pages("/api/v1/api-keys", page_of(ApiKey, "api_keys"), {"page_size": page_size})


class Secrets(Resource[Mode]):
    """Tenant secrets, write-only: tasks read them as ``{{ secrets.NAME }}``."""

    @operation
    def set(self, name: str, value: str) -> Call[Secret]:
        """Store or replace a secret (operator)."""
        return Call(
            method="PUT",
            path=f"/api/v1/secrets/{quote(name, safe='')}",
            json={"value": value},
            parse=model(Secret),
        )

    @operation
    def delete(self, name: str) -> Call[None]:
        """Delete a secret (operator)."""
        return Call(method="DELETE", path=f"/api/v1/secrets/{quote(name, safe='')}", parse=nothing)

    @paged
    def list(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> PagedCall[Secret]:
        """Names and dates of the tenant's secrets, never values. ``page_size`` default: 50."""
        return get_pages("/api/v1/secrets", page_of(Secret, "secrets"), {"page_size": page_size})
