"""Problem documents become typed errors that carry every member."""

from __future__ import annotations

import httpx
import pytest

import interlock.client as client_package
from interlock.client import (
    ApiError,
    Conflict,
    FieldProblem,
    NotFound,
    RateLimited,
    ServerError,
    ValidationFailed,
)
from interlock.client._errors import error_from_response


def _response(status: int, body: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        content=body,
        headers={"content-type": "application/problem+json", **headers},
        request=httpx.Request("GET", "http://gateway/api/v1/runs/x"),
    )


def test_a_validation_problem_carries_its_members_and_field_problems() -> None:
    body = (
        b'{"type":"urn:interlock:problem:validation","title":"Invalid request","status":422,'
        b'"detail":"2 problems","request_id":"req-1","errors":['
        b'{"pointer":"/body/tasks/0/id","detail":"is required"},'
        b'{"pointer":"/query/page_size","detail":"must be at most 100"}]}'
    )
    error = error_from_response(_response(422, body))
    assert isinstance(error, ValidationFailed)
    assert (error.status, error.type, error.title) == (
        422,
        "urn:interlock:problem:validation",
        "Invalid request",
    )
    assert error.detail == "2 problems"
    assert error.request_id == "req-1"
    assert error.errors == [
        FieldProblem("/body/tasks/0/id", "is required"),
        FieldProblem("/query/page_size", "must be at most 100"),
    ]
    assert str(error) == (
        "Invalid request: 2 problems "
        "(/body/tasks/0/id: is required; /query/page_size: must be at most 100)"
    )


@pytest.mark.parametrize(
    ("status", "cls"), [(404, NotFound), (409, Conflict), (429, RateLimited), (503, ServerError)]
)
def test_each_status_has_its_class(status: int, cls: type[ApiError]) -> None:
    error = error_from_response(_response(status, b'{"title":"t","status":%d}' % status))
    assert type(error) is cls
    assert error.status == status


def test_retry_after_is_read_and_a_body_that_is_no_problem_still_gives_an_error() -> None:
    limited = error_from_response(_response(429, b"<html>slow down</html>", **{"retry-after": "7"}))
    assert isinstance(limited, RateLimited)
    assert limited.retry_after_s == 7
    assert limited.title == "Too Many Requests"
    assert limited.detail is None


def test_the_request_id_header_stands_in_for_a_missing_member() -> None:
    error = error_from_response(_response(404, b'{"title":"Not found"}', **{"x-request-id": "r9"}))
    assert error.request_id == "r9"


def test_the_package_exports_every_public_name_it_lists() -> None:
    public = {name for name in dir(client_package) if not name.startswith("_")}
    modules = {"annotations"}
    assert sorted(public - modules) == sorted(client_package.__all__)
