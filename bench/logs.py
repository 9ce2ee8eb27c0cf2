"""Live tail: how soon a line a task writes reaches a client following the run's log.

Each run is one ``echo`` task writing a line every ``interval``; a client follows the
run's log through the gateway (``GET /api/v1/executions/{id}/logs/stream``, Server-Sent
Events) from the moment the run is known, and for every line records its delay: when
the client read it minus when the task wrote it (the line's ``time``; worker and client
share the machine's clock). Lines written before the client was connected are not
counted. Goal (issue 14): p99 under 500 ms.

Selected with ``BENCH_SYSTEMS=logs`` (or with the others), or run alone with
``python -m bench.logs``; ``BENCH_LOGS_PORT_OFFSET`` pins its stack's ports (default:
the first free offset).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import datetime
from typing import Any

import httpx
from rich.console import Console

from bench import stats
from bench.config import BenchConfig
from bench.interlock_stack import LOGIN, BenchStack
from bench.progress import ProgressBoard

WORKFLOW = "bench-live-tail"
STREAMS = 10
"""Runs followed at once."""
LINES_PER_RUN = 40
LINE_INTERVAL = "100ms"


async def measure_logs(config: BenchConfig, board: ProgressBoard) -> dict[str, Any]:
    """Start a stack, follow ``runs`` echo runs' logs, and report the delays."""
    runs = max(STREAMS, round(30 * config.scale))
    offset = os.environ.get("BENCH_LOGS_PORT_OFFSET")
    bench_stack = BenchStack(port_offset=int(offset) if offset else None)
    board.note(f"logs: starting a stack on port offset {bench_stack.port_offset}")
    try:
        await bench_stack.up()  # inside: a stack that failed to start is cleaned too
        token = await _login_and_define(bench_stack.gateway_url)
        bar = board.bar("logs: runs followed", runs)
        delays_s: list[float] = []
        slots = asyncio.Semaphore(STREAMS)
        began = time.monotonic()

        async def one_run() -> None:
            async with slots:
                delays_s.extend(await _follow_one(bench_stack.gateway_url, token))
                bar.advance()

        await asyncio.gather(*(one_run() for _ in range(runs)))
        bar.done()
        elapsed_s = time.monotonic() - began
    finally:
        await bench_stack.down()
    figures = stats.latency_percentiles_ms(delays_s)
    board.note(
        f"logs: live tail over {len(delays_s)} lines: p50 {figures.get('p50_ms')} ms, "
        f"p99 {figures.get('p99_ms')} ms"
    )
    return {
        "runs": runs,
        "lines_measured": len(delays_s),
        "streams_at_once": STREAMS,
        "line_interval": LINE_INTERVAL,
        "lines_per_s": stats.rate_per_s(len(delays_s), elapsed_s),
        **figures,
    }


async def _login_and_define(gateway_url: str) -> str:
    username, password, tenant = LOGIN
    async with httpx.AsyncClient(base_url=gateway_url, trust_env=False, timeout=30) as http:
        login = await http.post(
            "/api/v1/auth/login",
            json={"username": username, "password": password, "tenant": tenant},
        )
        login.raise_for_status()
        token: str = login.json()["access_token"]
        defined = await http.post(
            "/api/v1/workflows",
            json={
                "name": WORKFLOW,
                "tasks": [
                    {
                        "id": "talk",
                        "type": "echo",
                        "params": {
                            "lines": [f"line {n}" for n in range(1, LINES_PER_RUN + 1)],
                            "interval": LINE_INTERVAL,
                        },
                    }
                ],
            },
            headers={"authorization": f"Bearer {token}"},
        )
        defined.raise_for_status()
    return token


async def _follow_one(gateway_url: str, token: str) -> list[float]:
    async with httpx.AsyncClient(
        base_url=gateway_url,
        headers={"authorization": f"Bearer {token}"},
        trust_env=False,
        timeout=httpx.Timeout(30, read=60),
    ) as http:
        started = await http.post(f"/api/v1/workflows/{WORKFLOW}/runs", json={"input": {}})
        started.raise_for_status()
        url = f"/api/v1/executions/{started.json()['run_id']}/logs/stream"
        delays_s: list[float] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            async with http.stream("GET", url) as stream:
                if stream.status_code == 404:  # not known before its first line is stored
                    await asyncio.sleep(0.05)
                    continue
                stream.raise_for_status()
                connected_at = time.time()
                async for line in stream.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    received_at = time.time()
                    data = json.loads(line.removeprefix("data: "))
                    if "message" not in data:
                        continue
                    written_at = datetime.fromisoformat(data["time"]).timestamp()
                    if written_at >= connected_at:
                        delays_s.append(received_at - written_at)
                    if data["seq"] == LINES_PER_RUN:
                        return delays_s
        raise TimeoutError("the run's last line did not arrive within 120 s")


def main() -> int:
    """``python -m bench.logs``: this benchmark alone; prints its figures."""
    console = Console()
    with ProgressBoard(console) as board:
        result = asyncio.run(measure_logs(BenchConfig.from_env(), board))
    console.print_json(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
