"""The shared app factory: health, readiness, metrics, request ids, problem+json."""

import asyncio
from types import TracebackType
from typing import Self

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel

from interlock.common.errors import InterlockError, TransactionRequiredError, grpc_code_name
from interlock.common.http import create_app
from interlock.common.problems import Problem
from interlock.common.settings import ServiceSettings
from interlock.common.testing import app_client


class FakeDependency:
    """A resource whose reachability the test controls (not a server stand-in:
    it exercises the readiness logic itself)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reachable = True
        self.hang = False
        self.opened = False

    async def __aenter__(self) -> Self:
        self.opened = True
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.opened = False

    async def check(self) -> None:
        if self.hang:
            await asyncio.sleep(60)
        if not self.reachable:
            raise ConnectionError("refused")


class Order(BaseModel):
    quantity: int


router = APIRouter()


@router.post("/orders")
async def place(order: Order) -> dict[str, int]:
    if order.quantity > 10:
        raise Problem(409, "Too many", detail="At most 10 per order.", type_="order-limit")
    return {"quantity": order.quantity}


class OrderNotFoundError(InterlockError):
    status = 404
    title = "Order not found"
    problem_type = "order-not-found"

    def problem_extensions(self) -> dict[str, object]:
        return {"order": 7}


@router.get("/orders/{order_id}")
async def find(order_id: int) -> None:
    raise OrderNotFoundError(f"no order {order_id}")


@router.get("/broken")
async def broken() -> None:
    raise TransactionRequiredError("secret internals")


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals")


SETTINGS = ServiceSettings(service_name="test", readiness_timeout_s=0.2)


async def test_resources_open_for_the_app_lifetime() -> None:
    database = FakeDependency("postgres")
    async with app_client(create_app(SETTINGS, resources=[database])):
        assert database.opened
    assert not database.opened


async def test_readiness_reflects_each_dependency() -> None:
    database, broker = FakeDependency("postgres"), FakeDependency("kafka")
    async with app_client(create_app(SETTINGS, resources=[database, broker])) as client:
        ready = await client.get("/readyz")
        broker.reachable = False
        database.hang = True
        not_ready = await client.get("/readyz")
        alive = await client.get("/healthz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"postgres": "ok", "kafka": "ok"}}
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"] == {
        "postgres": "timed out after 0.2s",
        "kafka": "failed: ConnectionError",
    }
    assert alive.status_code == 200


async def test_domain_problem_is_rendered_as_rfc9457() -> None:
    async with app_client(create_app(SETTINGS, routers=[router])) as client:
        response = await client.post("/orders", json={"quantity": 11})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:interlock:problem:order-limit"
    assert body["title"] == "Too many"
    assert body["detail"] == "At most 10 per order."
    assert body["instance"] == "/orders"
    assert body["request_id"] == response.headers["x-request-id"]


async def test_validation_errors_point_at_the_bad_field() -> None:
    async with app_client(create_app(SETTINGS, routers=[router])) as client:
        response = await client.post("/orders", json={"quantity": "many"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["pointer"] == "/body/quantity"


async def test_unexpected_errors_hide_their_details(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(SETTINGS, routers=[router])
    async with app_client(app) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in response.text
    assert "unhandled error" in caplog.text
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_the_connection_stays_usable_after_a_500() -> None:
    # The exception is answered inside the app and not raised to the server, which
    # would otherwise close the kept-alive connection without saying so.
    app = create_app(SETTINGS, routers=[router])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            response = await client.get("/boom", headers={"x-request-id": "req-500"})
    assert response.status_code == 500
    assert response.json()["request_id"] == "req-500"


async def test_interlock_errors_answer_the_problem_their_class_declares() -> None:
    async with app_client(create_app(SETTINGS, routers=[router])) as client:
        missing = await client.get("/orders/7")
        internal = await client.get("/broken")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json() | {"request_id": None} == {
        "type": "urn:interlock:problem:order-not-found",
        "title": "Order not found",
        "status": 404,
        "detail": "no order 7",
        "instance": "/orders/7",
        "request_id": None,
        "order": 7,
    }
    assert internal.status_code == 500
    assert "secret internals" not in internal.text


def test_grpc_codes_follow_the_http_status_unless_an_error_names_its_own() -> None:
    class Exists(InterlockError):
        status = 409
        grpc_code = "ALREADY_EXISTS"

    assert grpc_code_name(OrderNotFoundError()) == "NOT_FOUND"
    assert grpc_code_name(Exists()) == "ALREADY_EXISTS"
    assert grpc_code_name(TransactionRequiredError()) == "INTERNAL"


async def test_the_openapi_document_declares_the_problem_schema() -> None:
    app = create_app(SETTINGS, routers=[router])
    document = app.openapi()
    assert document["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
    ]


async def test_request_id_from_the_gateway_is_kept() -> None:
    async with app_client(create_app(SETTINGS)) as client:
        response = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
