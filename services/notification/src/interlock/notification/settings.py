"""The notification service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from interlock.common.addresses import parse_networks
from interlock.common.durations import parse_duration_ms
from interlock.common.settings import KafkaOptions, PostgresOptions, ServiceSettings

DEFAULT_RETRY_SCHEDULE = ("0s", "5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h")
"""The Standard Webhooks specification's example schedule: the delay before each attempt."""


class NotificationSettings(ServiceSettings, KafkaOptions, PostgresOptions):
    """Everything the notification service reads from its environment; defaults fit ``make up``."""

    service_name: str = "notification"
    """Default: ``"notification"``."""
    http_port: int = 8106
    """Default: 8106."""
    postgres_dsn: str = "postgresql://notification@127.0.0.1:15432/notification"
    """Default: the ``notification`` database of the ``make up`` server, as its own role."""

    public_url: str = "http://127.0.0.1:8080"
    """The gateway's address as users reach it: the links in notifications point there.
    Default: the ``make up`` gateway."""
    retry_schedule: list[str] = Field(default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE))
    """Delay before each attempt of a delivery, the first one included (so its length is
    the most attempts); each delay gets up to ``retry_jitter`` of itself added or taken
    away. Default: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h."""
    retry_jitter: float = Field(default=0.2, ge=0.0, le=1.0)
    """Largest fraction of a retry delay added or taken away at random. Default: 0.2."""
    max_retry_after_s: float = Field(default=86_400.0, ge=0.0)
    """Longest wait a receiver's ``Retry-After`` can ask for. Default: 24 h."""
    max_consecutive_failures: int = Field(default=100, ge=1)
    """Failed attempts in a row after which a subscription is disabled. Default: 100."""
    delivery_lease_s: float = Field(default=60.0, gt=0.0)
    """How long a claimed delivery stays with the instance that claimed it: if that
    instance dies mid-attempt, another takes the delivery over after this. Longer than
    any attempt can take. Default: 60 s."""
    delivery_batch_size: int = Field(default=100, ge=1)
    """Most deliveries one pass of the delivery loop claims. Default: 100."""
    delivery_concurrency: int = Field(default=100, ge=1)
    """Most attempts in flight at once per instance. Default: 100."""
    delivery_concurrency_per_subscription: int = Field(default=25, ge=1)
    """Most attempts in flight at once for one subscription, per instance: a slow
    receiver holds no more slots than this, and other subscriptions' deliveries (other
    tenants') go past its backlog. It also bounds one subscription's rate (this many
    over a receiver's answer time). Default: 25."""
    delivery_poll_interval_s: float = Field(default=0.5, gt=0.0)
    """Wait between passes of the delivery loop when nothing was due (new deliveries,
    written by any instance, wake it at once through LISTEN/NOTIFY). Default: 0.5 s."""
    consumer_fetch_max_wait_ms: int = Field(default=100, gt=0)
    """Fetch wait of the event consumer. A run's end is notified off its critical
    path (delivery goal: p99 within 1 s), so the consumer may poll the broker less:
    its fetches at 5 ms cost the idle broker ~7% of a core, at 100 ms ~1.5%.
    Default: 100 ms."""

    scheduler_grpc_target: str = "127.0.0.1:9103"
    """The scheduler's task-state gRPC server, asked about runs whose end event the
    broker may have lost. Default: the ``make up`` address."""
    service_credential: SecretStr | None = None
    """What this service presents to the scheduler (``interlock.common.service_credentials``;
    the scheduler lists it in its ``INTERLOCK_SERVICE_CREDENTIALS``). Without it the
    run-end reconciler does not run. Default: none."""
    notify_reconcile_interval_s: float = Field(default=30.0, gt=0)
    """Time between passes of the run-end reconciler. Default: 30 s."""
    notify_reconcile_quiet_after_s: float = Field(default=30.0, gt=0)
    """A run seen starting this long ago with no end seen is asked about (its end event
    may have been lost with the broker); a run is asked about again at most this often.
    Default: 30 s: with the 30 s interval, a lost end is notified within about a minute."""
    notify_reconcile_look_back_s: float = Field(default=86_400.0, gt=0)
    """How long after its start a run with no end seen is still asked about. Default: 1 day."""
    notify_reconcile_batch_size: int = Field(default=200, ge=1, le=10_000)
    """Most runs one pass asks the scheduler about (two calls each): bounds the load a
    pass puts on the scheduler after a broker loss. Default: 200."""

    key_encryption_keys: SecretStr | None = None
    """Key-encryption keys sealing the webhook signing secrets at rest:
    ``id:base64url-32-bytes``, several comma-separated to rotate (the first seals, all
    unseal; the service re-seals stored secrets with the first at start-up). Required to
    start; ``make up`` generates one into ``.data/secrets.env``. Default: unset."""
    webhook_timeout_s: float = Field(default=15.0, gt=0.0)
    """Timeout of one webhook request, connection included. Default: 15 s."""
    webhook_allowed_networks: list[str] = Field(default_factory=list)
    """CIDR ranges webhooks may reach even though they are private, loopback or
    link-local (the local stack sets loopback, so a developer receives webhooks on their
    machine). Default: none, only globally routable addresses."""
    response_excerpt_bytes: int = Field(default=1024, ge=0)
    """Most bytes of a receiver's answer kept in the delivery history. Default: 1 KiB."""

    smtp_host: str = "127.0.0.1"
    """SMTP server for email notifications. Default: the ``make up`` capture server."""
    smtp_port: int = 1025
    """Default: 1025."""
    smtp_username: str | None = None
    """Login name, when the server wants one. Default: none."""
    smtp_password: SecretStr | None = None
    """Password of ``smtp_username``. Default: none."""
    smtp_tls: bool = False
    """TLS from the first byte (SMTPS, usually port 465). Default: off."""
    smtp_starttls: bool = False
    """Upgrade to TLS with STARTTLS after connecting (usually port 587). Default: off."""
    smtp_sessions: int = Field(default=8, ge=1)
    """SMTP sessions kept open and used at once (so emails sent in parallel). Default: 8."""
    smtp_timeout_s: float = Field(default=15.0, gt=0.0)
    """Timeout of one SMTP exchange. Default: 15 s."""
    smtp_sender: str = "Interlock <interlock@localhost>"
    """The ``From`` of notification emails. Default: ``Interlock <interlock@localhost>``."""

    @field_validator("retry_schedule")
    @classmethod
    def _durations(cls, schedule: list[str]) -> list[str]:
        if not schedule:
            raise ValueError("the retry schedule needs at least one delay")
        for delay in schedule:
            parse_duration_ms(delay)
        return schedule

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, networks: list[str]) -> list[str]:
        parse_networks(networks)
        return networks

    def retry_delays_s(self) -> tuple[float, ...]:
        """The retry schedule in seconds."""
        return tuple(parse_duration_ms(delay) / 1000 for delay in self.retry_schedule)
