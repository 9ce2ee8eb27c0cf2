"""Typed settings shared by every service, read from ``INTERLOCK_*`` variables.

A service declares one settings class that inherits :class:`ServiceSettings`
and the option groups it needs, and overrides the defaults that differ (its
port, its database). Defaults fit ``make up``; compose.yml changes URLs only.

Example::

    class SchedulerSettings(ServiceSettings, KafkaOptions, PostgresOptions):
        service_name: str = "scheduler"
        http_port: int = 8103
        postgres_dsn: str = "postgresql://scheduler@127.0.0.1:15432/scheduler"

A process refuses to start while its environment holds an ``INTERLOCK_*`` variable its
settings class does not read (:func:`check_environment`): a misspelt or misplaced
variable would otherwise be dropped without a word.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "INTERLOCK_"

NON_SERVICE_PREFIXES = ("INTERLOCK_DEV_",)
"""Variables of the development stack's own CLI (``make up``: ``INTERLOCK_DEV_DATA_DIR``,
``INTERLOCK_DEV_PORT_OFFSET``, ...). Every process the stack starts inherits them, so
services let them pass; no service setting may start with these prefixes."""

CLIENT_VARIABLES = frozenset({"INTERLOCK_GATEWAY", "INTERLOCK_API_KEY"})
"""Variables of the ``interlock`` command line (clients/cli), which a shell that starts
services may export too: services let them pass; no service setting may be named so."""


class ServiceSettings(BaseSettings):
    """What every service process needs: identity, HTTP listener, logs, traces."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    service_name: str = "interlock"
    """Name in logs, metrics, traces and event sources. Default: ``"interlock"``."""
    http_host: str = "127.0.0.1"
    """Address the REST/health listener binds. Default: loopback (the gateway is the door)."""
    http_port: int = 8100
    """Port of the REST/health listener. Each service overrides it."""
    log_level: str = "INFO"
    """Root log level. Default: ``"INFO"``."""
    log_format: Literal["json", "text"] = "json"
    """``json`` (one object per line, the default) or ``text`` for a terminal."""
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "INTERLOCK_OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
    )
    """OTLP/HTTP collector URL; traces are exported only when set. Default: unset."""
    trace_sample_ratio: float = Field(default=0.1, ge=0.0, le=1.0)
    """Share of new traces recorded (parent-based: a span with a parent follows its
    parent's decision, so a run is traced whole or not at all). Default: 0.1, one run
    in ten: tracing every run costs a large share of the fan-out throughput
    (docs/architecture.md, "Tracing and logs"); 1.0 while chasing one problem."""
    readiness_timeout_s: float = 2.0
    """Time each dependency check of ``/readyz`` may take. Default: 2 s."""
    jwt_issuer: str = "interlock"
    """``iss`` of the tokens IAM signs (and ``aud`` of its access tokens). Default:
    ``"interlock"``."""
    iam_jwks_url: str = "http://127.0.0.1:8101/.well-known/jwks.json"
    """IAM's public keys, which verify the identity token on every request
    (:mod:`interlock.common.identity`). Default: the ``make up`` IAM."""
    identity_jwks: str | None = None
    """A JWKS document trusted instead of fetching ``iam_jwks_url`` (tests, or keys an
    operator pins). Default: unset."""


class KafkaOptions(BaseSettings):
    """Kafka producer and consumer options (docs/local-servers.md explains the values)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    """Comma-separated ``host:port`` list. Default: the ``make up`` broker."""
    kafka_partitions: int = 3
    """Partitions of every topic created at start-up. Default: 3 (few, for the local broker)."""
    kafka_replication_factor: int = 1
    """Replication factor of created topics. Default: 1."""
    kafka_linger_ms: int = 0
    """How long the producer waits to fill a batch. Default: 0 ms: the producer sends one
    request per broker at a time, so records batch up on their own while a request is in
    flight, and a linger would only delay every lone event."""
    kafka_fetch_max_wait_ms: int = 2
    """Longest broker wait for a fetch; 0 hangs the local broker, which waits out most of
    it even when records are there (so it is paid on every hop). Default: 2 ms (5 ms made
    a lone 3-task run ~3.5 ms slower for ~3% less CPU per run under load)."""
    kafka_session_timeout_ms: int = 6000
    """Consumer group session timeout. Default: 6000 ms."""
    kafka_heartbeat_interval_ms: int = 1000
    """Consumer group heartbeat interval. Default: 1000 ms."""
    kafka_max_batch_size: int = 500
    """Most records one consumer batch holds. Default: 500."""
    kafka_request_timeout_ms: int = 10000
    """Producer request timeout. Default: 10000 ms."""
    kafka_topic_prefix: str = ""
    """Prepended to every topic name and consumer group id, to keep environments (or
    tests) sharing a broker apart. Default: empty."""
    kafka_producer_batch_bytes: int = 524288
    """Largest record batch the producer builds per partition; larger batches mean fewer
    stored batches on the local broker. Default: 512 KiB."""
    kafka_metadata_max_age_ms: int = 300_000
    """How often consumers refresh topic metadata when nothing failed (aiokafka's
    default). A topic created again after the broker lost everything is only read, and
    all its partitions assigned, once a consumer sees it. Default: 300000 ms (the
    worker's task consumer: 10000 ms)."""
    kafka_queue_partitions: dict[str, int] = Field(default_factory=dict)
    """Partitions of a task queue's topics (one per priority band, created when the
    queue is first used), by queue name (``""``: the default queue); queues not listed
    get :attr:`kafka_partitions`. Default: none listed."""


class PostgresOptions(BaseSettings):
    """PostgreSQL connection pool options."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    postgres_dsn: str = "postgresql://interlock@127.0.0.1:15432/interlock"
    """libpq URL of the service's own database, without the password. Each service
    overrides the database name."""
    postgres_password: SecretStr | None = None
    """Password for the DSN's user, kept apart so it never appears in logs. Default: none."""
    postgres_pool_min_size: int = 1
    """Connections kept open. Default: 1."""
    postgres_pool_max_size: int = 10
    """Most connections open at once. Default: 10."""


class MongoOptions(BaseSettings):
    """MongoDB client options."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    mongo_url: str = "mongodb://127.0.0.1:17017/?directConnection=true"
    """MongoDB connection string. Default: the ``make up`` server."""
    mongo_database: str = "interlock"
    """Database name. Default: ``"interlock"``."""
    mongo_server_selection_timeout_ms: int = 5000
    """How long an operation waits to find a usable server. Default: 5000 ms."""


class UnknownVariablesError(ValueError):
    """The environment holds ``INTERLOCK_*`` variables the settings class does not read."""


def known_variables(settings_class: type[BaseSettings]) -> frozenset[str]:
    """Every environment variable ``settings_class`` reads, in upper case.

    A field is read from its validation aliases when it has some, else from the prefix
    and its name. With ``env_nested_delimiter`` set, a nested model's fields are read
    from ``<PREFIX><FIELD><DELIMITER>...`` too: see :func:`unknown_variables`.
    """
    prefix = settings_class.model_config.get("env_prefix", "")
    names: set[str] = set()
    for name, field in settings_class.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(prefix + name)
    return frozenset(name.upper() for name in names)


def _nested_prefixes(settings_class: type[BaseSettings]) -> tuple[str, ...]:
    delimiter = settings_class.model_config.get("env_nested_delimiter")
    if not delimiter:
        return ()
    prefix = settings_class.model_config.get("env_prefix", "")
    return tuple(
        f"{prefix}{name}{delimiter}".upper()
        for name, field in settings_class.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    )


def unknown_variables(
    settings_class: type[BaseSettings], environ: Mapping[str, str] = os.environ
) -> list[str]:
    """``INTERLOCK_*`` variables of ``environ`` that ``settings_class`` does not read.

    Names compare case-insensitively, as pydantic-settings reads them; the development
    stack's variables (:data:`NON_SERVICE_PREFIXES`) and the command line's
    (:data:`CLIENT_VARIABLES`) are not reported.
    """
    known = known_variables(settings_class)
    nested = _nested_prefixes(settings_class)
    unknown = []
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(NON_SERVICE_PREFIXES):
            continue
        if upper in CLIENT_VARIABLES:
            continue
        if upper in known or (nested and upper.startswith(nested)):
            continue
        unknown.append(name)
    return sorted(unknown)


def check_environment(
    settings_class: type[BaseSettings], environ: Mapping[str, str] = os.environ
) -> None:
    """Refuse an environment with ``INTERLOCK_*`` variables ``settings_class`` does not read.

    Raises:
        UnknownVariablesError: Naming each unknown variable and, when one is close, the
            known name it was probably meant to be.
    """
    unknown = unknown_variables(settings_class, environ)
    if not unknown:
        return
    # Compared without the shared prefix, which would make every name look alike.
    known = {
        name.removeprefix(ENV_PREFIX): name
        for name in known_variables(settings_class)
        if name.startswith(ENV_PREFIX)
    }
    lines = []
    for name in unknown:
        close = difflib.get_close_matches(
            name.upper().removeprefix(ENV_PREFIX), sorted(known), n=1, cutoff=0.75
        )
        hint = f" (did you mean {known[close[0]]}?)" if close else ""
        lines.append(f"  {name}{hint}")
    raise UnknownVariablesError(
        f"{settings_class.__name__} does not read these variables:\n"
        + "\n".join(lines)
        + f"\nRemove or rename them: {settings_class.__module__} lists every one it reads."
    )
