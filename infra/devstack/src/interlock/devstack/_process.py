"""Operating-system helpers: free ports, process groups, log tails, the unprivileged user."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
"""Every server and service of the dev stack binds this address only."""

SERVICE_USER = "interlock"
"""System user that runs PostgreSQL when the caller is root (``initdb`` refuses root)."""


@dataclass(frozen=True)
class UnixUser:
    """A system account a child process runs as."""

    name: str
    uid: int
    gid: int


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Return ``count`` distinct TCP ports that are free on ``host`` right now.

    The sockets are held open together until all ports are chosen, so the ports
    differ from each other; another process may still take one before it is used.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Tell whether a server could bind ``host:port`` now (``SO_REUSEADDR``, as servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def log_tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a log file, or a note when it cannot be read."""
    try:
        with path.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(max(0, size - 64 * 1024))
            data = stream.read()
    except OSError as exc:
        return f"(no log at {path}: {exc.strerror})"
    text = data.decode("utf-8", errors="replace")
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"(log {path} is empty)"


def is_root() -> bool:
    """Tell whether this process runs with root privileges."""
    return os.geteuid() == 0


def ensure_service_user(name: str = SERVICE_USER) -> UnixUser | None:
    """Return the unprivileged user PostgreSQL must run as, creating it if needed.

    Returns:
        ``None`` when this process is not root (servers then run as the caller),
        otherwise the system user ``name``, created with ``useradd`` if missing.
    """
    if not is_root():
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        # 9: the user exists (another process created it meanwhile).
        if result.returncode not in (0, 9):
            raise RuntimeError(f"useradd {name} failed: {result.stderr.strip()}") from None
        entry = pwd.getpwnam(name)
    return UnixUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def chown_tree(path: Path, user: UnixUser | None) -> None:
    """Give ``path`` and everything below it to ``user`` (no-op for ``None``)."""
    if user is None:
        return
    os.chown(path, user.uid, user.gid)
    for root, dirs, files in os.walk(path):
        for entry in (*dirs, *files):
            os.chown(Path(root) / entry, user.uid, user.gid, follow_symlinks=False)


def group_name(gid: int) -> str:
    """Return the name of group ``gid`` (its number when it has no name)."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def pid_alive(pid: int) -> bool:
    """Tell whether process ``pid`` exists (a zombie counts as gone)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


@dataclass(frozen=True)
class ProcessRef:
    """A process identified by pid and start time, so a reused pid is not mistaken for it."""

    pid: int
    start_ticks: int


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (state first), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_tree(roots: Iterable[int]) -> set[ProcessRef]:
    """Return the live processes ``roots`` and all their descendants.

    Children that called ``setsid`` (PostgreSQL's backends do) are included.
    """
    children: dict[int, list[int]] = {}
    refs: dict[int, ProcessRef] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None or fields[0] in ("Z", "X"):
            continue
        pid = int(entry.name)
        refs[pid] = ProcessRef(pid=pid, start_ticks=int(fields[19]))
        children.setdefault(int(fields[1]), []).append(pid)
    found: set[ProcessRef] = set()
    pending = [pid for pid in roots if pid in refs]
    while pending:
        pid = pending.pop()
        if refs[pid] in found:
            continue
        found.add(refs[pid])
        pending.extend(children.get(pid, []))
    return found


def processes_with_env(name: str, value: str) -> set[ProcessRef]:
    """Live processes whose environment holds ``name=value`` (only those we may read)."""
    wanted = f"{name}={value}".encode()
    found: set[ProcessRef] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = _stat_fields(int(entry.name))
        if wanted in environ and fields is not None and fields[0] not in ("Z", "X"):
            found.add(ProcessRef(pid=int(entry.name), start_ticks=int(fields[19])))
    return found


def alive_refs(refs: Iterable[ProcessRef]) -> set[ProcessRef]:
    """The processes of ``refs`` that still run (same pid, same start time, not a zombie)."""
    alive: set[ProcessRef] = set()
    for ref in refs:
        fields = _stat_fields(ref.pid)
        if (
            fields is not None
            and fields[0] not in ("Z", "X")
            and int(fields[19]) == ref.start_ticks
        ):
            alive.add(ref)
    return alive


def wait_refs_gone(refs: Iterable[ProcessRef], timeout_s: float) -> set[ProcessRef]:
    """Wait until every process of ``refs`` has exited; return those alive at the deadline."""
    pending = set(refs)
    deadline = time.monotonic() + timeout_s
    while True:
        pending = alive_refs(pending)
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.1)


def kill_refs(refs: Iterable[ProcessRef], sig: signal.Signals) -> None:
    """Send ``sig`` to each process of ``refs`` that is still the same process."""
    for ref in alive_refs(refs):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(ref.pid, sig)


def process_group_members(pgids: Iterable[int]) -> dict[int, list[int]]:
    """Map each process group id in ``pgids`` to the live pids still in it."""
    wanted = set(pgids)
    found: dict[int, list[int]] = {pgid: [] for pgid in wanted}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, pgid = fields[0], int(fields[2])
        if pgid in wanted and state not in ("Z", "X"):
            found[pgid].append(int(entry.name))
    return {pgid: pids for pgid, pids in found.items() if pids}


def kill_process_groups(pgids: Iterable[int], sig: signal.Signals) -> None:
    """Send ``sig`` to every process group in ``pgids`` that still exists."""
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def wait_gone(pgids: Iterable[int], timeout_s: float) -> dict[int, list[int]]:
    """Wait until no process is left in ``pgids``; return what remains at the deadline."""
    groups = list(pgids)
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = process_group_members(groups)
        if not remaining or time.monotonic() >= deadline:
            return remaining
        time.sleep(0.1)


@contextlib.contextmanager
def private_file(path: Path) -> Iterator[int]:
    """Open ``path`` for writing with mode 0600 (created or truncated), yielding the fd."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        yield fd
    finally:
        os.close(fd)
