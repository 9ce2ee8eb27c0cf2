"""The scheduler service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from interlock.common.settings import KafkaOptions, PostgresOptions, ServiceSettings


class SchedulerSettings(ServiceSettings, KafkaOptions, PostgresOptions):
    """Everything the scheduler service reads from its environment; defaults fit ``make up``."""

    service_name: str = "scheduler"
    """Default: ``"scheduler"``."""
    http_port: int = 8103
    """Default: 8103."""
    postgres_dsn: str = "postgresql://interlock@127.0.0.1:15432/scheduler"
    """Default: the ``scheduler`` database of the ``make up`` server."""
