"""REST routes of the notification service (behind the gateway, which sets the caller).

``/api/v1/subscriptions`` (CRUD, secret rotation, test messages) and
``/api/v1/deliveries`` (history, redelivery). Every route is tenant-scoped by
:data:`CurrentPrincipal`; another tenant's subscription or delivery answers 404.
Secrets are shown once: in the answer that creates or rotates them.
"""

from __future__ import annotations

import enum
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from interlock.common.durations import parse_duration_ms
from interlock.common.identity import CurrentPrincipal
from interlock.common.paging import DEFAULT_PAGE_SIZE, PageSize, PageToken
from interlock.common.problems import GATEWAY_PROBLEMS, problem_responses
from interlock.notification import store
from interlock.notification.domain import (
    Channel,
    EventName,
    RunFilter,
    rfc3339,
)
from interlock.notification.domain.subscriptions import (
    MAX_EMAIL_RECIPIENTS,
    MAX_FILTER_ITEMS,
    MAX_NAME_CHARS,
    MAX_URL_CHARS,
)
from interlock.notification.service import NotificationService, SubscriptionChanges

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Text = Annotated[str, Field(max_length=MAX_NAME_CHARS)]
Target = (
    Annotated[str, Field(max_length=MAX_URL_CHARS, description="A webhook's http(s) URL.")]
    | Annotated[
        list[Annotated[str, Field(max_length=320)]],
        Field(max_length=MAX_EMAIL_RECIPIENTS, description="Email addresses."),
    ]
)


class DeliveryStatus(enum.StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class FilterBody(BaseModel):
    """Which runs a subscription cares about; empty matches every run."""

    model_config = ConfigDict(extra="forbid")

    workflows: list[Text] = Field(default_factory=list, max_length=MAX_FILTER_ITEMS)
    """Exact workflow names, any of them. Default: any."""
    workflow_prefix: Text = ""
    """A prefix of the workflow name. Default: any."""
    labels: dict[Text, Text] = Field(default_factory=dict, max_length=MAX_FILTER_ITEMS)
    """Labels the run's workflow must carry, each with this value. Default: none."""

    def run_filter(self) -> RunFilter:
        """As the domain's filter."""
        return RunFilter(
            workflows=tuple(self.workflows),
            workflow_prefix=self.workflow_prefix,
            labels=dict(self.labels),
        )


class CreateSubscription(BaseModel):
    """A new subscription."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    channel: Channel
    target: Target
    events: list[EventName] = Field(min_length=1, max_length=len(EventName))
    filter: FilterBody = Field(default_factory=FilterBody)
    enabled: bool = True


class UpdateSubscription(BaseModel):
    """The fields to change; the channel cannot change."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    target: Target | None = None
    events: list[EventName] | None = Field(default=None, min_length=1, max_length=len(EventName))
    filter: FilterBody | None = None
    enabled: bool | None = Field(
        default=None, description="`true` re-enables a disabled subscription (failures reset)."
    )


class RotateSecret(BaseModel):
    """How long the current secret keeps signing next to the new one."""

    model_config = ConfigDict(extra="forbid")

    grace_period: str = Field(default="24h", max_length=40, description="A duration, 0s to 7d.")


class SubscriptionView(BaseModel):
    """A subscription (never its secret)."""

    id: str
    name: str
    channel: Channel
    target: str | list[str]
    events: list[EventName]
    filter: FilterBody
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the service disabled it (410 Gone, failures in a row)."
    )
    consecutive_failures: int
    previous_secret_expires_at: str | None = Field(
        description="Until when the rotated-out secret still signs, during a rotation."
    )
    created_by: str
    created_at: str
    updated_at: str


class CreatedSubscription(SubscriptionView):
    """A new subscription, with its signing secret (webhooks; shown this once)."""

    secret: str | None


class RotatedSecret(BaseModel):
    """A new signing secret (shown this once)."""

    subscription_id: str
    secret: str
    previous_secret_expires_at: str


class SubscriptionList(BaseModel):
    """One page of subscriptions, oldest first."""

    subscriptions: list[SubscriptionView]
    next_page_token: str | None


class TestQueued(BaseModel):
    """A queued test message."""

    delivery_id: str


class AttemptView(BaseModel):
    """One attempt of a delivery."""

    number: int
    started_at: str
    latency_ms: int
    status_code: int | None = Field(description="HTTP status, or SMTP reply code.")
    error: str
    response_excerpt: str = Field(description="The start of the receiver's answer.")


class DeliveryView(BaseModel):
    """A delivery of one message to one subscription, with every attempt."""

    id: str
    subscription_id: str
    event_id: str
    webhook_id: str = Field(description="The `webhook-id` header of every attempt.")
    event_type: str
    run_id: str | None
    status: DeliveryStatus
    next_attempt_at: str | None
    created_at: str
    finished_at: str | None
    attempts: list[AttemptView]


class DeliveryList(BaseModel):
    """One page of deliveries, newest first."""

    deliveries: list[DeliveryView]
    next_page_token: str | None


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return problem_responses(*GATEWAY_PROBLEMS, *statuses)


def subscription_view(sub: store.StoredSubscription) -> dict[str, Any]:
    """A subscription as the API shows it."""
    rotation = sub.previous_secret_expires_at if sub.sealed_previous_secret else None
    return {
        "id": str(sub.id),
        "name": sub.name,
        "channel": sub.channel.value,
        "target": sub.target,
        "events": sub.events,
        "filter": {
            "workflows": list(sub.run_filter.workflows),
            "workflow_prefix": sub.run_filter.workflow_prefix,
            "labels": dict(sub.run_filter.labels),
        },
        "enabled": sub.enabled,
        "disabled_reason": sub.disabled_reason,
        "consecutive_failures": sub.consecutive_failures,
        "previous_secret_expires_at": rfc3339(rotation),
        "created_by": sub.created_by,
        "created_at": rfc3339(sub.created_at),
        "updated_at": rfc3339(sub.updated_at),
    }


def delivery_view(delivery: store.StoredDelivery) -> dict[str, Any]:
    """A delivery as the API shows it."""
    return {
        "id": str(delivery.id),
        "subscription_id": str(delivery.subscription_id),
        "event_id": delivery.event_id,
        "webhook_id": delivery.message_id,
        "event_type": delivery.event_type,
        "run_id": delivery.run_id,
        "status": delivery.status,
        "next_attempt_at": rfc3339(delivery.next_attempt_at)
        if delivery.status == "pending"
        else None,
        "created_at": rfc3339(delivery.created_at),
        "finished_at": rfc3339(delivery.finished_at),
        "attempts": [
            {
                "number": attempt.number,
                "started_at": rfc3339(attempt.started_at),
                "latency_ms": attempt.latency_ms,
                "status_code": attempt.status_code,
                "error": attempt.error,
                "response_excerpt": attempt.response_excerpt,
            }
            for attempt in delivery.attempt_log
        ],
    }


def build_router(service: NotificationService) -> APIRouter:
    """The service's routes, calling ``service``."""
    router = APIRouter(prefix="/api/v1")
    _add_subscription_routes(router, service)
    _add_delivery_routes(router, service)
    return router


def _add_subscription_routes(router: APIRouter, service: NotificationService) -> None:
    @router.post(
        "/subscriptions",
        status_code=201,
        tags=["subscriptions"],
        response_model=CreatedSubscription,
        responses=_problems(422),
    )
    async def create_subscription(
        principal: CurrentPrincipal, body: CreateSubscription
    ) -> JSONResponse:
        """Subscribe; a webhook subscription's answer holds its secret, shown this once."""
        sub, secret = await service.create_subscription(
            principal,
            name=body.name,
            channel=body.channel,
            target=body.target,
            events=[event.value for event in body.events],
            run_filter=body.filter.run_filter(),
            enabled=body.enabled,
        )
        return JSONResponse(
            {**subscription_view(sub), "secret": secret},
            status_code=201,
            headers={"location": f"/api/v1/subscriptions/{sub.id}"},
        )

    @router.get(
        "/subscriptions",
        tags=["subscriptions"],
        response_model=SubscriptionList,
        responses=_problems(422),
    )
    async def list_subscriptions(
        principal: CurrentPrincipal,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
        page_token: PageToken = None,
    ) -> JSONResponse:
        """The tenant's subscriptions, oldest first."""
        page = await service.list_subscriptions(
            principal, page_size=page_size, page_token=page_token
        )
        return JSONResponse(
            {
                "subscriptions": [subscription_view(sub) for sub in page.items],
                "next_page_token": page.next_page_token,
            }
        )

    @router.get(
        "/subscriptions/{subscription_id}",
        tags=["subscriptions"],
        response_model=SubscriptionView,
        responses=_problems(404, 422),
    )
    async def get_subscription(
        principal: CurrentPrincipal, subscription_id: uuid.UUID
    ) -> JSONResponse:
        """One subscription."""
        return JSONResponse(
            subscription_view(await service.get_subscription(principal, subscription_id))
        )

    @router.patch(
        "/subscriptions/{subscription_id}",
        tags=["subscriptions"],
        response_model=SubscriptionView,
        responses=_problems(404, 422),
    )
    async def update_subscription(
        principal: CurrentPrincipal, subscription_id: uuid.UUID, body: UpdateSubscription
    ) -> JSONResponse:
        """Change fields; `enabled: true` re-enables a disabled subscription."""
        changes = SubscriptionChanges(
            name=body.name,
            target=body.target,
            events=None if body.events is None else [event.value for event in body.events],
            run_filter=None if body.filter is None else body.filter.run_filter(),
            enabled=body.enabled,
        )
        updated = await service.update_subscription(principal, subscription_id, changes)
        return JSONResponse(subscription_view(updated))

    @router.delete(
        "/subscriptions/{subscription_id}",
        status_code=204,
        tags=["subscriptions"],
        responses=_problems(404, 422),
    )
    async def delete_subscription(
        principal: CurrentPrincipal, subscription_id: uuid.UUID
    ) -> Response:
        """Delete a subscription and its delivery history."""
        await service.delete_subscription(principal, subscription_id)
        return Response(status_code=204)

    @router.post(
        "/subscriptions/{subscription_id}/rotate-secret",
        tags=["subscriptions"],
        response_model=RotatedSecret,
        responses=_problems(404, 409, 422),
    )
    async def rotate_secret(
        principal: CurrentPrincipal,
        subscription_id: uuid.UUID,
        body: RotateSecret | None = None,
    ) -> JSONResponse:
        """A new secret; the old one keeps signing next to it for the grace period."""
        grace_ms = parse_duration_ms((body or RotateSecret()).grace_period)
        sub, secret = await service.rotate_secret(
            principal, subscription_id, grace_period=timedelta(milliseconds=grace_ms)
        )
        return JSONResponse(
            {
                "subscription_id": str(sub.id),
                "secret": secret,
                "previous_secret_expires_at": rfc3339(sub.previous_secret_expires_at),
            }
        )

    @router.post(
        "/subscriptions/{subscription_id}/test",
        status_code=202,
        tags=["subscriptions"],
        response_model=TestQueued,
        responses=_problems(404, 422),
    )
    async def send_test(principal: CurrentPrincipal, subscription_id: uuid.UUID) -> JSONResponse:
        """Send an `interlock.test` message; follow it in the delivery history."""
        delivery_id = await service.send_test(principal, subscription_id)
        return JSONResponse({"delivery_id": str(delivery_id)}, status_code=202)


def _add_delivery_routes(router: APIRouter, service: NotificationService) -> None:
    @router.get(
        "/deliveries",
        tags=["deliveries"],
        response_model=DeliveryList,
        responses=_problems(422),
    )
    async def list_deliveries(
        principal: CurrentPrincipal,
        subscription: uuid.UUID | None = None,
        run: Annotated[str | None, Query(max_length=100)] = None,
        status: DeliveryStatus | None = None,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
        page_token: PageToken = None,
    ) -> JSONResponse:
        """Deliveries with every attempt, newest first."""
        page = await service.list_deliveries(
            principal,
            subscription_id=subscription,
            run_id=run,
            status=None if status is None else status.value,
            page_size=page_size,
            page_token=page_token,
        )
        return JSONResponse(
            {
                "deliveries": [delivery_view(item) for item in page.items],
                "next_page_token": page.next_page_token,
            }
        )

    @router.get(
        "/deliveries/{delivery_id}",
        tags=["deliveries"],
        response_model=DeliveryView,
        responses=_problems(404, 422),
    )
    async def get_delivery(principal: CurrentPrincipal, delivery_id: uuid.UUID) -> JSONResponse:
        """One delivery with every attempt."""
        return JSONResponse(delivery_view(await service.get_delivery(principal, delivery_id)))

    @router.post(
        "/deliveries/{delivery_id}/redeliver",
        status_code=202,
        tags=["deliveries"],
        response_model=DeliveryView,
        responses=_problems(404, 422),
    )
    async def redeliver(principal: CurrentPrincipal, delivery_id: uuid.UUID) -> JSONResponse:
        """Send again (same `webhook-id`), the retry schedule started over."""
        return JSONResponse(
            delivery_view(await service.redeliver(principal, delivery_id)), status_code=202
        )
