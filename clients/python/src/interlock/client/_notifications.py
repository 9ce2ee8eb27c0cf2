"""The notification service: subscriptions (email, signed webhooks) and their deliveries.

Written to the routes of the notification service's specification; fields the server
adds are kept on the models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from interlock.client._calls import Call, PagedCall, get_pages, model, nothing, page_of
from interlock.client._models import ApiModel
from interlock.client._operations import Mode, Resource, operation, paged
from interlock.client._workflows import DEFAULT_PAGE_SIZE

EVENTS = ("run.succeeded", "run.failed", "run.cancelled", "run.started", "task.dead_lettered")
"""What a subscription may be told of."""


class Subscription(ApiModel):
    """Who is told of which runs' events, and how."""

    id: str
    name: str
    channel: str
    """``webhook`` or ``email``."""
    target: Any
    """A URL (webhook) or a list of addresses (email)."""
    events: list[str]
    filter: dict[str, Any] | None = None
    enabled: bool = True
    created_at: datetime | None = None
    secret: str | None = None
    """A webhook's signing secret (``whsec_...``): only in the answer that created it
    or rotated it."""


class Delivery(ApiModel):
    """One message to one subscription, and its attempts."""

    id: str
    subscription_id: str
    webhook_id: str | None = None
    """The message's ``webhook-id``: the same on every attempt."""
    run_id: str | None = None
    event_type: str | None = None
    status: str
    attempts: Any = None
    """Each attempt: time, status code, latency, error, response excerpt."""
    created_at: datetime | None = None


class Subscriptions(Resource[Mode]):
    """Subscriptions of the caller's tenant (``/api/v1/subscriptions``)."""

    @operation
    def create(
        self,
        name: str,
        channel: str,
        target: str | list[str],
        events: list[str],
        *,
        workflows: list[str] | None = None,
        workflow_prefix: str | None = None,
        labels: dict[str, str] | None = None,
        enabled: bool = True,
    ) -> Call[Subscription]:
        """Subscribe a webhook URL or email addresses to run events.

        Args:
            name: What it is for.
            channel: ``webhook`` or ``email``.
            target: The URL, or the addresses.
            events: Some of :data:`EVENTS`.
            workflows: Only these workflows' runs. Default: all.
            workflow_prefix: Only workflows whose name starts with it. Default: all.
            labels: Only runs with every one of these labels. Default: all.
            enabled: Default: yes.
        """
        filter_ = {"workflows": workflows, "workflow_prefix": workflow_prefix, "labels": labels}
        body = {
            "name": name,
            "channel": channel,
            "target": target,
            "events": events,
            "filter": {key: value for key, value in filter_.items() if value},
            "enabled": enabled,
        }
        return Call(
            method="POST", path="/api/v1/subscriptions", json=body, parse=model(Subscription)
        )

    @operation
    def get(self, subscription_id: str) -> Call[Subscription]:
        """One subscription."""
        return Call(method="GET", path=_path(subscription_id), parse=model(Subscription))

    @operation
    def update(
        self,
        subscription_id: str,
        *,
        name: str | None = None,
        target: str | list[str] | None = None,
        events: list[str] | None = None,
        enabled: bool | None = None,
    ) -> Call[Subscription]:
        """Change the fields given (``None``: unchanged), e.g. ``enabled=False``."""
        given = {"name": name, "target": target, "events": events, "enabled": enabled}
        changes = {key: value for key, value in given.items() if value is not None}
        return Call(
            method="PATCH", path=_path(subscription_id), json=changes, parse=model(Subscription)
        )

    @operation
    def delete(self, subscription_id: str) -> Call[None]:
        """Delete a subscription."""
        return Call(method="DELETE", path=_path(subscription_id), parse=nothing)

    @operation
    def rotate_secret(self, subscription_id: str) -> Call[Subscription]:
        """A new webhook secret; the old one still signs for a grace period."""
        return Call(
            method="POST", path=f"{_path(subscription_id)}/rotate-secret", parse=model(Subscription)
        )

    @operation
    def test(self, subscription_id: str) -> Call[dict[str, Any]]:
        """Send a test event to the subscription's target."""
        return Call(method="POST", path=f"{_path(subscription_id)}/test", parse=_json_or_empty)

    @paged
    def list(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> PagedCall[Subscription]:
        """Every subscription of the tenant. ``page_size`` default: 50."""
        return get_pages(
            "/api/v1/subscriptions",
            page_of(Subscription, "subscriptions", "items"),
            {"page_size": page_size},
        )


class Deliveries(Resource[Mode]):
    """Delivery history (``/api/v1/deliveries``)."""

    @operation
    def redeliver(self, delivery_id: str) -> Call[dict[str, Any]]:
        """Send a delivery again."""
        return Call(
            method="POST",
            path=f"/api/v1/deliveries/{quote(delivery_id, safe='')}/redeliver",
            parse=_json_or_empty,
        )

    @paged
    def list(
        self,
        *,
        subscription_id: str | None = None,
        run_id: str | None = None,
        status: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> PagedCall[Delivery]:
        """Deliveries, newest first, every page; each filter defaults to all."""
        params = {
            "subscription_id": subscription_id,
            "run_id": run_id,
            "status": status,
            "page_size": page_size,
        }
        return get_pages("/api/v1/deliveries", page_of(Delivery, "deliveries", "items"), params)


def _path(subscription_id: str) -> str:
    return f"/api/v1/subscriptions/{quote(subscription_id, safe='')}"


def _json_or_empty(response: Any) -> dict[str, Any]:
    if not response.content:
        return {}
    body = response.json()
    return body if isinstance(body, dict) else {"result": body}
