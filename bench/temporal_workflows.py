"""The Temporal side's workflows and activity: the same shapes as Interlock's workloads.

Kept free of heavy imports: Temporal's workflow sandbox re-imports this module.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

FANOUT_WIDTH = 10
"""Parallel tasks in the middle of the fan-out workflow."""
ACTIVITY_TIMEOUT = timedelta(seconds=60)
"""Start-to-close timeout of every activity (no-ops finish in milliseconds)."""


@activity.defn(name="noop")
async def noop() -> None:
    """Do nothing: the task the benchmark measures the platform around."""


@workflow.defn(name="SequentialNoop")
class SequentialNoop:
    """Three no-op activities, one after another."""

    @workflow.run
    async def run(self) -> None:
        """Run the three steps."""
        for _ in range(3):
            await workflow.execute_activity(noop, start_to_close_timeout=ACTIVITY_TIMEOUT)


@workflow.defn(name="SingleNoop")
class SingleNoop:
    """One no-op activity: what the run-start workload starts."""

    @workflow.run
    async def run(self) -> None:
        """Run the one step."""
        await workflow.execute_activity(noop, start_to_close_timeout=ACTIVITY_TIMEOUT)


@workflow.defn(name="FanOutNoop")
class FanOutNoop:
    """One no-op, then :data:`FANOUT_WIDTH` in parallel, then one."""

    @workflow.run
    async def run(self) -> None:
        """Run 1 → 10 → 1."""
        await workflow.execute_activity(noop, start_to_close_timeout=ACTIVITY_TIMEOUT)
        await asyncio.gather(
            *(
                workflow.execute_activity(noop, start_to_close_timeout=ACTIVITY_TIMEOUT)
                for _ in range(FANOUT_WIDTH)
            )
        )
        await workflow.execute_activity(noop, start_to_close_timeout=ACTIVITY_TIMEOUT)


@workflow.defn(name="DelayTimer")
class DelayTimer:
    """Wait on one durable timer."""

    @workflow.run
    async def run(self, delay_s: float) -> None:
        """Sleep ``delay_s`` seconds (a server-side timer)."""
        await workflow.sleep(delay_s)


WORKFLOWS = (SingleNoop, SequentialNoop, FanOutNoop, DelayTimer)
"""Every workflow the benchmark's Temporal worker registers."""
ACTIVITIES = (noop,)
"""Every activity it registers."""
