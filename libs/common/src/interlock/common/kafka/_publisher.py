"""Publishing batches of events to Kafka."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from interlock.common.errors import PublishError
from interlock.common.events import Event, KafkaRecord
from interlock.common.kafka._config import producer_config
from interlock.common.resources import Lifecycle
from interlock.common.settings import KafkaOptions

__all__ = ["EventPublisher"]

_log = logging.getLogger(__name__)


class EventPublisher(Lifecycle):
    """Publishes events in batches, each call returning when all are acknowledged.

    Records go to ``options.kafka_topic_prefix + event type name``, keyed by run id
    (or the event's key), with ``acks="all"``. Records with the same key keep their
    order. Use as an async context manager, or call :meth:`start` and :meth:`stop`.

    Example::

        async with EventPublisher(options, client_id="scheduler") as publisher:
            await publisher.publish(events)

    Args:
        options: Kafka options.
        client_id: Name the broker logs for this client. Default: ``"interlock"``.
    """

    def __init__(self, options: KafkaOptions, *, client_id: str = "interlock") -> None:
        self._options = options
        self._prefix = options.kafka_topic_prefix
        self._producer: Any = None
        self._client_id = client_id

    async def start(self) -> None:
        """Connect to the broker.

        Raises:
            aiokafka.errors.KafkaConnectionError: When no bootstrap server answers.
        """
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(**producer_config(self._options, client_id=self._client_id))
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        """Send what is pending, then disconnect. Safe to call more than once."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish ``events`` as one batch; return when the broker acknowledged all.

        Args:
            events: The events, in the order records with the same key must keep.

        Raises:
            PublishError: When some records were not acknowledged (the others may
                have been written; retrying the batch is safe for idempotent consumers).
            RuntimeError: When the publisher is not started.
        """
        await self.publish_records([event.to_record() for event in events])

    async def publish_records(self, records: Sequence[KafkaRecord]) -> None:
        """Publish already encoded records (from :meth:`Event.to_record`) as one batch.

        Args:
            records: The records; their topics are event type names without prefix.

        Raises:
            PublishError: When some records were not acknowledged.
            RuntimeError: When the publisher is not started.
        """
        if not records:
            return
        producer = self._producer
        if producer is None:
            raise RuntimeError("EventPublisher is not started")
        deliveries: list[asyncio.Future[Any]] = []
        send_error: BaseException | None = None
        for record in records:
            try:
                deliveries.append(
                    await producer.send(
                        self._prefix + record.topic,
                        value=record.value,
                        key=record.key,
                        headers=list(record.headers),
                    )
                )
            except Exception as error:
                # The rest of the batch is not sent; what is in flight still settles.
                send_error = error
                break
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        errors = [result for result in results if isinstance(result, BaseException)]
        unsent = len(records) - len(deliveries)
        if send_error is None and not errors:
            return
        failed = unsent + len(errors)
        _log.warning(
            "publishing failed",
            extra={"failed": failed, "total": len(records), "error": repr(send_error or errors[0])},
        )
        raise PublishError(failed=failed, total=len(records)) from (send_error or errors[0])
