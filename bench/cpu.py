"""CPU seconds a set of processes spends while a workload runs (psutil)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import psutil

SAMPLE_INTERVAL_S = 1.0
"""How often the process set is re-read: processes that start or exit mid-workload count."""


class CpuMeter:
    """Sums user + system CPU time of the processes ``find_pids`` names, from start to stop.

    Processes are told apart by pid and start time. One already running at
    :meth:`start` counts from its CPU time then; one that appears later counts
    from zero; one that exits counts up to its last sample.
    """

    def __init__(self, find_pids: Callable[[], set[int]]) -> None:
        self._find_pids = find_pids
        self._first: dict[tuple[int, float], float] = {}
        self._last: dict[tuple[int, float], float] = {}
        self._programs: dict[tuple[int, float], str] = {}
        self._sampler: asyncio.Task[None] | None = None

    def _sample(self, *, initial: bool) -> None:
        for pid in self._find_pids():
            try:
                process = psutil.Process(pid)
                key = (pid, process.create_time())
                times = process.cpu_times()
                if key not in self._programs:
                    self._programs[key] = program_name(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            used = times.user + times.system
            self._first.setdefault(key, used if initial else 0.0)
            self._last[key] = used

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            await asyncio.to_thread(self._sample, initial=False)

    async def start(self) -> None:
        """Take the first sample and keep sampling in the background."""
        self._first.clear()
        self._last.clear()
        self._programs.clear()
        await asyncio.to_thread(self._sample, initial=True)
        self._sampler = asyncio.create_task(self._sample_forever())

    async def stop(self) -> float:
        """Take the last sample; return the CPU seconds used since :meth:`start`."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        await asyncio.to_thread(self._sample, initial=False)
        return sum(self._last[key] - self._first[key] for key in self._last)

    def by_program(self) -> dict[str, float]:
        """CPU seconds per program (see :func:`program_name`) from start to the last sample."""
        used: dict[str, float] = {}
        for key, last in self._last.items():
            program = self._programs.get(key, "other")
            used[program] = used.get(program, 0.0) + last - self._first[key]
        return dict(sorted(used.items(), key=lambda item: -item[1]))


def program_name(process: psutil.Process) -> str:
    """``workflow`` for ``python -m interlock.workflow``, else the program's name.

    A Python program is named by its module (``python -m aiosmtpd``: ``aiosmtpd``) or
    script (``python .../secantusd-py``: ``secantusd-py``, the MongoDB-protocol
    server), other programs by their executable. PostgreSQL's backends count as
    ``postgres``, whatever their title says.
    """
    try:
        command = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "other"
    for part in command:
        if part.startswith("interlock.") and part != "interlock.devstack":
            return part.removeprefix("interlock.")
    executable = command[0] if command else process.name()
    name = executable.rsplit("/", 1)[-1]
    if name.startswith("python") and len(command) > 1:
        program = command[2] if command[1] == "-m" and len(command) > 2 else command[1]
        return program.rsplit("/", 1)[-1].removeprefix("interlock.")
    return "postgres" if name.startswith("postgres") else name.split("-v")[0]


def process_tree_pids(*roots: int) -> set[int]:
    """``roots`` and all their live descendants."""
    pids: set[int] = set()
    for root in roots:
        try:
            process = psutil.Process(root)
            pids.add(root)
            pids.update(child.pid for child in process.children(recursive=True))
        except psutil.NoSuchProcess:
            continue
    return pids
