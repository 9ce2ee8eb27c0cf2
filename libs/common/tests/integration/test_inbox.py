import asyncio
from datetime import timedelta

import asyncpg
import pytest

from interlock.common import inbox, topics
from interlock.common.errors import TransactionRequiredError
from interlock.common.events import Event
from interlock.events.v1 import task_pb2

pytestmark = pytest.mark.integration


def event(n: int) -> Event:
    return Event(
        type=topics.TASK_COMPLETED,
        payload=task_pb2.TaskCompleted(task_id=f"t{n}"),
        tenant="tenant",
        run_id="run",
        source="test",
    )


async def test_claim_returns_only_ids_not_seen_before(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        async with conn.transaction():
            assert await inbox.claim(conn, "scheduler", ["a", "b", "b"]) == {"a", "b"}
        async with conn.transaction():
            assert await inbox.claim(conn, "scheduler", ["b", "c"]) == {"c"}
            assert await inbox.claim(conn, "scheduler", []) == set()
        # Claims are per consumer.
        async with conn.transaction():
            assert await inbox.claim(conn, "metadata", ["a", "b"]) == {"a", "b"}


async def test_a_rolled_back_claim_is_forgotten(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                assert await inbox.claim(conn, "c", ["x"]) == {"x"}
                raise RuntimeError("apply failed")
        async with conn.transaction():
            assert await inbox.claim(conn, "c", ["x"]) == {"x"}


async def test_claim_requires_a_transaction(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(TransactionRequiredError):
            await inbox.claim(conn, "c", ["x"])


async def test_claim_events_keeps_order_and_drops_repeats(pool: asyncpg.Pool) -> None:
    one, two, three = event(1), event(2), event(3)
    async with pool.acquire() as conn:
        async with conn.transaction():
            assert await inbox.claim_events(conn, "c", [one]) == [one]
        async with conn.transaction():
            fresh = await inbox.claim_events(conn, "c", [two, one, three, two])
    assert fresh == [two, three]


async def test_concurrent_claims_of_one_id_apply_it_once(pool: asyncpg.Pool, eventually) -> None:
    first = await pool.acquire()
    second = await pool.acquire()
    try:
        tx1 = first.transaction()
        await tx1.start()
        assert await inbox.claim(first, "c", ["e"]) == {"e"}

        async def claim_in_second() -> set[str]:
            async with second.transaction():
                return await inbox.claim(second, "c", ["e"])

        racing = asyncio.create_task(claim_in_second())
        pid = second.get_server_pid()

        async def second_waits_for_a_lock() -> bool:
            wait = await pool.fetchval(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
            )
            return wait == "Lock"

        await eventually(second_waits_for_a_lock, timeout_s=10)
        await tx1.commit()
        assert await racing == set()
    finally:
        await pool.release(first)
        await pool.release(second)


async def test_prune_deletes_old_claims(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        async with conn.transaction():
            await inbox.claim(conn, "c", ["old", "new"])
        await conn.execute(
            "UPDATE interlock_inbox SET received_at = now() - interval '8 days'"
            " WHERE event_id = 'old'"
        )
        assert await inbox.prune(conn, older_than=timedelta(days=7)) == 1
        rows = await conn.fetch("SELECT event_id FROM interlock_inbox")
    assert [r["event_id"] for r in rows] == ["new"]
