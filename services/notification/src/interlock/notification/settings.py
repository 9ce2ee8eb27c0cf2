"""The notification service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from interlock.common.settings import KafkaOptions, PostgresOptions, ServiceSettings


class NotificationSettings(ServiceSettings, KafkaOptions, PostgresOptions):
    """Everything the notification service reads from its environment; defaults fit ``make up``."""

    service_name: str = "notification"
    """Default: ``"notification"``."""
    http_port: int = 8106
    """Default: 8106."""
    postgres_dsn: str = "postgresql://notification@127.0.0.1:15432/notification"
    """Default: the ``notification`` database of the ``make up`` server, as its own role."""
    smtp_host: str = "127.0.0.1"
    """SMTP server for email notifications. Default: the ``make up`` capture server."""
    smtp_port: int = 1025
    """Default: 1025."""
