"""The iam service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from interlock.common.settings import KafkaOptions, PostgresOptions, ServiceSettings


class IamSettings(ServiceSettings, KafkaOptions, PostgresOptions):
    """Everything the iam service reads from its environment; defaults fit ``make up``."""

    service_name: str = "iam"
    """Default: ``"iam"``."""
    http_port: int = 8101
    """Default: 8101."""
    postgres_dsn: str = "postgresql://interlock@127.0.0.1:15432/iam"
    """Default: the ``iam`` database of the ``make up`` server."""
