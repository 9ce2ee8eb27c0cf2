"""The worker service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from interlock.common.settings import KafkaOptions, ServiceSettings


class WorkerSettings(ServiceSettings, KafkaOptions):
    """Everything the worker service reads from its environment; defaults fit ``make up``."""

    service_name: str = "worker"
    """Default: ``"worker"``."""
    http_port: int = 8104
    """Default: 8104."""
