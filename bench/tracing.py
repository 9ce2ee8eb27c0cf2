"""What tracing costs: the fan-out workload with tracing off and on, same invocation.

``BENCH_SYSTEMS=tracing`` runs Interlock's fan-out workload (b) five times, each on a
fresh stack of its own: ``off`` (``INTERLOCK_TRACE_SAMPLE_RATIO=0``: no run is sampled,
so no span is recorded anywhere and events carry an unsampled context) and ``on`` (the
default sampling) alternately, twice each, so that a slow spell of the machine weighs
on both; then ``all`` (every run traced) once. When on, every service exports spans
and log records over OTLP/HTTP to a sink in this process that accepts and drops them
(what exporting costs the services, without a collector's CPU on the same machine).

The figures that matter: ``throughput_cost`` (1 - on / off of the tasks per second,
each mode's rounds pooled: the issue's bound is 0.1), ``cpu_cost`` (on / off - 1 of
the CPU seconds per 1,000 tasks, steadier than a rate on a shared machine), the same
for ``all``, and ``rounds``, every round's own figures.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bench import workloads
from bench.config import BenchConfig
from bench.interlock_api import InterlockClient
from bench.interlock_side import Session, _throughput
from bench.interlock_stack import LOGIN, BenchStack, StackError
from bench.progress import ProgressBoard

ROUNDS = ("off", "on", "off", "on", "all")
"""The modes measured, in this order, each on a fresh stack."""


class _OtlpSink:
    """An OTLP/HTTP endpoint that answers 200 to every export and counts the bytes."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _take(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.bytes += len(await request.read())
        return web.Response(status=200, content_type="application/x-protobuf")

    async def start(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/{signal}", self._take)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _started(env: dict[str, str], *, attempts: int = 2) -> BenchStack:
    """A stack that came up; on a loaded machine a service may miss the deadline once."""
    stack = BenchStack(env=env)
    try:
        await stack.up()
    except StackError:
        await stack.down()
        if attempts == 1:
            raise
        return await _started(env, attempts=attempts - 1)
    return stack


@contextlib.asynccontextmanager
async def _stack(env: dict[str, str]) -> AsyncIterator[Session]:
    stack = await _started(env)
    try:
        client = InterlockClient(stack.gateway_url)
        try:
            await client.login(*LOGIN)
            yield Session(client=client, pids=stack.pids, suffix=uuid.uuid4().hex[:6])
        finally:
            await client.aclose()
    finally:
        await stack.down()


def _pooled(rounds: list[dict[str, Any]], mode: str) -> dict[str, float | None]:
    """A mode's tasks per second and CPU seconds per 1,000 tasks over all its rounds."""
    measured = [r for r in rounds if r["mode"] == mode and r.get("tasks_per_s")]
    tasks = sum(r["runs"] * r["tasks_per_run"] for r in measured)
    if not tasks:
        return {"tasks_per_s": None, "cpu_s_per_1000_tasks": None}
    cpu = [r.get("cpu_s") for r in measured]
    return {
        "tasks_per_s": round(tasks / sum(r["duration_s"] for r in measured), 1),
        "cpu_s_per_1000_tasks": (
            round(sum(c for c in cpu if c) / tasks * 1000, 3) if all(cpu) else None
        ),
    }


def _cost(mode: dict[str, float | None], off: dict[str, float | None]) -> dict[str, float]:
    costs = {}
    if mode["tasks_per_s"] and off["tasks_per_s"]:
        costs["throughput"] = round(1 - mode["tasks_per_s"] / off["tasks_per_s"], 3)
    if mode["cpu_s_per_1000_tasks"] and off["cpu_s_per_1000_tasks"]:
        costs["cpu"] = round(mode["cpu_s_per_1000_tasks"] / off["cpu_s_per_1000_tasks"] - 1, 3)
    return costs


async def measure_tracing(config: BenchConfig, board: ProgressBoard) -> dict[str, Any]:
    """Fan-out throughput with tracing off and on; ``throughput_cost`` compares them."""
    rounds: list[dict[str, Any]] = []
    sink = _OtlpSink()
    await sink.start()
    try:
        for number, mode in enumerate(ROUNDS, start=1):
            env = {
                "off": {"INTERLOCK_TRACE_SAMPLE_RATIO": "0"},
                "on": {"INTERLOCK_OTEL_EXPORTER_OTLP_ENDPOINT": sink.url},
                "all": {
                    "INTERLOCK_OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
                    "INTERLOCK_TRACE_SAMPLE_RATIO": "1",
                },
            }[mode]
            began = time.monotonic()
            board.note(f"tracing {mode} ({number}/{len(ROUNDS)}): starting a fresh stack")
            try:
                async with _stack(env) as s:
                    board.note(f"tracing {mode}: stack up in {time.monotonic() - began:.1f} s")
                    figures, _ = await _throughput(
                        s,
                        config,
                        board,
                        definition=workloads.fanout(f"bench-traced-{mode}-{s.suffix}"),
                        tasks_per_run=workloads.FANOUT_TASKS,
                        label=f"interlock fan-out, tracing {mode}",
                    )
            except StackError as error:
                # A loaded machine can miss the start-up deadline twice: the other
                # rounds still compare.
                board.note(f"tracing {mode}: no stack, round left out: {error}")
                rounds.append({"mode": mode, "error": str(error)})
                continue
            rounds.append({"mode": mode, **figures})
    finally:
        await sink.stop()
    result: dict[str, Any] = {"rounds": rounds}
    result["exported"] = {"requests": sink.requests, "bytes": sink.bytes}
    pooled = {mode: _pooled(rounds, mode) for mode in ("off", "on", "all")}
    result.update(pooled)
    for mode, suffix in (("on", ""), ("all", "_all")):
        for kind, cost in _cost(pooled[mode], pooled["off"]).items():
            result[f"{kind}_cost{suffix}"] = cost
        board.note(
            f"tracing {mode}: fan-out {pooled[mode]['tasks_per_s']} tasks/s, "
            f"{pooled[mode]['cpu_s_per_1000_tasks']} CPU s per 1,000 tasks; off: "
            f"{pooled['off']['tasks_per_s']}, {pooled['off']['cpu_s_per_1000_tasks']}"
        )
    return result
