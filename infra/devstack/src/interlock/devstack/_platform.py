"""The whole platform for tests: `make up`'s stack in its default configuration.

One stack (supervisord, the servers, the seven services, Envoy) in a temporary data
folder on the first free port offset of :data:`PLATFORM_PORT_OFFSETS`, deleted after.
The pytest fixture ``default_platform`` shares one between the modules that ask for
it; each test module works in tenants of its own (:meth:`Platform.new_tenant`), so
modules share no data.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from interlock.common.settings import ENV_PREFIX
from interlock.devstack import _control
from interlock.devstack._process import port_is_free
from interlock.devstack._stack import (
    ADMIN_PASSWORD,
    ADMIN_TENANT,
    ADMIN_USERNAME,
    DATA_DIR_ENV,
    PORT_OFFSET_ENV,
    SERVICES,
    Stack,
    StackSecrets,
)

PLATFORM_PORT_OFFSETS: tuple[int, ...] = (100, 200, 300, 400)
"""Port offsets tried in turn, the first whose ports are all free wins (no other stack
of the tests uses them). Every port they give lies below the kernel's ephemeral range
(32768 and up), where any client's outgoing connection, or its TIME_WAIT, may hold one."""
UP_TIMEOUT_S = 600.0
"""Bound of ``up`` itself (it gives each service 120 s to get ready)."""
SLOW_START_S = 300.0
"""How much longer services that were not ready within ``up``'s wait may take (on a
loaded machine they are still starting: supervisord keeps them)."""
LOGIN_ATTEMPTS = 10
"""Logins tried while the gateway answers 429 (it allows 30 a minute per address)."""
RETRY_AFTER_MAX_S = 5.0
"""Longest wait between two of those attempts."""


class PlatformStartError(RuntimeError):
    """``up`` failed; the message holds its output."""


@dataclass(frozen=True, kw_only=True)
class Tenant:
    """A tenant a test module made for itself, and its admin."""

    name: str
    admin_username: str
    admin_password: str


@dataclass(frozen=True, kw_only=True)
class Platform:
    """A running platform: its stack (ports, folders) and its secrets."""

    stack: Stack
    secrets: StackSecrets
    """The generated secrets (database passwords, IAM's key-encryption key)."""

    @property
    def url(self) -> str:
        """The gateway's address."""
        return self.stack.gateway_url

    def login(
        self,
        username: str = ADMIN_USERNAME,
        password: str = ADMIN_PASSWORD,
        tenant: str = ADMIN_TENANT,
    ) -> str:
        """An access token of ``username``, through the gateway (default: the local admin).

        Waits out the gateway's login rate limit, which every module of the session
        shares (all tests come from one address).
        """
        with httpx.Client(base_url=self.url, trust_env=False, timeout=30) as client:
            for _ in range(LOGIN_ATTEMPTS):
                response = client.post(
                    "/api/v1/auth/login",
                    json={"username": username, "password": password, "tenant": tenant},
                )
                if response.status_code != 429:
                    break
                time.sleep(_retry_after_s(response))
        if response.status_code != 200:
            raise RuntimeError(f"login of {username!r} failed: {response.text}")
        token: str = response.json()["access_token"]
        return token

    def new_tenant(self, prefix: str) -> Tenant:
        """Create a tenant named ``<prefix>-<random>`` with an admin of its own."""
        tenant = Tenant(
            name=f"{prefix}-{secrets.token_hex(4)}",
            admin_username=f"{prefix}-admin",
            admin_password=secrets.token_urlsafe(18),
        )
        with httpx.Client(base_url=self.url, trust_env=False, timeout=30) as client:
            response = client.post(
                "/api/v1/tenants",
                json={
                    "name": tenant.name,
                    "admin_username": tenant.admin_username,
                    "admin_password": tenant.admin_password,
                },
                headers={"authorization": f"Bearer {self.login()}"},
            )
        if response.status_code != 201:
            raise RuntimeError(f"creating tenant {tenant.name!r} failed: {response.text}")
        return tenant


def _retry_after_s(response: httpx.Response) -> float:
    wait = response.headers.get("retry-after", "1")
    return min(float(wait), RETRY_AFTER_MAX_S) if wait.isdigit() else 1.0


@contextlib.contextmanager
def running_platform(
    offsets: Sequence[int] = PLATFORM_PORT_OFFSETS, settings: Mapping[str, str] | None = None
) -> Iterator[Platform]:
    """Start a platform, and delete it (stopped at once) after.

    ``settings`` (environment variables, e.g. ``INTERLOCK_TRACE_SAMPLE_RATIO``) are
    given to every process of the stack; without them it runs in the default
    configuration. A module that needs settings of its own starts its own platform on
    offsets of its own.

    Raises:
        PlatformStartError: ``up`` failed, or every offset had a port in use.
    """
    # Not under pytest's temporary folder (0700 for root): PostgreSQL runs unprivileged.
    data_dir = Path(tempfile.mkdtemp(prefix="ilk-platform-"))
    data_dir.chmod(0o755)
    started: Stack | None = None
    try:
        started = _start(data_dir, offsets, settings or {})
        yield Platform(stack=started, secrets=StackSecrets.load_or_create(started.secrets_file)[0])
    finally:
        if started is not None:
            _control.clean(started, lambda line: None)
        shutil.rmtree(data_dir, ignore_errors=True)


def _start(data_dir: Path, offsets: Sequence[int], settings: Mapping[str, str]) -> Stack:
    failures = []
    for offset in offsets:
        env = _default_env(data_dir, offset) | dict(settings)
        stack = Stack.from_env(env)
        if not _all_ports_free(stack):
            failures.append(f"offset {offset}: a port is in use")
            continue
        up = subprocess.run(
            [sys.executable, "-m", "interlock.devstack", "up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=UP_TIMEOUT_S,
            check=False,
        )
        if up.returncode == 0 or ("not ready after" in up.stdout and _became_ready(stack)):
            return stack
        _control.clean(stack, lambda line: None)
        failures.append(f"offset {offset}: up failed:\n{up.stdout}\n{up.stderr}")
        if "already in use" not in up.stdout:  # lost a port race: try the next offset
            break
    raise PlatformStartError("\n".join(failures))


def _became_ready(stack: Stack) -> bool:
    """Wait until the gateway finds every service ready, for :data:`SLOW_START_S` at most."""
    deadline = time.monotonic() + SLOW_START_S
    with httpx.Client(base_url=stack.gateway_url, trust_env=False, timeout=10) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if all(client.get(f"/health/{s.name}").status_code == 200 for s in SERVICES):
                    return True
            time.sleep(2)
    return False


def _default_env(data_dir: Path, offset: int) -> dict[str, str]:
    """This process's environment without any ``INTERLOCK_*`` setting: the defaults."""
    env = {name: value for name, value in os.environ.items() if not _is_setting(name)}
    return env | {DATA_DIR_ENV: str(data_dir), PORT_OFFSET_ENV: str(offset)}


def _is_setting(name: str) -> bool:
    return name.upper().startswith(ENV_PREFIX)


def free_port_offsets(offsets: Iterable[int]) -> Iterator[int]:
    """Those of ``offsets``, in order, at which every port of a stack is free now."""
    for offset in offsets:
        stack = Stack(data_dir=Path("/unused"), port_offset=offset)
        if _all_ports_free(stack):
            yield offset


def _all_ports_free(stack: Stack) -> bool:
    programs: Mapping[str, Mapping[str, int]] = stack.ports_by_program()
    return all(port_is_free(port) for ports in programs.values() for port in ports.values())
