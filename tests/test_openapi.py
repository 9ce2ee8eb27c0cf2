"""Every service's OpenAPI document declares what its routes answer (no servers needed).

The fuzz test (``test_fuzz.py``) checks the answers against the documents; this one
checks the documents themselves: each operation's successes carry a schema, its errors
are problem documents, the gateway's own refusals are declared, every ``$ref``
resolves inside the document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from interlock import artifact, iam, metadata, notification, scheduler, worker, workflow
from interlock.common.problems import GATEWAY_PROBLEMS, PROBLEM_CONTENT_TYPE, PUBLIC_PROBLEMS

SERVICES: dict[str, Callable[[], FastAPI]] = {
    "iam": iam.create_app,
    "workflow": workflow.create_app,
    "scheduler": scheduler.create_app,
    "worker": worker.create_app,
    "metadata": metadata.create_app,
    "notification": notification.create_app,
    "artifact": artifact.create_app,
}


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
