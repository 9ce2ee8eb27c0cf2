"""Webhook secrets at rest: sealed with the key-encryption key, never in plain text.

Each app here runs alone on the module's database, one after the other: an app without
the newest KEK could not open what the next one seals.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from interlock.common.sealing import KeyEncryptionKeys, new_key_encryption_key
from interlock.common.testing import app_client
from interlock.notification import NotificationSettings, create_app

from .conftest import (
    KEY_ENCRYPTION_KEYS,
    Received,
    Receiver,
    eventually,
    gateway_headers,
    unique_path,
)


async def _row(settings: NotificationSettings, subscription_id: str) -> asyncpg.Record:
    password = settings.postgres_password
    conn = await asyncpg.connect(
        settings.postgres_dsn, password=password.get_secret_value() if password else None
    )
    try:
        row: asyncpg.Record = await conn.fetchrow(
            "SELECT sealed_secret, sealed_previous_secret FROM subscriptions WHERE id = $1",
            uuid.UUID(subscription_id),
        )
        return row
    finally:
        await conn.close()


async def _execute(settings: NotificationSettings, sql: str, *args: Any) -> None:
    password = settings.postgres_password
    conn = await asyncpg.connect(
        settings.postgres_dsn, password=password.get_secret_value() if password else None
    )
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


def _holds(stored: str, secret: str) -> bool:
    """Whether a stored value shows the secret, whole or as its key bytes."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    return secret in stored or secret.removeprefix("whsec_") in stored or key.hex() in stored


async def _test_message_to(
    client: httpx.AsyncClient, receiver: Receiver, subscription_id: str, path: str
) -> Received:
    seen = len(receiver.at(path))
    response = await client.post(f"/api/v1/subscriptions/{subscription_id}/test")
    assert response.status_code == 202, response.text
    arrived: list[Received] = await eventually(lambda: receiver.at(path)[seen:])
    return arrived[0]


async def test_the_row_holds_only_sealed_secrets_and_signatures_still_verify(
    settings: NotificationSettings, receiver: Receiver
) -> None:
    path = unique_path()
    async with app_client(create_app(settings)) as client:
        client.headers.update(gateway_headers())
        created = await client.post(
            "/api/v1/subscriptions",
            json={
                "name": "sealed",
                "channel": "webhook",
                "target": receiver.url(path),
                "events": ["run.succeeded"],
            },
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        row = await _row(settings, hook["id"])
        assert row["sealed_secret"].startswith("k1:")
        assert not _holds(row["sealed_secret"], hook["secret"])
        opened = KeyEncryptionKeys(KEY_ENCRYPTION_KEYS).unseal(
            row["sealed_secret"], context=f"subscription:{hook['id']}"
        )
        assert opened.decode() == hook["secret"]

        rotated = await client.post(
            f"/api/v1/subscriptions/{hook['id']}/rotate-secret", json={"grace_period": "1h"}
        )
        new_secret = rotated.json()["secret"]
        row = await _row(settings, hook["id"])
        assert row["sealed_previous_secret"].startswith("k1:")
        for stored in row:
            assert not _holds(stored, hook["secret"]) and not _holds(stored, new_secret)

        request = await _test_message_to(client, receiver, hook["id"], path)
        assert request.verify(hook["secret"], new_secret)["type"] == "interlock.test"


async def test_start_up_seals_plain_secrets_and_moves_them_to_a_new_first_kek(
    settings: NotificationSettings, receiver: Receiver
) -> None:
    path = unique_path()
    async with app_client(create_app(settings)) as client:
        client.headers.update(gateway_headers())
        created = await client.post(
            "/api/v1/subscriptions",
            json={
                "name": "from before sealing",
                "channel": "webhook",
                "target": receiver.url(path),
                "events": ["run.succeeded"],
            },
        )
        hook = created.json()
    # As a database written before sealing existed holds it.
    await _execute(
        settings,
        "UPDATE subscriptions SET sealed_secret = $2 WHERE id = $1",
        uuid.UUID(hook["id"]),
        hook["secret"],
    )

    rotated_keks = f"{new_key_encryption_key('k2')},{KEY_ENCRYPTION_KEYS}"
    restarted = replace_keks(settings, rotated_keks)
    async with app_client(create_app(restarted)) as client:
        client.headers.update(gateway_headers())
        row = await _row(settings, hook["id"])
        assert row["sealed_secret"].startswith("k2:")
        assert not _holds(row["sealed_secret"], hook["secret"])
        request = await _test_message_to(client, receiver, hook["id"], path)
        assert request.verify(hook["secret"])["type"] == "interlock.test"


async def test_the_service_does_not_start_without_a_key_encryption_key(
    settings: NotificationSettings,
) -> None:
    with pytest.raises(ValueError, match="INTERLOCK_KEY_ENCRYPTION_KEYS is required"):
        async with app_client(create_app(replace_keks(settings, None))):
            pass


def replace_keks(settings: NotificationSettings, keks: str | None) -> NotificationSettings:
    """The same settings with other key-encryption keys."""
    return settings.model_copy(update={"key_encryption_keys": SecretStr(keks) if keks else None})
