"""Workflow definitions and their versions (``/api/v1/workflows``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

from interlock.client._calls import Call, PagedCall, get_pages, model, nothing, page_of
from interlock.client._models import ApiModel
from interlock.client._operations import Mode, Resource, operation, paged

DEFAULT_PAGE_SIZE = 50
"""Items per page a list asks for unless told otherwise."""


class Workflow(ApiModel):
    """One version of a workflow."""

    name: str
    version: int
    latest_version: int
    description: str = ""
    labels: dict[str, str] = {}
    content_hash: str
    """SHA-256 of the canonical definition."""
    created_at: datetime
    """When the workflow's first version was created."""
    version_created_at: datetime
    version_created_by: str
    archived: bool = False
    archived_at: datetime | None = None
    definition: dict[str, Any]
    """The definition as it was submitted."""


Definition = str | bytes | dict[str, Any]
"""A definition: YAML or JSON text, or the parsed document."""


def _body(definition: Definition) -> tuple[bytes, str]:
    if isinstance(definition, dict):
        return json.dumps(definition).encode(), "application/json"
    text = definition.encode() if isinstance(definition, str) else definition
    return text, "application/yaml"


def _path(name: str) -> str:
    return f"/api/v1/workflows/{quote(name, safe='')}"


class Workflows(Resource[Mode]):
    """Workflow definitions: create, new versions, read, archive."""

    @operation
    def create(self, definition: Definition) -> Call[Workflow]:
        """Create a workflow from its definition (409 :class:`Conflict` if the name exists)."""
        content, content_type = _body(definition)
        return Call(
            method="POST",
            path="/api/v1/workflows",
            content=content,
            headers={"content-type": content_type},
            parse=model(Workflow),
        )

    @operation
    def put(self, name: str, definition: Definition) -> Call[Workflow]:
        """Store ``definition`` as a new version of ``name`` if it changed.

        The answer is the new version, or the latest one when the definition is the
        same (compare its ``version`` with the one before). 404 :class:`NotFound` when
        no workflow has the name: :meth:`create` it.
        """
        content, content_type = _body(definition)
        return Call(
            method="PUT",
            path=_path(name),
            content=content,
            headers={"content-type": content_type},
            parse=model(Workflow),
        )

    @operation
    def get(self, name: str, version: int | None = None) -> Call[Workflow]:
        """One version of a workflow. Default: the latest."""
        path = _path(name) if version is None else f"{_path(name)}/versions/{version}"
        return Call(method="GET", path=path, parse=model(Workflow))

    @paged
    def versions(self, name: str, *, page_size: int = DEFAULT_PAGE_SIZE) -> PagedCall[Workflow]:
        """Every version of a workflow, oldest first. ``page_size`` default: 50."""
        return get_pages(
            f"{_path(name)}/versions", page_of(Workflow, "versions"), {"page_size": page_size}
        )

    @operation
    def archive(self, name: str) -> Call[None]:
        """Archive a workflow: no new runs, hidden from lists; versions and runs stay."""
        return Call(method="DELETE", path=_path(name), parse=nothing)

    @operation
    def schema(self) -> Call[dict[str, Any]]:
        """The JSON Schema (2020-12) of a definition."""
        return Call(method="GET", path="/api/v1/workflows/schema", parse=lambda r: r.json())

    @paged
    def list(
        self,
        *,
        name_prefix: str | None = None,
        labels: dict[str, str] | None = None,
        include_archived: bool = False,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> PagedCall[Workflow]:
        """The latest version of each workflow, by name, every page.

        Args:
            name_prefix: Only names that start with it. Default: all.
            labels: Only workflows with every one of these labels. Default: all.
            include_archived: Archived ones too. Default: no.
            page_size: Items per request. Default: 50.
        """
        params = {
            "name_prefix": name_prefix,
            "label": [f"{k}={v}" for k, v in (labels or {}).items()],
            "include_archived": include_archived,
            "page_size": page_size,
        }
        return get_pages("/api/v1/workflows", page_of(Workflow, "workflows"), params)
