"""Idempotent first-run set-up of the local stack's servers: roles, databases, bucket, topics."""

from __future__ import annotations

import asyncio

from interlock.common.settings import KafkaOptions
from interlock.common.topics import ensure_topics
from interlock.devstack import _postgres
from interlock.devstack._probes import s3_client
from interlock.devstack._stack import (
    POSTGRES_ROLE,
    POSTGRES_SUPERUSER,
    S3_BUCKET,
    SERVICES,
    Stack,
    StackSecrets,
)


async def bootstrap_postgres(stack: Stack, secrets: StackSecrets) -> None:
    """Create (or update) role ``interlock`` and one database per relational service."""
    port = stack.port("postgres")
    password = secrets.postgres_superuser_password
    await _postgres.ensure_login_role(
        port=port,
        superuser=POSTGRES_SUPERUSER,
        password=password,
        role=POSTGRES_ROLE,
        role_password=secrets.postgres_password,
    )
    for service in SERVICES:
        if service.postgres:
            await _postgres.create_database(
                port=port,
                superuser=POSTGRES_SUPERUSER,
                password=password,
                name=service.name,
                owner=POSTGRES_ROLE,
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
