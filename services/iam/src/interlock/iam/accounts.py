"""Tenants, users, logins, sessions and API keys: IAM's use cases behind the REST API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from interlock.common.paging import Page, PageKey
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
from interlock.iam.errors import (
    Conflict,
    Forbidden,
    IamError,
    LockedOut,
    NotFound,
    PasswordChangeRequired,
    Unauthenticated,
    UserDisabled,
)
from interlock.iam.settings import IamSettings

logger = logging.getLogger(__name__)

_PRUNE_INTERVAL_S = 3600.0
_WRONG_CREDENTIALS = "Wrong username, password or tenant."

USERS_PAGE = PageKey("users", datetime, str)
"""Users, oldest first: creation time, then name."""
TENANTS_PAGE = PageKey("tenants", str)
"""Tenants by name."""
API_KEYS_PAGE = PageKey("api-keys", datetime, uuid.UUID)
"""API keys, oldest first: creation time, then id."""


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
            max_failures=settings.login_max_failures,
            lockout_s=settings.login_lockout_s,
            max_lockout_s=settings.login_max_lockout_s,
        )
        self._pruner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open it (see the class docstring)."""
        await self._bootstrap()
        self._pruner = asyncio.create_task(self._prune_login_attempts(), name="iam-login-prune")

    async def stop(self) -> None:
        """Stop pruning; the database is a resource of its own."""
        pruner, self._pruner = self._pruner, None
        if pruner is not None:
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner

    async def _prune_login_attempts(self) -> None:
        # Names tried once and never again (typos, guesses) are not kept forever.
        retention_s = self._settings.login_attempts_retention_s
        while True:
            try:
                async with self._database.pool.acquire() as conn:
                    await store.prune_login_attempts(conn, retention_s)
            except Exception:  # the next round retries
                logger.exception("pruning login attempts failed")
            await asyncio.sleep(min(retention_s, _PRUNE_INTERVAL_S))

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
                    conn,
                    tenant=tenant,
                    username=username,
                    password_hash=hashed,
                    roles=["admin"],
                    must_change_password=self._settings.bootstrap_admin_must_change_password,
                )
            except Conflict:
                return  # another replica created it first
        logger.info("bootstrap admin created", extra={"tenant": tenant, "username": username})

    # --- logins and sessions --------------------------------------------------------

    async def login(self, username: str, password: str, tenant: str | None) -> TokenPair:
        """Check a password and open a session.

        Raises:
            Unauthenticated: Unknown user or wrong password (the same answer for both).
            LockedOut: Too many failures in a row under this name (known or not); no
                password is checked.
            PasswordChangeRequired: The password is right but must be changed first.
            UserDisabled: The password is right but the user is disabled.
        """
        user = await self._authenticate(tenant or self.system_tenant, username, password)
        if user.must_change_password:
            raise PasswordChangeRequired()
        async with self._database.pool.acquire() as conn:
            return await self._open_session(conn, user, family_id=str(uuid.uuid4()))

    async def change_password(
        self, username: str, tenant: str | None, current_password: str, new_password: str
    ) -> TokenPair:
        """Change one's own password (proven by the current one) and open a session.

        Every other session of the user ends (on every replica at once): whoever knew
        the old password loses what they opened with it.

        Raises:
            Unauthenticated, LockedOut, UserDisabled: As :meth:`login`.
            IamError: The new password is the current one.
        """
        user = await self._authenticate(tenant or self.system_tenant, username, current_password)
        if new_password == current_password:
            raise IamError("The new password must differ from the current one.")
        hashed = await asyncio.to_thread(self._hasher.hash, new_password)
        async with self._database.pool.acquire() as conn, conn.transaction():
            await store.update_user(conn, user.id, password_hash=hashed, must_change_password=False)
            await self.end_sessions(conn, user.id)
            pair = await self._open_session(conn, user, family_id=str(uuid.uuid4()))
        logger.info("password changed", extra={"tenant": user.tenant, "user": user.id})
        return pair

    async def _authenticate(self, tenant: str, username: str, password: str) -> store.UserRecord:
        """The user whose name and password these are, counting the attempt.

        An unknown name takes the same path as a known one: an attempt reserved under
        the name, a password check against a decoy hash, the same refusal.
        """
        async with self._database.pool.acquire() as conn, conn.transaction():
            attempts = await store.lock_login_attempts(conn, tenant, username)
            reserved = self._lockout.reserve(attempts, time.time())
            if reserved is None:
                retry_after = self._lockout.retry_after_s(attempts.locked_until, time.time())
                raise LockedOut(retry_after or 1.0)
            await store.save_login_attempts(conn, tenant, username, reserved)
            user = await store.find_user(conn, tenant, username)
        if reserved.failures == 0:
            logger.warning("login locked out", extra={"tenant": tenant, "username": username})
        hashed = None if user is None else user.password_hash
        valid = await asyncio.to_thread(self._hasher.verify, password, hashed)
        if user is None or not valid:
            raise Unauthenticated(_WRONG_CREDENTIALS)
        async with self._database.pool.acquire() as conn:
            await store.forget_login_attempts(conn, tenant, username)
        if user.disabled:
            raise UserDisabled()
        return user

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

    async def refresh(
        self, refresh_token: str, *, check_session: Callable[[str], None] | None = None
    ) -> TokenPair:
        """Exchange a refresh token for a new pair; a reused token revokes its session.

        Args:
            refresh_token: The token to exchange.
            check_session: Called with the session id before anything changes; raises to
                refuse the exchange (the browser session's CSRF check). Default: none.

        Raises:
            Unauthenticated: Unknown, expired, used or revoked refresh token.
        """
        token_hash = hash_secret(refresh_token)
        async with self._database.pool.acquire() as conn:
            async with conn.transaction():
                record = await store.lock_refresh_token(conn, token_hash)
                if record is None or record.revoked or record.expires_at <= time.time():
                    raise Unauthenticated("The refresh token is invalid, expired or revoked.")
                if check_session is not None:
                    check_session(record.family_id)
                if record.user.disabled:
                    raise UserDisabled()
                if record.user.must_change_password:
                    raise PasswordChangeRequired()
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

    async def end_sessions(self, conn: asyncpg.Connection, user_id: str) -> None:
        """End every session of a user: refresh tokens revoked, access tokens refused.

        Each session whose access tokens may still be valid goes on the change feed, so
        every replica's authorizer refuses them at once, cached or not. Call inside a
        transaction; the revocations apply in this process right away (an aborted
        transaction leaves an over-cautious entry here that expires with the tokens).
        """
        expires_at = self._credentials.session_revocation_expiry()
        live_since = time.time() - self._settings.access_token_ttl_s
        for family_id in await store.revoke_user_sessions(conn, user_id, issued_after=live_since):
            await store.add_change(conn, RevocationKind.SESSION.value, family_id, expires_at)
            self._credentials.revoked(RevocationKind.SESSION, family_id, expires_at)

    # --- users ----------------------------------------------------------------------

    async def create_user(
        self,
        tenant: str,
        username: str,
        password: str,
        roles: list[str],
        *,
        must_change_password: bool = False,
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
                conn,
                tenant=tenant,
                username=username,
                password_hash=hashed,
                roles=names,
                must_change_password=must_change_password,
            )

    async def list_users(
        self, tenant: str, *, page_size: int, page_token: str | None
    ) -> Page[store.UserRecord]:
        """The users of ``tenant``, oldest first, one page (AIP-158).

        Raises:
            InvalidPageTokenError: ``page_token`` was not issued for this list.
        """
        after = USERS_PAGE.decode(page_token, {}) if page_token else None
        async with self._database.pool.acquire() as conn:
            rows = await store.list_users(conn, tenant, after=after, limit=page_size + 1)
        return USERS_PAGE.page(
            rows,
            page_size,
            lambda user: (datetime.fromtimestamp(user.created_at, UTC), user.username),
            {},
        )

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

    async def update_user(
        self,
        tenant: str,
        user_id: str,
        *,
        roles: list[str] | None = None,
        disabled: bool | None = None,
        password: str | None = None,
        must_change_password: bool | None = None,
    ) -> store.UserRecord:
        """Change a user's roles, enable or disable them, or reset their password.

        New roles, disabling, a reset password or a required password change end the
        user's sessions at once on every replica (new roles apply from the next login);
        disabling also stops the API keys they created until they are enabled again. A
        reset password must be changed at the next login unless told otherwise.

        Raises:
            NotFound: No such user in the tenant.
            IamError: An unknown role.
            Conflict: The change would leave the tenant without an enabled admin.
        """
        names = None if roles is None else check_roles(roles)
        hashed = None
        if password is not None:
            hashed = await asyncio.to_thread(self._hasher.hash, password)
            must_change_password = must_change_password is not False
        async with self._database.pool.acquire() as conn, conn.transaction():
            user = await self._user_for_update(conn, tenant, user_id)
            stays_admin = "admin" in (names or user.roles) and not (disabled or user.disabled)
            if not stays_admin:
                await self._keep_an_admin(conn, user)
            await store.update_user(
                conn,
                user.id,
                roles=names,
                disabled=disabled,
                password_hash=hashed,
                must_change_password=must_change_password,
            )
            if (
                (names is not None and tuple(names) != user.roles)
                or (disabled and not user.disabled)
                or hashed is not None
                or (must_change_password and not user.must_change_password)
            ):
                await self.end_sessions(conn, user.id)
            if disabled and not user.disabled:
                await self._stop_api_keys(conn, user.id, for_good=False)
            updated = await store.get_user(conn, tenant, user.id)
        assert updated is not None
        logger.info("user updated", extra={"tenant": tenant, "user": user.id})
        return updated

    async def delete_user(self, tenant: str, user_id: str) -> None:
        """Delete a user: their sessions end and the API keys they created are revoked.

        Raises:
            NotFound: No such user in the tenant.
            Conflict: The user is the tenant's last enabled admin.
        """
        async with self._database.pool.acquire() as conn, conn.transaction():
            user = await self._user_for_update(conn, tenant, user_id)
            await self._keep_an_admin(conn, user)
            await self.end_sessions(conn, user.id)
            await self._stop_api_keys(conn, user.id, for_good=True)
            await store.forget_login_attempts(conn, tenant, user.username)
            await store.delete_user(conn, user.id)
        logger.info("user deleted", extra={"tenant": tenant, "user": user.id})

    async def unlock_user(self, tenant: str, user_id: str) -> None:
        """End a user's login lockout and forget their failed attempts.

        Raises:
            NotFound: No such user in the tenant.
        """
        user = await self.get_user(tenant, user_id)
        async with self._database.pool.acquire() as conn:
            await store.forget_login_attempts(conn, tenant, user.username)

    async def recover_user(self, tenant: str, username: str, password: str | None) -> None:
        """Let a user log in again: unlocked, enabled, and with ``password`` if given.

        The local way back in when no admin can log in (``python -m interlock.iam
        recover-user``). A new password must be changed at the next login when
        ``bootstrap_admin_must_change_password`` is on.

        Raises:
            NotFound: No such user.
        """
        hashed = None
        if password is not None:
            hashed = await asyncio.to_thread(self._hasher.hash, password)
        async with self._database.pool.acquire() as conn, conn.transaction():
            user = await store.find_user(conn, tenant, username)
            if user is None:
                raise NotFound(f"No user {username!r} in tenant {tenant!r}.")
            await store.update_user(
                conn,
                user.id,
                disabled=False,
                password_hash=hashed,
                must_change_password=None
                if hashed is None
                else self._settings.bootstrap_admin_must_change_password,
            )
            await store.forget_login_attempts(conn, tenant, username)

    async def _user_for_update(
        self, conn: asyncpg.Connection, tenant: str, user_id: str
    ) -> store.UserRecord:
        user = await store.get_user(conn, tenant, user_id)
        if user is None:
            raise NotFound(f"No user {user_id!r}.")
        return user

    async def _keep_an_admin(self, conn: asyncpg.Connection, user: store.UserRecord) -> None:
        """Refuse to take away the tenant's last enabled admin (no one could undo it)."""
        if "admin" not in user.roles or user.disabled:
            return
        if await store.count_active_admins(conn, user.tenant) <= 1:
            raise Conflict("This is the tenant's last enabled admin; make another admin first.")

    async def _stop_api_keys(
        self, conn: asyncpg.Connection, user_id: str, *, for_good: bool
    ) -> None:
        """Refuse the API keys a user created, cached or not, on every replica.

        For good (deleting the user): revoked. Otherwise (disabling): the store refuses
        them while the user is disabled, and the change feed makes every authorizer drop
        its cached copies; that entry only needs to outlive the cache.
        """
        keys = await store.api_keys_created_by(conn, user_id, revoke=for_good)
        until = time.time() + self._settings.api_key_cache_ttl_s
        for key in keys:
            expires_at = key.expires_at if for_good else until
            await store.add_change(conn, RevocationKind.API_KEY.value, key.id, expires_at)
            self._credentials.revoked(RevocationKind.API_KEY, key.id, expires_at)

    # --- tenants --------------------------------------------------------------------

    async def create_tenant(
        self, caller_tenant: str, name: str, admin_username: str, admin_password: str
    ) -> datetime:
        """Create a tenant with its first admin (only admins of the system tenant may).

        Returns its creation time.

        Raises:
            Forbidden: The caller is not in the system tenant.
            Conflict: The tenant exists.
        """
        self.require_system_tenant(caller_tenant)
        hashed = await asyncio.to_thread(self._hasher.hash, admin_password)
        async with self._database.pool.acquire() as conn, conn.transaction():
            created_at = await store.create_tenant(conn, name)
            if created_at is None:
                raise Conflict(f"Tenant {name!r} already exists.")
            await store.insert_user(
                conn, tenant=name, username=admin_username, password_hash=hashed, roles=["admin"]
            )
        return created_at

    async def list_tenants(
        self, caller_tenant: str, *, page_size: int, page_token: str | None
    ) -> Page[tuple[str, datetime]]:
        """Tenants' names and creation times by name, one page (AIP-158).

        Every tenant for the system tenant's admins; their own tenant for others.

        Raises:
            InvalidPageTokenError: ``page_token`` was not issued for this list.
        """
        only = None if caller_tenant == self.system_tenant else caller_tenant
        (after,) = TENANTS_PAGE.decode(page_token, {}) if page_token else (None,)
        async with self._database.pool.acquire() as conn:
            rows = await store.list_tenants(conn, only=only, after=after, limit=page_size + 1)
        return TENANTS_PAGE.page(rows, page_size, lambda tenant: (tenant[0],), {})

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

    async def list_api_keys(
        self, tenant: str, *, page_size: int, page_token: str | None
    ) -> Page[store.ApiKeyRecord]:
        """The API keys of ``tenant``, oldest first, one page (never the keys themselves).

        Raises:
            InvalidPageTokenError: ``page_token`` was not issued for this list.
        """
        after = API_KEYS_PAGE.decode(page_token, {}) if page_token else None
        async with self._database.pool.acquire() as conn:
            rows = await store.list_api_keys(conn, tenant, after=after, limit=page_size + 1)
        return API_KEYS_PAGE.page(
            rows,
            page_size,
            lambda key: (datetime.fromtimestamp(key.created_at, UTC), uuid.UUID(key.id)),
            {},
        )

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
