"""Opaque page tokens for keyset pagination, with Google AIP-158's names.

A list endpoint takes ``page_size`` (default :data:`DEFAULT_PAGE_SIZE`, at most
:data:`MAX_PAGE_SIZE`) and ``page_token``, and answers ``items`` with
``next_page_token`` (absent or null on the last page). A token carries the sort key of
the last row a page returned and a digest of the list and filters it was issued for.
The next page starts strictly after that key, so rows added meanwhile never shift a
page (no repeats, no skips).

Decoding checks everything a client could have changed, and refuses with
:class:`~interlock.common.errors.InvalidPageTokenError` (a 400 problem, never a 500):
a token that is no base64 JSON of the right shape, one issued for another list or other
filters, and one whose key does not have the kinds the list sorts by (an integer where
a timestamp belongs, a string holding NUL, which PostgreSQL refuses). A well-formed
token a client made up only moves the start of the page within the caller's own rows.

A route declares the two parameters as :data:`PageSize` and :data:`PageToken`; its
use case reads ``page_size + 1`` rows after the decoded key and hands them to
:meth:`PageKey.page`.

Example::

    RUNS = PageKey("runs", datetime, uuid.UUID)
    after = RUNS.decode(token, filters) if token else None
    rows = await store.list_runs(conn, after=after, limit=page_size + 1)
    return RUNS.page(rows, page_size, lambda run: (run.created_at, run.id), filters)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query

from interlock.common.errors import InvalidPageTokenError

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "MAX_TOKEN_LENGTH",
    "KeyValue",
    "Page",
    "PageKey",
    "PageSize",
    "PageToken",
]

DEFAULT_PAGE_SIZE = 50
"""Rows per page when ``page_size`` is not given."""
MAX_PAGE_SIZE = 500
"""Largest ``page_size`` accepted."""
MAX_TOKEN_LENGTH = 2048
"""Longest ``page_token`` read; tokens this module issues are far shorter."""

KeyValue = str | int | datetime | uuid.UUID
"""What a sort key is made of."""

PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Default: 50.")]
"""A list route's ``page_size`` query parameter."""
PageToken = Annotated[str | None, Query(description="next_page_token of the previous page.")]
"""A list route's ``page_token`` query parameter."""

_INT64 = 2**63
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Page(Generic[T]):
    """One page of a list."""

    items: list[T]
    next_page_token: str | None
    """Where the next page starts; ``None`` on the last page."""


class PageKey:
    """The sort key of one list, and its tokens.

    Args:
        listing: Names the list, so a token of one list is refused by another.
        *kinds: The type of each part of the sort key, in order: ``str``, ``int``
            (64-bit), ``datetime`` (timezone-aware) or ``uuid.UUID``.
    """

    def __init__(self, listing: str, *kinds: type[KeyValue]) -> None:
        self.listing = listing
        self.kinds = kinds

    def encode(self, position: Sequence[KeyValue], filters: Mapping[str, Any]) -> str:
        """A token for the page after the row whose sort key is ``position``."""
        parts = [_encode_part(value) for value in position]
        raw = json.dumps({"k": parts, "f": self._fingerprint(filters)}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode(self, token: str, filters: Mapping[str, Any]) -> tuple[Any, ...]:
        """The sort key a token resumes after, one value of each kind.

        Raises:
            InvalidPageTokenError: The token is malformed or forged, or was issued for
                another list or other filters.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidPageTokenError("the page token is too long")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            body = json.loads(raw)
            parts, issued_for = body["k"], body["f"]
        except (binascii.Error, ValueError, TypeError, KeyError) as error:
            raise InvalidPageTokenError("the page token is malformed") from error
        if issued_for != self._fingerprint(filters):
            raise InvalidPageTokenError("the page token belongs to another list or other filters")
        if not isinstance(parts, list) or len(parts) != len(self.kinds):
            raise InvalidPageTokenError("the page token is malformed")
        return tuple(_decode_part(kind, part) for kind, part in zip(self.kinds, parts, strict=True))

    def page(
        self,
        rows: Sequence[T],
        page_size: int,
        position: Callable[[T], Sequence[KeyValue]],
        filters: Mapping[str, Any],
    ) -> Page[T]:
        """The page of ``rows``, which were read with a limit of ``page_size + 1``.

        That is their first ``page_size``, and a token for the page after the last of
        them (its sort key is ``position(row)``) when a row more came back.
        """
        items = list(rows[:page_size])
        more = len(rows) > page_size
        return Page(
            items=items, next_page_token=self.encode(position(items[-1]), filters) if more else None
        )

    def _fingerprint(self, filters: Mapping[str, Any]) -> str:
        text = json.dumps([self.listing, dict(filters)], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _encode_part(value: KeyValue) -> str | int:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _decode_part(kind: type[KeyValue], part: object) -> KeyValue:
    forged = InvalidPageTokenError("the page token is malformed")
    if kind is int:
        if not isinstance(part, int) or isinstance(part, bool) or not -_INT64 <= part < _INT64:
            raise forged
        return part
    if not isinstance(part, str) or "\x00" in part:
        raise forged
    if kind is str:
        return part
    try:
        if kind is datetime:
            moment = datetime.fromisoformat(part)
            if moment.tzinfo is None:
                raise forged
            return moment
        return uuid.UUID(part)
    except ValueError as error:
        raise forged from error
