"""JSON that every Interlock store and event can hold, or a clear refusal.

Python's ``json`` reads more than the services can keep: ``NaN`` and ``Infinity``
(not JSON, and PostgreSQL's ``jsonb`` refuses them), ``1e999999`` (becomes
``inf``), integers of thousands of digits (slow to convert, refused past 4,300),
U+0000 (PostgreSQL text and ``jsonb`` refuse it) and lone surrogates such as
U+D800 alone (no UTF-8 encoding exists). Each reached a database or an encoder and
failed there as a 500. :func:`loads` refuses them where the text comes in, and
:func:`check_value` does the same for values parsed by another reader (YAML).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = [
    "MAX_NUMBER_CHARS",
    "UnacceptableJsonError",
    "check_text",
    "check_value",
    "loads",
    "storable",
    "storable_value",
]

MAX_NUMBER_CHARS = 64
"""Longest number literal accepted (digits, sign, point and exponent)."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class UnacceptableJsonError(ValueError):
    """The text is not JSON, or holds a value Interlock cannot store."""


def loads(text: str | bytes) -> Any:
    """Parse JSON text, refusing what no store or event can hold.

    Raises:
        UnacceptableJsonError: Not UTF-8 JSON; or ``NaN``/``Infinity``, a number
            literal longer than :data:`MAX_NUMBER_CHARS` or out of float range, a
            NUL character or a lone surrogate in a string or key.
    """
    try:
        value = json.loads(
            text,
            parse_float=_parse_float,
            parse_int=_parse_int,
            parse_constant=_refuse_constant,
        )
    except json.JSONDecodeError as error:
        raise UnacceptableJsonError(
            f"not JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from error
    except UnicodeDecodeError as error:
        raise UnacceptableJsonError("not UTF-8") from error
    except RecursionError as error:
        raise UnacceptableJsonError("nested too deeply") from error
    check_value(value)
    return value


def check_value(value: Any) -> None:
    """Refuse a parsed value holding NUL, a lone surrogate or a non-finite number.

    Raises:
        UnacceptableJsonError: Naming the first offending value's kind.
    """
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, str):
            check_text(current)
        elif isinstance(current, float):
            if not math.isfinite(current):
                raise UnacceptableJsonError("a number is not finite (NaN or Infinity)")
        elif isinstance(current, dict):
            for key in current:
                check_text(key)
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)


def check_text(text: str) -> None:
    """Refuse a string holding NUL (U+0000) or a lone surrogate.

    Raises:
        UnacceptableJsonError: When it holds one.
    """
    found = _UNSTORABLE.search(text)
    if found is None:
        return
    if found.group() == "\x00":
        raise UnacceptableJsonError("a string holds a NUL character (\\u0000)")
    raise UnacceptableJsonError("a string holds a lone surrogate (not Unicode text)")


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD, for what must be kept.

    For text that comes from a task or a library rather than a user who can be told
    no (a failure message, an output): refusing it would lose the outcome.
    """
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub("\ufffd", text)


def storable_value(value: Any) -> Any:
    """``value`` (JSON values) with :func:`storable` applied to every string and key."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [storable_value(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable_value(item) for key, item in value.items()}
    return value


def _parse_float(literal: str) -> float:
    _check_length(literal)
    value = float(literal)
    if not math.isfinite(value):
        raise UnacceptableJsonError(f"the number {literal[:20]} is out of range")
    return value


def _parse_int(literal: str) -> int:
    _check_length(literal)
    return int(literal)


def _check_length(literal: str) -> None:
    if len(literal) > MAX_NUMBER_CHARS:
        raise UnacceptableJsonError(
            f"a number literal has {len(literal)} characters; at most {MAX_NUMBER_CHARS}"
        )


def _refuse_constant(name: str) -> Any:
    raise UnacceptableJsonError(f"{name} is not JSON")
