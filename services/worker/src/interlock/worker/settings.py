"""The worker service's settings, read from ``INTERLOCK_*`` environment variables.

Lists and maps are JSON in the environment, e.g.
``INTERLOCK_WORKER_QUEUES='["", "gpu"]'`` or
``INTERLOCK_MAX_IN_FLIGHT_PER_TYPE='{"http": 20}'``.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Annotated

from pydantic import Field, SecretStr

from interlock.common.settings import KafkaOptions, ServiceSettings


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class WorkerSettings(ServiceSettings, KafkaOptions):
    """Everything the worker service reads from its environment; defaults fit ``make up``."""

    service_name: str = "worker"
    """Default: ``"worker"``."""
    http_port: int = 8104
    """Default: 8104."""
    kafka_linger_ms: int = 0
    """The producer sends at once: the worker's reporter already batches whatever
    accumulates while a publish is in flight, and a linger would only add latency
    (measured: ~5 to 9 ms per task hop instead of ~22 ms). Default: 0 ms."""
    kafka_fetch_max_wait_ms: int = 2
    """The local broker holds a fetch for most of this even when tasks are there, so
    it is on every task's path: produce-to-consume p50 2.1 ms at 2 ms against 2.7 ms at
    5 ms (p90 5.9 against 10.4 on a loaded machine), for ~3% of a core more for the
    broker and ~3% more for an idle worker; 1 ms saved 0.5 ms more for as much again.
    Default: 2 ms, the scheduler's."""

    kafka_metadata_max_age_ms: int = 10_000
    """The task topics are re-created after the broker lost everything, possibly with
    another partition count (the broker auto-creates a topic a record reaches first):
    the worker sees them within this time, not aiokafka's default 5 minutes.
    Default: 10000 ms."""

    worker_id: str = Field(default_factory=_default_worker_id)
    """This instance's id in task events. Default: ``<host>-<pid>-<random>``."""
    worker_group_id: str = "worker"
    """Consumer group of ``task.scheduled``; every worker of the platform shares it.
    Default: ``"worker"``."""
    worker_queues: list[str] = Field(default_factory=lambda: [""])
    """Queues served; ``""`` is the default queue. Tasks of other queues are skipped.
    Default: ``[""]``."""
    max_in_flight: int = Field(default=100, ge=1)
    """Most tasks running at once in this worker; fetched tasks wait for free slots
    (plus :attr:`prefetch`), at most as many.
    Default: 100."""
    prefetch: int = Field(default=10, ge=0)
    """Tasks fetched beyond the free slots, so a slot that frees starts the next task
    without a fetch; at most ``max_in_flight`` wait in all. Default: 10."""
    max_in_flight_per_type: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    """Most tasks of one type running at once, by type; unlisted types are bounded by
    :attr:`max_in_flight` only. Default: none."""
    heartbeat_interval_ms: int = Field(default=1000, ge=10)
    """Time between two heartbeats of a running task; a third of the task's
    ``heartbeat_timeout_ms`` when that is shorter. Default: 1000 ms."""
    log_flush_interval_ms: int = Field(default=20, ge=10)
    """Longest time a line a task wrote waits before it is sent (``task.log``): the
    lines of all running tasks are sent together at this pace. Default: 20 ms (a
    live tail's budget is 500 ms end to end; a task shorter than this sends its
    lines once, with its outcome)."""
    log_resend_max_bytes: int = Field(default=32 * 1024 * 1024, ge=0)
    """Most bytes of published log lines kept to send again when the metadata service
    says the broker lost some (``task.log_missing``); the oldest are forgotten first.
    Default: 32 MiB (at 200 KB/s of lines, about 2.5 minutes)."""
    log_resend_window_s: float = Field(default=600, ge=0)
    """Longest time published log lines are kept to send again. Default: 600 s."""
    log_outage_lookback_s: float = Field(default=30, ge=0)
    """When a publish fails (the broker may have restarted and lost what it had
    acknowledged), the last ``task.log`` of every attempt that ended within this time
    goes again, without its lines: the metadata service then knows how many lines
    each wrote and asks for those it lacks. Default: 30 s (longer than the log
    consumer's lag)."""
    drain_timeout_ms: int = Field(default=30_000, ge=0)
    """On shut-down, how long running tasks may take to finish before they are
    reported as failed (retryable). Default: 30000 ms."""
    poll_timeout_ms: int = Field(default=100, ge=1)
    """Longest wait of one fetch for new tasks. Default: 100 ms."""
    report_max_batch: int = Field(default=1000, ge=1)
    """Most events one publish call carries. Default: 1000."""
    report_linger_ms: int = Field(default=0, ge=0)
    """Extra wait to fill a publish batch; events also batch up while the previous
    publish is in flight, so none is needed for throughput. Default: 0 ms."""
    commit_interval_ms: int = Field(default=100, ge=0)
    """Least time between two offset commits. The first outcome published after a
    quiet spell is committed at once; later commits wait out the interval and cover
    whatever was published meanwhile. Each commit costs a request here and in the
    broker; a longer interval re-runs more already reported tasks after a SIGKILL
    (the scheduler drops their duplicate outcomes). Draining and giving partitions up
    always commit. Default: 100 ms."""
    finished_attempts_memory: int = Field(default=20_000, ge=0)
    """Outcomes of this many recently finished attempts are kept: a copy of one of them
    (the scheduler re-sends an attempt it thinks lost, a partition is redelivered) is
    answered with the outcome again instead of running the task twice. About 1 KB each
    plus the output. Default: 20000."""
    cancellation_memory_s: int = Field(default=3600, ge=0)
    """Cancellations older than the worker's start minus this are ignored; newer ones
    abort running tasks and skip fetched tasks of the run. Default: 3600 s."""

    http_allowed_networks: list[str] = Field(default_factory=list)
    """CIDR ranges the ``http`` executor may reach even though they are private,
    loopback or link-local (e.g. ``["127.0.0.0/8"]``). Default: none."""
    http_max_response_bytes: int = Field(default=1_048_576, ge=0)
    """Most response body bytes the ``http`` executor keeps. Default: 1 MiB."""
    http_default_timeout_ms: int = Field(default=30_000, ge=1)
    """Timeout of a request whose params give none. Default: 30000 ms."""

    shell_enabled: bool = False
    """Whether the ``shell`` executor runs anything at all. Default: off."""
    shell_allowed_commands: list[str] = Field(default_factory=list)
    """Programs (``argv[0]``, exactly as written in params) the ``shell`` executor may
    run. Default: none."""
    shell_task_env: list[str] = Field(default_factory=lambda: ["LANG", "LC_ALL", "TZ"])
    """Environment variables a ``shell`` task's ``env`` may set, besides any whose name
    starts with ``TASK_``. Never add ones that change what runs or how (``PATH``,
    ``LD_PRELOAD``, ``LD_LIBRARY_PATH``, ``PYTHONPATH``, ``BASH_ENV``, ``IFS``...).
    Default: ``LANG``, ``LC_ALL``, ``TZ``."""
    shell_max_output_bytes: int = Field(default=65_536, ge=0)
    """Most bytes of stdout and of stderr kept. Default: 64 KiB."""
    shell_default_timeout_ms: int = Field(default=60_000, ge=1)
    """Timeout of a command whose params give none. Default: 60000 ms."""

    iam_grpc_target: str = "127.0.0.1:9101"
    """IAM's gRPC listener, where tasks' ``{{ secrets.NAME }}`` values are read.
    Default: the ``make up`` address."""
    service_credential: SecretStr | None = None
    """The credential this worker presents to IAM to read tenant secrets
    (:mod:`interlock.common.service_credentials`); without it a task referring to a
    secret fails (not retryable). Default: unset."""
    secrets_timeout_ms: int = Field(default=5_000, ge=1)
    """How long reading a task's secrets from IAM may take (a retryable failure
    beyond). Default: 5000 ms."""

    artifact_url: str = "http://127.0.0.1:8107"
    """The artifact service's own address (not the gateway's), where ``ctx.artifacts``
    stores and reads a task's artifacts with :attr:`service_credential`. Default: the
    ``make up`` address."""
    artifact_timeout_ms: int = Field(default=300_000, ge=1)
    """Longest an artifact upload or download may stay without progress (a retryable
    failure beyond). Default: 300000 ms."""

    python_task_modules: list[str] = Field(default_factory=list)
    """Modules imported at start-up so their ``@task`` functions are registered.
    Default: none."""
    python_max_threads: int = Field(default=8, ge=1)
    """Threads running synchronous ``@task`` functions. Default: 8."""
