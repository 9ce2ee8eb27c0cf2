"""The workflow service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from interlock.common.settings import KafkaOptions, PostgresOptions, ServiceSettings


class WorkflowSettings(ServiceSettings, KafkaOptions, PostgresOptions):
    """Everything the workflow service reads from its environment; defaults fit ``make up``."""

    service_name: str = "workflow"
    """Default: ``"workflow"``."""
    http_port: int = 8102
    """Default: 8102."""
    postgres_dsn: str = "postgresql://interlock@127.0.0.1:15432/workflow"
    """Default: the ``workflow`` database of the ``make up`` server."""
