"""Secret values kept out of what a worker reports: outputs, errors, logs, heartbeats."""

from __future__ import annotations

import json
from collections.abc import Iterable

__all__ = ["REDACTED", "Redactor"]

REDACTED = "[redacted]"
"""What a secret value is replaced by."""


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
