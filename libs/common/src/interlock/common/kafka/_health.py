"""Readiness check for Kafka."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaClient

from interlock.common.settings import KafkaOptions

__all__ = ["check_kafka"]


async def check_kafka(options: KafkaOptions, *, timeout_s: float = 2.0) -> None:
    """Raise unless a bootstrap server answers a metadata request within ``timeout_s``.

    Opens a short-lived connection, so it reflects the broker, not a client's state.

    Args:
        options: Supplies ``kafka_bootstrap_servers``.
        timeout_s: Bound on the whole check. Default: 2 s.

    Raises:
        aiokafka.errors.KafkaConnectionError: When no bootstrap server answers.
        TimeoutError: When the check takes longer than ``timeout_s``.
    """
    client = AIOKafkaClient(
        bootstrap_servers=options.kafka_bootstrap_servers,
        client_id="interlock-readiness",
        request_timeout_ms=max(1, int(timeout_s * 1000)),
    )
    try:
        async with asyncio.timeout(timeout_s):
            await client.bootstrap()
    finally:
        await client.close()
