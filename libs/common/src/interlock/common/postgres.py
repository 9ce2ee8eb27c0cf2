"""PostgreSQL: connection pools, numbered SQL migrations, readiness.

Every service owns its database and its schema, written as numbered SQL files
(``0001_create_runs.sql``, ``0002_...``) in a package of its own so they ship in the
wheel. At start-up it applies them together with the shared library's tables::

    pool = await create_pool(settings, application_name="scheduler")
    await apply_migrations(pool, [
        COMMON_MIGRATIONS,
        MigrationSource(component="scheduler", location="interlock.scheduler.migrations"),
    ])

Migrations are recorded in ``interlock_migrations`` (component, version, name,
checksum, applied_at). Each runs in its own transaction; replicas starting together
take turns on an advisory lock, so each migration runs once. A recorded migration
whose file changed afterwards stops the start-up (:class:`MigrationError`): add a new
migration instead of editing an applied one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from interlock.common.errors import MigrationError
from interlock.common.resources import Lifecycle
from interlock.common.settings import PostgresOptions
from interlock.common.supervision import Backoff

__all__ = [
    "COMMON_MIGRATIONS",
    "HISTORY_TABLE",
    "Migration",
    "MigrationSource",
    "NotificationListener",
    "PostgresDatabase",
    "ReleaseHook",
    "apply_migrations",
    "check_postgres",
    "create_pool",
    "on_release",
]

_log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 10.0
"""How long closing a pool waits for its connections to come back before terminating
them."""

HISTORY_TABLE = "interlock_migrations"
"""Table recording applied migrations."""

_MIGRATION_LOCK = 0x696E_746C_6D69_6772  # "intlmigr": serializes apply_migrations
_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


def _redact(dsn: str) -> str:
    """Return ``dsn`` without any password, fit for logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


async def create_pool(
    options: PostgresOptions,
    *,
    application_name: str | None = None,
    init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """Open an ``asyncpg.Pool`` to ``options.postgres_dsn``.

    The password comes from ``options.postgres_password`` and is never logged.

    Args:
        options: DSN, password and pool sizes.
        application_name: Shown in ``pg_stat_activity``. Default: unset.
        init: Called with every new connection (e.g. to register type codecs).
            Default: none.

    Returns:
        The pool; close it with ``await pool.close()``.

    Raises:
        OSError: When the server cannot be reached.
        asyncpg.PostgresError: When the server refuses the connection.
    """
    password = (
        options.postgres_password.get_secret_value()
        if options.postgres_password is not None
        else None
    )
    server_settings = {"application_name": application_name} if application_name else None
    pool = await asyncpg.create_pool(
        dsn=options.postgres_dsn,
        password=password,
        min_size=options.postgres_pool_min_size,
        max_size=options.postgres_pool_max_size,
        server_settings=server_settings,
        init=init,
        reset=_keep_session,
    )
    _log.info(
        "PostgreSQL pool open",
        extra={"dsn": _redact(options.postgres_dsn), "max_size": options.postgres_pool_max_size},
    )
    return pool


ReleaseHook = Callable[[asyncpg.Connection], None]
"""Called with a connection a pool took back; it must not raise or block."""

_release_hooks: list[ReleaseHook] = []


def on_release(hook: ReleaseHook) -> None:
    """Call ``hook`` with every connection a pool of :func:`create_pool` takes back.

    The connection's transaction has ended by then (committed, or rolled back by
    asyncpg when it was left open). The outbox uses this to wake its relay as soon as
    the transaction that added rows is over, without waiting for the ``NOTIFY``.
    """
    _release_hooks.append(hook)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query (``RESET ALL``, ``UNLISTEN *``, ...) on every release.

    That query is a round trip per checkout on the hottest paths. Interlock's code leaves
    no session state behind: locks are transaction-scoped or released in ``finally``,
    listeners are removed before release, and no code changes session settings. asyncpg
    still rolls back a transaction left open before calling this. The hooks of
    :func:`on_release` run here.
    """
    for hook in _release_hooks:
        hook(conn)


async def check_postgres(pool: asyncpg.Pool, *, timeout_s: float = 2.0) -> None:
    """Raise unless a pooled connection answers ``SELECT 1`` within ``timeout_s``.

    Args:
        pool: An ``asyncpg.Pool``.
        timeout_s: Bound on acquiring the connection and the query. Default: 2 s.

    Raises:
        TimeoutError: When the pool or the server does not answer in time.
        OSError: When the server cannot be reached.
        asyncpg.PostgresError: When the query fails.
    """
    async with asyncio.timeout(timeout_s), pool.acquire() as conn:
        await conn.fetchval("SELECT 1")


class NotificationListener:
    """``LISTEN`` on channels with one pooled connection, listening again when it is lost.

    :meth:`run` takes a connection, listens, and calls ``on_notify`` once at once:
    notifications sent while nobody listened (before, or during a server restart) are
    lost, so the owner should look for work whenever it is called. When the connection
    ends (the server restarted, a network cut), it is given back to the pool and the
    listener takes another after a backoff, until cancelled.

    Args:
        pool: The service's pool (one connection stays checked out while listening).
        channels: Channels to listen on.
        on_notify: Called (on the event loop) for every notification and after every
            (re)connection.
        on_payload: Called instead of ``on_notify`` for every notification, with its
            payload (``on_notify`` still follows every connection). Default: none.
        backoff: Waits between attempts to listen. Default: 0.2 s doubling up to 5 s.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: Sequence[str],
        on_notify: Callable[[], None],
        *,
        on_payload: Callable[[str], None] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._pool = pool
        self._channels = tuple(channels)
        self._on_notify = on_notify
        self._on_payload = on_payload
        self._backoff = backoff or Backoff(initial_s=0.2, max_s=5.0)
        self.listening = False
        """Whether a connection listens right now."""

    async def run(self) -> None:
        """Listen until cancelled; reconnecting never ends the loop."""
        while True:
            try:
                await self._listen_until_lost()
            except Exception as error:  # any failure to listen: back off, listen again
                _log.warning(
                    "cannot listen for notifications; retrying",
                    extra={"channels": self._channels, "error": repr(error)},
                )
            await self._backoff.wait()

    async def _listen_until_lost(self) -> None:
        conn = await self._pool.acquire()
        lost = asyncio.Event()

        def terminated(_: object) -> None:
            lost.set()

        try:
            conn.add_termination_listener(terminated)
            for channel in self._channels:
                await conn.add_listener(channel, self._notified)
            self.listening = True
            self._backoff.reset()
            self._on_notify()
            await lost.wait()
            _log.warning(
                "listening connection lost; listening again", extra={"channels": self._channels}
            )
        finally:
            self.listening = False
            await self._release(conn, terminated)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if self._on_payload is not None:
            self._on_payload(payload)
        else:
            self._on_notify()

    async def _release(
        self, conn: asyncpg.Connection, terminated: Callable[[object], None]
    ) -> None:
        # A lost connection was already handed back by the pool; these calls then fail.
        with contextlib.suppress(Exception):
            conn.remove_termination_listener(terminated)
            for channel in self._channels:
                await conn.remove_listener(channel, self._notified)
        with contextlib.suppress(Exception):
            await self._pool.release(conn)


@dataclass(frozen=True, kw_only=True)
class Migration:
    """One numbered SQL file.

    Attributes:
        component: The migration set it belongs to.
        version: The number in its file name (``0003_...`` is 3).
        name: The description in its file name.
        sql: Its statements.
        checksum: SHA-256 of the statements (line endings normalized).
    """

    component: str
    version: int
    name: str
    sql: str
    checksum: str


@dataclass(frozen=True, kw_only=True)
class MigrationSource:
    """A component's migrations: a package (or folder) of ``NNNN_description.sql`` files.

    Attributes:
        component: Name recorded in the history, e.g. ``"scheduler"``. Versions are
            numbered per component.
        location: An importable package name (read with :mod:`importlib.resources`,
            so the files ship in the wheel), or a folder (a ``pathlib.Path`` or any
            ``Traversable``).
    """

    component: str
    location: str | Traversable

    def migrations(self) -> list[Migration]:
        """Read the migrations, ordered by version.

        Files not ending in ``.sql`` are ignored.

        Returns:
            The migrations.

        Raises:
            MigrationError: A ``.sql`` file is not named ``NNNN_description.sql``
                (four digits, lower-case description) or a version repeats.
        """
        root = resources.files(self.location) if isinstance(self.location, str) else self.location
        found: dict[int, Migration] = {}
        for entry in root.iterdir():
            if not entry.name.endswith(".sql") or not entry.is_file():
                continue
            match = _FILE_NAME.match(entry.name)
            if match is None:
                raise MigrationError(
                    f"{self.component}: {entry.name!r} is not named NNNN_description.sql"
                )
            version = int(match["version"])
            if version in found:
                raise MigrationError(f"{self.component}: version {version} repeats")
            sql = entry.read_text(encoding="utf-8").replace("\r\n", "\n")
            found[version] = Migration(
                component=self.component,
                version=version,
                name=match["name"],
                sql=sql,
                checksum=hashlib.sha256(sql.encode()).hexdigest(),
            )
        return [found[version] for version in sorted(found)]


COMMON_MIGRATIONS = MigrationSource(
    component="interlock.common", location="interlock.common.migrations"
)
"""The shared library's tables (outbox, inbox); every service using them includes it."""

_CREATE_HISTORY = f"""
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
    component  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


async def apply_migrations(
    pool: asyncpg.Pool, sources: Sequence[MigrationSource]
) -> list[Migration]:
    """Apply the migrations of ``sources`` not applied yet, in order.

    Sources are applied in the order given, each one's files by version. Each
    migration and its history row commit together. Concurrent callers on the same
    database wait for each other (advisory lock), so a migration runs exactly once.

    Args:
        pool: An ``asyncpg.Pool`` (one connection is used).
        sources: The migration sets, e.g. ``[COMMON_MIGRATIONS, own]``.

    Returns:
        The migrations applied by this call (empty when all were applied before).

    Raises:
        MigrationError: A source is invalid, or an applied migration's file changed.
        asyncpg.PostgresError: A migration failed; it was rolled back, the ones
            before it stay applied.
    """
    planned = [(source, source.migrations()) for source in sources]
    applied_now: list[Migration] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(_CREATE_HISTORY)
            for source, migrations in planned:
                rows = await conn.fetch(
                    f"SELECT version, checksum FROM {HISTORY_TABLE} WHERE component = $1",  # noqa: S608 - constant table name
                    source.component,
                )
                recorded = {row["version"]: row["checksum"] for row in rows}
                for migration in migrations:
                    checksum = recorded.get(migration.version)
                    if checksum is None:
                        await _apply(conn, migration)
                        applied_now.append(migration)
                    elif checksum != migration.checksum:
                        raise MigrationError(
                            f"{migration.component} {migration.version:04d}_{migration.name} "
                            "changed after it was applied; add a new migration instead"
                        )
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied_now


async def _apply(conn: asyncpg.Connection, migration: Migration) -> None:
    async with conn.transaction():
        # Without arguments asyncpg uses the simple protocol: several statements work.
        await conn.execute(migration.sql)
        await conn.execute(
            f"INSERT INTO {HISTORY_TABLE} (component, version, name, checksum)"  # noqa: S608 - constant table name
            " VALUES ($1, $2, $3, $4)",
            migration.component,
            migration.version,
            migration.name,
            migration.checksum,
        )
    _log.info(
        "applied migration",
        extra={
            "component": migration.component,
            "version": migration.version,
            "migration": migration.name,
        },
    )


class PostgresDatabase(Lifecycle):
    """A service's database as a resource: a pool, opened and migrated at start-up.

    Fits :class:`interlock.common.resources.Resource`: ``async with`` opens the pool
    and applies ``migrations`` (in order), :meth:`check` probes it for ``/readyz``.

    Example::

        database = PostgresDatabase(settings, migrations=[COMMON_MIGRATIONS, own])
        async with database:
            async with database.pool.acquire() as conn: ...

    Args:
        options: DSN, password and pool sizes.
        migrations: Migration sets to apply when opened. Default: none.
        application_name: Shown in ``pg_stat_activity``. Default: the options'
            ``service_name`` when they have one.
        name: Name ``/readyz`` reports. Default: ``"postgres"``.
    """

    def __init__(
        self,
        options: PostgresOptions,
        *,
        migrations: Sequence[MigrationSource] = (),
        application_name: str | None = None,
        name: str = "postgres",
    ) -> None:
        self.name = name
        self._options = options
        self._migrations = tuple(migrations)
        self._application_name = application_name or getattr(options, "service_name", None)
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The open pool.

        Raises:
            RuntimeError: When the database is not open.
        """
        if self._pool is None:
            raise RuntimeError(f"{self.name} is not open")
        return self._pool

    async def start(self) -> None:
        """Open the pool and apply the migrations."""
        pool = await create_pool(self._options, application_name=self._application_name)
        try:
            if self._migrations:
                await apply_migrations(pool, self._migrations)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def stop(self) -> None:
        """Close the pool. Safe to call more than once.

        A clean close waits for every connection to come back; one that never does
        (a task cancelled while it released its connection) would hold shut-down for
        ever, so after :data:`CLOSE_TIMEOUT_S` the pool's connections are terminated.
        """
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout=CLOSE_TIMEOUT_S)
        except TimeoutError:
            _log.warning("the pool did not close in time; terminating its connections")
            pool.terminate()

    async def check(self) -> None:
        """Raise unless the database answers (see :func:`check_postgres`)."""
        await check_postgres(self.pool)
