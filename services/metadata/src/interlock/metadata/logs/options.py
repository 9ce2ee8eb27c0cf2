"""The settings of task logs, part of the metadata service's settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from interlock.common.settings import ENV_PREFIX

__all__ = ["LogsOptions"]


class LogsOptions(BaseSettings):
    """How task logs are kept and streamed (``INTERLOCK_LOGS_*``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    logs_max_bytes_per_attempt: int = Field(default=10 * 1024 * 1024, ge=1)
    """Most bytes of messages kept per attempt; past it one marker line counts what was
    dropped. Default: 10 MiB."""
    logs_retention_days: float = Field(default=30, gt=0)
    """How long a line is kept after it was stored. Default: 30 days."""
    logs_stream_heartbeat_s: float = Field(default=15, gt=0)
    """Time between two heartbeat comments of a quiet log stream. Default: 15 s."""
    logs_fetch_max_wait_ms: int = Field(default=100, gt=0)
    """The ``task.log`` consumer's broker fetch wait. Lines are off every run's critical
    path and a live tail's goal is lines shown within 500 ms (p99), so the consumer
    polls the broker less than the scheduler's 2 ms: fewer, larger batches, and an idle
    broker spared most of this consumer's fetches. Default: 100 ms."""
    logs_stream_poll_interval_ms: int = Field(default=100, ge=10)
    """How often a log stream looks for new lines. Default: 100 ms."""
    logs_stream_unknown_run_wait_ms: int = Field(default=3000, ge=0)
    """How long a log stream waits for a run it does not know yet before answering 404:
    the run's document comes with the execution projection's next batch, and a client
    follows a run's log right after starting it. Default: 3000 ms."""
    logs_stream_end_grace_ms: int = Field(default=1000, ge=0)
    """How long a stream keeps looking once its run ended and every line was sent,
    before its ``end`` event (lines and the run's end travel different topics).
    Default: 1000 ms."""
    logs_gap_check_interval_s: float = Field(default=1.0, gt=0)
    """Time between two looks for ended attempts whose log lacks lines (lost with the
    broker; each look is one indexed query, usually finding nothing). Default: 1 s."""
    logs_gap_ask_interval_s: float = Field(default=5.0, gt=0)
    """Time between two requests (``task.log_missing``) to the worker for the same
    missing lines. Default: 5 s."""
    logs_gap_lost_after_s: float = Field(default=60.0, gt=0)
    """How long after lines were found missing they are given up on: one marker line
    then says how many were lost (the worker keeps sent lines ``log_resend_window_s``,
    600 s, or less when its buffer fills). Default: 60 s."""
    logs_gap_batch_size: int = Field(default=200, ge=1)
    """Most gaps one look handles. Default: 200."""
