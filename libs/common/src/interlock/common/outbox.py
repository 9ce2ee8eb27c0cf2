"""Transactional outbox: events commit with the state change, a relay publishes them.

A service writes its state change and the events it causes in one transaction::

    async with pool.acquire() as conn, conn.transaction():
        await store.mark_task_scheduled(conn, ...)
        await outbox.enqueue(conn, events)

and runs one :class:`OutboxRelay` per process::

    relay = OutboxRelay(pool, publisher)
    await relay.run()  # until cancelled

:func:`enqueue` adds the rows with one statement and ``pg_notify``-s the relay, which
PostgreSQL delivers only if the transaction commits: an event whose transaction rolls
back is never published. In the process that committed, the relay is woken sooner: when
the pool takes back the connection that added rows (its transaction is over by then),
and the ``NOTIFY`` that follows is skipped when the drain it started saw the commit
(its payload is the transaction's id). The relay drains up to ``batch_size`` rows, oldest first,
publishes them as one batch, and deletes them once the broker acknowledged every
record. When Kafka fails the rows stay and the relay retries with backoff, so nothing
is lost (a failure after publishing and before deleting publishes again: consumers are
idempotent). Only one relay per database drains at a time (an advisory lock held for
the drain's transaction), so events leave in commit order across replicas.

A row that can never be published (larger than :data:`MAX_RECORD_BYTES`, or refused
by the broker for its size or form: :func:`interlock.common.parking.is_poison`) is
parked in the same transaction that takes it (``interlock_parked_events``, with the
reason), and the rows behind it go out: it used to be retried at the head forever,
holding back every event after it. When a batch fails with a poison error the relay
publishes its rows one by one to find the culprits (duplicates are harmless).

Order: rows leave in insertion order (``seq``). Events of one run keep their order as
long as a service does not write them for the same run from two transactions at once
(lock the run's row first), which the per-run state changes already require.

A change that is a single statement can carry its events without a transaction, in
one round trip (:func:`execute_with_events`): the statement becomes a CTE and the
events are inserted only if it returned a row.

The tables come from :data:`interlock.common.postgres.COMMON_MIGRATIONS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg
from asyncpg.transaction import Transaction

from interlock.common.errors import TransactionRequiredError
from interlock.common.event_spans import publishing
from interlock.common.events import Event, KafkaRecord
from interlock.common.metrics import (
    OUTBOX_BACKLOG_ROWS,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PUBLISH_DURATION,
    OUTBOX_PUBLISHED,
)
from interlock.common.parking import ParkedEvent, describe, is_poison, park
from interlock.common.postgres import (
    COMMON_MIGRATIONS,
    NotificationListener,
    PostgresDatabase,
    on_release,
)
from interlock.common.resources import Lifecycle
from interlock.common.supervision import Backoff, SupervisedTask

__all__ = [
    "MAX_RECORD_BYTES",
    "NOTIFY_CHANNEL",
    "OUTBOX_MIGRATIONS",
    "RELAY_LOCK_ID",
    "OutboxRelay",
    "OutboxRelayTask",
    "RecordPublisher",
    "enqueue",
    "execute_with_events",
]

_log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "interlock_outbox"
"""The LISTEN/NOTIFY channel :func:`enqueue` signals and the relay listens on."""

MAX_RECORD_BYTES = 1_000_000
"""Largest record (value, key and headers) the relay publishes; larger ones are parked.
The producer refuses requests over 1 MiB (``max_request_size``), and a record also
carries its batch's framing."""

_XID_COLUMN = "outbox_xid"
"""The column :func:`execute_with_events` adds to the statement's row."""

RELAY_LOCK_ID = 0x696E_746C_6F75_7462
"""Advisory lock id a relay holds while it drains ("intloutb"): one relay per database."""


def _insert_events(first_param: int, *, only_if: str = "TRUE") -> str:
    """The outbox INSERT of the events in parameters ``$first_param`` .. ``+4``."""
    a, b, c, d, e = range(first_param, first_param + 5)
    return f"""
    INSERT INTO interlock_outbox (event_id, topic, key, headers, value)
    SELECT event_id, topic, key, headers, value
    FROM unnest(${a}::text[], ${b}::text[], ${c}::bytea[], ${d}::text[], ${e}::bytea[])
        WITH ORDINALITY AS e(event_id, topic, key, headers, value, ord)
    WHERE {only_if}
    ORDER BY ord
    RETURNING 1
    """  # noqa: S608 - parameter numbers and a constant condition only


# The payload is the transaction's id, which the statement returns too: a relay that
# learns the id from this process first, or whose take already saw that transaction
# ended, skips the notification (see OutboxRelay). Nothing added, nothing notified.
_NOTIFY = f"""
SELECT xid, pg_notify('{NOTIFY_CHANNEL}', xid::text) AS notified
FROM (SELECT pg_current_xact_id()::text::bigint AS xid) AS x
WHERE EXISTS (SELECT FROM inserted)
"""  # noqa: S608 - constant

_INSERTED = f"inserted AS ({_insert_events(1)})"
_INSERT = f"WITH {_INSERTED}, notified AS ({_NOTIFY}) SELECT xid FROM notified"  # noqa: S608 - constants

# One statement takes the relay lock and the oldest rows: the rows come back deleted,
# and the deletion commits only once the broker acknowledged them (else rolls back).
# When it holds the lock, one more row (seq NULL) carries the statement's snapshot:
# every transaction it sees ended had its rows taken now or before.
_TAKE = """
WITH relay_lock AS MATERIALIZED (SELECT pg_try_advisory_xact_lock($1) AS held),
batch AS (
    SELECT seq FROM interlock_outbox
    WHERE (SELECT held FROM relay_lock)
    ORDER BY seq
    LIMIT $2
),
taken AS (
    DELETE FROM interlock_outbox AS o USING batch WHERE o.seq = batch.seq
    RETURNING o.seq, o.event_id, o.topic, o.key, o.headers, o.value
)
SELECT seq, event_id, topic, key, headers, value, NULL AS snapshot FROM taken
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, pg_current_snapshot()::text
FROM relay_lock WHERE held
"""


_BACKLOG_COUNT_LIMIT = 100_000
"""Most rows the backlog measure counts, so that it stays cheap however large."""

_MEASURE_BACKLOG = f"""
SELECT
    (SELECT count(*) FROM (SELECT FROM interlock_outbox LIMIT {_BACKLOG_COUNT_LIMIT}) AS r) AS rows,
    (SELECT extract(epoch FROM now() - created_at) FROM interlock_outbox ORDER BY seq LIMIT 1)
        AS oldest_s
"""  # noqa: S608 - constants

_BEGUN_MIN_POOL_SIZE = 4
"""Smallest pool in which the relay keeps a connection with its next drain's transaction
begun (the ``LISTEN`` connection is out of the pool too)."""

_MEASURE_EVERY_S = 5.0
"""How often the relay measures its outbox's backlog (metrics), at most."""


_MARKED_CONNECTIONS_LIMIT = 10_000
"""Most connections remembered as having added rows (the mark only speeds a relay up)."""

_added_rows_on: dict[int, int] = {}
"""This process's connections (server pid) that added outbox rows since a pool last took
them back, with the id of the transaction that added them."""

_running_relays: weakref.WeakSet[OutboxRelay] = weakref.WeakSet()
"""The relays running in this process: told when a connection that added rows is back."""


def _mark_added_rows(conn: asyncpg.Connection, xid: int) -> None:
    if len(_added_rows_on) >= _MARKED_CONNECTIONS_LIMIT:
        _added_rows_on.clear()  # e.g. connections lost before their release: NOTIFY suffices
    _added_rows_on[conn.get_server_pid()] = xid


def _wake_relays_after_release(conn: asyncpg.Connection) -> None:
    """A pool took ``conn`` back: if it added rows, their transaction is over: drain."""
    if not _added_rows_on:
        return
    xid = _added_rows_on.pop(conn.get_server_pid(), None)
    if xid is not None:
        for relay in _running_relays:
            relay.transaction_ended(xid)


on_release(_wake_relays_after_release)


@dataclass(frozen=True)
class Snapshot:
    """A PostgreSQL snapshot (``pg_current_snapshot()``): the transactions it sees ended.

    Args:
        xmin: Every transaction id below it had ended.
        xmax: Every transaction id from it on had not started.
        running: Ids in between that were still running.
    """

    xmin: int
    xmax: int
    running: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        """Read ``pg_snapshot``'s text form, ``xmin:xmax:id,id,...``."""
        xmin, xmax, running = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(xid) for xid in running.split(",") if xid))

    def sees(self, xid: int) -> bool:
        """Whether transaction ``xid``, over by now, was over when this was taken."""
        return xid < self.xmin or (xid < self.xmax and xid not in self.running)


class RecordPublisher(Protocol):
    """What the relay publishes with: :class:`interlock.common.kafka.EventPublisher`."""

    async def publish_records(self, records: Sequence[KafkaRecord]) -> None:
        """Publish ``records`` as one batch; return once every one is acknowledged."""


async def enqueue(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Add ``events`` to the outbox in the caller's transaction, with one statement.

    The relay is notified when (and only if) the transaction commits.

    Args:
        conn: A connection inside a transaction.
        events: The events, in the order they must be published.

    Raises:
        TransactionRequiredError: When ``conn`` is not inside a transaction.
    """
    if not events:
        return
    if not conn.is_in_transaction():
        raise TransactionRequiredError("outbox.enqueue must run inside the caller's transaction")
    xid = await conn.fetchval(_INSERT, *_event_columns(events))
    _mark_added_rows(conn, xid)


async def execute_with_events(
    conn: asyncpg.Connection, statement: str, args: Sequence[object], events: Sequence[Event]
) -> asyncpg.Record | None:
    """Run ``statement`` and add ``events`` to the outbox if it returned a row: one round trip.

    The statement and the insert are one SQL statement, so they commit together even
    outside a transaction (and the relay is notified as :func:`enqueue` does).

    Args:
        conn: A connection, in a transaction or not.
        statement: One data-modifying statement with a ``RETURNING`` clause, whose
            parameters are ``$1`` .. ``$len(args)``.
        args: The statement's parameters.
        events: The events it causes, in publishing order.

    Returns:
        The statement's first returned row, or ``None`` (then no event was added). The
        row also holds ``outbox_xid``: the transaction that added the events, if any.
    """
    sql = _with_events(statement, len(args) + 1)
    row: asyncpg.Record | None = await conn.fetchrow(sql, *args, *_event_columns(events))
    if row is not None and row[_XID_COLUMN] is not None:
        _mark_added_rows(conn, row[_XID_COLUMN])
    return row


@functools.lru_cache(maxsize=64)
def _with_events(statement: str, first_event_param: int) -> str:
    insert = _insert_events(first_event_param, only_if="EXISTS (SELECT FROM changed)")
    ctes = f"changed AS ({statement}), inserted AS ({insert}), notified AS ({_NOTIFY})"
    selected = f"SELECT changed.*, notified.xid AS {_XID_COLUMN}"
    return f"WITH {ctes} {selected} FROM changed LEFT JOIN notified ON TRUE"


def _event_columns(events: Sequence[Event]) -> tuple[list[object], ...]:
    records = [event.to_record() for event in events]
    return (
        [event.id for event in events],
        [record.topic for record in records],
        [record.key for record in records],
        [
            json.dumps([[name, value.decode()] for name, value in record.headers])
            for record in records
        ],
        [record.value for record in records],
    )


def _record_size(row: asyncpg.Record) -> int:
    return len(row["value"]) + len(row["key"] or b"") + len(row["headers"])


def _parked(row: asyncpg.Record, reason: str) -> ParkedEvent:
    headers = dict(json.loads(row["headers"]))
    return ParkedEvent(
        origin="outbox",
        reason=reason,
        event_id=row["event_id"],
        tenant=headers.get("ce_tenant", ""),
        run_id=headers.get("ce_runid", ""),
        record=_record(row),
    )


def _record(row: asyncpg.Record) -> KafkaRecord:
    return KafkaRecord(
        topic=row["topic"],
        key=row["key"],
        value=row["value"],
        headers=tuple((name, value.encode()) for name, value in json.loads(row["headers"])),
    )


class OutboxRelay:
    """Publishes outbox rows to Kafka in batches and deletes them once acknowledged.

    The loop in :meth:`run` drains until the table is empty, then sleeps until a
    :meth:`wake` (a connection that added rows went back to its pool in this process), a
    ``NOTIFY`` from :func:`enqueue` of a commit no drain has seen yet, or
    ``poll_interval_ms`` (the fallback when notifications are lost, e.g. while the
    listening connection reconnects). It holds one pooled connection for ``LISTEN``
    (listening again when it is lost) and borrows another for each drain, which costs
    three round trips to PostgreSQL (begin, take the rows, commit) besides publishing.
    Before it sleeps it begins the next drain's transaction (pools of at least 4
    connections), so a woken drain's first round trip is the take; the deletion still
    commits only after the broker acknowledged, and rolls back when publishing fails or
    the relay dies. At most every 5 s it also measures the backlog for the metrics (rows and
    the oldest row's age: one query, its count capped), failing drains included.

    Args:
        pool: The service's ``asyncpg.Pool``.
        publisher: A started publisher (usually an ``EventPublisher``).
        batch_size: Most rows one drain publishes as one batch. Default: 500.
        poll_interval_ms: Longest sleep between drains when nothing notifies.
            Default: 1000 ms.
        retry_backoff_ms: First wait after a failed drain; doubles per failure.
            Default: 200 ms.
        max_retry_backoff_ms: Longest wait after repeated failures. Default: 10000 ms.
        max_record_bytes: Largest record published; larger ones are parked.
            Default: :data:`MAX_RECORD_BYTES`.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: RecordPublisher,
        *,
        batch_size: int = 500,
        poll_interval_ms: int = 1000,
        retry_backoff_ms: int = 200,
        max_retry_backoff_ms: int = 10_000,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._pool = pool
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_ms / 1000
        self._retry_backoff_ms = retry_backoff_ms
        self._max_retry_backoff_ms = max_retry_backoff_ms
        self._max_record_bytes = max_record_bytes
        self._wake = asyncio.Event()
        self._woken = False
        self._notified: set[int] = set()
        self._seen: Snapshot | None = None
        self._begun: tuple[asyncpg.Connection, Transaction] | None = None
        self._stopping = asyncio.Event()
        self._failing_since: float | None = None
        self._last_error: BaseException | None = None

    async def drain_once(self) -> int:
        """Publish and delete up to ``batch_size`` of the oldest rows, in one batch.

        Returns:
            How many rows left the outbox (published or parked); 0 when it is empty or
            another relay is draining this database right now.

        Raises:
            Exception: Whatever publishing raised but poison (e.g. a ``PublishError``
                from a broker that is down); the rows stay in the outbox.
        """
        drained, _ = await self._drain()
        return drained

    async def _drain(self) -> tuple[int, Snapshot | None]:
        """:meth:`drain_once`, and the take's snapshot (``None``: another relay drains)."""
        begun, self._begun = self._begun, None
        if begun is None or begun[0].is_closed():
            if begun is not None:  # lost with its server: take another
                with contextlib.suppress(Exception):
                    await self._pool.release(begun[0])
            begun = await self._begin()
        conn, transaction = begun
        try:
            drained = await self._take_and_publish(conn)
            await transaction.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await transaction.rollback()
            raise
        finally:
            await self._pool.release(conn)
        return drained

    async def _begin(self) -> tuple[asyncpg.Connection, Transaction]:
        """A pooled connection with a transaction begun."""
        conn = await self._pool.acquire()
        try:
            transaction = conn.transaction()
            await transaction.start()
        except BaseException:
            await self._pool.release(conn)
            raise
        return conn, transaction

    async def _begin_next_drain(self) -> None:
        """Begin the next drain's transaction now, while idle: one round trip less then.

        Only with a pool of at least :data:`_BEGUN_MIN_POOL_SIZE` connections, since the
        connection stays out of the pool until that drain (at most ``poll_interval_ms``).
        An idle transaction that has run no statement holds no snapshot and no lock.
        """
        if self._begun is not None or self._pool.get_max_size() < _BEGUN_MIN_POOL_SIZE:
            return
        try:
            self._begun = await self._begin()
        except Exception as error:  # the next drain begins its own, and reports a failure
            _log.debug("next drain not begun", extra={"error": repr(error)})

    async def _end_begun(self) -> None:
        begun, self._begun = self._begun, None
        if begun is not None:
            with contextlib.suppress(Exception):
                await begun[1].rollback()
            await self._pool.release(begun[0])

    async def _take_and_publish(self, conn: asyncpg.Connection) -> tuple[int, Snapshot | None]:
        taken = await conn.fetch(_TAKE, RELAY_LOCK_ID, self._batch_size)
        snapshot = next(
            (Snapshot.parse(row["snapshot"]) for row in taken if row["seq"] is None), None
        )
        rows = [row for row in taken if row["seq"] is not None]
        if not rows:
            return 0, snapshot
        rows.sort(key=lambda row: row["seq"])  # RETURNING keeps no order
        parked: list[ParkedEvent] = []
        sendable: list[asyncpg.Record] = []
        for row in rows:
            size = _record_size(row)
            if size > self._max_record_bytes:
                reason = f"the record has {size} bytes; at most {self._max_record_bytes}"
                parked.append(_parked(row, reason))
            else:
                sendable.append(row)
        parked += await self._publish(sendable)
        await park(conn, parked)
        _log.debug("relayed outbox rows", extra={"rows": len(rows), "parked": len(parked)})
        OUTBOX_PUBLISHED.inc(len(rows))
        return len(rows), snapshot

    def wake(self) -> None:
        """Drain now, whether or not a notification said rows were added."""
        self._woken = True
        self._wake.set()

    def transaction_ended(self, xid: int) -> None:
        """Transaction ``xid``, which added rows, is over: drain unless a drain saw it.

        The pool calls it (:func:`interlock.common.postgres.on_release`) when it takes
        back a connection that added rows in this process, before the ``NOTIFY`` of that
        commit comes round through another backend; a ``NOTIFY`` calls it too. The later
        of the two finds the transaction seen by the drain the first one started (its
        snapshot), or still waiting to be drained, and starts nothing more.
        """
        if self._seen is None or not self._seen.sees(xid):
            self._notified.add(xid)
            self._wake.set()

    def _notified_by(self, payload: str) -> None:
        """A ``NOTIFY`` on the outbox channel: :func:`enqueue` sends the transaction's id."""
        try:
            xid = int(payload)
        except ValueError:  # not from enqueue: drain to be sure
            self.wake()
            return
        self.transaction_ended(xid)

    def _more_to_drain(self, drained: int, snapshot: Snapshot | None) -> bool:
        """Whether a drain that just worked leaves work known to be waiting.

        Notified transactions its snapshot did not see committed call for another drain,
        as does a wake since it began. Without the lock (``snapshot`` is ``None``) the
        relay holding it was notified too and drains them.
        """
        if snapshot is None:
            self._notified.clear()
            return False
        self._seen = snapshot
        self._notified = {xid for xid in self._notified if not snapshot.sees(xid)}
        return drained >= self._batch_size or self._woken or bool(self._notified)

    async def measure_backlog(self) -> None:
        """Set the backlog gauges (rows, age of the oldest) from one bounded query."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(_MEASURE_BACKLOG)
        OUTBOX_BACKLOG_ROWS.set(row["rows"])
        OUTBOX_OLDEST_AGE.set(float(row["oldest_s"] or 0.0))

    async def _publish(self, rows: list[asyncpg.Record]) -> list[ParkedEvent]:
        """Publish ``rows`` as one batch; on a poison error, one by one: the unpublishable."""
        started = time.perf_counter()
        try:
            with publishing([_record(row) for row in rows]) as records:
                await self._publisher.publish_records(records)
            OUTBOX_PUBLISH_DURATION.observe(time.perf_counter() - started)
        except Exception as error:
            if not is_poison(error) or len(rows) == 0:
                raise
        else:
            return []
        parked = []
        for row in rows:
            try:
                await self._publisher.publish_records([_record(row)])
            except Exception as error:
                if not is_poison(error):
                    raise
                parked.append(_parked(row, describe(error)))
        return parked

    @property
    def failing(self) -> str | None:
        """Why drains fail right now and since when, or ``None`` when the last one worked."""
        if self._failing_since is None:
            return None
        since_s = time.monotonic() - self._failing_since
        return f"publishing fails since {since_s:.0f} s ({self._last_error!r})"

    async def run(self) -> None:
        """Drain, then wait for a notification or the poll interval; until stopped.

        Cancel the task or call :meth:`stop` to end it. Failures (the broker or the
        database gone) are logged and retried with backoff; they never end the loop.
        The ``LISTEN`` connection is a :class:`~interlock.common.postgres.NotificationListener`:
        it listens again after the database restarted and wakes a drain when it does.
        """
        self._stopping.clear()
        listener = NotificationListener(
            self._pool, [NOTIFY_CHANNEL], self.wake, on_payload=self._notified_by
        )
        listening = asyncio.create_task(listener.run(), name="outbox-listener")
        backoff = Backoff(
            initial_s=self._retry_backoff_ms / 1000, max_s=self._max_retry_backoff_ms / 1000
        )
        measured_at = 0.0
        _running_relays.add(self)
        try:
            while not self._stopping.is_set():
                measured_at = await self._measured(measured_at)
                self._woken = False  # a wake from here on may come after the take's snapshot
                try:
                    drained, snapshot = await self._drain()
                except Exception as error:
                    delay_s = backoff.next_delay()
                    self._last_error = error
                    if self._failing_since is None:
                        self._failing_since = time.monotonic()
                    _log.error(
                        "outbox relay failed; the rows stay and will be retried",
                        exc_info=backoff.failures == 1,
                        extra={
                            "failures": backoff.failures,
                            "retry_in_ms": round(delay_s * 1000),
                            "error": repr(error),
                        },
                    )
                    await self._sleep(delay_s, wake_on_notify=False)
                    continue
                if self._failing_since is not None:
                    _log.info("outbox relay publishes again", extra={"failures": backoff.failures})
                backoff.reset()
                self._failing_since = None
                if not self._more_to_drain(drained, snapshot):
                    self._wake.clear()
                    await self._begin_next_drain()
                    await self._sleep(self._poll_interval_s, wake_on_notify=True)
        finally:
            _running_relays.discard(self)
            await self._end_begun()
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening

    async def _measured(self, measured_at: float) -> float:
        """Measure the backlog when the last measure is older than a few seconds.

        Returns:
            When the backlog was last measured (``time.monotonic``).
        """
        now = time.monotonic()
        if now - measured_at < _MEASURE_EVERY_S:
            return measured_at
        try:
            await self.measure_backlog()
        except Exception as error:
            # Only the gauges go stale; the next drains retry the measure.
            _log.warning("outbox backlog not measured", extra={"error": repr(error)})
        return now

    async def stop(self) -> None:
        """Ask :meth:`run` to return after its current drain."""
        self._stopping.set()
        self._wake.set()

    async def _sleep(self, seconds: float, *, wake_on_notify: bool) -> None:
        waiters = [asyncio.ensure_future(self._stopping.wait())]
        if wake_on_notify:
            waiters.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


OUTBOX_MIGRATIONS = COMMON_MIGRATIONS
"""The migration set holding the outbox (and inbox) tables: include it in a service's
:class:`~interlock.common.postgres.PostgresDatabase` migrations. Same object as
:data:`interlock.common.postgres.COMMON_MIGRATIONS`."""


class OutboxRelayTask(Lifecycle):
    """Runs an :class:`OutboxRelay` in the background while open (a resource).

    Open it after the database and the broker it uses (resources open in order).

    Args:
        database: The service's database; its pool is read when this opens.
        publisher: A publisher started before this opens, e.g. a ``KafkaBroker``.
        name: Name ``/readyz`` reports. Default: ``"outbox-relay"``.
        **relay_options: Keyword arguments of :class:`OutboxRelay` (``batch_size``,
            ``poll_interval_ms``, ...).
    """

    def __init__(
        self,
        database: PostgresDatabase,
        publisher: RecordPublisher,
        *,
        name: str = "outbox-relay",
        **relay_options: int,
    ) -> None:
        self.name = name
        self._database = database
        self._publisher = publisher
        self._relay_options = relay_options
        self._relay: OutboxRelay | None = None
        self._task: SupervisedTask | None = None

    @property
    def relay(self) -> OutboxRelay:
        """The running relay.

        Raises:
            RuntimeError: When the task is not open.
        """
        if self._relay is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._relay

    async def start(self) -> None:
        """Start relaying in the background, restarted if it ever crashes."""
        relay = OutboxRelay(self._database.pool, self._publisher, **self._relay_options)
        self._relay = relay
        self._task = SupervisedTask(self.name, relay.run)
        await self._task.start()

    async def stop(self) -> None:
        """Stop the relay, letting a pass in progress finish."""
        relay, task = self._relay, self._task
        self._task = None
        if relay is not None:
            await relay.stop()
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(task.finished(), timeout=30)
            await task.stop()

    async def check(self) -> None:
        """Raise when the relay loop is not running or its drains fail.

        Raises:
            RuntimeError: The loop is not running (a crash is chained as the cause),
                or publishing has failed since the last successful drain.
        """
        if self._task is None:
            raise RuntimeError(f"{self.name} is not running")
        await self._task.check()
        failing = self.relay.failing
        if failing is not None:
            raise RuntimeError(failing)

    def check_alive(self) -> None:
        """Raise once the relay crashed beyond repair (see ``interlock.common.supervision``)."""
        if self._task is not None:
            self._task.check_alive()
