"""Credentials against a real PostgreSQL: the revocation feed, API key lookups, sealed keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from pydantic import SecretStr

from interlock.common.postgres import PostgresDatabase
from interlock.devstack import PostgresDatabase as ScratchDatabase
from interlock.iam import IamSettings, store
from interlock.iam.app import MIGRATIONS
from interlock.iam.credentials import Credentials
from interlock.iam.domain import (
    AccessTokenClaims,
    KeyEncryptionKeys,
    hash_secret,
    new_api_key,
    new_key_encryption_key,
)
from interlock.iam.errors import Busy, Unauthenticated

from .conftest import KEY_ENCRYPTION_KEYS

pytestmark = pytest.mark.integration

HANG_GUARD_S = 20.0  # only against a hang: the tests assert outcomes, never durations


def _settings(database: ScratchDatabase, **overrides: object) -> IamSettings:
    values: dict[str, object] = {
        "postgres_dsn": database.dsn,
        "postgres_password": database.password,
        "key_encryption_keys": SecretStr(KEY_ENCRYPTION_KEYS),
        "revocation_poll_s": 0.05,
        **overrides,
    }
    return IamSettings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def running(settings: IamSettings) -> AsyncIterator[Credentials]:
    database = PostgresDatabase(settings, migrations=[MIGRATIONS])
    credentials = Credentials(database, settings)
    async with database, credentials:
        yield credentials


async def _connect(database: ScratchDatabase) -> asyncpg.Connection:
    return await asyncpg.connect(database.dsn, password=database.password)


async def _revoked(credentials: Credentials, token: str) -> bool:
    try:
        await credentials.validate(token)
    except Unauthenticated:
        return True
    return False


async def _eventually_revoked(credentials: Credentials, token: str) -> None:
    async with asyncio.timeout(HANG_GUARD_S):
        while not await _revoked(credentials, token):  # noqa: ASYNC110 - polls another process's work
            await asyncio.sleep(0.02)


async def _until_waiting_for_the_lock(conn: asyncpg.Connection, count: int) -> None:
    """Wait until ``count`` queries wait for the lock on ``api_keys`` (pg_locks is live)."""
    query = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'api_keys'::regclass"
    async with asyncio.timeout(HANG_GUARD_S):
        while await conn.fetchval(query) < count:  # noqa: ASYNC110 - polls the server
            await asyncio.sleep(0.02)


async def test_a_revocation_committed_after_a_later_one_is_not_skipped(
    postgres_database: ScratchDatabase,
) -> None:
    async with running(_settings(postgres_database)) as follower:
        tokens = {
            session: follower.issue(
                AccessTokenClaims(subject="u1", tenant="t", roles=("viewer",), session_id=session)
            )[0]
            for session in ("first", "second")
        }
        expires_at = time.time() + 900
        first, second = await _connect(postgres_database), await _connect(postgres_database)
        try:
            # Another replica's transaction takes its place in the feed and commits late...
            slow = first.transaction()
            await slow.start()
            await store.add_change(first, "session", "first", expires_at)

            async def revoke_second() -> None:
                async with second.transaction():
                    await store.add_change(second, "session", "second", expires_at)

            # ...while a second revocation is written after it. On a gap-free feed it must
            # wait for the first to commit; if it commits first, the follower reads it.
            overtaking = asyncio.create_task(revoke_second())
            await asyncio.wait({overtaking}, timeout=1.0)
            if overtaking.done():
                await _eventually_revoked(follower, tokens["second"])
            await slow.commit()
            await overtaking
            await _eventually_revoked(follower, tokens["first"])
            await _eventually_revoked(follower, tokens["second"])
        finally:
            await first.close()
            await second.close()


async def test_made_up_api_keys_are_refused_without_a_lookup(
    postgres_database: ScratchDatabase,
) -> None:
    async with running(_settings(postgres_database)) as credentials:
        blocker = await _connect(postgres_database)
        try:
            async with blocker.transaction():
                # Any lookup now waits for this lock: a refusal that returns made none.
                await blocker.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
                checked = new_api_key()
                wrong_checksum = checked[:-1] + ("A" if checked[-1] != "A" else "B")
                legacy_shaped = "ilk_" + checked[4:47]  # 43 characters: an old-format key
                for made_up in (wrong_checksum, legacy_shaped, "ilk_garbage"):
                    async with asyncio.timeout(HANG_GUARD_S):
                        with pytest.raises(Unauthenticated):
                            await credentials.validate(made_up)
        finally:
            await blocker.close()


async def test_api_key_lookups_are_bounded(postgres_database: ScratchDatabase) -> None:
    settings = _settings(postgres_database, api_key_max_lookups=2)
    async with running(settings) as credentials:
        keys = [new_api_key() for _ in range(3)]
        conn = await _connect(postgres_database)
        try:
            await store.create_tenant(conn, "t")
            for number, key in enumerate(keys):
                await store.insert_api_key(
                    conn,
                    tenant="t",
                    name=f"k{number}",
                    key_hash=hash_secret(key),
                    prefix=key[:10],
                    roles=["viewer"],
                    created_by="test",
                    expires_at=None,
                )
            async with conn.transaction():
                await conn.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
                waiting = [asyncio.create_task(credentials.validate(key)) for key in keys[:2]]
                await _until_waiting_for_the_lock(conn, 2)
                with pytest.raises(Busy):
                    await credentials.validate(keys[2])
            principals = await asyncio.gather(*waiting)
            assert {principal.tenant for principal in principals} == {"t"}
            assert (await credentials.validate(keys[2])).tenant == "t"  # capacity is back
        finally:
            await conn.close()


async def test_signing_keys_are_sealed_at_rest_and_resealed_on_rotation(
    postgres_database: ScratchDatabase,
) -> None:
    async with running(_settings(postgres_database)) as credentials:
        token, _ = credentials.issue(
            AccessTokenClaims(subject="u1", tenant="t", roles=("viewer",), session_id="s")
        )
    conn = await _connect(postgres_database)
    try:
        rows = await conn.fetch("SELECT kid, private_pem, sealed_private_key FROM signing_keys")
        assert rows and all(row["private_pem"] is None for row in rows)
        assert all("PRIVATE KEY" not in row["sealed_private_key"] for row in rows)
        # A key written in plain text before sealing existed is sealed at start-up.
        await conn.execute(
            "INSERT INTO signing_keys (kid, private_pem, created_at, retired_at, expires_at)"
            " VALUES ('old', $1, now() - interval '1 day', now(), now() + interval '1 hour')",
            KeyEncryptionKeys(KEY_ENCRYPTION_KEYS)
            .unseal(rows[0]["sealed_private_key"], context=rows[0]["kid"])
            .decode(),
        )
        rotated = f"{new_key_encryption_key('k9')},{KEY_ENCRYPTION_KEYS}"  # a new KEK first
        async with running(
            _settings(postgres_database, key_encryption_keys=SecretStr(rotated))
        ) as again:
            assert (await again.validate(token)).subject == "u1"  # old tokens still verify
        after = await conn.fetch("SELECT kid, private_pem, sealed_private_key FROM signing_keys")
        assert {row["kid"] for row in after} == {*(row["kid"] for row in rows), "old"}
        for row in after:
            assert row["private_pem"] is None
            assert KeyEncryptionKeys(rotated).sealed_with_primary(row["sealed_private_key"])
    finally:
        await conn.close()
