"""What the pytest fixtures hand to tests: addresses and credentials of running servers."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from interlock.devstack import _postgres
from interlock.devstack._mail import read_maildir
from interlock.devstack._probes import run_sync


@dataclass(frozen=True, kw_only=True)
class PostgresServer:
    """A running PostgreSQL server (password authentication on loopback TCP)."""

    host: str
    """Address it listens on (``127.0.0.1``)."""
    port: int
    """TCP port."""
    user: str
    """Superuser name."""
    password: str
    """The superuser's password."""

    def dsn(self, database: str) -> str:
        """Return the libpq URL of ``database`` for the superuser, without the password."""
        return _postgres.libpq_url(
            user=self.user, host=self.host, port=self.port, database=database
        )

    def create_database(self, name: str) -> str:
        """Create database ``name`` unless it exists and return its DSN (no password)."""
        run_sync(
            lambda: _postgres.create_database(
                port=self.port, superuser=self.user, password=self.password, name=name
            )
        )
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, closing its open connections."""
        run_sync(
            lambda: _postgres.drop_database(
                port=self.port, superuser=self.user, password=self.password, name=name
            )
        )


@dataclass(frozen=True, kw_only=True)
class PostgresDatabase:
    """A fresh database that belongs to one test."""

    name: str
    """Database name."""
    dsn: str
    """libpq URL without the password."""
    password: str
    """Password of the DSN's user."""


@dataclass(frozen=True, kw_only=True)
class KafkaServer:
    """A running Kafka-protocol broker (memory storage)."""

    bootstrap_servers: str
    """``127.0.0.1:PORT``."""


@dataclass(frozen=True, kw_only=True)
class MongoServer:
    """A running MongoDB-protocol server."""

    url: str
    """``mongodb://127.0.0.1:PORT/?directConnection=true``."""


@dataclass(frozen=True, kw_only=True)
class S3Server:
    """A running S3-protocol object store."""

    endpoint: str
    """``127.0.0.1:PORT`` (MinIO SDK style: no scheme)."""
    access_key: str
    """Access key with every permission."""
    secret_key: str
    """Its secret key."""
    secure: bool = False
    """Whether the endpoint speaks TLS. Always False locally."""

    @property
    def url(self) -> str:
        """The endpoint as an ``http://`` URL."""
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"


@dataclass(frozen=True, kw_only=True)
class SmtpServer:
    """A running SMTP server that accepts and keeps every message."""

    host: str
    """Address it listens on."""
    port: int
    """TCP port."""
    mail_dir: Path
    """The Maildir the messages are stored in."""

    def messages(self) -> list[EmailMessage]:
        """Return every message received so far, oldest first."""
        return read_maildir(self.mail_dir)
