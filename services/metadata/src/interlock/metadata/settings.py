"""The metadata service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr

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
    execution_retention_days: int = Field(default=90, ge=1, le=36_500)
    """How long a finished run's execution document is kept. Default: 90 days."""
    projection_fetch_max_wait_ms: int = Field(default=250, ge=0)
    """The execution projection's broker fetch wait: it is off every run's critical
    path, so it may batch more and poll less. A run's events spread over fewer batches
    cost fewer rewrites of its document: in a micro-benchmark of the fan-out (1 → 10
    → 1 tasks) 25 ms batches wrote each document 9.2 times, 100 ms ones 3.2 times,
    250 ms ones 1.9 times, 500 ms ones 1.4 times, at about 2 ms of the MongoDB
    server's CPU per write. A run's document appears up to this much later; a log
    stream waits for a run it does not know yet (``logs_stream_unknown_run_wait_ms``),
    so following a run's logs right after starting it works. Default: 250 ms."""
    projection_max_batch_size: int = Field(default=5000, ge=1)
    """Most events the execution projection folds in one bulk write. A run's events
    that share a batch cost one document write, so under load a larger batch means
    fewer, larger writes (``kafka_max_batch_size`` bounds the other consumers).
    Default: 5000."""
    scheduler_grpc_target: str = "127.0.0.1:9103"
    """The scheduler's task-state gRPC server, asked about runs that went quiet.
    Default: the ``make up`` address."""
    service_credential: SecretStr | None = None
    """What this service presents to the scheduler (``interlock.common.service_credentials``).
    Without it the reconciler does not run. Default: none."""
    reconcile_interval_s: float = Field(default=30.0, gt=0)
    """Time between the reconciler's passes. Default: 30 s."""
    reconcile_quiet_after_s: float = Field(default=30.0, gt=0)
    """A document without any event for this long, of a run unfinished or finished with
    a task still scheduled or running, is checked against the scheduler (events may
    have been lost with the broker); a document is checked again at most this often.
    Default: 30 s: with the 30 s interval, a lost event shows within about a minute,
    while a run that is merely busy (a long task) costs the scheduler two indexed
    reads per 30 s, and a pass asks about ``reconcile_batch_size`` runs at most."""
    reconcile_batch_size: int = Field(default=200, ge=1, le=10_000)
    """Most runs one reconciler pass asks the scheduler about (two calls each): bounds
    the load a pass puts on the scheduler after a broker loss. Default: 200."""
