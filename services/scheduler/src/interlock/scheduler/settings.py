"""The scheduler service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr

from interlock.common.settings import KafkaOptions, PostgresOptions, ServiceSettings


class SchedulerSettings(ServiceSettings, KafkaOptions, PostgresOptions):
    """Everything the scheduler service reads from its environment; defaults fit ``make up``."""

    service_name: str = "scheduler"
    """Default: ``"scheduler"``."""
    http_port: int = 8103
    """Default: 8103."""
    postgres_dsn: str = "postgresql://scheduler@127.0.0.1:15432/scheduler"
    """Default: the ``scheduler`` database of the ``make up`` server, as role ``scheduler``."""
    kafka_linger_ms: int = 0
    """The outbox relay already publishes whole batches; a linger would only add
    latency to every task.scheduled. Default: 0 ms."""
    grpc_host: str = Field(default_factory=lambda data: data["http_host"])
    """Address the task-state gRPC server binds. Default: :attr:`http_host`'s (loopback
    under ``make up``; all interfaces in the container image, which sets
    ``INTERLOCK_HTTP_HOST``)."""
    grpc_port: int = 9103
    """Port of the task-state gRPC server. Default: 9103."""
    service_credentials: SecretStr | None = None
    """Credentials another service may present instead of a user's identity token to ask
    about a run of the tenant its request names (the metadata and workflow services'
    reconcilers, ``GetRun`` and ``ListRunTasks``; :mod:`interlock.common.service_credentials`),
    comma-separated to rotate or to accept several services.
    Default: unset (only identity tokens)."""
    consumer_group: str = "scheduler"
    """Kafka consumer group of the scheduler instances. Default: ``"scheduler"``."""
    timer_batch_size: int = 500
    """Most timers one pass of the timer loop fires. Default: 500."""
    timer_max_sleep_ms: int = 500
    """Longest sleep of the timer loop (bounds lateness of other instances' timers).
    Default: 500 ms."""
    reconcile_after_s: float = 30.0
    """A task waiting in ``scheduled`` this long is re-published once tasks dispatched
    this much later than it were already picked up by workers (it is lost, not queued),
    or when no worker took or ran anything for this long. Default: 30 s."""
    unserved_after_s: float = Field(default=10.0, gt=0)
    """Tasks wait on a queue no worker serves when, while they wait, no worker took or
    ran any task of the queue for this long: the run view then gives each such task
    the reason, until it starts. Checked every :attr:`reconcile_interval_s`.
    Default: 10 s."""
    lost_attempt_after_s: float = 60.0
    """A running attempt of a task without a heartbeat timeout that sends nothing for
    this long (workers heartbeat running tasks every second) is dispatched again as
    the same attempt, same idempotency key, outside its retry budget. 0: never.
    Default: 60 s."""
    default_start_to_close_s: float = 86_400.0
    """Start-to-close timeout of tasks that set none (the attempt fails, retryable
    within its budget). 0: none. Default: 1 day."""
    reconcile_interval_s: float = 5.0
    """How often the reconciler looks for stuck tasks. Default: 5 s."""
    topics_check_interval_s: float = 30.0
    """How often the reconciler re-creates missing topics (a broker that lost its data).
    Default: 30 s."""
    inbox_retention_s: float = 7 * 24 * 3600
    """Consumed event ids older than this are forgotten (redeliveries come much sooner).
    Default: 7 days."""
    parked_control_retention_s: float = 24 * 3600
    """A control that overtook its run's start waits at most this long for the start;
    then the reconciler drops it. Longer than the workflow service's re-publishing of a
    lost start (about 31 min with its defaults). Default: 1 day."""
    tenant_max_concurrent_runs: int = Field(default=0, ge=0)
    """Most runs of one tenant running (or paused) at once; runs over it wait, pending,
    and start in the order they were requested as others end. 0: no limit. Default: 0."""
    admission_interval_s: float = Field(default=1.0, gt=0)
    """Longest time between two passes that start runs waiting for a concurrency slot
    (a pass also follows every change that may free one in this instance). Default: 1 s."""
