"""``up``, ``down``, ``status`` and ``logs`` of the local platform (supervisord does the rest)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shutil
import signal
import stat
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from interlock.devstack import _bootstrap, _servers
from interlock.devstack._envoy import render_envoy_config
from interlock.devstack._paths import repo_root
from interlock.devstack._probes import (
    Probe,
    ServerStartError,
    describe_error,
    http_probe,
    run_sync,
    wait_ready,
)
from interlock.devstack._process import (
    LOOPBACK,
    ProcessRef,
    UnixUser,
    ensure_service_user,
    kill_process_groups,
    kill_refs,
    log_tail,
    port_is_free,
    process_tree,
    processes_with_env,
    wait_refs_gone,
)
from interlock.devstack._stack import (
    ADMIN_PASSWORD,
    ADMIN_TENANT,
    ADMIN_USERNAME,
    INFRA_PROGRAMS,
    SERVICES,
    Stack,
    StackSecrets,
    is_service_variable,
)
from interlock.devstack._supervisor import (
    DEAD_STATES,
    ProcessInfo,
    Program,
    Supervisor,
    SupervisorError,
)

Output = Callable[[str], None]
"""Where progress lines go (stdout in the CLI)."""

SERVICE_START_TIMEOUT_S = 120.0
"""How long a service may take to answer 200 on ``/readyz``."""
GATEWAY_ROUTE_TIMEOUT_S = 30.0
"""How long the gateway's ``/health/<service>`` routes may take to answer 200."""
DOWN_TIMEOUT_S = 150.0
"""How long ``down`` waits for every process before it kills the rest."""

WATCHDOG = "watchdog"
"""The supervisord event listener that restarts services failing ``/healthz``."""

_INFRA_PRIORITY = 10
_SERVICE_PRIORITY = 100


class ComponentError(RuntimeError):
    """A component failed to start; ``component`` names it, the message says why."""

    def __init__(self, component: str, message: str) -> None:
        super().__init__(message)
        self.component = component


@dataclass(frozen=True)
class _Check:
    """A component ``up`` waits for, and ``status`` reports on."""

    name: str
    probe: Probe
    timeout_s: float


# --- up -------------------------------------------------------------------------------


def up(stack: Stack, out: Output) -> int:
    """Start the whole platform and wait until every part is ready.

    Returns:
        The process exit code: 0 when everything is ready.
    """
    started = time.monotonic()
    supervisor = Supervisor(stack.supervisor_dir)
    if supervisor.daemon_pid() is not None and supervisor.responsive():
        out(f"Interlock is already running (data in {stack.data_dir}).")
        return 0 if status(stack, out) else 1

    leftovers = _leftovers(stack)
    if leftovers:
        out(
            f"{len(leftovers)} processes of an earlier run (data in {stack.data_dir}) are still "
            "running without supervisord: run `make down` first."
        )
        return 1
    taken = _taken_ports(stack)
    if taken:
        for line in taken:
            out(line)
        out("Stop whatever holds these ports, or set INTERLOCK_DEV_PORT_OFFSET.")
        return 1

    try:
        secrets, postgres_user = _prepare(stack, out)
        specs = stack.infra_specs(secrets, postgres_user=postgres_user)
        supervisor.write_config(_programs(stack, secrets, specs))
        inherited = {k: v for k, v in os.environ.items() if not is_service_variable(k)}
        supervisor.start_daemon(env=stack.marker, inherited=inherited)
        out(f"supervisord started (config {supervisor.config})")

        for spec in specs:
            supervisor.start(spec.name)
        checks = [_Check(spec.name, spec.probe, spec.start_timeout_s) for spec in specs]
        _wait_all(stack, supervisor, checks, out)

        run_sync(lambda: _bootstrap_all(stack, secrets))
        out("  bootstrap      role, databases, bucket and topics in place")

        for service in SERVICES:
            supervisor.start(service.name)
        _wait_all(stack, supervisor, _service_checks(stack), out)

        routes = _Check("gateway routes", _gateway_routes_probe(stack), GATEWAY_ROUTE_TIMEOUT_S)
        _wait_all(stack, supervisor, [routes], out, program=lambda _: "gateway")
        supervisor.start(WATCHDOG)
        out(f"  {WATCHDOG:<14} restarts a service whose /healthz fails")
    except SupervisorError as exc:
        out(f"\nsupervisord FAILED: {exc}\n--- {supervisor.log_file} ---")
        out(log_tail(supervisor.log_file, 25))
        return 1
    except ComponentError as exc:
        out(f"\n{exc.component} FAILED: {exc}")
        out(
            f"\nThe rest of the stack is still running: `make logs SERVICE={exc.component}`, "
            "`make status`, and `make down` to stop it."
        )
        return 1

    elapsed = time.monotonic() - started
    out("")
    out(f"Interlock is up in {elapsed:.1f} s.")
    out(f"  Gateway:  {stack.gateway_url}")
    out(
        f"  Login:    user {ADMIN_USERNAME!r}, password {ADMIN_PASSWORD!r}, "
        f"tenant {ADMIN_TENANT!r} (local defaults)"
    )
    out(f"  Data:     {stack.data_dir}  (logs in {stack.logs_dir})")
    if stack.postgres_home is not None:
        out(f"  Postgres: {stack.postgres_home}  (root runs the stack; `make clean` deletes it)")
    return 0


def _taken_ports(stack: Stack) -> list[str]:
    lines = []
    for program, ports in stack.ports_by_program().items():
        for label, port in ports.items():
            if not port_is_free(port):
                what = program if label == program else f"{program}, {label}"
                lines.append(f"port {port} ({what}) is already in use by another process")
    return lines


def _prepare(stack: Stack, out: Output) -> tuple[StackSecrets, UnixUser | None]:
    """Create folders, secrets, the PostgreSQL cluster and every config file."""
    stack.data_dir.mkdir(parents=True, exist_ok=True)
    for folder in (stack.logs_dir, stack.supervisor_dir, stack.envoy_config.parent):
        folder.mkdir(parents=True, exist_ok=True)
    secrets, created = StackSecrets.load_or_create(stack.secrets_file)
    if created:
        out(f"  secrets        generated into {stack.secrets_file} (mode 0600)")
    user = prepare_postgres(stack, secrets, secrets_created=created, out=out)
    _servers.prepare_mongo(stack.mongo_dir)
    _servers.prepare_s3(
        stack.s3_dir, access_key=secrets.s3_access_key, secret_key=secrets.s3_secret_key
    )
    stack.mail_dir.mkdir(parents=True, exist_ok=True)
    stack.envoy_config.write_text(
        render_envoy_config(
            upstreams=stack.envoy_upstreams(),
            listener=(LOOPBACK, stack.port("gateway")),
            admin=(LOOPBACK, stack.port("gateway-admin")),
            header=f"# GENERATED by `make up` from {repo_root() / 'infra/envoy/envoy.yaml.tmpl'}\n",
            authz=stack.gateway_authz,
        )
    )
    return secrets, user


def prepare_postgres(
    stack: Stack, secrets: StackSecrets, *, secrets_created: bool, out: Output
) -> UnixUser | None:
    """Give PostgreSQL its binaries and its cluster (``initdb`` on the first start).

    Returns:
        The unprivileged user PostgreSQL runs as (``None``: the caller).
    """
    user = ensure_service_user()
    install_dir = stack.postgres_install_dir
    if stack.postgres_home is not None and install_dir is not None:
        _make_postgres_home(stack.postgres_home, stack.data_dir)
        _servers.copy_postgres_install(install_dir, user=user)
    postgres_dir = stack.postgres_dir
    _check_reachable(user, [postgres_dir.parent, stack.postgres_bin_dir])
    if (postgres_dir / "PG_VERSION").is_file():
        if secrets_created:
            raise ComponentError(
                "postgres",
                f"{stack.secrets_file} was regenerated but the cluster in {postgres_dir} keeps "
                "the old password: run `make clean` (deletes local data) or restore secrets.env",
            )
        return user
    if postgres_dir.exists() and any(postgres_dir.iterdir()):
        raise ComponentError("postgres", f"{postgres_dir} is not an empty folder nor a cluster")
    postgres_dir.mkdir(mode=0o700, exist_ok=True)
    if user is not None:
        os.chown(postgres_dir, user.uid, user.gid)
    out("  postgres       initdb (first start)")
    try:
        _servers.prepare_postgres(
            postgres_dir,
            bin_dir=stack.postgres_bin_dir,
            superuser="postgres",
            password=secrets.postgres_superuser_password,
            user=user,
        )
    except RuntimeError as exc:
        raise ComponentError("postgres", str(exc)) from exc
    return user


def _make_postgres_home(home: Path, data_dir: Path) -> None:
    """Create PostgreSQL's folder outside the data folder, and say whose it is."""
    created = [folder for folder in (home.parent, home) if not folder.is_dir()]
    home.mkdir(parents=True, exist_ok=True)
    for folder in created:
        folder.chmod(0o755)  # whatever the umask: PostgreSQL's user must get through
    (home / "README").write_text(
        f"PostgreSQL of the Interlock dev stack with data in {data_dir}.\n"
        "`make clean` in that checkout deletes this folder.\n"
    )


def _check_reachable(user: UnixUser | None, paths: Sequence[Path]) -> None:
    """Fail clearly when ``user`` cannot enter a folder on the way to ``paths``."""
    if user is None:
        return
    for path in paths:
        for folder in [*reversed(path.parents), path]:
            info = folder.stat()
            mode = info.st_mode
            if info.st_uid == user.uid:
                allowed = mode & stat.S_IXUSR
            elif info.st_gid == user.gid:
                allowed = mode & stat.S_IXGRP
            else:
                allowed = mode & stat.S_IXOTH
            if not allowed:
                raise ComponentError(
                    "postgres",
                    f"PostgreSQL runs as user {user.name!r}, which cannot enter {folder} "
                    f"(mode {stat.filemode(mode)})",
                )


def _programs(
    stack: Stack, secrets: StackSecrets, specs: Sequence[_servers.ServerSpec]
) -> list[Program]:
    programs = [
        Program(
            name=spec.name,
            argv=spec.argv,
            env=spec.env,
            user=None if spec.user is None else spec.user.name,
            directory=spec.directory or stack.data_dir,
            log_file=stack.log_file(spec.name),
            stop_signal=spec.stop_signal,
            stop_wait_s=int(spec.stop_timeout_s),
            priority=_INFRA_PRIORITY + index,
        )
        for index, spec in enumerate(specs)
    ]
    programs += [
        Program(
            name=service.name,
            argv=stack.service_command(service),
            env=stack.service_env(service, secrets),
            directory=repo_root(),
            log_file=stack.log_file(service.name),
            stop_wait_s=20,
            # A service that dies within 10 s (an import error, bad settings) is
            # retried 3 times, then FATAL: `up` reports it instead of waiting.
            start_secs=10,
            priority=_SERVICE_PRIORITY + index,
        )
        for index, service in enumerate(SERVICES)
    ]
    programs.append(
        Program(
            name=WATCHDOG,
            argv=[
                sys.executable,
                "-m",
                "interlock.devstack._watchdog",
                *(
                    f"{service.name}=http://{LOOPBACK}:{stack.http_port(service)}/healthz"
                    for service in SERVICES
                ),
            ],
            directory=stack.data_dir,
            log_file=stack.log_file(WATCHDOG),
            events="TICK_5",
            priority=_SERVICE_PRIORITY + len(SERVICES),
        )
    )
    return programs


def _service_checks(stack: Stack) -> list[_Check]:
    return [
        _Check(
            service.name,
            http_probe(f"http://{LOOPBACK}:{stack.http_port(service)}/readyz"),
            SERVICE_START_TIMEOUT_S,
        )
        for service in SERVICES
    ]


def _gateway_routes_probe(stack: Stack) -> Probe:
    """Every ``/health/<service>`` route of the gateway answers 200."""
    probes = [http_probe(f"{stack.gateway_url}/health/{s.name}") for s in SERVICES]

    async def probe() -> None:
        await asyncio.gather(*(one() for one in probes))

    return probe


def _wait_all(
    stack: Stack,
    supervisor: Supervisor,
    checks: Sequence[_Check],
    out: Output,
    *,
    program: Callable[[str], str] = lambda name: name,
) -> None:
    """Wait for every check at once, printing a line per component as it gets ready."""

    async def one(check: _Check) -> None:
        name = program(check.name)

        def alive() -> bool:
            return supervisor.state(name) not in DEAD_STATES

        try:
            elapsed = await wait_ready(
                check.name,
                check.probe,
                timeout_s=check.timeout_s,
                log_path=stack.log_file(name),
                is_alive=alive,
                interval_s=0.25,
            )
        except ServerStartError as exc:
            raise ComponentError(name, str(exc)) from None
        out(f"  {check.name:<14} ready after {elapsed:.1f} s")

    async def every() -> list[BaseException | None]:
        return await asyncio.gather(*(one(check) for check in checks), return_exceptions=True)

    failures = [result for result in run_sync(every) if result is not None]
    if failures:
        for failure in failures[1:]:
            out(f"\n{getattr(failure, 'component', '?')} FAILED: {failure}")
        raise failures[0]


async def _bootstrap_all(stack: Stack, secrets: StackSecrets) -> None:
    steps = {
        "postgres": _bootstrap.bootstrap_postgres(stack, secrets),
        "s3": _bootstrap.bootstrap_s3(stack, secrets),
        "kafka": _bootstrap.bootstrap_kafka(stack),
    }
    results = await asyncio.gather(*steps.values(), return_exceptions=True)
    for component, result in zip(steps, results, strict=True):
        if isinstance(result, BaseException):
            raise ComponentError(component, f"bootstrap failed: {describe_error(result)}")


# --- down -----------------------------------------------------------------------------


def down(stack: Stack, out: Output, *, graceful: bool = True) -> int:
    """Stop supervisord and every program, and make sure no process is left.

    Args:
        stack: The stack to stop.
        out: Where progress lines go.
        graceful: Stop each program with its own signal and wait (services first, then
            servers), as ``make down`` must. ``False`` (``clean``, whose data is deleted
            next) stops everything at once: see :func:`_stop_at_once`.

    Returns:
        The process exit code: 0 when nothing of the stack runs any more.
    """
    supervisor = Supervisor(stack.supervisor_dir)
    pid = supervisor.daemon_pid()
    if pid is None and not _leftovers(stack):
        out(f"Interlock is not running (data in {stack.data_dir}).")
        return 0
    started = time.monotonic()
    if pid is not None:
        programs = []
        if supervisor.responsive():
            programs = [info for info in supervisor.processes() if info.pid]
        groups = [info.pid for info in programs]
        tree = process_tree([pid, *groups])
        if graceful:
            out(
                f"Stopping {len(groups)} programs and supervisord "
                "(S3 takes ~15 s to stop cleanly) ..."
            )
            _stop_gracefully(supervisor, pid)
        else:
            out(f"Stopping {len(groups)} programs and supervisord at once (data goes next) ...")
            _stop_at_once(pid, programs, tree)
        if wait_refs_gone(tree, DOWN_TIMEOUT_S):
            kill_process_groups(groups, signal.SIGKILL)
    leftovers = _leftovers(stack)
    if leftovers:
        # supervisord died earlier, or a program left children behind: stop them directly.
        out(f"Stopping {len(leftovers)} leftover processes of this stack ...")
        kill_refs(leftovers, signal.SIGTERM)
        if wait_refs_gone(leftovers, 30.0):
            kill_refs(leftovers, signal.SIGKILL)
        leftovers = wait_refs_gone(_leftovers(stack), 10.0)
    if leftovers:
        out(f"Processes still running after SIGKILL: {sorted(ref.pid for ref in leftovers)}")
        return 1
    kept = f"; data kept in {stack.data_dir}" if graceful else ""
    out(f"Interlock stopped in {time.monotonic() - started:.1f} s{kept}.")
    return 0


def _stop_gracefully(supervisor: Supervisor, pid: int) -> None:
    """Each program with its own stop signal and wait, services before servers."""
    try:
        # Services first (they flush and commit against the servers), then the servers;
        # each phase in parallel: supervisord alone would stop one program at a time.
        # The watchdog goes before them, so it restarts nothing that is stopping.
        supervisor.stop_all([WATCHDOG], timeout_s=DOWN_TIMEOUT_S)
        supervisor.stop_all([service.name for service in SERVICES], timeout_s=DOWN_TIMEOUT_S)
        supervisor.stop_all(INFRA_PROGRAMS, timeout_s=DOWN_TIMEOUT_S)
        supervisor.shutdown()
    except (OSError, xmlrpc.client.Error):
        os.kill(pid, signal.SIGTERM)


def _stop_at_once(pid: int, programs: Sequence[ProcessInfo], tree: set[ProcessRef]) -> None:
    """SIGKILL supervisord and every program but PostgreSQL: gone in well under a second.

    For a stack whose data is deleted right after. A graceful stop takes ~18 s, nearly
    all of it S3's (SeaweedFS's filer waits 15 s for gRPC streams that never end), and
    keeps nothing that outlives the data. supervisord goes first, so it restarts
    nothing. PostgreSQL gets its immediate shutdown (SIGQUIT) instead: as quick, and it
    frees the cluster's System V shared memory, which a SIGKILL would leave behind.
    """
    postgres = next((info.pid for info in programs if info.name == "postgres"), None)
    postgres_tree = process_tree([postgres]) if postgres is not None else set()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if postgres is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(postgres, signal.SIGQUIT)
    kill_refs(tree - postgres_tree, signal.SIGKILL)


# --- clean ----------------------------------------------------------------------------


def clean(stack: Stack, out: Output) -> int:
    """Stop the stack, then delete everything ``up`` wrote (data folder and PostgreSQL's home).

    Only what the stack makes is deleted: the data folder itself goes when nothing else
    is left in it (``INTERLOCK_DEV_DATA_DIR`` may name a folder that holds other files).

    Returns:
        The process exit code: 0 when the stack is stopped and its files are gone.
    """
    code = down(stack, out, graceful=False)
    if code != 0:
        out("Nothing deleted: the stack did not stop.")
        return code
    for path in [*stack.written_paths(), *stack.s3_ports().leftover_sockets()]:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    folders = [stack.data_dir]
    if stack.postgres_home is not None:
        folders.append(stack.postgres_home.parent)
    for folder in folders:
        with contextlib.suppress(OSError):  # not empty (other files, other stacks), or gone
            folder.rmdir()
    out(f"Deleted the local data in {stack.data_dir}.")
    if stack.postgres_home is not None:
        out(f"Deleted PostgreSQL's folder {stack.postgres_home}.")
    return 0


def _leftovers(stack: Stack) -> set[ProcessRef]:
    """Every process tagged as belonging to ``stack``."""
    ((name, value),) = stack.marker.items()
    return processes_with_env(name, value)


# --- status ---------------------------------------------------------------------------


def status(stack: Stack, out: Output) -> bool:
    """Print every program with its state, pid and health.

    Returns:
        Whether every program runs and answers its probe.
    """
    supervisor = Supervisor(stack.supervisor_dir)
    if supervisor.daemon_pid() is None or not supervisor.responsive():
        out(f"Interlock is not running (data in {stack.data_dir}).")
        return False
    order = {name: index for index, name in enumerate(_program_names())}
    processes = sorted(supervisor.processes(), key=lambda info: order.get(info.name, len(order)))
    checks = {check.name: check for check in _status_checks(stack)}

    async def probe(name: str) -> str:
        check = checks.get(name)
        if check is None:
            return "-"
        try:
            await asyncio.wait_for(check.probe(), 5.0)
        except Exception as exc:  # any failure is "not ready"
            return f"not ready ({describe_error(exc)[:60]})"
        return "ready"

    async def every() -> list[str]:
        return list(await asyncio.gather(*(probe(info.name) for info in processes)))

    _import_clients()
    health = run_sync(every)
    out(f"{'PROGRAM':<14}{'STATE':<10}{'PID':>8}  {'UPTIME':<10}HEALTH")
    healthy = True
    for info, result in zip(processes, health, strict=True):
        uptime = info.description.split("uptime ")[-1] if info.state == "RUNNING" else ""
        out(f"{info.name:<14}{info.state:<10}{info.pid or '':>8}  {uptime:<10}{result}")
        # A service stays STARTING for its first 10 s (startsecs) while already serving.
        healthy = healthy and info.state in ("RUNNING", "STARTING") and result in ("ready", "-")
    out(f"Gateway: {stack.gateway_url}   data: {stack.data_dir}")
    return healthy


def _import_clients() -> None:
    """Import the probes' client libraries up front.

    The probes import them lazily; imported inside the concurrent probes, the first
    import blocks the event loop long enough on a busy machine to time the other
    probes out.
    """
    for module in ("asyncpg", "aiokafka", "pymongo", "minio", "httpx"):
        importlib.import_module(module)


def _status_checks(stack: Stack) -> list[_Check]:
    try:
        secrets, _ = StackSecrets.load_or_create(stack.secrets_file)
    except RuntimeError:
        return _service_checks(stack)
    specs = stack.infra_specs(secrets, postgres_user=None)
    return [_Check(spec.name, spec.probe, 5.0) for spec in specs] + _service_checks(stack)


def _program_names() -> list[str]:
    return [*INFRA_PROGRAMS, *(service.name for service in SERVICES), WATCHDOG]


# --- logs -----------------------------------------------------------------------------


def logs(stack: Stack, name: str | None, out: Output) -> int:
    """Follow one program's log (``tail -F``), or all of them prefixed by name."""
    programs = _program_names()
    if name is not None and name not in programs:
        out(f"unknown program {name!r}; choose one of: {', '.join(programs)}")
        return 2
    chosen = programs if name is None else [name]
    width = max(len(program) for program in chosen)

    def show(program: str, line: str) -> None:
        out(line if name is not None else f"{program:<{width}} | {line}")

    followers = [_Follower(program, stack.log_file(program)) for program in chosen]
    for follower in followers:
        if follower.path.exists():
            for line in log_tail(follower.path, 100 if name else 10).splitlines():
                show(follower.name, line)
        follower.skip_to_end()
    try:
        while True:
            for follower in followers:
                for line in follower.read_new():
                    show(follower.name, line)
            time.sleep(0.25)
    except KeyboardInterrupt:
        return 0


class _Follower:
    """Reads lines appended to a log file, across rotation and truncation."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self._position = 0
        self._inode = 0
        self._partial = b""

    def skip_to_end(self) -> None:
        try:
            info = self.path.stat()
        except OSError:
            return
        self._inode, self._position = info.st_ino, info.st_size

    def read_new(self) -> list[str]:
        try:
            info = self.path.stat()
        except OSError:
            return []
        if info.st_ino != self._inode or info.st_size < self._position:
            self._inode, self._position, self._partial = info.st_ino, 0, b""
        if info.st_size == self._position:
            return []
        with self.path.open("rb") as stream:
            stream.seek(self._position)
            data = self._partial + stream.read()
            self._position = stream.tell()
        *lines, self._partial = data.split(b"\n")
        return [line.decode("utf-8", errors="replace") for line in lines]


def stdout(line: str) -> None:
    """Write one line to stdout at once (progress must show while waiting)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
