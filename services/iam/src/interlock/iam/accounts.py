"""Tenants, users, logins, sessions and API keys: IAM's use cases behind the REST API."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

import asyncpg

from interlock.common.permissions import parse_roles
from interlock.common.postgres import PostgresDatabase
from interlock.common.resources import Lifecycle
from interlock.iam import store
from interlock.iam.credentials import Credentials
from interlock.iam.domain import (
    AccessTokenClaims,
    LockoutPolicy,
    PasswordHasher,
    PrincipalKind,
    RevocationKind,
    hash_secret,
    new_api_key,
    new_refresh_token,
)
from interlock.iam.errors import Conflict, Forbidden, IamError, LockedOut, NotFound, Unauthenticated
from interlock.iam.settings import IamSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TokenPair:
    """What a login or a refresh returns."""

    access_token: str
    refresh_token: str
    expires_in: int
    """Seconds the access token stays valid."""


@dataclass(frozen=True, kw_only=True)
class NewApiKey:
    """A created API key: the only time the key itself is returned."""

    key: str
    record: store.ApiKeyRecord


def check_roles(names: list[str]) -> list[str]:
    """Validated role names.

    Raises:
        IamError: An unknown role.
    """
    try:
        return [role.value for role in parse_roles(names)]
    except ValueError as exc:
        raise IamError(str(exc)) from None


class Accounts(Lifecycle):
    """IAM's use cases; a resource of the app that creates the bootstrap admin on start.

    Args:
        database: IAM's database.
        credentials: Issues tokens and applies revocations.
        settings: Bootstrap admin, lifetimes, lockout.
    """

    name = "accounts"

    def __init__(
        self, database: PostgresDatabase, credentials: Credentials, settings: IamSettings
    ) -> None:
        self._database = database
        self._credentials = credentials
        self._settings = settings
        self._hasher = PasswordHasher()
        self._lockout = LockoutPolicy(
            max_failures=settings.login_max_failures, lockout_s=settings.login_lockout_s
        )

    async def start(self) -> None:
        """Open it (see the class docstring)."""
        await self._bootstrap()

    async def stop(self) -> None:
        """Nothing to close: the database is a resource of its own."""

    async def check(self) -> None:
        """Always ready once open (the database has its own check)."""

    @property
    def system_tenant(self) -> str:
        """The bootstrap admin's tenant, whose admins manage tenants and signing keys."""
        return self._settings.bootstrap_admin_tenant

    async def _bootstrap(self) -> None:
        """Create the bootstrap tenant and admin unless they exist (idempotent)."""
        password = self._settings.bootstrap_admin_password
        tenant, username = (
            self._settings.bootstrap_admin_tenant,
            self._settings.bootstrap_admin_username,
        )
        async with self._database.pool.acquire() as conn:
            await store.create_tenant(conn, tenant)
            if password is None or await store.find_user(conn, tenant, username) is not None:
                return
        hashed = await asyncio.to_thread(self._hasher.hash, password.get_secret_value())
        async with self._database.pool.acquire() as conn:
            try:
                await store.insert_user(
                    conn, tenant=tenant, username=username, password_hash=hashed, roles=["admin"]
                )
            except Conflict:
                return  # another replica created it first
        logger.info("bootstrap admin created", extra={"tenant": tenant, "username": username})

    # --- logins and sessions --------------------------------------------------------

    async def login(self, username: str, password: str, tenant: str | None) -> TokenPair:
        """Check a password and open a session.

        Raises:
            Unauthenticated: Unknown user or wrong password (the same answer for both).
            LockedOut: Too many failures in a row; no password is checked.
        """
        tenant = tenant or self._settings.bootstrap_admin_tenant
        now = time.time()
        async with self._database.pool.acquire() as conn:
            user = await store.find_user(conn, tenant, username)
        if user is not None:
            retry_after = self._lockout.retry_after_s(user.locked_until, now)
            if retry_after is not None:
                raise LockedOut(retry_after)
        hashed = None if user is None else user.password_hash
        valid = await asyncio.to_thread(self._hasher.verify, password, hashed)
        if user is None:
            raise Unauthenticated("Wrong username, password or tenant.")
        async with self._database.pool.acquire() as conn:
            if not valid:
                failures = await store.count_login_failure(conn, user.id)
                locked_until = self._lockout.after_failure(failures, time.time())
                if locked_until is not None:
                    await store.lock_user(conn, user.id, locked_until)
                    logger.warning(
                        "login locked out", extra={"tenant": tenant, "username": username}
                    )
                raise Unauthenticated("Wrong username, password or tenant.")
            await store.reset_login_failures(conn, user.id)
            return await self._open_session(conn, user, family_id=str(uuid.uuid4()))

    async def _open_session(
        self, conn: asyncpg.Connection, user: store.UserRecord, *, family_id: str
    ) -> TokenPair:
        refresh = new_refresh_token()
        await store.insert_refresh_token(
            conn,
            token_hash=hash_secret(refresh),
            family_id=family_id,
            user_id=user.id,
            expires_at=time.time() + self._settings.refresh_token_ttl_s,
        )
        claims = AccessTokenClaims(
            subject=user.id, tenant=user.tenant, roles=user.roles, session_id=family_id
        )
        access, _ = self._credentials.issue(claims)
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=self._settings.access_token_ttl_s,
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Exchange a refresh token for a new pair; a reused token revokes its session.

        Raises:
            Unauthenticated: Unknown, expired, used or revoked refresh token.
        """
        token_hash = hash_secret(refresh_token)
        async with self._database.pool.acquire() as conn:
            async with conn.transaction():
                record = await store.lock_refresh_token(conn, token_hash)
                if record is None or record.revoked or record.expires_at <= time.time():
                    raise Unauthenticated("The refresh token is invalid, expired or revoked.")
                if not record.used:
                    await store.mark_refresh_token_used(conn, token_hash)
                    return await self._open_session(conn, record.user, family_id=record.family_id)
                # Reuse: whoever holds the family (thief or owner) loses it.
                await self._revoke_session(conn, record.family_id, record.user.id)
            logger.warning("refresh token reused: session revoked", extra={"user": record.user.id})
            raise Unauthenticated("The refresh token was already used; the session is revoked.")

    async def logout(self, access_token: str) -> None:
        """End the session ``access_token`` belongs to (its refresh tokens too).

        Raises:
            Unauthenticated: The token is not a valid user access token.
        """
        principal = await self._credentials.validate(access_token)
        if principal.kind is not PrincipalKind.USER or principal.session_id is None:
            raise IamError("Only a user's session can be logged out; revoke API keys instead.")
        async with self._database.pool.acquire() as conn, conn.transaction():
            await self._revoke_session(conn, principal.session_id, principal.subject)

    async def _revoke_session(self, conn: asyncpg.Connection, family_id: str, user_id: str) -> None:
        await store.revoke_family(conn, family_id, user_id)
        expires_at = self._credentials.session_revocation_expiry()
        await store.add_change(conn, RevocationKind.SESSION.value, family_id, expires_at)
        self._credentials.revoked(RevocationKind.SESSION, family_id, expires_at)

    # --- users ----------------------------------------------------------------------

    async def create_user(
        self, tenant: str, username: str, password: str, roles: list[str]
    ) -> store.UserRecord:
        """Add a user to ``tenant``.

        Raises:
            IamError: An unknown role.
            Conflict: The name is taken in the tenant.
        """
        names = check_roles(roles)
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        async with self._database.pool.acquire() as conn:
            return await store.insert_user(
                conn, tenant=tenant, username=username, password_hash=hashed, roles=names
            )

    async def list_users(self, tenant: str) -> list[store.UserRecord]:
        """Every user of ``tenant``."""
        async with self._database.pool.acquire() as conn:
            return await store.list_users(conn, tenant)

    async def get_user(self, tenant: str, user_id: str) -> store.UserRecord:
        """User ``user_id`` of ``tenant``.

        Raises:
            NotFound: No such user in the tenant.
        """
        async with self._database.pool.acquire() as conn:
            user = await store.get_user(conn, tenant, user_id)
        if user is None:
            raise NotFound(f"No user {user_id!r}.")
        return user

    # --- tenants --------------------------------------------------------------------

    async def create_tenant(
        self, caller_tenant: str, name: str, admin_username: str, admin_password: str
    ) -> None:
        """Create a tenant with its first admin (only admins of the system tenant may).

        Raises:
            Forbidden: The caller is not in the system tenant.
            Conflict: The tenant exists.
        """
        self.require_system_tenant(caller_tenant)
        hashed = await asyncio.to_thread(self._hasher.hash, admin_password)
        async with self._database.pool.acquire() as conn, conn.transaction():
            if not await store.create_tenant(conn, name):
                raise Conflict(f"Tenant {name!r} already exists.")
            await store.insert_user(
                conn, tenant=name, username=admin_username, password_hash=hashed, roles=["admin"]
            )

    async def list_tenants(self, caller_tenant: str) -> list[tuple[str, float]]:
        """Every tenant for the system tenant's admins; their own tenant for others."""
        async with self._database.pool.acquire() as conn:
            tenants = await store.list_tenants(conn)
        if caller_tenant == self.system_tenant:
            return tenants
        return [tenant for tenant in tenants if tenant[0] == caller_tenant]

    def require_system_tenant(self, caller_tenant: str) -> None:
        """Raise unless the caller belongs to the system tenant.

        Raises:
            Forbidden: Otherwise.
        """
        if caller_tenant != self.system_tenant:
            raise Forbidden("Only the system tenant's admins manage tenants and signing keys.")

    # --- API keys -------------------------------------------------------------------

    async def create_api_key(
        self,
        tenant: str,
        *,
        name: str,
        roles: list[str],
        created_by: str,
        expires_in_s: int | None,
    ) -> NewApiKey:
        """Create an API key for ``tenant`` (the key is returned only here).

        Raises:
            IamError: An unknown role.
        """
        names = check_roles(roles)
        key = new_api_key()
        expires_at = None if expires_in_s is None else time.time() + expires_in_s
        async with self._database.pool.acquire() as conn:
            record = await store.insert_api_key(
                conn,
                tenant=tenant,
                name=name,
                key_hash=hash_secret(key),
                prefix=key[:10],
                roles=names,
                created_by=created_by,
                expires_at=expires_at,
            )
        return NewApiKey(key=key, record=record)

    async def list_api_keys(self, tenant: str) -> list[store.ApiKeyRecord]:
        """Every API key of ``tenant`` (never the keys themselves)."""
        async with self._database.pool.acquire() as conn:
            return await store.list_api_keys(conn, tenant)

    async def revoke_api_key(self, tenant: str, key_id: str) -> None:
        """Revoke an API key of ``tenant``; it stops working at once on every replica.

        Raises:
            NotFound: No such key in the tenant.
        """
        async with self._database.pool.acquire() as conn, conn.transaction():
            record = await store.revoke_api_key(conn, tenant, key_id)
            if record is None:
                raise NotFound(f"No API key {key_id!r}.")
            await store.add_change(conn, RevocationKind.API_KEY.value, record.id, record.expires_at)
        self._credentials.revoked(RevocationKind.API_KEY, record.id, record.expires_at)
