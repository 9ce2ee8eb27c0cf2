"""Durations as users write them, one grammar for the whole platform.

A duration is one or more ``<digits><unit>`` parts, largest unit first or not, with
units ``ms``, ``s``, ``m``, ``h`` and ``d`` (a day is 24 hours): ``"500ms"``,
``"1s"``, ``"5m"``, ``"2h"``, ``"2d"``, ``"1h30m"``. No sign, no fraction, no spaces.
Definition validation (the workflow service, through :data:`DURATION_PATTERN` in its
JSON Schema) and every executor of the worker read durations with this module, so a
value valid in one place is valid in all. A parameter that takes a plain number of
milliseconds is named ``*_ms`` and is no duration string.
"""

from __future__ import annotations

import re

from interlock.common.errors import InvalidDurationError

__all__ = ["DURATION_PATTERN", "MAX_DURATION_MS", "is_duration", "parse_duration_ms"]

DURATION_PATTERN = r"^(?:[0-9]{1,11}(?:ms|s|m|h|d)){1,5}$"
"""The grammar as a regular expression (JSON Schema ``pattern`` dialect): one to five
``<digits><unit>`` parts, each amount at most eleven digits."""

MAX_DURATION_MS = 366 * 86_400_000
"""Longest duration accepted: a year and a day."""

_DURATION = re.compile(DURATION_PATTERN)
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def is_duration(text: str) -> bool:
    """Whether ``text`` is written in the grammar (its length is not checked)."""
    return _DURATION.fullmatch(text) is not None


def parse_duration_ms(text: object) -> int:
    """Return a duration in milliseconds.

    Args:
        text: E.g. ``"1h30m"``.

    Returns:
        The duration in milliseconds.

    Raises:
        InvalidDurationError: ``text`` is not a string in the grammar, or it is longer
            than :data:`MAX_DURATION_MS`. It is a ``ValueError`` too.
    """
    if not isinstance(text, str) or not is_duration(text):
        raise InvalidDurationError(
            f"{_excerpt(text)} is not a duration such as 500ms, 1s, 5m, 2h, 2d or 1h30m"
        )
    total = sum(int(amount) * _UNIT_MS[unit] for amount, unit in _PART.findall(text))
    if total > MAX_DURATION_MS:
        raise InvalidDurationError(f"{text!r} is longer than 366 days")
    return total


def _excerpt(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
