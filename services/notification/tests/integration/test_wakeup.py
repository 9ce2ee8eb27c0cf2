"""Deliveries another instance wrote wake this instance's loop at once (LISTEN/NOTIFY)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from interlock.notification import NotificationSettings
from interlock.notification.store import NewDelivery, insert_deliveries

from .conftest import TENANT, Receiver, eventually, unique_path


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    """A loop that would not poll again within the test: only a notification wakes it."""
    return {"delivery_poll_interval_s": 3600}


async def test_a_delivery_written_elsewhere_is_sent_without_waiting_for_a_poll(
    client: httpx.AsyncClient, receiver: Receiver, settings: NotificationSettings
) -> None:
    path = unique_path()
    created = await client.post(
        "/api/v1/subscriptions",
        json={
            "name": "elsewhere",
            "channel": "webhook",
            "target": receiver.url(path),
            "events": ["run.succeeded"],
        },
    )
    assert created.status_code == 201, created.text
    delivery_id = uuid.uuid4()
    password = settings.postgres_password
    # As another instance's consumer writes it: this app's own wake-up is not called.
    conn = await asyncpg.connect(
        settings.postgres_dsn, password=password.get_secret_value() if password else None
    )
    try:
        await insert_deliveries(
            conn,
            [
                NewDelivery(
                    id=delivery_id,
                    tenant=TENANT,
                    subscription_id=uuid.UUID(created.json()["id"]),
                    event_id=f"elsewhere:{delivery_id}",
                    message_id=f"msg_{delivery_id.hex}",
                    event_type="run.succeeded",
                    run_id=None,
                    message={"type": "run.succeeded", "timestamp": "", "data": {}},
                )
            ],
        )
    finally:
        await conn.close()
    (request,) = await eventually(lambda: receiver.at(path), timeout_s=30)
    assert request.webhook_id == f"msg_{delivery_id.hex}"
