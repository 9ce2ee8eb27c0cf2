"""Kafka plumbing: batch publisher, batch consumer with commit-after-handle, readiness."""

from interlock.common.kafka._config import consumer_config, producer_config
from interlock.common.kafka._consumer import EventConsumer, EventHandler
from interlock.common.kafka._health import check_kafka
from interlock.common.kafka._publisher import EventPublisher

__all__ = [
    "EventConsumer",
    "EventHandler",
    "EventPublisher",
    "check_kafka",
    "consumer_config",
    "producer_config",
]
