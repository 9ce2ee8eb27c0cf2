"""Idempotent first-run set-up of the local stack's servers: roles, databases, bucket, topics."""

from __future__ import annotations

import asyncio

from interlock.common.settings import KafkaOptions
from interlock.common.topics import ensure_topics
from interlock.devstack import _postgres
from interlock.devstack._probes import s3_client
from interlock.devstack._stack import (
    LEGACY_POSTGRES_ROLE,
    POSTGRES_SUPERUSER,
    S3_BUCKET,
    Stack,
    StackSecrets,
)


async def bootstrap_postgres(stack: Stack, secrets: StackSecrets) -> None:
    """A role and a database per relational service.

    Data folders from before took one shared role (``interlock``): its databases are
    handed over to the services' own roles.
    """
    await _postgres.create_service_databases(
        port=stack.port("postgres"),
        superuser=POSTGRES_SUPERUSER,
        password=secrets.postgres_superuser_password,
        roles=secrets.postgres_passwords,
        legacy_owner=LEGACY_POSTGRES_ROLE,
    )


async def bootstrap_s3(stack: Stack, secrets: StackSecrets) -> None:
    """Create the artifact bucket unless it exists."""
    client = s3_client(
        endpoint=stack.s3_endpoint,
        access_key=secrets.s3_access_key,
        secret_key=secrets.s3_secret_key,
    )

    def ensure_bucket() -> None:
        if not client.bucket_exists(S3_BUCKET):
            client.make_bucket(S3_BUCKET)

    await asyncio.to_thread(ensure_bucket)


async def bootstrap_kafka(stack: Stack) -> None:
    """Create every event topic (the broker keeps nothing across restarts)."""
    options = KafkaOptions(
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        kafka_partitions=stack.kafka_partitions,
        kafka_replication_factor=1,
    )
    await ensure_topics(options)
