import asyncio
import logging
import shutil
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from interlock.common.errors import MigrationError
from interlock.common.postgres import (
    COMMON_MIGRATIONS,
    MigrationSource,
    apply_migrations,
    check_postgres,
    create_pool,
)
from interlock.common.settings import PostgresOptions

pytestmark = pytest.mark.integration

SAMPLE = MigrationSource(component="sample", location=Path(__file__).parent / "sample_migrations")


async def history(pool: asyncpg.Pool) -> list[tuple[str, int, str]]:
    rows = await pool.fetch(
        "SELECT component, version, name FROM interlock_migrations ORDER BY component, version"
    )
    return [(r["component"], r["version"], r["name"]) for r in rows]


async def test_migrations_apply_in_order_and_are_recorded(
    postgres_options: PostgresOptions,
) -> None:
    pool = await create_pool(postgres_options)
    try:
        applied = await apply_migrations(pool, [COMMON_MIGRATIONS, SAMPLE])
        assert [(m.component, m.version) for m in applied] == [
            ("interlock.common", 1),
            ("interlock.common", 2),
            ("interlock.common", 3),
            ("interlock.common", 10),
            ("sample", 1),
            ("sample", 2),
        ]
        assert await history(pool) == [
            ("interlock.common", 1, "outbox"),
            ("interlock.common", 2, "inbox"),
            ("interlock.common", 3, "outbox_headers_text"),
            ("interlock.common", 10, "parked_events"),
            ("sample", 1, "create_things"),
            ("sample", 2, "add_thing_size"),
        ]
        assert await pool.fetchval("SELECT size FROM things WHERE id = 1") == 0
        tables = {
            r["tablename"]
            for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert {"interlock_outbox", "interlock_inbox", "interlock_migrations"} <= tables
    finally:
        await pool.close()


async def test_applying_twice_is_a_noop(postgres_options: PostgresOptions) -> None:
    pool = await create_pool(postgres_options)
    try:
        await apply_migrations(pool, [COMMON_MIGRATIONS, SAMPLE])
        before = await pool.fetch("SELECT * FROM interlock_migrations ORDER BY 1, 2")
        assert await apply_migrations(pool, [COMMON_MIGRATIONS, SAMPLE]) == []
        assert await pool.fetch("SELECT * FROM interlock_migrations ORDER BY 1, 2") == before
        assert await pool.fetchval("SELECT count(*) FROM things") == 1
    finally:
        await pool.close()


async def test_concurrent_replicas_apply_each_migration_once(
    postgres_options: PostgresOptions,
) -> None:
    pools = [await create_pool(postgres_options) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(apply_migrations(p, [COMMON_MIGRATIONS, SAMPLE]) for p in pools)
        )
        applied = [(m.component, m.version) for result in results for m in result]
        assert sorted(applied) == [
            ("interlock.common", 1),
            ("interlock.common", 2),
            ("interlock.common", 3),
            ("interlock.common", 10),
            ("sample", 1),
            ("sample", 2),
        ]
        assert len(await history(pools[0])) == 6
        assert await pools[0].fetchval("SELECT count(*) FROM things") == 1
    finally:
        for p in pools:
            await p.close()


async def test_failed_migration_rolls_back_alone(
    postgres_options: PostgresOptions, tmp_path: Path
) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE half (id int);\nSELECT nonsense;")
    source = MigrationSource(component="broken", location=tmp_path)
    pool = await create_pool(postgres_options)
    try:
        with pytest.raises(asyncpg.PostgresError):
            await apply_migrations(pool, [source])
        assert await history(pool) == [("broken", 1, "ok")]
        assert await pool.fetchval("SELECT to_regclass('half')") is None
        assert await pool.fetchval("SELECT to_regclass('ok')") is not None
        # The lock was released: a fixed migration applies.
        (tmp_path / "0002_broken.sql").write_text("CREATE TABLE half (id int);")
        assert [m.version for m in await apply_migrations(pool, [source])] == [2]
    finally:
        await pool.close()


async def test_an_applied_migration_must_not_change(
    postgres_options: PostgresOptions, tmp_path: Path
) -> None:
    folder = tmp_path / "sample"
    shutil.copytree(SAMPLE.location, folder)  # type: ignore[arg-type]
    source = MigrationSource(component="sample", location=folder)
    pool = await create_pool(postgres_options)
    try:
        await apply_migrations(pool, [source])
        (folder / "0002_add_thing_size.sql").write_text("SELECT 1;")
        with pytest.raises(MigrationError, match="0002_add_thing_size changed"):
            await apply_migrations(pool, [source])
    finally:
        await pool.close()


async def test_check_postgres_and_password_handling(
    postgres_options: PostgresOptions, caplog: pytest.LogCaptureFixture
) -> None:
    password = postgres_options.postgres_password
    assert password is not None
    caplog.set_level(logging.DEBUG)
    pool = await create_pool(postgres_options)
    try:
        await check_postgres(pool)
    finally:
        await pool.close()
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert password.get_secret_value() not in logged
    assert "interlock.common.postgres" in {r.name for r in caplog.records}

    wrong = postgres_options.model_copy(update={"postgres_password": SecretStr("wrong")})
    with pytest.raises(asyncpg.InvalidPasswordError):
        await create_pool(wrong)

    dead = postgres_options.model_copy(
        update={
            "postgres_dsn": "postgresql://postgres@127.0.0.1:1/none",
            "postgres_pool_min_size": 0,
        }
    )
    pool = await create_pool(dead)
    try:
        with pytest.raises((OSError, TimeoutError)):
            await check_postgres(pool, timeout_s=1.0)
    finally:
        await pool.close()
