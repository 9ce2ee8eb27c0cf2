"""A private Interlock stack for one workload, started by ``python -m interlock.devstack``.

Its own data folder and port offset keep it apart from a developer's ``make up`` stack.

The local Kafka-protocol broker slows down with every batch it stores and frees
none, so each workload gets a freshly started stack (fresh broker, fresh databases).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bench.cpu import process_tree_pids
from interlock.devstack import Stack, free_port_offsets
from interlock.devstack._process import processes_with_env
from interlock.devstack._stack import (
    ADMIN_PASSWORD,
    ADMIN_TENANT,
    ADMIN_USERNAME,
    DATA_DIR_ENV,
    PORT_OFFSET_ENV,
    SERVICE_COMMAND_ENV,
    STACK_MARKER_ENV,
)

PORT_OFFSETS = (1425, 1525, 1625, 1725, 1825)
"""Offsets tried for a bench stack, the first whose ports are all free wins. No test
stack uses them, and every port they give lies below the kernel's ephemeral range
(32768 and up), where outgoing connections take ports at random."""
CLI_TIMEOUT_S = 300.0
"""Longest ``up`` or ``down`` may take."""
LOGIN = (ADMIN_USERNAME, ADMIN_PASSWORD, ADMIN_TENANT)
"""The documented local admin the benchmark logs in as."""


class StackError(RuntimeError):
    """The stack did not start (the message carries the CLI's output)."""


def stack_pids(data_dir: str) -> set[int]:
    """Every process of the stack in ``data_dir``.

    That is those carrying its marker in their environment, and their descendants
    (PostgreSQL's backends overwrite theirs with their process titles).
    """
    return process_tree_pids(*(ref.pid for ref in processes_with_env(STACK_MARKER_ENV, data_dir)))


def _free_offset() -> int:
    for offset in free_port_offsets(PORT_OFFSETS):
        return offset
    raise StackError(f"no free port range for the bench stack among offsets {PORT_OFFSETS}")


class BenchStack:
    """A fresh stack in a temporary data folder.

    :meth:`up` starts it; :meth:`down` stops it and deletes what it wrote (the
    folder, and PostgreSQL's folder outside it when root runs the bench).

    Args:
        port_offset: Its ports' offset. Default: the first free one of
            :data:`PORT_OFFSETS`.
        env: Variables added to every process's environment. Default: none.
    """

    def __init__(
        self, port_offset: int | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        # First: no folder is left behind when no offset is free.
        self.port_offset = _free_offset() if port_offset is None else port_offset
        self.data_dir = Path(tempfile.mkdtemp(prefix="ilk-bench-"))
        self._env = {
            **os.environ,
            DATA_DIR_ENV: str(self.data_dir),
            PORT_OFFSET_ENV: str(self.port_offset),
            **(env or {}),
        }
        self._env.pop(SERVICE_COMMAND_ENV, None)
        self.stack = Stack.from_env(self._env)

    @property
    def gateway_url(self) -> str:
        """Where users reach this stack."""
        return self.stack.gateway_url

    def pids(self) -> set[int]:
        """The stack's processes."""
        return stack_pids(str(self.data_dir))

    def _cli(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "interlock.devstack", command],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )

    async def up(self) -> None:
        """Start everything and wait until healthy."""
        result = await asyncio.to_thread(self._cli, "up")
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip().splitlines()
            raise StackError("devstack up failed: " + " | ".join(output[-12:]))

    async def down(self) -> None:
        """Stop everything and delete what the stack wrote."""
        try:
            await asyncio.to_thread(self._cli, "clean")
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            if self.stack.postgres_home is not None:
                shutil.rmtree(self.stack.postgres_home, ignore_errors=True)
