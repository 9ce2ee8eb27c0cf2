"""Durations as users write them: ``"500ms"``, ``"1s"``, ``"5m"``, ``"2h"``, ``"1h30m"``."""

from __future__ import annotations

import re

DURATION_PATTERN = r"^(?:[0-9]+(?:ms|s|m|h|d))+$"
"""A duration: one or more ``<digits><unit>`` parts, units ``ms``, ``s``, ``m``, ``h``, ``d``."""

_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
DURATION = re.compile(DURATION_PATTERN)
""":data:`DURATION_PATTERN`, compiled."""
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}

MAX_DURATION_MS = 366 * 86_400_000
"""Longest duration accepted: a year and a day."""


def parse_duration_ms(text: str) -> int:
    """Return ``text`` as milliseconds.

    Args:
        text: E.g. ``"1h30m"``.

    Returns:
        The duration in milliseconds.

    Raises:
        ValueError: When ``text`` is not a duration or longer than :data:`MAX_DURATION_MS`.
    """
    if not DURATION.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration such as 500ms, 1s, 5m, 2h or 2d")
    total = sum(int(amount) * _UNIT_MS[unit] for amount, unit in _PART.findall(text))
    if total > MAX_DURATION_MS:
        raise ValueError(f"{text!r} is longer than 366 days")
    return total
