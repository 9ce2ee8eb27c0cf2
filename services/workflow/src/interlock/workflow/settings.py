"""The workflow service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from interlock.common.settings import KafkaOptions, PostgresOptions, ServiceSettings


class WorkflowSettings(ServiceSettings, KafkaOptions, PostgresOptions):
    """Everything the workflow service reads from its environment; defaults fit ``make up``."""

    service_name: str = "workflow"
    """Default: ``"workflow"``."""
    http_port: int = 8102
    """Default: 8102."""
    postgres_dsn: str = "postgresql://workflow@127.0.0.1:15432/workflow"
    """Default: the ``workflow`` database of the ``make up`` server, as role ``workflow``."""
    reconcile_interval_s: float = 15.0
    """Time between passes of the reconciler re-publishing stalled run starts. Default: 15 s."""
    start_grace_s: float = 60.0
    """How long a run may stay pending (no task event yet) before its workflow.started is
    published again; doubles after each re-publish. Default: 60 s."""
    max_start_republishes: int = 5
    """How often one run's start is re-published at most. Default: 5."""
    projection_fetch_max_wait_ms: int = 25
    """Fetch wait of the run-view projection's consumer. Default: 25 ms: the view is not
    on a run's critical path, and longer waits fill larger batches (one transaction each)
    and poll the broker less; it lags the scheduler by about half of it more."""
