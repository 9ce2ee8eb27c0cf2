"""Validating credentials fast: the keyring, the revocation list and the token cache.

:class:`Credentials` is the authorizer's hot path. A token seen before is answered from
memory (a dictionary lookup plus a revocation check); a new JWT costs one signature
check, a new API key one indexed query; a refused one is refused again from memory
for a few seconds, so garbage costs neither. An API key whose checksum is wrong (or a
legacy-format key IAM never issued) is refused without a query, and at most
``api_key_max_lookups`` queries run at once: beyond that a new key is answered 503,
so a flood of made-up keys cannot starve the authorizer of threads or connections.
Revocations and signing-key changes are applied at once in this process and read by
every other process (replicas, extra authorizer processes) from the ``auth_changes``
table as soon as PostgreSQL notifies them, and every ``revocation_poll_s`` in any case.

Signing keys are stored sealed with the key-encryption key from the settings
(:mod:`interlock.common.sealing`); keys found in plain text or sealed with an older
KEK are re-sealed at start-up. For every caller the gateway lets through, IAM signs a
short-lived identity token (:meth:`Credentials.identity_token`), reused for half its
life so a request seldom costs a signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from interlock.common.postgres import NotificationListener, PostgresDatabase
from interlock.common.resources import Lifecycle
from interlock.iam import store
from interlock.iam.domain import (
    AccessTokenClaims,
    ApiKeyShape,
    AuthPrincipal,
    KeyEncryptionKeys,
    Keyring,
    PrincipalKind,
    RevocationKind,
    RevocationList,
    SigningKey,
    TokenCache,
    TokenError,
    UnknownKeyError,
    api_key_shape,
    decode_access_token,
    generate_signing_key,
    hash_secret,
    is_api_key,
    issue_access_token,
    issue_identity_token,
)
from interlock.iam.errors import Busy, Unauthenticated
from interlock.iam.settings import IamSettings

logger = logging.getLogger(__name__)

_SIGNING_KEYS_CHANGED = "signing_keys"
_ROTATION_CHECK_S = 60.0
_MISS_TIMEOUT_S = 5.0
_REFUSAL_CACHE_S = 10.0  # how long a refused credential is refused without a second look
_KEY_RELOAD_MIN_S = 1.0  # least time between reloads for an unknown kid
_ROTATION_LOCK = 0x69616D_6B657973  # "iamkeys": one replica rotates at a time


class Credentials(Lifecycle):
    """Issues and validates access tokens and API keys; a resource of the iam app.

    Opening it creates the first signing key (or rotates an old one), loads the
    revocations still in force and starts following changes.

    Args:
        database: IAM's database.
        settings: Lifetimes, cache size, issuer, polling interval, key-encryption keys.

    Raises:
        ValueError: No key-encryption key is configured, or it is malformed.
    """

    name = "credentials"

    def __init__(self, database: PostgresDatabase, settings: IamSettings) -> None:
        if settings.key_encryption_keys is None:
            raise ValueError(
                "INTERLOCK_KEY_ENCRYPTION_KEYS is required: IAM stores its signing keys"
                " sealed with it (see docs/architecture.md, Trust model)"
            )
        self._keks = KeyEncryptionKeys(settings.key_encryption_keys.get_secret_value())
        self._database = database
        self._settings = settings
        self._keyring = Keyring()
        self._identity_tokens: dict[tuple[str, str, tuple[str, ...]], tuple[str, float]] = {}
        self._legacy_api_keys: set[str] = set()
        self._lookups = 0
        self._last_key_reload = -_KEY_RELOAD_MIN_S
        self._revocations = RevocationList()
        self._cache: TokenCache[AuthPrincipal] = TokenCache(settings.token_cache_size)
        self._refused: TokenCache[str] = TokenCache(settings.token_cache_size)
        self._seq = 0
        self._follower: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    @property
    def key_encryption_keys(self) -> KeyEncryptionKeys:
        """IAM's key-encryption keys (the first seals, every one unseals)."""
        return self._keks

    async def start(self) -> None:
        """Open it (see the class docstring)."""
        self._loop = asyncio.get_running_loop()
        await self._seal_stored_keys()
        await self._rotate_if_due()
        async with self._database.pool.acquire() as conn:
            seq = await store.last_change(conn)
            changes = await store.changes_since(conn, 0)
            self._legacy_api_keys = await store.legacy_api_key_hashes(conn)
        self._apply(changes)
        self._seq = max(seq, self._seq)
        # Listens again by itself after the database restarted; changes missed
        # meanwhile are read at once (the listener notifies on every reconnection).
        listener = NotificationListener(
            self._database.pool, [store.CHANGES_CHANNEL], self._changed.set
        )
        self._listener = asyncio.create_task(listener.run(), name="iam-credential-listener")
        self._follower = asyncio.create_task(self._follow(), name="iam-credential-changes")

    async def stop(self) -> None:
        """Close it; safe to call more than once."""
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def check(self) -> None:
        """Raise unless a signing key is loaded and changes are being followed."""
        if self._keyring.signer() is None:
            raise RuntimeError("no signing key")
        if self._follower is None or self._follower.done():
            raise RuntimeError("not following credential changes")

    # --- validation (hot path) ------------------------------------------------------

    async def validate(self, token: str) -> AuthPrincipal:
        """Who ``token`` (an access token or API key) names.

        Raises:
            Unauthenticated: Malformed, expired, revoked, unknown or badly signed.
        """
        now = time.time()
        principal = self._cache.get(token, now)
        if principal is None:
            self._raise_if_refused_recently(token, now)
            principal = await self._validate_uncached(token, now)
        return self._unless_revoked(principal)

    def remembered(self, token: str) -> AuthPrincipal | None:
        """Who ``token`` names if this process validated it already, else ``None``.

        Never waits: the gateway's authorizer answers most requests from here.

        Raises:
            Unauthenticated: Refused a moment ago, or revoked since.
        """
        now = time.time()
        principal = self._cache.get(token, now)
        if principal is None:
            self._raise_if_refused_recently(token, now)
            return None
        return self._unless_revoked(principal)

    def validate_from_thread(self, token: str) -> AuthPrincipal:
        """:meth:`validate` for a thread other than the event loop's (the gRPC server's).

        A cache hit is answered in the calling thread; a miss runs on the event loop
        (an API key needs the database) and waits for it.

        Raises:
            Unauthenticated: As :meth:`validate`.
            RuntimeError: Credentials are not open.
        """
        now = time.time()
        principal = self._cache.get(token, now)
        if principal is None:
            self._raise_if_refused_recently(token, now)
            if self._loop is None:
                raise RuntimeError("credentials are not open")
            future = asyncio.run_coroutine_threadsafe(
                self._validate_uncached(token, now), self._loop
            )
            principal = future.result(timeout=_MISS_TIMEOUT_S)
        return self._unless_revoked(principal)

    def _raise_if_refused_recently(self, token: str, now: float) -> None:
        # Garbage must not cost a signature check or a query per request.
        reason = self._refused.get(token, now)
        if reason is not None:
            raise Unauthenticated(reason)

    def _refuse(self, token: str, reason: str) -> Unauthenticated:
        self._refused.put(token, reason, time.time() + _REFUSAL_CACHE_S)
        return Unauthenticated(reason)

    def _unless_revoked(self, principal: AuthPrincipal) -> AuthPrincipal:
        if self._revocations.is_revoked(principal):
            raise Unauthenticated("The credential has been revoked.")
        return principal

    async def _validate_uncached(self, token: str, now: float) -> AuthPrincipal:
        if is_api_key(token):
            principal = await self._validate_api_key(token, now)
            cache_until = now + self._settings.api_key_cache_ttl_s
        else:
            try:
                principal = decode_access_token(
                    self._keyring, token, issuer=self._settings.jwt_issuer, now=now
                )
            except UnknownKeyError as exc:
                # Not remembered: a key rotated in by another replica loads within a poll.
                logger.info("access token refused: %s", exc)
                raise Unauthenticated("The access token is invalid or expired.") from None
            except TokenError as exc:
                logger.info("access token refused: %s", exc)
                raise self._refuse(token, "The access token is invalid or expired.") from None
            cache_until = now + self._settings.access_token_ttl_s
        if principal.expires_at is not None:
            cache_until = min(cache_until, principal.expires_at)
        self._cache.put(token, principal, cache_until)
        return principal

    async def _validate_api_key(self, token: str, now: float) -> AuthPrincipal:
        key_hash = hash_secret(token)
        shape = api_key_shape(token)
        if shape is ApiKeyShape.MALFORMED or (
            shape is ApiKeyShape.LEGACY and key_hash not in self._legacy_api_keys
        ):
            raise self._refuse(token, "The API key is unknown, expired or revoked.")
        if self._lookups >= self._settings.api_key_max_lookups:
            raise Busy("Too many API keys are being checked at once; try again shortly.")
        self._lookups += 1
        try:
            async with self._database.pool.acquire() as conn:
                record = await store.find_api_key(conn, key_hash)
                valid = (
                    record is not None
                    and record.revoked_at is None
                    and (record.expires_at is None or record.expires_at > now)
                )
                if record is None or not valid:
                    raise self._refuse(token, "The API key is unknown, expired or revoked.")
                await store.touch_api_key(conn, record.id)
        finally:
            self._lookups -= 1
        return AuthPrincipal(
            subject=record.id,
            kind=PrincipalKind.API_KEY,
            tenant=record.tenant,
            roles=record.roles,
            expires_at=record.expires_at,
        )

    # --- issuing --------------------------------------------------------------------

    def issue(self, claims: AccessTokenClaims) -> tuple[str, float]:
        """A signed access token for ``claims`` and its expiry (Unix time)."""
        key = self._keyring.signer()
        if key is None:
            raise RuntimeError("no signing key loaded")
        return issue_access_token(
            key,
            claims,
            issuer=self._settings.jwt_issuer,
            now=time.time(),
            ttl_s=self._settings.access_token_ttl_s,
        )

    def identity_token(self, principal: AuthPrincipal) -> str:
        """The identity token the gateway forwards for ``principal`` (safe from any thread).

        One token per subject, tenant and roles, signed again once half its life
        (``identity_token_ttl_s``) has passed, so it always has at least half to go
        when a service receives it.
        """
        cache_key = (principal.subject, principal.tenant, principal.roles)
        now = time.time()
        cached = self._identity_tokens.get(cache_key)
        if cached is not None and cached[1] > now:
            return cached[0]
        key = self._keyring.signer()
        if key is None:
            raise RuntimeError("no signing key loaded")
        ttl_s = self._settings.identity_token_ttl_s
        token = issue_identity_token(
            key, principal, issuer=self._settings.jwt_issuer, now=now, ttl_s=ttl_s
        )
        if len(self._identity_tokens) >= self._settings.token_cache_size:
            self._identity_tokens.clear()  # rare: as many callers as cached credentials
        self._identity_tokens[cache_key] = (token, now + ttl_s / 2)
        return token

    async def public_key(self, kid: str) -> Ed25519PublicKey | None:
        """The public key ``kid`` names if it still verifies: IAM's own identity checks.

        A ``kid`` not known yet may be a key another replica rotated in a moment ago:
        the keys are read again, at most once a second (made-up ``kid`` values must not
        cost a query each).
        """
        key = self._keyring.verifier(kid, time.time())
        if key is None and time.monotonic() - self._last_key_reload >= _KEY_RELOAD_MIN_S:
            try:
                await self._reload_keys()
            except (OSError, asyncpg.PostgresError):  # refused as unknown; the follower retries
                logger.warning("reloading signing keys failed", exc_info=True)
            key = self._keyring.verifier(kid, time.time())
        return None if key is None else key.public_key

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public keys that verify access tokens now."""
        return self._keyring.jwks(time.time())

    def signing_keys(self) -> list[dict[str, Any]]:
        """Every known key's id and dates (never the key material)."""
        return [
            {
                "kid": key.kid,
                "created_at": store.to_time(key.created_at),
                "retired_at": store.to_time(key.retired_at),
                "expires_at": store.to_time(key.expires_at),
            }
            for key in self._keyring.keys
        ]

    # --- revocation and rotation ----------------------------------------------------

    def revoked(self, kind: RevocationKind, ref: str, expires_at: float | None) -> None:
        """Apply a revocation committed to ``auth_changes`` in this process at once."""
        self._revocations.add(kind, ref, expires_at)

    def session_revocation_expiry(self) -> float:
        """How long a revoked session must stay on the list: its last access token's life."""
        return time.time() + self._settings.access_token_ttl_s

    async def rotate(self) -> str:
        """Replace the signing key now; old keys verify until their tokens expire.

        Returns:
            The new key's ``kid``.
        """
        key = generate_signing_key(time.time())
        async with self._database.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _ROTATION_LOCK)
            await self._replace_signer(conn, key)
        await self._reload_keys()
        logger.info("signing key rotated", extra={"kid": key.kid})
        return key.kid

    async def _replace_signer(self, conn: asyncpg.Connection, key: SigningKey) -> None:
        verify_until = time.time() + self._settings.access_token_ttl_s
        await store.retire_signing_keys(conn, verify_until=verify_until)
        sealed = self._keks.seal(key.private_pem.encode(), context=key.kid)
        await store.insert_signing_key(
            conn, kid=key.kid, sealed_private_key=sealed, created_at=key.created_at
        )
        await store.add_change(conn, _SIGNING_KEYS_CHANGED, key.kid, None)

    async def _seal_stored_keys(self) -> None:
        # Keys written before sealing existed, or sealed with a KEK no longer first.
        async with self._database.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _ROTATION_LOCK)
            for stored in await store.lock_keys_to_seal(conn, self._keks.primary_id):
                pem = self._private_pem(stored).encode()
                await store.store_sealed_key(
                    conn, stored.kid, self._keks.seal(pem, context=stored.kid)
                )
                logger.info("signing key sealed", extra={"kid": stored.kid})

    def _private_pem(self, stored: store.StoredSigningKey) -> str:
        if stored.sealed_private_key is not None:
            return self._keks.unseal(stored.sealed_private_key, context=stored.kid).decode()
        assert stored.private_pem is not None  # the table's check constraint
        return stored.private_pem

    def _signing_key(self, stored: store.StoredSigningKey) -> SigningKey:
        return SigningKey(
            kid=stored.kid,
            private_pem=self._private_pem(stored),
            created_at=stored.created_at,
            retired_at=stored.retired_at,
            expires_at=stored.expires_at,
        )

    async def _rotate_if_due(self) -> None:
        await self._reload_keys()
        max_age = self._settings.signing_key_rotation_s
        if not self._keyring.needs_rotation(time.time(), max_age):
            return
        async with self._database.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _ROTATION_LOCK)
            # Another replica may have rotated while this one waited for the lock.
            self._keyring.replace(map(self._signing_key, await store.load_signing_keys(conn)))
            if self._keyring.needs_rotation(time.time(), max_age):
                key = generate_signing_key(time.time())
                await self._replace_signer(conn, key)
                logger.info("signing key created", extra={"kid": key.kid})
        await self._reload_keys()

    async def _reload_keys(self) -> None:
        self._last_key_reload = time.monotonic()
        async with self._database.pool.acquire() as conn:
            stored = await store.load_signing_keys(conn)
        self._keyring.replace(map(self._signing_key, stored))

    async def _follow(self) -> None:
        next_rotation_check = time.monotonic() + _ROTATION_CHECK_S
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._settings.revocation_poll_s)
            self._changed.clear()
            try:
                async with self._database.pool.acquire() as conn:
                    changes = await store.changes_since(conn, self._seq)
                if any(change.kind == _SIGNING_KEYS_CHANGED for change in changes):
                    await self._reload_keys()
                self._apply(changes)
                if time.monotonic() >= next_rotation_check:
                    next_rotation_check = time.monotonic() + _ROTATION_CHECK_S
                    await self._rotate_if_due()
                    self._revocations.prune(time.time())
            except Exception:  # keep following: the next poll retries
                logger.exception("reading credential changes failed")

    def _apply(self, changes: list[store.Change]) -> None:
        for change in changes:
            self._seq = max(self._seq, change.seq)
            if change.kind in RevocationKind.__members__.values():
                self._revocations.add(RevocationKind(change.kind), change.ref, change.expires_at)
