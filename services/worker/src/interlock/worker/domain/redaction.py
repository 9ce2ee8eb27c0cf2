"""Secret values kept out of what a worker reports: outputs, errors, logs, heartbeats."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "Redactor", "loggable_url"]

REDACTED = "[redacted]"
"""What a secret value is replaced by."""

_CREDENTIAL_NAME = re.compile(
    r"(token|key|secret|passw|pwd|auth|sig|credential|session|code)", re.IGNORECASE
)


class Redactor:
    """Replaces the given secret values wherever they appear.

    A value may also appear JSON-escaped inside JSON text (quotes and backslashes
    escaped, non-ASCII written as is, as outputs are encoded, or as backslash-u escapes,
    as other JSON writers do), so JSON documents are searched for those forms too.
    Longer values are replaced first, so a value containing another is not left half
    visible.

    Args:
        values: The secret values (empty ones are ignored).
    """

    def __init__(self, values: Iterable[str]) -> None:
        self._values = sorted({value for value in values if value}, key=len, reverse=True)
        escaped = {
            json.dumps(value, ensure_ascii=ascii_only)[1:-1]
            for value in self._values
            for ascii_only in (True, False)
        }
        self._json_forms = sorted(escaped | set(self._values), key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._values)

    def text(self, text: str) -> str:
        """``text`` with every secret value replaced."""
        for value in self._values:
            text = text.replace(value, REDACTED)
        return text

    def json(self, document: bytes) -> bytes:
        """A JSON document (UTF-8) with every secret value replaced, raw or escaped."""
        if not document:
            return document
        text = document.decode()
        for form in self._json_forms:
            text = text.replace(form, REDACTED)
        return text.encode()


def loggable_url(url: str) -> str:
    """``url`` fit for a log line.

    No user or password, and the values of query parameters named like credentials
    (``token``, ``api_key``, ``sig``, ...) replaced.

    Secret values filled in from the secret store are replaced later, with the rest
    of the line, by the attempt's :class:`Redactor`.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    query = urlencode(
        [
            (name, REDACTED if _CREDENTIAL_NAME.search(name) else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="[]",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
