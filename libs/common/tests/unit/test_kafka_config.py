from typing import Any

import pytest
from aiokafka.protocol.admin import CreateTopicsRequest
from aiokafka.protocol.api import Request
from aiokafka.protocol.commit import OffsetCommitRequest, OffsetFetchRequest
from aiokafka.protocol.coordination import FindCoordinatorRequest
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.protocol.group import (
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    SyncGroupRequest,
)
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.protocol.offset import OffsetRequest
from aiokafka.protocol.produce import ProduceRequest

from interlock.common.kafka import consumer_config, producer_config
from interlock.common.settings import KafkaOptions


def test_producer_waits_for_all_replicas_without_idempotence() -> None:
    options = KafkaOptions(kafka_linger_ms=20, kafka_producer_batch_bytes=2_000_000)
    config = producer_config(options, client_id="scheduler")
    assert config["acks"] == "all"
    assert config["enable_idempotence"] is False
    assert config["linger_ms"] == 20
    assert config["max_batch_size"] == 2_000_000
    assert config["max_request_size"] >= config["max_batch_size"]
    assert config["client_id"] == "scheduler"


def test_consumer_commits_manually_from_earliest_with_the_options_timeouts() -> None:
    options = KafkaOptions(
        kafka_fetch_max_wait_ms=7, kafka_session_timeout_ms=4000, kafka_heartbeat_interval_ms=800
    )
    config = consumer_config(options, group_id="g", client_id="c")
    assert config["enable_auto_commit"] is False
    assert config["auto_offset_reset"] == "earliest"
    assert config["fetch_max_wait_ms"] == 7
    assert config["session_timeout_ms"] == 4000
    assert config["heartbeat_interval_ms"] == 800
    assert config["max_poll_records"] == options.kafka_max_batch_size
    assert config["group_id"] == "g"


def test_the_group_carries_the_topic_prefix() -> None:
    # Environments sharing a broker must not share groups: a member of one would
    # rebalance the other's, and take part in its assignments.
    options = KafkaOptions(kafka_topic_prefix="staging.")
    assert consumer_config(options, group_id="g", client_id="c")["group_id"] == "staging.g"


def test_a_zero_fetch_wait_is_refused() -> None:
    with pytest.raises(ValueError, match="fetch_max_wait_ms"):
        consumer_config(KafkaOptions(kafka_fetch_max_wait_ms=0), group_id="g", client_id="c")


def test_no_protocol_version_is_pinned() -> None:
    # aiokafka >= 0.13 negotiates versions per connection and ignores (with a
    # DeprecationWarning) an api_version; a pinned old one would be wrong on Kafka 4.
    options = KafkaOptions()
    assert "api_version" not in producer_config(options, client_id="c")
    assert "api_version" not in consumer_config(options, group_id="g", client_id="c")


# Every request Interlock's producers, consumers and topic creation send, with the
# lowest version Apache Kafka 4.0 still accepts (KIP-896 removed the older ones; where
# the 4.0 message definitions and the KIP's list differ, the higher of the two).
KAFKA_4_LOWEST_VERSIONS: list[tuple[Request[Any], int]] = [
    (MetadataRequest([]), 4),
    (ProduceRequest(None, -1, 1000, []), 3),
    (FetchRequest(2, 1, 1_048_576, 0, []), 4),
    (OffsetRequest(-1, 0, []), 1),
    (FindCoordinatorRequest("group", 0), 1),
    (JoinGroupRequest("group", 6000, 60000, "", None, "consumer", []), 2),
    (SyncGroupRequest("group", 1, "member", None, []), 0),
    (HeartbeatRequest("group", 1, "member"), 0),
    (LeaveGroupRequest("group", "member"), 0),
    (OffsetCommitRequest("group", 1, "member", -1, []), 2),
    (OffsetFetchRequest("group", []), 1),
    (CreateTopicsRequest([], 1000, False), 2),
]


@pytest.mark.parametrize(
    ("request_", "lowest"),
    KAFKA_4_LOWEST_VERSIONS,
    ids=[type(r).__name__ for r, _ in KAFKA_4_LOWEST_VERSIONS],
)
def test_aiokafka_sends_every_request_at_a_version_kafka_4_accepts(
    request_: Request[Any], lowest: int
) -> None:
    # What aiokafka does with a broker's ApiVersions answer: the highest version both
    # sides know (NotImplementedError when it has none at or above the broker's lowest).
    chosen = request_.prepare({request_.API_KEY: (lowest, 32767)})
    assert lowest <= chosen.API_VERSION


def test_producers_pick_the_partition_kafkas_default_partitioner_picks() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    from interlock.common.kafka._config import partition_of

    assert producer_config(KafkaOptions(), client_id="x")["partitioner"] is partition_of
    for count in (3, 12):
        partitions = list(range(count))
        for index in range(500):
            key = f"run-{index}".encode()
            expected = DefaultPartitioner()(key, partitions, partitions)
            assert partition_of(key, partitions, partitions) == expected
    assert partition_of(None, list(range(12)), [7]) == 7
