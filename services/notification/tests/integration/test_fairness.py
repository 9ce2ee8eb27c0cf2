"""One tenant's slow receiver does not stall another tenant's deliveries."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from interlock.common.kafka import EventPublisher

from .conftest import (
    TENANT,
    Answer,
    Receiver,
    eventually,
    gateway_headers,
    succeeded,
    unique_path,
)

SLOW_BACKLOG = 12
"""Deliveries queued for the slow receiver, each answered after a second."""
PER_SUBSCRIPTION = 2


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    """Few slots, so that a backlog would fill them all without the per-subscription bound."""
    return {"delivery_concurrency": 4, "delivery_concurrency_per_subscription": PER_SUBSCRIPTION}


async def _subscribe(client: httpx.AsyncClient, tenant: str, url: str, workflow: str) -> None:
    response = await client.post(
        "/api/v1/subscriptions",
        headers=gateway_headers(tenant),
        json={
            "name": workflow,
            "channel": "webhook",
            "target": url,
            "events": ["run.succeeded"],
            "filter": {"workflows": [workflow]},
        },
    )
    assert response.status_code == 201, response.text


async def test_a_slow_receivers_backlog_does_not_hold_back_another_tenant(
    client: httpx.AsyncClient, publisher: EventPublisher, receiver: Receiver
) -> None:
    slow, fast = unique_path(), unique_path()
    receiver.script(slow, *[Answer(delay_s=1.0)] * SLOW_BACKLOG)
    await _subscribe(client, TENANT, receiver.url(slow), "slow")
    await _subscribe(client, "globex", receiver.url(fast), "fast")
    await publisher.publish(
        [succeeded(TENANT, str(uuid.uuid4()), "slow") for _ in range(SLOW_BACKLOG)]
    )
    await eventually(lambda: receiver.at(slow))

    await publisher.publish([succeeded("globex", str(uuid.uuid4()), "fast")])
    await eventually(lambda: receiver.at(fast))
    # The slow subscription holds at most its share of the slots; the rest of its
    # backlog waits while the other tenant's message goes through.
    assert len(receiver.at(slow)) < SLOW_BACKLOG
    await eventually(lambda: len(receiver.at(slow)) == SLOW_BACKLOG, timeout_s=30)
    assert receiver.most_concurrent(slow) <= PER_SUBSCRIPTION
