"""The platform the client and CLI tests talk to: one stack for the whole session.

Started as tests/test_auth_matrix.py starts its own (a devstack ``Stack`` in a temporary
data folder, on a port offset of its own), with the command line's variables exported,
as a developer's shell may have them, which the services must let pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from interlock.devstack import free_port_offsets
from interlock.devstack._stack import ADMIN_PASSWORD, ADMIN_USERNAME, Stack

OFFSETS = (600, 650)
"""Port offsets these tests may use (other test sessions use others), all below the
ephemeral range, where outgoing connections would take ports at random."""


@dataclass(frozen=True)
class Platform:
    """A running stack: its gateway and the local admin's login."""

    gateway: str
    username: str = ADMIN_USERNAME
    password: str = ADMIN_PASSWORD


def _free_offset() -> int:
    for offset in free_port_offsets(OFFSETS):
        return offset
    pytest.skip(f"no free port range for a stack among offsets {OFFSETS}")


def _devstack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.devstack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="session")
def platform() -> Iterator[Platform]:
    # Not under pytest's tmp dir: it is 0700 root, and PostgreSQL runs unprivileged.
    data_dir = Path(tempfile.mkdtemp(prefix="ilk-clients-"))
    data_dir.chmod(0o755)
    env = {
        **os.environ,
        "INTERLOCK_DEV_DATA_DIR": str(data_dir),
        "INTERLOCK_DEV_PORT_OFFSET": str(_free_offset()),
        # A shell that uses the CLI exports these; no service may refuse to start.
        "INTERLOCK_GATEWAY": "http://127.0.0.1:1",
        "INTERLOCK_API_KEY": "ilk_not-a-key",
    }
    env.pop("INTERLOCK_DEV_SERVICE_COMMAND", None)
    env.pop("INTERLOCK_DEV_GATEWAY_AUTHZ", None)
    stack = Stack.from_env(env)
    try:
        started = _devstack(env, "up")
        assert started.returncode == 0, f"up failed:\n{started.stdout}\n{started.stderr}"
        yield Platform(stack.gateway_url)
    finally:
        # clean, not down: as root, PostgreSQL's folder lives outside the data folder.
        _devstack(env, "clean")
        shutil.rmtree(data_dir, ignore_errors=True)
