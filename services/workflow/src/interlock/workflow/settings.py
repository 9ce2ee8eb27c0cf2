"""The workflow service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr

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
    view_fetch_max_wait_ms: int = Field(default=25, ge=0)
    """Fetch wait of the run view's consumer (run-level events). Default: 25 ms: the
    run's status is not on its critical path, and longer waits fill larger batches (one
    transaction each) and poll the broker less; it lags the scheduler by about half of
    it more."""
    scheduler_grpc_target: str = "127.0.0.1:9103"
    """The scheduler's task-state gRPC server: a run read asks it for the run's tasks, and
    the view reconciler about runs whose status may lack events the broker lost.
    Default: the ``make up`` address."""
    service_credential: SecretStr | None = None
    """What this service presents to the scheduler (``interlock.common.service_credentials``;
    the scheduler lists it in its ``INTERLOCK_SERVICE_CREDENTIALS``). Without it the
    routes that show a run's tasks answer 503 and the view reconciler does not run.
    Default: none."""
    view_reconcile_interval_s: float = Field(default=30.0, gt=0)
    """Time between passes of the view reconciler. Default: 30 s."""
    view_quiet_after_s: float = Field(default=30.0, gt=0)
    """A run unfinished with no change for this long (checked again at most this often)
    has its status checked against the scheduler. Default: 30 s: with the 30 s interval a
    lost run event shows within about a minute, while a run that is merely busy costs the
    scheduler two indexed reads per 30 s and a pass asks about
    ``view_reconcile_batch_size`` runs at most."""
    view_reconcile_batch_size: int = Field(default=200, ge=1, le=10_000)
    """Most runs one pass asks about: bounds the load a pass puts on the scheduler after
    a broker loss. Default: 200."""
