"""Executors for plumbing, tests and demos: ``noop``, ``sleep``, ``fail``, ``flaky``, ``echo``."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from interlock.common.durations import parse_duration_ms
from interlock.worker.artifacts import write_text_artifact
from interlock.worker.context import TaskContext
from interlock.worker.errors import InvalidParams, TaskFailure
from interlock.worker.executors import parse_params
from interlock.worker.settings import WorkerSettings

__all__ = ["EchoExecutor", "FailExecutor", "FlakyExecutor", "NoopExecutor", "SleepExecutor"]


class NoopExecutor:
    """Does nothing; its output is its params (``{}`` when none)."""

    def __init__(self, settings: WorkerSettings) -> None:
        del settings

    async def execute(self, params: Any, context: TaskContext) -> Any:
        """Return ``params`` as the output."""
        return params if params is not None else {}


class _SleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duration: float | str | None = None
    duration_ms: float | None = Field(default=None, ge=0)


class SleepExecutor:
    """Sleeps ``{"duration": "2s"}`` (or ``{"duration_ms": 2000}``), heartbeating progress.

    Output: ``{"slept_ms": <milliseconds>}``.
    """

    def __init__(self, settings: WorkerSettings) -> None:
        self._step_s = settings.heartbeat_interval_ms / 1000

    async def execute(self, params: Any, context: TaskContext) -> Any:
        """Sleep for the duration, updating the heartbeat details as it goes."""
        parsed = parse_params(_SleepParams, params)
        if parsed.duration_ms is not None:
            total_ms = parsed.duration_ms
        elif parsed.duration is not None:
            try:
                total_ms = parse_duration_ms(parsed.duration)
            except ValueError as error:
                raise InvalidParams(str(error)) from None
        else:
            raise InvalidParams('sleep needs a duration, e.g. {"duration": "2s"}')
        deadline = time.monotonic() + total_ms / 1000
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, self._step_s))
            remaining_ms = max(0.0, deadline - time.monotonic()) * 1000
            context.heartbeat({"slept_ms": round(total_ms - remaining_ms)})
        return {"slept_ms": total_ms}


class _FailParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = "failed on purpose"
    retryable: bool = True


class FailExecutor:
    """Always fails with ``{"message": ..., "retryable": ...}`` (default: retryable)."""

    def __init__(self, settings: WorkerSettings) -> None:
        del settings

    async def execute(self, params: Any, context: TaskContext) -> Any:
        """Raise the configured failure."""
        parsed = parse_params(_FailParams, params)
        raise TaskFailure(parsed.message, retryable=parsed.retryable, type_="IntentionalFailure")


class _FlakyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    failure_rate: float = Field(default=0.5, ge=0.0, le=1.0)


class FlakyExecutor:
    """Fails (retryably) with probability ``{"failure_rate": 0.5}``, else succeeds.

    Output: ``{"attempt": <attempt number>}``.
    """

    def __init__(self, settings: WorkerSettings) -> None:
        del settings
        self._random = random.Random()  # noqa: S311 - test chaos, not security

    async def execute(self, params: Any, context: TaskContext) -> Any:
        """Fail or succeed at random."""
        parsed = parse_params(_FlakyParams, params)
        if self._random.random() < parsed.failure_rate:
            raise TaskFailure(f"flaky failure (rate {parsed.failure_rate:g})", type_="FlakyFailure")
        return {"attempt": context.attempt}


_ECHO_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_MAX_ECHO_LINES = 10_000


class _EchoArtifact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    text: str


class _EchoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lines: list[str] = Field(max_length=_MAX_ECHO_LINES)
    interval: float | str = "100ms"
    level: Literal["debug", "info", "warning", "error"] = "info"
    artifact: _EchoArtifact | None = None


@dataclass(frozen=True, slots=True)
class _EchoPlan:
    lines: list[str]
    interval_s: float
    level: int
    artifact: _EchoArtifact | None


def _echo_plan(params: Any) -> _EchoPlan:
    """What an ``echo`` task is to do, from its params (the one place that reads them)."""
    parsed = parse_params(_EchoParams, params)
    if isinstance(parsed.interval, str):
        try:
            interval_ms: float = parse_duration_ms(parsed.interval)
        except ValueError as error:
            raise InvalidParams(f"interval: {error}") from None
    elif parsed.interval < 0:
        raise InvalidParams("interval: must not be negative")
    else:
        interval_ms = parsed.interval
    return _EchoPlan(
        lines=parsed.lines,
        interval_s=interval_ms / 1000,
        level=_ECHO_LEVELS[parsed.level],
        artifact=parsed.artifact,
    )


class EchoExecutor:
    """Writes ``{"lines": [...]}`` to the attempt's log one by one, for demos and tests.

    Params: ``lines`` (at most 10,000), ``interval`` between two lines (``"100ms"``,
    the default, or a number of milliseconds; 0 writes them all at once), ``level``
    (``debug``, ``info``, the default, ``warning`` or ``error``), ``artifact``
    (``{name, text}``: a small text artifact the task stores after its lines; default
    none).

    Output: ``{"lines": <number of lines written>}``, and ``"artifact"``:
    ``{artifact_id, name, size, sha256}`` when one was stored.
    """

    def __init__(self, settings: WorkerSettings) -> None:
        del settings

    async def execute(self, params: Any, context: TaskContext) -> Any:
        """Log each line, waiting the interval between two (none at all when it is 0)."""
        plan = _echo_plan(params)
        for index, line in enumerate(plan.lines):
            # Without an interval the lines go at once, as a task printing them would: a
            # yield would keep the attempt running past its announcement, which costs it
            # a task.started event that an instant task does not send.
            if index and plan.interval_s:
                await asyncio.sleep(plan.interval_s)
            context.logger.captured(plan.level, line)
        output: dict[str, Any] = {"lines": len(plan.lines)}
        if plan.artifact is not None:
            output["artifact"] = await write_text_artifact(
                context, plan.artifact.name, plan.artifact.text
            )
        return output
