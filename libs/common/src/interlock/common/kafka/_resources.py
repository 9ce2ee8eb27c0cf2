"""Kafka as resources a service opens at start-up (``interlock.common.resources``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interlock.common.events import Event, KafkaRecord
from interlock.common.kafka._consumer import EventConsumer, EventHandler
from interlock.common.kafka._health import check_kafka
from interlock.common.kafka._publisher import EventPublisher
from interlock.common.resources import Lifecycle
from interlock.common.settings import KafkaOptions
from interlock.common.supervision import SupervisedTask
from interlock.common.topics import EventType, ensure_topics

__all__ = ["EventConsumerTask", "KafkaBroker"]


class KafkaBroker(Lifecycle):
    """The broker as a resource: topics ensured and a publisher started when opened.

    Pass it wherever a publisher is needed (an ``OutboxRelay``, a service's own
    publishing) and use :meth:`consumer` to build consumers with the same options.

    Args:
        options: Kafka options.
        client_id: Name the broker logs for this service's clients. Default: the
            options' ``service_name`` when they have one, else ``"interlock"``.
        create_topics: Run :func:`~interlock.common.topics.ensure_topics` for every
            event type when opened. Default: ``True``.
        name: Name ``/readyz`` reports. Default: ``"kafka"``.
    """

    def __init__(
        self,
        options: KafkaOptions,
        *,
        client_id: str | None = None,
        create_topics: bool = True,
        name: str = "kafka",
    ) -> None:
        self.name = name
        self._options = options
        self._client_id = client_id or getattr(options, "service_name", None) or "interlock"
        self._create_topics = create_topics
        self._publisher = EventPublisher(options, client_id=self._client_id)

    @property
    def options(self) -> KafkaOptions:
        """The Kafka options."""
        return self._options

    @property
    def publisher(self) -> EventPublisher:
        """The publisher, started while the broker is open."""
        return self._publisher

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish ``events`` as one batch (see :meth:`EventPublisher.publish`)."""
        await self._publisher.publish(events)

    async def publish_records(self, records: Sequence[KafkaRecord]) -> None:
        """Publish encoded records as one batch (see :meth:`EventPublisher.publish_records`)."""
        await self._publisher.publish_records(records)

    def consumer(
        self,
        *,
        group_id: str,
        event_types: Sequence[EventType],
        handler: EventHandler,
        **kwargs: Any,
    ) -> EventConsumer:
        """Build an :class:`EventConsumer` with this broker's options and client id.

        Args:
            group_id: Consumer group.
            event_types: Event types to consume.
            handler: Applies one batch.
            **kwargs: Further :class:`EventConsumer` keyword arguments.

        Returns:
            The consumer, not started.
        """
        kwargs.setdefault("client_id", self._client_id)
        return EventConsumer(
            self._options, group_id=group_id, event_types=event_types, handler=handler, **kwargs
        )

    async def start(self) -> None:
        """Create the topics (unless disabled) and start the publisher."""
        if self._create_topics:
            await ensure_topics(self._options)
        await self._publisher.start()

    async def stop(self) -> None:
        """Stop the publisher, sending what is pending."""
        await self._publisher.stop()

    async def check(self) -> None:
        """Raise unless the broker answers (see :func:`check_kafka`)."""
        await check_kafka(self._options)


class EventConsumerTask(Lifecycle):
    """Runs an :class:`EventConsumer` in the background while open (a resource).

    The first connection happens when it opens (a broker unreachable at start-up
    fails the start). Afterwards a crashed consumer is stopped and started again with
    a new client, with backoff, by a :class:`~interlock.common.supervision.SupervisedTask`.

    Args:
        consumer: The consumer to start, run and stop.
        name: Name ``/readyz`` reports. Default: ``"consumer:<group id>"``.
    """

    def __init__(self, consumer: EventConsumer, *, name: str | None = None) -> None:
        self.name = name or f"consumer:{consumer.group_id}"
        self._consumer = consumer
        self._task: SupervisedTask | None = None
        self._closing = False

    @property
    def consumer(self) -> EventConsumer:
        """The consumer."""
        return self._consumer

    async def start(self) -> None:
        """Start the consumer and run it in the background."""
        self._closing = False
        await self._consumer.start()
        self._task = SupervisedTask(self.name, self._consume)
        await self._task.start()

    async def _consume(self) -> None:
        if self._closing:
            return
        if not self._consumer.started:  # a crash closed the previous client
            await self._consumer.start()
        try:
            await self._consumer.run()
        except Exception:
            await self._consumer.stop()
            raise

    async def stop(self) -> None:
        """Stop the consumer, letting the batch in progress finish."""
        self._closing = True  # a restart due meanwhile must not open a new client
        task, self._task = self._task, None
        await self._consumer.stop()
        if task is not None:
            await task.stop()
        await self._consumer.stop()  # in case a restart opened one before the cancel

    async def check(self) -> None:
        """Raise when the consumer loop is not running or its handler keeps failing.

        Raises:
            RuntimeError: The loop is not running (a crash is chained as the cause),
                or every batch since a while failed.
        """
        if self._task is None:
            raise RuntimeError(f"{self.name} is not running")
        await self._task.check()
        failing = self._consumer.failing
        if failing is not None:
            raise RuntimeError(failing)

    def check_alive(self) -> None:
        """Raise once the consumer crashed beyond repair (``interlock.common.supervision``)."""
        if self._task is not None:
            self._task.check_alive()
