"""What one REST operation sends and how its answer is read, free of any I/O.

Each resource method builds one of these; :mod:`interlock.client._transport` sends it,
synchronously or not, so every operation is written once for both clients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
from httpx_sse import ServerSentEvent
from pydantic import BaseModel, TypeAdapter

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True, kw_only=True)
class Upload:
    """A file sent as one part of a ``multipart/form-data`` body, read as it is sent."""

    path: Path
    form_field: str = "file"
    """Name of the file's form field. Default: ``file``."""
    filename: str | None = None
    """Name given to the server. Default: the file's own name."""
    content_type: str = "application/octet-stream"
    form: Mapping[str, str] = field(default_factory=dict)
    """The other form fields."""


@dataclass(frozen=True, kw_only=True)
class Call(Generic[T]):
    """One request and the reading of its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    """Query parameters; a list value repeats the parameter; ``None`` values are left out."""
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    public: bool = False
    """Sent without credentials (login, refresh)."""
    upload: Upload | None = None
    download_to: Path | None = None
    """Stream the answer's body into this file instead of memory."""

    @property
    def replayable(self) -> bool:
        """Whether sending it twice does no more than sending it once."""
        return self.method in {"GET", "HEAD", "PUT", "DELETE"} or IDEMPOTENCY_HEADER in self.headers

    def query(self) -> dict[str, Any] | None:
        """The query parameters without ``None`` values."""
        if self.params is None:
            return None
        return {name: value for name, value in self.params.items() if value is not None}


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list (AIP-158)."""

    items: list[T]
    next_page_token: str | None


@dataclass(frozen=True)
class PagedCall(Generic[T]):
    """A list read page by page: ``page(token)`` builds the call for one page."""

    page: Callable[[str | None], Call[Page[T]]]


@dataclass(frozen=True)
class EventStream(Generic[T]):
    """A server-sent event stream, resumed from the last event id when it breaks."""

    call: Callable[[str | None], Call[None]]
    """Builds the request that resumes after a cursor (``None``: from the start)."""
    parse: Callable[[ServerSentEvent], T | None]
    """The item an event carries; ``None`` skips it."""
    is_end: Callable[[ServerSentEvent], bool]
    """Whether the event ends the stream (nothing follows it)."""
    after: str | None = None


def model(cls: type[M]) -> Callable[[httpx.Response], M]:
    """Read the body as ``cls``."""
    return lambda response: cls.model_validate_json(response.content)


def page_of(cls: type[M], *members: str) -> Callable[[httpx.Response], Page[M]]:
    """Read a page whose items are the first of ``members`` the body has.

    A body that is a JSON array is one page holding every item.
    """
    adapter: TypeAdapter[list[M]] = TypeAdapter(list[cls])  # type: ignore[valid-type]

    def parse(response: httpx.Response) -> Page[M]:
        body = response.json()
        if isinstance(body, list):
            return Page(adapter.validate_python(body), None)
        items: list[object] = next((body[name] for name in members if name in body), [])
        return Page(adapter.validate_python(items), body.get("next_page_token"))

    return parse


def get_pages(
    path: str, parse: Callable[[httpx.Response], Page[T]], params: Mapping[str, Any]
) -> PagedCall[T]:
    """``GET path`` page by page: with ``params`` and the token of the page."""
    return PagedCall(
        lambda token: Call(
            method="GET", path=path, params={**params, "page_token": token}, parse=parse
        )
    )


def nothing(_: httpx.Response) -> None:
    """An answer without a body (204)."""
