"""Readiness probes: each one asks a server a real question in its own protocol.

A probe is an async callable that returns when the server answers and raises
otherwise. :func:`wait_ready` polls one until it passes, the process dies, or
the time runs out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from interlock.devstack._process import log_tail

if TYPE_CHECKING:
    from minio import Minio

# Client libraries are imported inside the probes: this module is loaded by the
# pytest plugin in every test session, which should not pay for them unless used.

Probe = Callable[[], Awaitable[None]]
"""Returns when the server is ready; raises (any exception) when it is not."""

_T = TypeVar("_T")

PROBE_TIMEOUT_S = 3.0
"""Longest time one probe attempt may take."""


class ServerStartError(RuntimeError):
    """A server did not become ready; the message carries the tail of its log."""


def postgres_probe(*, host: str, port: int, user: str, password: str) -> Probe:
    """Connect with asyncpg and run ``SELECT 1``."""

    async def probe() -> None:
        import asyncpg

        conn = await asyncpg.connect(
            host=host,
            port=port,
            user=user,
            password=password,
            database="postgres",
            timeout=PROBE_TIMEOUT_S,
        )
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    return probe


def kafka_probe(*, bootstrap_servers: str) -> Probe:
    """Fetch cluster metadata with aiokafka's admin client."""

    async def probe() -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers, request_timeout_ms=int(PROBE_TIMEOUT_S * 1000)
        )
        try:
            await asyncio.wait_for(admin.start(), PROBE_TIMEOUT_S)
            await asyncio.wait_for(admin.list_topics(), PROBE_TIMEOUT_S)
        finally:
            await admin.close()

    return probe


def mongo_probe(*, url: str) -> Probe:
    """Send ``ping`` with PyMongo's async client."""

    async def probe() -> None:
        from pymongo import AsyncMongoClient

        timeout_ms = int(PROBE_TIMEOUT_S * 1000)
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
        )
        try:
            await client.admin.command("ping")
        finally:
            await client.close()

    return probe


def s3_client(*, endpoint: str, access_key: str, secret_key: str, retries: bool = True) -> Minio:
    """Return a MinIO SDK client for an S3 endpoint (plain HTTP, loopback)."""
    import urllib3
    from minio import Minio

    http_client = None
    if not retries:
        http_client = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=PROBE_TIMEOUT_S), retries=urllib3.Retry(total=0)
        )
    return Minio(
        endpoint,
        access_key=access_key,
        secret_key=secret_key,
        secure=False,
        region="us-east-1",
        http_client=http_client,
    )


def s3_probe(*, endpoint: str, access_key: str, secret_key: str) -> Probe:
    """List buckets with the MinIO SDK (signed request: checks the credentials too)."""

    async def probe() -> None:
        client = s3_client(
            endpoint=endpoint, access_key=access_key, secret_key=secret_key, retries=False
        )
        await asyncio.to_thread(client.list_buckets)

    return probe


def smtp_probe(*, host: str, port: int) -> Probe:
    """Read the SMTP greeting (``220``) and say ``QUIT``."""

    async def probe() -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), PROBE_TIMEOUT_S
        )
        try:
            greeting = await asyncio.wait_for(reader.readline(), PROBE_TIMEOUT_S)
            if not greeting.startswith(b"220"):
                raise ConnectionError(f"unexpected SMTP greeting {greeting!r}")
            writer.write(b"QUIT\r\n")
            await writer.drain()
        finally:
            writer.close()

    return probe


def http_probe(url: str) -> Probe:
    """``GET url`` and expect 200."""

    async def probe() -> None:
        import httpx

        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, trust_env=False) as client:
            response = await client.get(url)
        if response.status_code != 200:
            raise ConnectionError(f"GET {url} answered {response.status_code}")

    return probe


def describe_error(exc: BaseException) -> str:
    """One line naming an exception, for progress and status output."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text and text[0] else type(exc).__name__


async def wait_ready(
    name: str,
    probe: Probe,
    *,
    timeout_s: float,
    log_path: Path | None = None,
    is_alive: Callable[[], bool] = lambda: True,
    interval_s: float = 0.2,
) -> float:
    """Poll ``probe`` until it passes.

    Args:
        name: Component name for the error message.
        probe: The readiness probe.
        timeout_s: How long to keep trying.
        log_path: The component's log, whose tail goes into the error.
        is_alive: Returns False once the process has died (stop waiting then).
        interval_s: Pause between attempts.

    Returns:
        The seconds it took.

    Raises:
        ServerStartError: The deadline passed or the process died.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    last_error = "no attempt yet"
    while True:
        try:
            await asyncio.wait_for(probe(), PROBE_TIMEOUT_S + 2)
        except Exception as exc:  # any failure means "not ready yet"
            last_error = describe_error(exc)
        else:
            return time.monotonic() - started
        if not is_alive():
            reason = f"{name} exited before it was ready (last probe: {last_error})"
            break
        if time.monotonic() >= deadline:
            reason = f"{name} was not ready after {timeout_s:.0f} s (last probe: {last_error})"
            break
        await asyncio.sleep(interval_s)
    tail = log_tail(log_path, 25) if log_path is not None else "(no log)"
    raise ServerStartError(f"{reason}\n--- last lines of {log_path} ---\n{tail}")


def run_sync(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion on a private event loop in a worker thread.

    Sync code (fixtures, the CLI) calls async clients through this without
    touching the event loop of the calling thread (pytest-asyncio's, say).
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
