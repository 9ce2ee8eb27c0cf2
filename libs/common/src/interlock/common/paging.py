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

Example::

    RUNS = PageKey("runs", datetime, uuid.UUID)
    created_at, run_id = RUNS.decode(token, filters)        # page 2
    next_token = RUNS.encode((last.created_at, last.id), filters)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from interlock.common.errors import InvalidPageTokenError

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "MAX_TOKEN_LENGTH", "KeyValue", "PageKey"]

DEFAULT_PAGE_SIZE = 50
"""Rows per page when ``page_size`` is not given."""
MAX_PAGE_SIZE = 500
"""Largest ``page_size`` accepted."""
MAX_TOKEN_LENGTH = 2048
"""Longest ``page_token`` read; tokens this module issues are far shorter."""

KeyValue = str | int | datetime | uuid.UUID
"""What a sort key is made of."""

_INT64 = 2**63


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
