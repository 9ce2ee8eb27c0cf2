"""Durations written in task params: ``"2s"``, ``"150ms"``, ``"1m30s"`` or milliseconds."""

from __future__ import annotations

import re

__all__ = ["parse_duration_ms"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_MS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_duration_ms(value: object) -> float:
    """Return a duration in milliseconds.

    Args:
        value: A number of milliseconds, or a string of number-unit parts with units
            ``ms``, ``s``, ``m``, ``h`` (``"2s"``, ``"1m30s"``, ``"0.5s"``); a bare
            numeric string means milliseconds.

    Returns:
        The duration in milliseconds.

    Raises:
        ValueError: When the value is negative, not a number or not such a string.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        milliseconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            milliseconds = float(text)
        except ValueError:
            parts = _PART.findall(text)
            if not parts or "".join(number + unit for number, unit in parts) != text:
                raise ValueError(f"not a duration: {value!r}") from None
            milliseconds = sum(float(number) * _UNIT_MS[unit] for number, unit in parts)
    else:
        raise ValueError(f"not a duration: {value!r}")
    if milliseconds < 0 or milliseconds != milliseconds:  # NaN is not equal to itself
        raise ValueError(f"not a duration: {value!r}")
    return milliseconds
