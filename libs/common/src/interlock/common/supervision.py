"""Background work that outlives its failures: restart it with backoff, or restart the process.

Every long-lived piece of a service (outbox relay, consumers, timer loops,
reconcilers, listeners) runs as a :class:`SupervisedTask`. The piece handles the
failures it expects itself (a lost connection: log, back off, reconnect); when it
crashes anyway, or returns although it should run forever, the supervisor starts it
again after a backoff. A piece that keeps crashing (``max_restarts`` crashes in a
row, none of them after running ``healthy_after_s``) cannot recover in-process: the
supervisor gives up, ``/healthz`` turns 503 and the process asks itself to exit
(:func:`request_process_restart`), so its own supervisor (supervisord, the container
runtime, Kubernetes) starts a fresh one.

Liveness and readiness stay apart (:mod:`interlock.common.http`):

- ``/readyz`` ("don't send me traffic"): every resource's ``check()``; a supervised
  task is not ready while it waits to be restarted or has given up, and a piece may
  add its own state (e.g. "publishing fails since 12 s").
- ``/healthz`` ("restart me"): every resource's ``check_alive()`` (:class:`Liveness`);
  only a piece that gave up fails it. A dependency that is down never does: a fresh
  process would find it down too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from interlock.common.resources import Lifecycle

__all__ = [
    "Backoff",
    "Liveness",
    "SupervisedTask",
    "request_process_restart",
    "restart_requested",
]

_log = logging.getLogger(__name__)

_restart_reason: str | None = None


@runtime_checkable
class Liveness(Protocol):
    """A resource that can tell the process is broken beyond repair (``/healthz``)."""

    def check_alive(self) -> None:
        """Return when the piece works or can still recover; raise when it cannot."""
        ...


def request_process_restart(reason: str) -> None:
    """Make the process shut down cleanly and exit with a failure status.

    The service's own supervisor then starts a new process. SIGTERM to itself lets
    uvicorn run the usual graceful shut-down (resources close in reverse);
    :func:`interlock.common.runtime.run_service` turns it into exit status 1.

    Args:
        reason: Logged, and reported by ``/healthz`` until the process is gone.
    """
    global _restart_reason
    if _restart_reason is not None:
        return
    _restart_reason = reason
    _log.critical("restarting the process: %s", reason)
    os.kill(os.getpid(), signal.SIGTERM)


def restart_requested() -> str | None:
    """Why :func:`request_process_restart` was called, or ``None``."""
    return _restart_reason


class Backoff:
    """Exponential backoff with jitter: ``initial_s`` doubling up to ``max_s``.

    Each delay is drawn from ``[d/2, d]`` for the current ``d``, so replicas that
    lost the same server do not come back in lockstep.

    Args:
        initial_s: First delay. Default: 0.2 s.
        max_s: Longest delay. Default: 10 s.
        rng: Source of jitter. Default: :func:`random.random`.
    """

    def __init__(
        self,
        *,
        initial_s: float = 0.2,
        max_s: float = 10.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError("need 0 < initial_s <= max_s")
        self._initial_s = initial_s
        self._max_s = max_s
        self._rng = rng
        self.failures = 0
        """Failures since the last :meth:`reset`."""

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before trying again."""
        self.failures += 1
        ceiling = min(self._max_s, self._initial_s * 2.0 ** (self.failures - 1))
        return ceiling / 2 + self._rng() * ceiling / 2

    def reset(self) -> None:
        """Forget the failures (the next delay is ``initial_s`` again)."""
        self.failures = 0

    async def wait(self, stop: asyncio.Event | None = None) -> None:
        """Sleep :meth:`next_delay` seconds, or until ``stop`` is set."""
        delay = self.next_delay()
        if stop is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)


class SupervisedTask(Lifecycle):
    """Runs ``work()`` in the background while open, restarting it when it ends.

    ``work`` should run until cancelled or asked to stop. When it raises, the
    supervisor waits a backoff and calls it again (``work`` opens what it needs
    afresh); when it returns, supervision ends (``check`` then fails: a loop that should
    run forever must raise, not return, when something went wrong). After
    ``max_restarts`` crashes in a row, each within ``healthy_after_s``
    of its start, it gives up and calls ``on_give_up`` (default: restart the process).

    Args:
        name: Name ``/readyz`` and ``/healthz`` report.
        work: Returns the coroutine to run; called again for every restart.
        backoff: Delays between restarts. Default: 0.5 s doubling up to 30 s.
        max_restarts: Crashes in a row before giving up. Default: 8 (about two
            minutes of crashing with the default backoff).
        healthy_after_s: A run this long resets the count. Default: 60 s.
        on_give_up: Called once, with the reason, on giving up. Default:
            :func:`request_process_restart`.
    """

    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[None]],
        *,
        backoff: Backoff | None = None,
        max_restarts: int = 8,
        healthy_after_s: float = 60.0,
        on_give_up: Callable[[str], None] = request_process_restart,
    ) -> None:
        self.name = name
        self._work = work
        self._backoff = backoff or Backoff(initial_s=0.5, max_s=30.0)
        self._max_restarts = max_restarts
        self._healthy_after_s = healthy_after_s
        self._on_give_up = on_give_up
        self._task: asyncio.Task[None] | None = None
        self._restarting_since: float | None = None
        self._last_error: BaseException | None = None
        self._gave_up: str | None = None
        self.restarts = 0
        """How many times ``work`` was started again since this opened."""

    async def start(self) -> None:
        """Start ``work`` in the background."""
        if self._task is None:
            self._gave_up = None
            self._task = asyncio.create_task(self._supervise(), name=self.name)

    async def stop(self) -> None:
        """Cancel ``work`` and wait for it to end. Safe to call more than once."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def finished(self) -> None:
        """Wait until supervision ended (``work`` returned, or the supervisor gave up)."""
        task = self._task
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(task)

    async def check(self) -> None:
        """Raise unless ``work`` is running (not waiting to restart, not given up).

        Raises:
            RuntimeError: Not running; the last crash is chained as the cause.
        """
        if self._gave_up is not None:
            raise RuntimeError(self._gave_up) from self._last_error
        if self._task is None or self._task.done():
            raise RuntimeError(f"{self.name} is not running")
        if self._restarting_since is not None:
            since_s = time.monotonic() - self._restarting_since
            raise RuntimeError(
                f"{self.name} crashed {since_s:.0f} s ago; restarting"
            ) from self._last_error

    def check_alive(self) -> None:
        """Raise once the supervisor gave up on ``work`` (see :class:`Liveness`)."""
        if self._gave_up is not None:
            raise RuntimeError(self._gave_up)

    async def _supervise(self) -> None:
        while True:
            began = time.monotonic()
            try:
                await self._work()
            except asyncio.CancelledError:
                raise
            except Exception as crash:
                error: BaseException = crash
            else:
                return
            self._last_error = error
            if time.monotonic() - began >= self._healthy_after_s:
                self._backoff.reset()
            if self._backoff.failures >= self._max_restarts:
                self._give_up(error)
                return
            delay = self._backoff.next_delay()
            _log.error(
                "%s stopped; restarting in %.1f s",
                self.name,
                delay,
                exc_info=error,
                extra={"task": self.name, "failures": self._backoff.failures},
            )
            self._restarting_since = time.monotonic()
            await asyncio.sleep(delay)
            self._restarting_since = None
            self.restarts += 1

    def _give_up(self, error: BaseException) -> None:
        self._gave_up = (
            f"{self.name} crashed {self._backoff.failures + 1} times in a row "
            f"(last: {type(error).__name__}: {error})"
        )
        _log.critical(self._gave_up, exc_info=error, extra={"task": self.name})
        self._on_give_up(self._gave_up)
