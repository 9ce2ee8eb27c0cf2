"""What a service holds open while it runs, each with its readiness probe.

A service lists its resources in the order they depend on each other;
:func:`interlock.common.http.create_app` opens them in that order at start-up,
closes them in reverse at shut-down, and ``/readyz`` asks each one's
:meth:`Resource.check`.
"""

from __future__ import annotations

import abc
import asyncio
from types import TracebackType
from typing import Protocol, Self, runtime_checkable


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
