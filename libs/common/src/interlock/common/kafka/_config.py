"""aiokafka client settings derived from :class:`KafkaOptions` (docs/local-servers.md).

One place decides how Interlock talks to Kafka: acknowledged by all replicas, no
idempotent producer (the local broker cannot do it; consumers deduplicate instead),
manual commits, ``earliest`` reset, and short fetch waits and session timeouts.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from aiokafka.partitioner import DefaultPartitioner, murmur2

from interlock.common.settings import KafkaOptions

__all__ = ["consumer_config", "group_of", "partition_of", "producer_config"]

_MAX_REQUEST_BYTES_FLOOR = 1_048_576
_KEYS_REMEMBERED = 4096
"""Record keys whose hash is kept: the runs a busy service publishes about at once."""

_key_hash = functools.lru_cache(maxsize=_KEYS_REMEMBERED)(murmur2)
_unkeyed = DefaultPartitioner()


def partition_of(key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
    """The partition aiokafka's default partitioner picks, each key hashed once (murmur2).

    Every event about a run is keyed by its run id, so a fan-out run's dozen events
    hash the same key; aiokafka's pure-Python murmur2 cost ~5 us per record (about 3% of
    the worker's CPU under the fan-out load), a remembered hash ~0.3 us.
    """
    if key is None:
        return int(_unkeyed(key, all_partitions, available))
    key_hash: int = _key_hash(key)
    return all_partitions[(key_hash & 0x7FFFFFFF) % len(all_partitions)]


def producer_config(options: KafkaOptions, *, client_id: str) -> dict[str, Any]:
    """Return keyword arguments for ``aiokafka.AIOKafkaProducer``.

    Args:
        options: Kafka options.
        client_id: Name the broker logs for this client, e.g. the service name.

    Returns:
        The arguments: ``acks="all"``, ``enable_idempotence=False``, the options'
        linger, request timeout and batch size, and :func:`partition_of`.
    """
    return {
        "bootstrap_servers": options.kafka_bootstrap_servers,
        "client_id": client_id,
        "partitioner": partition_of,
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": options.kafka_linger_ms,
        "request_timeout_ms": options.kafka_request_timeout_ms,
        "max_batch_size": options.kafka_producer_batch_bytes,
        "max_request_size": max(_MAX_REQUEST_BYTES_FLOOR, options.kafka_producer_batch_bytes),
    }


def group_of(options: KafkaOptions, group_id: str) -> str:
    """The consumer group's name on the broker: ``kafka_topic_prefix`` + ``group_id``.

    The prefix keeps environments sharing a broker apart, and a group is part of its
    environment: with the bare name, the members of every environment formed one group,
    each environment's restarts rebalanced the others', and on the local broker a group
    whose last members left during one rebalance kept the departed leader for good, so
    no later member of any environment got partitions (docs/local-servers.md).
    """
    return options.kafka_topic_prefix + group_id


def consumer_config(options: KafkaOptions, *, group_id: str, client_id: str) -> dict[str, Any]:
    """Return keyword arguments for ``aiokafka.AIOKafkaConsumer``.

    Args:
        options: Kafka options.
        group_id: Consumer group (named on the broker by :func:`group_of`).
        client_id: Name the broker logs for this client, e.g. the service name.

    Returns:
        The arguments: the prefixed group, manual commits,
        ``auto_offset_reset="earliest"``, the options' fetch wait, session timeout,
        heartbeat interval and metadata refresh.

    Raises:
        ValueError: When ``kafka_fetch_max_wait_ms`` is not positive (0 hangs the
            local broker).
    """
    if options.kafka_fetch_max_wait_ms <= 0:
        raise ValueError("kafka_fetch_max_wait_ms must be positive (0 hangs the local broker)")
    return {
        "bootstrap_servers": options.kafka_bootstrap_servers,
        "client_id": client_id,
        "group_id": group_of(options, group_id),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": options.kafka_fetch_max_wait_ms,
        "session_timeout_ms": options.kafka_session_timeout_ms,
        "heartbeat_interval_ms": options.kafka_heartbeat_interval_ms,
        "request_timeout_ms": max(
            options.kafka_request_timeout_ms, options.kafka_session_timeout_ms + 5000
        ),
        "max_poll_records": options.kafka_max_batch_size,
        "metadata_max_age_ms": options.kafka_metadata_max_age_ms,
    }
