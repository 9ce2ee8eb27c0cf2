"""SQL for the iam service's own tables. Every tenant-scoped query takes the tenant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from interlock.iam.domain import LoginAttempts
from interlock.iam.errors import Conflict


def to_time(unix: float | None) -> datetime | None:
    """Unix time as an aware datetime (``None`` stays ``None``)."""
    return None if unix is None else datetime.fromtimestamp(unix, UTC)


def _unix(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


@dataclass(frozen=True, kw_only=True)
class UserRecord:
    """A row of ``users``."""

    id: str
    tenant: str
    username: str
    password_hash: str
    roles: tuple[str, ...]
    created_at: float
    locked_until: float | None
    """End of the current or last login lockout of the name (Unix time), if any."""
    disabled_at: float | None
    must_change_password: bool

    @property
    def disabled(self) -> bool:
        """Whether the user may not log in (nor use their sessions and API keys)."""
        return self.disabled_at is not None


@dataclass(frozen=True, kw_only=True)
class RefreshRecord:
    """A row of ``refresh_tokens`` with its user."""

    family_id: str
    expires_at: float
    used: bool
    revoked: bool
    user: UserRecord


@dataclass(frozen=True, kw_only=True)
class ApiKeyRecord:
    """A row of ``api_keys`` (never the key itself)."""

    id: str
    tenant: str
    name: str
    prefix: str
    roles: tuple[str, ...]
    created_by: str
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None


@dataclass(frozen=True, kw_only=True)
class Change:
    """A row of ``auth_changes``."""

    seq: int
    kind: str
    ref: str
    expires_at: float | None


def _user(row: asyncpg.Record) -> UserRecord:
    return UserRecord(
        id=str(row["id"]),
        tenant=row["tenant"],
        username=row["username"],
        password_hash=row["password_hash"],
        roles=tuple(row["roles"]),
        created_at=row["created_at"].timestamp(),
        locked_until=_unix(row.get("locked_until")),
        disabled_at=_unix(row["disabled_at"]),
        must_change_password=row["must_change_password"],
    )


def _api_key(row: asyncpg.Record) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=str(row["id"]),
        tenant=row["tenant"],
        name=row["name"],
        prefix=row["prefix"],
        roles=tuple(row["roles"]),
        created_by=row["created_by"],
        created_at=row["created_at"].timestamp(),
        expires_at=_unix(row["expires_at"]),
        last_used_at=_unix(row["last_used_at"]),
        revoked_at=_unix(row["revoked_at"]),
    )


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# --- tenants ------------------------------------------------------------------------


async def create_tenant(conn: asyncpg.Connection, name: str) -> datetime | None:
    """Create tenant ``name``: its creation time, or ``None`` if it existed."""
    created: datetime | None = await conn.fetchval(
        "INSERT INTO tenants (name) VALUES ($1) ON CONFLICT DO NOTHING RETURNING created_at", name
    )
    return created


async def list_tenants(
    conn: asyncpg.Connection, *, only: str | None, after: str | None, limit: int
) -> list[tuple[str, datetime]]:
    """Tenants' names and creation times by name: after ``after``, at most ``limit``.

    ``only``: that tenant alone (when it exists). ``None``: every tenant.
    """
    rows = await conn.fetch(
        "SELECT name, created_at FROM tenants"
        " WHERE ($1::text IS NULL OR name = $1) AND ($2::text IS NULL OR name > $2)"
        " ORDER BY name LIMIT $3",
        only,
        after,
        limit,
    )
    return [(row["name"], row["created_at"]) for row in rows]


# --- users --------------------------------------------------------------------------


async def insert_user(
    conn: asyncpg.Connection,
    *,
    tenant: str,
    username: str,
    password_hash: str,
    roles: list[str],
    must_change_password: bool = False,
) -> UserRecord:
    """Add a user.

    Raises:
        Conflict: The tenant already has a user of that name.
    """
    try:
        row = await conn.fetchrow(
            "INSERT INTO users (id, tenant, username, password_hash, roles, must_change_password)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            uuid.uuid4(),
            tenant,
            username,
            password_hash,
            roles,
            must_change_password,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"User {username!r} already exists.") from None
    return _user(row)


_USERS = (
    "SELECT u.*, a.locked_until FROM users u"
    " LEFT JOIN login_attempts a ON a.tenant = u.tenant AND a.username = u.username"
)


async def find_user(conn: asyncpg.Connection, tenant: str, username: str) -> UserRecord | None:
    """The user called ``username`` in ``tenant``."""
    row = await conn.fetchrow(_USERS + " WHERE u.tenant = $1 AND u.username = $2", tenant, username)
    return None if row is None else _user(row)


async def get_user(conn: asyncpg.Connection, tenant: str, user_id: str) -> UserRecord | None:
    """User ``user_id`` if it belongs to ``tenant``."""
    key = _uuid(user_id)
    if key is None:
        return None
    row = await conn.fetchrow(_USERS + " WHERE u.tenant = $1 AND u.id = $2", tenant, key)
    return None if row is None else _user(row)


async def list_users(
    conn: asyncpg.Connection, tenant: str, *, after: tuple[datetime, str] | None, limit: int
) -> list[UserRecord]:
    """Users of ``tenant``, oldest first, after ``after`` (creation time and name)."""
    created_at, username = after or (None, None)
    rows = await conn.fetch(
        _USERS + " WHERE u.tenant = $1"
        " AND ($2::timestamptz IS NULL OR (u.created_at, u.username) > ($2, $3::text))"
        " ORDER BY u.created_at, u.username LIMIT $4",
        tenant,
        created_at,
        username,
        limit,
    )
    return [_user(row) for row in rows]


async def update_user(
    conn: asyncpg.Connection,
    user_id: str,
    *,
    roles: list[str] | None = None,
    disabled: bool | None = None,
    password_hash: str | None = None,
    must_change_password: bool | None = None,
) -> None:
    """Change what is given of a user (``None``: leave it)."""
    await conn.execute(
        "UPDATE users SET roles = coalesce($2, roles),"
        " disabled_at = CASE WHEN $3::boolean IS NULL THEN disabled_at"
        "  WHEN $3 THEN coalesce(disabled_at, now()) END,"
        " password_hash = coalesce($4, password_hash),"
        " must_change_password = coalesce($5, must_change_password)"
        " WHERE id = $1",
        uuid.UUID(user_id),
        roles,
        disabled,
        password_hash,
        must_change_password,
    )


async def delete_user(conn: asyncpg.Connection, user_id: str) -> None:
    """Delete a user and their refresh tokens."""
    await conn.execute("DELETE FROM users WHERE id = $1", uuid.UUID(user_id))


async def count_active_admins(conn: asyncpg.Connection, tenant: str) -> int:
    """Enabled users of ``tenant`` with the admin role (rows locked until commit)."""
    rows = await conn.fetch(
        "SELECT id FROM users WHERE tenant = $1 AND 'admin' = ANY (roles)"
        " AND disabled_at IS NULL FOR UPDATE",
        tenant,
    )
    return len(rows)


# --- login attempts -----------------------------------------------------------------


async def lock_login_attempts(
    conn: asyncpg.Connection, tenant: str, username: str
) -> LoginAttempts:
    """The attempts made under a name, its row locked until the transaction ends."""
    await conn.execute(
        "INSERT INTO login_attempts (tenant, username) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        tenant,
        username,
    )
    row = await conn.fetchrow(
        "SELECT failures, lockouts, locked_until FROM login_attempts"
        " WHERE tenant = $1 AND username = $2 FOR UPDATE",
        tenant,
        username,
    )
    return LoginAttempts(
        failures=row["failures"], lockouts=row["lockouts"], locked_until=_unix(row["locked_until"])
    )


async def save_login_attempts(
    conn: asyncpg.Connection, tenant: str, username: str, attempts: LoginAttempts
) -> None:
    """Store a name's attempts."""
    await conn.execute(
        "UPDATE login_attempts SET failures = $3, lockouts = $4, locked_until = $5,"
        " updated_at = now() WHERE tenant = $1 AND username = $2",
        tenant,
        username,
        attempts.failures,
        attempts.lockouts,
        to_time(attempts.locked_until),
    )


async def forget_login_attempts(conn: asyncpg.Connection, tenant: str, username: str) -> None:
    """Forget a name's attempts and lockout (a success, or an admin's unlock)."""
    await conn.execute(
        "DELETE FROM login_attempts WHERE tenant = $1 AND username = $2", tenant, username
    )


async def prune_login_attempts(conn: asyncpg.Connection, idle_s: float) -> int:
    """Forget names not tried for ``idle_s`` whose lockout is over; how many."""
    status: str = await conn.execute(
        "DELETE FROM login_attempts WHERE updated_at < now() - make_interval(secs => $1)"
        " AND (locked_until IS NULL OR locked_until < now())",
        idle_s,
    )
    return int(status.split()[-1])


# --- refresh tokens -----------------------------------------------------------------


async def insert_refresh_token(
    conn: asyncpg.Connection, *, token_hash: str, family_id: str, user_id: str, expires_at: float
) -> None:
    """Store a refresh token's hash in ``family_id``."""
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        token_hash,
        uuid.UUID(family_id),
        uuid.UUID(user_id),
        to_time(expires_at),
    )


async def lock_refresh_token(conn: asyncpg.Connection, token_hash: str) -> RefreshRecord | None:
    """The refresh token with this hash and its user, locked until the transaction ends."""
    row = await conn.fetchrow(
        "SELECT r.family_id, r.expires_at AS token_expires_at, r.used_at, r.revoked_at, u.*"
        " FROM refresh_tokens r JOIN users u ON u.id = r.user_id"
        " WHERE r.token_hash = $1 FOR UPDATE OF r",
        token_hash,
    )
    if row is None:
        return None
    return RefreshRecord(
        family_id=str(row["family_id"]),
        expires_at=row["token_expires_at"].timestamp(),
        used=row["used_at"] is not None,
        revoked=row["revoked_at"] is not None,
        user=_user(row),
    )


async def mark_refresh_token_used(conn: asyncpg.Connection, token_hash: str) -> None:
    """Record that a refresh token was exchanged."""
    await conn.execute(
        "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1", token_hash
    )


async def revoke_family(conn: asyncpg.Connection, family_id: str, user_id: str | None) -> bool:
    """Revoke every refresh token of ``family_id`` (of ``user_id`` when given).

    Returns:
        Whether the family exists (for that user).
    """
    status: str = await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now())"
        " WHERE family_id = $1 AND ($2::uuid IS NULL OR user_id = $2)",
        uuid.UUID(family_id),
        None if user_id is None else uuid.UUID(user_id),
    )
    return not status.endswith(" 0")


async def revoke_user_sessions(
    conn: asyncpg.Connection, user_id: str, *, issued_after: float
) -> list[str]:
    """Revoke every refresh token of a user.

    Returns:
        The sessions (families) given a token after ``issued_after``: the ones whose
        access tokens may still be valid.
    """
    rows = await conn.fetch(
        "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now())"
        " WHERE user_id = $1 RETURNING family_id, created_at",
        uuid.UUID(user_id),
    )
    return sorted(
        {str(row["family_id"]) for row in rows if row["created_at"].timestamp() > issued_after}
    )


# --- API keys -----------------------------------------------------------------------


async def insert_api_key(
    conn: asyncpg.Connection,
    *,
    tenant: str,
    name: str,
    key_hash: str,
    prefix: str,
    roles: list[str],
    created_by: str,
    expires_at: float | None,
) -> ApiKeyRecord:
    """Store a new API key's hash."""
    row = await conn.fetchrow(
        "INSERT INTO api_keys (id, tenant, name, key_hash, prefix, roles, created_by, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        uuid.uuid4(),
        tenant,
        name,
        key_hash,
        prefix,
        roles,
        created_by,
        to_time(expires_at),
    )
    return _api_key(row)


async def find_api_key(conn: asyncpg.Connection, key_hash: str) -> ApiKeyRecord | None:
    """The API key with this hash."""
    # A key stops working while the user who created it is disabled.
    row = await conn.fetchrow(
        "SELECT * FROM api_keys k WHERE key_hash = $1 AND NOT EXISTS (SELECT 1 FROM users u"
        " WHERE u.id::text = k.created_by AND u.disabled_at IS NOT NULL)",
        key_hash,
    )
    return None if row is None else _api_key(row)


async def legacy_api_key_hashes(conn: asyncpg.Connection) -> set[str]:
    """Hashes of the unrevoked keys issued before keys had a checksum (no more are made)."""
    rows = await conn.fetch(
        "SELECT key_hash FROM api_keys WHERE NOT checksummed AND revoked_at IS NULL"
        " AND (expires_at IS NULL OR expires_at > now())"
    )
    return {row["key_hash"] for row in rows}


async def touch_api_key(conn: asyncpg.Connection, key_id: str) -> None:
    """Set the key's last-used time to now."""
    await conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", uuid.UUID(key_id))


async def list_api_keys(
    conn: asyncpg.Connection, tenant: str, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[ApiKeyRecord]:
    """API keys of ``tenant``, oldest first, after ``after`` (creation time and id)."""
    created_at, key_id = after or (None, None)
    rows = await conn.fetch(
        "SELECT * FROM api_keys WHERE tenant = $1"
        " AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))"
        " ORDER BY created_at, id LIMIT $4",
        tenant,
        created_at,
        key_id,
        limit,
    )
    return [_api_key(row) for row in rows]


async def revoke_api_key(conn: asyncpg.Connection, tenant: str, key_id: str) -> ApiKeyRecord | None:
    """Revoke API key ``key_id`` of ``tenant``; ``None`` when there is none."""
    key = _uuid(key_id)
    if key is None:
        return None
    row = await conn.fetchrow(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
        " WHERE tenant = $1 AND id = $2 RETURNING *",
        tenant,
        key,
    )
    return None if row is None else _api_key(row)


async def api_keys_created_by(
    conn: asyncpg.Connection, user_id: str, *, revoke: bool
) -> list[ApiKeyRecord]:
    """The unrevoked API keys a user created, revoked for good when ``revoke``."""
    if revoke:
        rows = await conn.fetch(
            "UPDATE api_keys SET revoked_at = now()"
            " WHERE created_by = $1 AND revoked_at IS NULL RETURNING *",
            user_id,
        )
    else:
        rows = await conn.fetch(
            "SELECT * FROM api_keys WHERE created_by = $1 AND revoked_at IS NULL", user_id
        )
    return [_api_key(row) for row in rows]


# --- signing keys -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StoredSigningKey:
    """A row of ``signing_keys``: the private key sealed (or, before sealing, plain)."""

    kid: str
    sealed_private_key: str | None
    private_pem: str | None = field(repr=False)
    """Only on rows written before keys were sealed, until IAM seals them."""
    created_at: float
    retired_at: float | None
    expires_at: float | None


def _stored_key(row: asyncpg.Record) -> StoredSigningKey:
    return StoredSigningKey(
        kid=row["kid"],
        sealed_private_key=row["sealed_private_key"],
        private_pem=row["private_pem"],
        created_at=row["created_at"].timestamp(),
        retired_at=_unix(row["retired_at"]),
        expires_at=_unix(row["expires_at"]),
    )


async def load_signing_keys(conn: asyncpg.Connection) -> list[StoredSigningKey]:
    """Every signing key that still verifies."""
    rows = await conn.fetch(
        "SELECT * FROM signing_keys WHERE expires_at IS NULL OR expires_at > now()"
    )
    return [_stored_key(row) for row in rows]


async def lock_keys_to_seal(conn: asyncpg.Connection, kek_id: str) -> list[StoredSigningKey]:
    """Keys still in plain text or sealed with another KEK than ``kek_id``, locked."""
    rows = await conn.fetch(
        "SELECT * FROM signing_keys WHERE private_pem IS NOT NULL"
        " OR split_part(sealed_private_key, ':', 1) <> $1 FOR UPDATE",
        kek_id,
    )
    return [_stored_key(row) for row in rows]


async def store_sealed_key(conn: asyncpg.Connection, kid: str, sealed: str) -> None:
    """Replace key ``kid``'s stored private key by its sealed form."""
    await conn.execute(
        "UPDATE signing_keys SET sealed_private_key = $2, private_pem = NULL WHERE kid = $1",
        kid,
        sealed,
    )


async def insert_signing_key(
    conn: asyncpg.Connection, *, kid: str, sealed_private_key: str, created_at: float
) -> None:
    """Store a new signing key (sealed)."""
    await conn.execute(
        "INSERT INTO signing_keys (kid, sealed_private_key, created_at) VALUES ($1, $2, $3)",
        kid,
        sealed_private_key,
        to_time(created_at),
    )


async def retire_signing_keys(conn: asyncpg.Connection, *, verify_until: float) -> None:
    """Stop every current key signing; each keeps verifying until ``verify_until``."""
    await conn.execute(
        "UPDATE signing_keys SET retired_at = now(), expires_at = $1 WHERE retired_at IS NULL",
        to_time(verify_until),
    )


# --- the change feed ----------------------------------------------------------------

CHANGES_CHANNEL = "iam_auth_changes"
"""PostgreSQL NOTIFY channel announcing a new ``auth_changes`` row (on commit)."""


async def add_change(
    conn: asyncpg.Connection, kind: str, ref: str, expires_at: float | None
) -> None:
    """Announce a revocation or key change to every replica; call inside a transaction.

    The sequence number comes from the counter row, which stays locked until the
    transaction ends: numbers are handed out in commit order, so a follower reading
    "after the last number I saw" never skips a change committed late.
    """
    await conn.execute(
        "WITH next AS (UPDATE auth_change_counter SET seq = seq + 1 RETURNING seq)"
        " INSERT INTO auth_changes (seq, kind, ref, expires_at)"
        " SELECT seq, $1, $2, $3 FROM next",
        kind,
        ref,
        to_time(expires_at),
    )
    await conn.execute("SELECT pg_notify($1, '')", CHANGES_CHANNEL)


async def changes_since(conn: asyncpg.Connection, seq: int) -> list[Change]:
    """Changes after ``seq`` (all still-effective ones when ``seq`` is 0), in order."""
    rows = await conn.fetch(
        "SELECT seq, kind, ref, expires_at FROM auth_changes"
        " WHERE seq > $1 AND (expires_at IS NULL OR expires_at > now()) ORDER BY seq",
        seq,
    )
    return [
        Change(
            seq=row["seq"], kind=row["kind"], ref=row["ref"], expires_at=_unix(row["expires_at"])
        )
        for row in rows
    ]


async def last_change(conn: asyncpg.Connection) -> int:
    """The newest change's sequence number (0 when none)."""
    seq: int = await conn.fetchval("SELECT seq FROM auth_change_counter")
    return seq
