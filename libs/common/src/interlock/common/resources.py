"""What a service holds open while it runs, each with its readiness probe.

A service lists its resources in the order they depend on each other;
:func:`interlock.common.http.create_app` opens them in that order at start-up,
closes them in reverse at shut-down, and ``/readyz`` asks each one's
:meth:`Resource.check`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

_log = logging.getLogger(__name__)


@runtime_checkable
class Resource(Protocol):
    """A dependency opened for the life of the process."""

    name: str
    """The name ``/readyz`` reports it under, e.g. ``"postgres"``."""

    async def __aenter__(self) -> Self:
        """Open it (connect, migrate, start background work)."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close it, letting in-flight work finish."""
        ...

    async def check(self) -> None:
        """Return when it is usable; raise when it is not."""
        ...


class Lifecycle(abc.ABC):
    """Something started once and stopped once, also usable as ``async with``.

    Subclasses implement :meth:`start` and :meth:`stop`; a resource adds
    ``name`` and ``check`` and so satisfies :class:`Resource`.
    """

    @abc.abstractmethod
    async def start(self) -> None:
        """Open it (connect, migrate, start background work)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Close it, letting in-flight work finish. Safe to call more than once."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def check_background_task(task: asyncio.Task[None] | None, name: str) -> None:
    """Raise unless ``task`` (a resource's background loop) is still running.

    Raises:
        RuntimeError: The loop never started or has ended; a crash is chained as
            the cause.
    """
    if task is None:
        raise RuntimeError(f"{name} is not running")
    if task.done():
        error = None if task.cancelled() else task.exception()
        raise RuntimeError(f"{name} stopped") from error


class PeriodicPasses(Lifecycle):
    """Work done in passes in the background, one every ``interval_s`` (a resource).

    A pass that fails is logged and the next one tries again. Stopping lets a pass in
    progress finish (cancelled after ``stop_timeout_s``): cancelling one in the middle of
    a query would leave its connection busy, and the pool's close would wait for it.

    Subclasses set ``name`` and implement :meth:`pass_once`; one whose interval holds
    more than one pass overrides :meth:`run_pass`.

    Args:
        interval_s: Time between the end of one pass and the start of the next.
        stop_timeout_s: How long stopping waits for a pass in progress. Default: 10 s.
    """

    name: str

    def __init__(self, *, interval_s: float, stop_timeout_s: float = 10.0) -> None:
        self._interval_s = interval_s
        self._stop_timeout_s = stop_timeout_s
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @abc.abstractmethod
    async def pass_once(self) -> object:
        """Do one pass of the work; what it returns (e.g. a count) is for callers."""

    async def run_pass(self) -> None:
        """What each interval does: one pass."""
        await self.pass_once()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_pass()
            except Exception:
                _log.exception("%s pass failed; trying again next interval", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval_s)

    async def start(self) -> None:
        """Start passing in the background."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Let a pass in progress finish (cancelled after ``stop_timeout_s``), then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self._stop_timeout_s)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def check(self) -> None:
        """Raise when the loop is not running."""
        check_background_task(self._task, self.name)
