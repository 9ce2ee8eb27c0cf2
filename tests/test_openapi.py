"""Every service's OpenAPI document declares what its routes answer (no servers needed).

The fuzz test (``test_fuzz.py``) checks the answers against the documents; this one
checks the documents themselves: each operation's successes carry a schema, its errors
are problem documents, the gateway's own refusals are declared, every ``$ref``
resolves inside the document, and every list is paged the shared way (AIP-158).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from interlock import artifact, iam, metadata, notification, scheduler, worker, workflow
from interlock.common.problems import GATEWAY_PROBLEMS, PROBLEM_CONTENT_TYPE, PUBLIC_PROBLEMS
from interlock.iam.domain import new_key_encryption_key


def _iam_app() -> FastAPI:
    # IAM refuses to build without a key-encryption key; any key does for the document.
    keys = SecretStr(new_key_encryption_key())
    return iam.create_app(iam.IamSettings(key_encryption_keys=keys))


SERVICES: dict[str, Callable[[], FastAPI]] = {
    "iam": _iam_app,
    "workflow": workflow.create_app,
    "scheduler": scheduler.create_app,
    "worker": worker.create_app,
    "metadata": metadata.create_app,
    "notification": notification.create_app,
    "artifact": artifact.create_app,
}


UNPAGED_ARRAYS: dict[str, set[str]] = {
    # Parts of one resource, bounded by it.
    "GET /api/v1/auth/me": {"roles"},
    "GET /api/v1/users/{user_id}": {"roles"},
    "GET /api/v1/runs/{run_id}": {"tasks"},
    "GET /api/v1/executions/{run_id}": {"tasks", "timeline"},
    "GET /api/v1/subscriptions/{subscription_id}": {"events"},
    "GET /api/v1/deliveries/{delivery_id}": {"attempts"},
    # An RFC 7517 key set: its shape is the standard's.
    "GET /.well-known/jwks.json": {"keys"},
    # Log lines read on from a line cursor (`after`, `limit`), as a log tail is.
    "GET /api/v1/executions/{run_id}/logs": {"lines"},
    # One row per workflow with runs in a bounded time window.
    "GET /api/v1/executions/summary": {"workflows"},
}
"""Answers that hold an array yet are not a paged list, and why."""
UNPAGED_LISTS = {"GET /api/v1/signing-keys"}
"""Answers that are a bare array: the system tenant's signing keys, a handful at most."""


def _document(service: str) -> dict[str, Any]:
    app = SERVICES[service]()  # building an app opens nothing
    document: dict[str, Any] = app.openapi()
    return document


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_declares_its_answers(service: str) -> None:
    document = _document(service)
    assert f"/health/{service}" in document["paths"]
    for name, operation in _operations(document):
        responses = operation["responses"]
        public = operation.get("security") == []
        expected = PUBLIC_PROBLEMS if public else GATEWAY_PROBLEMS
        assert {str(status) for status in expected} <= set(responses), name
        for status, response in responses.items():
            content = response.get("content", {})
            if status.startswith("4"):
                assert list(content) == [PROBLEM_CONTENT_TYPE], f"{name} {status}"
            elif status.startswith("2") and status != "204":
                schemas = [media.get("schema") for media in content.values()]
                assert schemas and all(schemas), f"{name} {status} has no response schema"


@pytest.mark.parametrize("service", SERVICES)
def test_every_reference_resolves_inside_the_document(service: str) -> None:
    document = _document(service)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for ref in set(_refs(document)):
        assert ref.startswith("#/"), ref
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        assert isinstance(target, dict), ref


def _json_schemas(document: dict[str, Any], operation: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for status, response in operation["responses"].items():
        media = response.get("content", {}).get("application/json", {})
        if status.startswith("2") and "schema" in media:
            schema: dict[str, Any] = media["schema"]
            if "$ref" in schema:
                schema = document["components"]["schemas"][schema["$ref"].split("/")[-1]]
            yield schema


@pytest.mark.parametrize("service", SERVICES)
def test_every_list_is_paged(service: str) -> None:
    document = _document(service)
    reads = ((name, op) for name, op in _operations(document) if name.startswith("GET "))
    for name, operation in reads:
        parameters = {parameter["name"] for parameter in operation.get("parameters", [])}
        for schema in _json_schemas(document, operation):
            if schema.get("type") == "array":
                assert name in UNPAGED_LISTS, f"{name} answers a bare array"
                continue
            properties = schema.get("properties", {})
            if "next_page_token" in properties:
                assert {"page_size", "page_token"} <= parameters, name
                continue
            arrays = {key for key, value in properties.items() if value.get("type") == "array"}
            assert arrays <= UNPAGED_ARRAYS.get(name, set()), f"{name} answers unpaged {arrays}"
