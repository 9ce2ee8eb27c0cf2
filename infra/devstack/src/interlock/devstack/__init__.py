"""The local platform without Docker, and the test fixtures that start the same servers."""

from interlock.devstack._binaries import BinaryNotFoundError, envoy_binary
from interlock.devstack._handles import (
    KafkaServer,
    MongoServer,
    PostgresDatabase,
    PostgresServer,
    S3Server,
    SmtpServer,
)
from interlock.devstack._probes import ServerStartError

__all__ = [
    "BinaryNotFoundError",
    "KafkaServer",
    "MongoServer",
    "PostgresDatabase",
    "PostgresServer",
    "S3Server",
    "ServerStartError",
    "SmtpServer",
    "envoy_binary",
]
