"""Supervised background work: restart with backoff, give up, liveness apart from readiness."""

from __future__ import annotations

import asyncio

import pytest

from interlock.common.http import create_app
from interlock.common.settings import ServiceSettings
from interlock.common.supervision import Backoff, Liveness, SupervisedTask
from interlock.common.testing import app_client


def test_backoff_doubles_with_jitter_up_to_the_bound_and_resets() -> None:
    backoff = Backoff(initial_s=1.0, max_s=4.0, rng=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    backoff.reset()
    low = Backoff(initial_s=1.0, max_s=4.0, rng=lambda: 0.0)
    assert backoff.next_delay() == 1.0
    assert low.next_delay() == 0.5


async def test_a_crashing_task_is_restarted_and_ready_again() -> None:
    runs = 0
    healthy = asyncio.Event()

    async def work() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise ConnectionError("server gone")
        healthy.set()
        await asyncio.Event().wait()

    task = SupervisedTask("loop", work, backoff=Backoff(initial_s=0.01, max_s=0.02))
    async with task:
        await asyncio.wait_for(healthy.wait(), timeout=10)
        await task.check()
        task.check_alive()
    assert runs == 3
    assert task.restarts == 2
    with pytest.raises(RuntimeError, match="not running"):
        await task.check()


async def test_a_task_that_keeps_crashing_gives_up_and_fails_liveness() -> None:
    reasons: list[str] = []

    async def work() -> None:
        raise ValueError("bug")

    task = SupervisedTask(
        "loop",
        work,
        backoff=Backoff(initial_s=0.01, max_s=0.01),
        max_restarts=3,
        on_give_up=reasons.append,
    )
    assert isinstance(task, Liveness)
    async with task:
        await asyncio.wait_for(task.finished(), timeout=10)
        with pytest.raises(RuntimeError, match="crashed 4 times"):
            task.check_alive()
        with pytest.raises(RuntimeError, match="crashed 4 times"):
            await task.check()
    assert len(reasons) == 1
    assert "ValueError: bug" in reasons[0]


async def test_healthz_fails_only_when_a_piece_gave_up_readyz_while_it_restarts() -> None:
    crashes = 0
    gave_up = asyncio.Event()

    async def work() -> None:
        nonlocal crashes
        crashes += 1
        await asyncio.sleep(0)
        raise ConnectionError("server gone")

    task = SupervisedTask(
        "relay",
        work,
        backoff=Backoff(initial_s=0.2, max_s=0.2),
        max_restarts=2,
        on_give_up=lambda _: gave_up.set(),
    )
    app = create_app(ServiceSettings(service_name="svc"), resources=[task])
    async with app_client(app) as client:
        await asyncio.sleep(0.05)  # crashed once, waiting to restart
        restarting = await client.get("/readyz")
        alive_while_restarting = await client.get("/healthz")
        await asyncio.wait_for(gave_up.wait(), timeout=10)
        dead = await client.get("/healthz")
    assert restarting.status_code == 503
    # The public body names the error type only (the gateway exposes /readyz).
    assert restarting.json()["checks"]["relay"] == "failed: RuntimeError"
    assert alive_while_restarting.status_code == 200
    assert dead.status_code == 503
    assert "crashed 3 times" in dead.json()["checks"]["relay"]
