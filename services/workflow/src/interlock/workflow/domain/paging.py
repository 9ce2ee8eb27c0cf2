"""Opaque page tokens for keyset pagination.

A token carries the sort key of the last row a page returned and a fingerprint of the
filters it was issued for. The next page starts strictly after that key, so rows added
meanwhile never shift a page (no repeats, no skips); a token used with other filters is
refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from interlock.workflow.domain.errors import InvalidPageTokenError

DEFAULT_PAGE_SIZE = 50
"""Rows per page when ``page_size`` is not given."""
MAX_PAGE_SIZE = 500
"""Largest ``page_size`` accepted."""


def fingerprint(listing: str, filters: Mapping[str, Any]) -> str:
    """A short digest naming a list and its filters."""
    text = json.dumps([listing, dict(filters)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_token(position: list[Any], listing: str, filters: Mapping[str, Any]) -> str:
    """A token for the page after the row at ``position`` (JSON values)."""
    raw = json.dumps({"p": position, "f": fingerprint(listing, filters)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, listing: str, filters: Mapping[str, Any]) -> list[Any]:
    """The position a token resumes after.

    Raises:
        InvalidPageTokenError: The token is malformed, or was issued for another list
            or other filters.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        position = body["p"]
        issued_for = body["f"]
    except (binascii.Error, ValueError, TypeError, KeyError) as error:
        raise InvalidPageTokenError("the page token is malformed") from error
    if issued_for != fingerprint(listing, filters) or not isinstance(position, list):
        raise InvalidPageTokenError("the page token belongs to another list or other filters")
    return position
