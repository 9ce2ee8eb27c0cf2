"""Each fixture of the pytest plugin against its real server."""

from __future__ import annotations

import io
import subprocess
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from minio import Minio
from pymongo import AsyncMongoClient

from interlock.devstack import (
    KafkaServer,
    MongoServer,
    PostgresDatabase,
    PostgresServer,
    S3Server,
    SmtpServer,
)

pytestmark = pytest.mark.integration


async def test_postgres_database_roundtrip(postgres_database: PostgresDatabase) -> None:
    conn = await asyncpg.connect(postgres_database.dsn, password=postgres_database.password)
    try:
        await conn.execute("CREATE TABLE item (id int PRIMARY KEY, name text NOT NULL)")
        await conn.executemany("INSERT INTO item VALUES ($1, $2)", [(1, "a"), (2, "b")])
        rows = await conn.fetch("SELECT id, name FROM item ORDER BY id")
    finally:
        await conn.close()
    assert [tuple(row) for row in rows] == [(1, "a"), (2, "b")]


async def test_postgres_databases_are_fresh(
    postgres_database: PostgresDatabase, postgres_server: PostgresServer
) -> None:
    conn = await asyncpg.connect(postgres_database.dsn, password=postgres_database.password)
    try:
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
    finally:
        await conn.close()
    assert tables == 0
    assert postgres_database.dsn == postgres_server.dsn(postgres_database.name)


async def test_postgres_create_database_is_idempotent(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.create_database("idempotent_db")
    assert postgres_server.create_database("idempotent_db") == dsn
    assert (
        dsn == f"postgresql://{postgres_server.user}@127.0.0.1:{postgres_server.port}/idempotent_db"
    )
    assert postgres_server.password not in dsn


async def test_postgres_requires_the_password(postgres_server: PostgresServer) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(postgres_server.dsn("postgres"), password="wrong")


async def test_kafka_produce_and_consume(kafka_server: KafkaServer) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_server.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic("fixture.test", num_partitions=1, replication_factor=1)]
        )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait("fixture.test", b"hello", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        "fixture.test",
        bootstrap_servers=kafka_server.bootstrap_servers,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"k", b"hello")


async def test_mongo_crud_index_and_change_stream(mongo_server: MongoServer) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_server.url)
    try:
        coll = client["fixture"]["items"]
        await coll.create_index("name", unique=True)
        async with await coll.watch() as stream:
            await coll.insert_one({"name": "a", "n": 1})
            change = await stream.next()
        assert change["operationType"] == "insert"
        assert change["fullDocument"]["name"] == "a"
        found = await coll.find_one({"name": "a"}, {"_id": 0})
        assert found == {"name": "a", "n": 1}
        indexes = await coll.index_information()
        assert any(info["key"] == [("name", 1)] for info in indexes.values())
    finally:
        await client.close()


def test_s3_put_get_and_presigned_get(s3_server: S3Server) -> None:
    client = Minio(
        s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        secure=s3_server.secure,
    )
    client.make_bucket("fixture-bucket")
    payload = b"interlock artifact bytes"
    client.put_object("fixture-bucket", "a/b.txt", io.BytesIO(payload), len(payload))

    response = client.get_object("fixture-bucket", "a/b.txt")
    try:
        assert response.read() == payload
    finally:
        response.close()
        response.release_conn()

    url = client.presigned_get_object("fixture-bucket", "a/b.txt", expires=timedelta(minutes=5))
    downloaded = httpx.get(url, trust_env=False)
    assert downloaded.status_code == 200
    assert downloaded.content == payload
    unsigned = httpx.get(f"{s3_server.url}/fixture-bucket/a/b.txt", trust_env=False)
    assert unsigned.status_code == 403


async def test_smtp_captures_messages(smtp_server: SmtpServer) -> None:
    message = EmailMessage()
    message["From"] = "interlock@example.test"
    message["To"] = "someone@example.test"
    message["Subject"] = "Run finished"
    message.set_content("Your run finished.")
    await aiosmtplib.send(message, hostname=smtp_server.host, port=smtp_server.port)

    received = [m for m in smtp_server.messages() if m["Subject"] == "Run finished"]
    assert len(received) == 1
    assert received[0]["To"] == "someone@example.test"
    assert received[0].get_content().strip() == "Your run finished."


def test_envoy_binary_runs(envoy_binary: Path) -> None:
    result = subprocess.run(
        [str(envoy_binary), "--version"], capture_output=True, text=True, check=True
    )
    assert "1.40" in result.stdout
