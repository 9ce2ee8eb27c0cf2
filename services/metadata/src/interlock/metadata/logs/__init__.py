"""Task logs: the ``task.log`` consumer, chunked storage, paged reads and live streams.

``domain`` decides (chunks, order, deduplication, the cap, gaps, cursors), ``store``
keeps (MongoDB), ``service`` holds the use cases, ``handler`` consumes ``task.log``,
``gaps`` asks workers for lines the broker lost and ``api`` serves
``/api/v1/executions/{run_id}/logs`` and ``.../logs/stream``.
:func:`build_logs` wires them for the app.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from fastapi import APIRouter

from interlock.common.kafka import EventConsumerTask, KafkaBroker
from interlock.common.mongo import MongoDatabase
from interlock.common.resources import Resource
from interlock.metadata.logs.api import build_router
from interlock.metadata.logs.gaps import LogGaps
from interlock.metadata.logs.handler import CONSUMER, EVENT_TYPES, LogHandler
from interlock.metadata.logs.options import LogsOptions
from interlock.metadata.logs.service import LogService
from interlock.metadata.logs.store import LogIndexes, LogStore

__all__ = ["Logs", "LogsOptions", "build_logs"]


@dataclass(frozen=True, slots=True)
class Logs:
    """The logs' parts the app holds.

    Attributes:
        resources: Opened after MongoDB and the broker, in this order.
        router: The REST routes.
        service: The use cases.
    """

    resources: Sequence[Resource]
    router: APIRouter
    service: LogService


def build_logs(
    options: LogsOptions, mongo: MongoDatabase, broker: KafkaBroker, *, source: str = "metadata"
) -> Logs:
    """Wire task logs onto the service's database and broker (``source`` names the service)."""
    store = LogStore(lambda: mongo.db, retention=LogService.retention(options))
    service = LogService(store, options)
    consumer = EventConsumerTask(
        broker.consumer(
            group_id=CONSUMER,
            event_types=EVENT_TYPES,
            handler=LogHandler(service).handle,
            fetch_max_wait_ms=options.logs_fetch_max_wait_ms,
        ),
        name="logs-consumer",
    )
    gaps = LogGaps(
        store,
        broker.publish,
        source=source,
        ask_every=timedelta(seconds=options.logs_gap_ask_interval_s),
        lost_after=timedelta(seconds=options.logs_gap_lost_after_s),
        interval_s=options.logs_gap_check_interval_s,
        batch_size=options.logs_gap_batch_size,
    )
    return Logs(
        resources=[LogIndexes(lambda: mongo.db), consumer, gaps],
        router=build_router(service),
        service=service,
    )
