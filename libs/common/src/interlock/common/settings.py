"""Typed settings shared by every service, read from ``INTERLOCK_*`` variables.

A service declares one settings class that inherits :class:`ServiceSettings`
and the option groups it needs, and overrides the defaults that differ (its
port, its database). Defaults fit ``make up``; compose.yml changes URLs only.

Example::

    class SchedulerSettings(ServiceSettings, KafkaOptions, PostgresOptions):
        service_name: str = "scheduler"
        http_port: int = 8103
        postgres_dsn: str = "postgresql://scheduler@127.0.0.1:15432/scheduler"
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "INTERLOCK_"


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
    """Kafka producer and consumer options (INFRASTRUCTURE.md explains the values)."""

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
    """Prepended to every topic name, to keep environments (or tests) sharing a broker
    apart. Default: empty."""
    kafka_producer_batch_bytes: int = 524288
    """Largest record batch the producer builds per partition; larger batches mean fewer
    stored batches on the local broker. Default: 512 KiB."""


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
