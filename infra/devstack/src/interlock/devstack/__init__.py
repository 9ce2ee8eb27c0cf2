"""The local platform without Docker, and the test fixtures that start the same servers."""

from interlock.devstack._binaries import BinaryNotFoundError, envoy_binary
from interlock.devstack._cli import main
from interlock.devstack._envoy import render_compose_config, render_envoy_config
from interlock.devstack._handles import (
    KafkaServer,
    MongoServer,
    PostgresDatabase,
    PostgresServer,
    S3Server,
    SmtpServer,
)
from interlock.devstack._platform import (
    Platform,
    PlatformStartError,
    Tenant,
    free_port_offsets,
    running_platform,
)
from interlock.devstack._probes import ServerStartError
from interlock.devstack._runner import RestartableServer
from interlock.devstack._stack import SERVICES, ServiceDef, Stack

__all__ = [
    "SERVICES",
    "BinaryNotFoundError",
    "KafkaServer",
    "MongoServer",
    "Platform",
    "PlatformStartError",
    "PostgresDatabase",
    "PostgresServer",
    "RestartableServer",
    "S3Server",
    "ServerStartError",
    "ServiceDef",
    "SmtpServer",
    "Stack",
    "Tenant",
    "envoy_binary",
    "free_port_offsets",
    "main",
    "render_compose_config",
    "render_envoy_config",
    "running_platform",
]
