"""The metadata service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from interlock.common.settings import KafkaOptions, MongoOptions, ServiceSettings
from interlock.metadata.logs.options import LogsOptions


class MetadataSettings(ServiceSettings, KafkaOptions, MongoOptions, LogsOptions):
    """Everything the metadata service reads from its environment; defaults fit ``make up``."""

    service_name: str = "metadata"
    """Default: ``"metadata"``."""
    http_port: int = 8105
    """Default: 8105."""
    mongo_database: str = "interlock_metadata"
    """Default: ``"interlock_metadata"``."""
