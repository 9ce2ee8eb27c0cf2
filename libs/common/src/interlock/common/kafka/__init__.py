"""Kafka plumbing: batch publisher, batch consumer with commit-after-handle, readiness.

The functions and classes work on their own; :class:`KafkaBroker` and
:class:`EventConsumerTask` wrap them as resources a service opens at start-up.
"""

from interlock.common.kafka._config import consumer_config, group_of, producer_config
from interlock.common.kafka._consumer import (
    EventConsumer,
    EventHandler,
    commit_if_member,
    decode_consumer_record,
    is_member,
)
from interlock.common.kafka._health import check_kafka
from interlock.common.kafka._publisher import EventPublisher
from interlock.common.kafka._resources import EventConsumerTask, KafkaBroker

__all__ = [
    "EventConsumer",
    "EventConsumerTask",
    "EventHandler",
    "EventPublisher",
    "KafkaBroker",
    "check_kafka",
    "commit_if_member",
    "consumer_config",
    "decode_consumer_record",
    "group_of",
    "is_member",
    "producer_config",
]
