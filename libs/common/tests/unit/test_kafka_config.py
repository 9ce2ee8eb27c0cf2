import pytest

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


def test_a_zero_fetch_wait_is_refused() -> None:
    with pytest.raises(ValueError, match="fetch_max_wait_ms"):
        consumer_config(KafkaOptions(kafka_fetch_max_wait_ms=0), group_id="g", client_id="c")
