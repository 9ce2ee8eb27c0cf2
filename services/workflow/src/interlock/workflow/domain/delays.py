"""Delay task parameters → :class:`DelaySpec`.

A delay waits for exactly one of:

- ``{duration: 2d}``: a fixed time after the task becomes ready;
- ``{weekdays: [mon, wed], at: "09:00", timezone: Europe/Berlin}``: the next of those
  weekdays at that local time (timezone default ``UTC``);
- ``{date: 2027-03-01, at: "06:00", timezone: UTC}``: a calendar date at a local time
  (``at`` default ``00:00``, timezone default ``UTC``).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from interlock.common.durations import parse_duration_ms
from interlock.events.v1 import definition_pb2
from interlock.workflow.domain.issues import Issue

WEEKDAYS: dict[str, int] = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
"""Weekday names and their ISO numbers (1 = Monday)."""

DEFAULT_TIMEZONE = "UTC"
DEFAULT_AT = "00:00"

_AT = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_KINDS = ("duration", "weekdays", "date")
_ALLOWED_KEYS = {
    "duration": {"duration"},
    "weekdays": {"weekdays", "at", "timezone"},
    "date": {"date", "at", "timezone"},
}


def parse_delay(params: Any, at: str) -> tuple[definition_pb2.DelaySpec | None, list[Issue]]:
    """Read a delay task's parameters.

    Args:
        params: The task's ``params`` (any JSON value).
        at: JSON Pointer of ``params`` in the document, for the issues.

    Returns:
        The delay, or ``None`` with at least one issue.
    """
    if not isinstance(params, dict):
        return None, [Issue(at, "a delay task needs params: {duration}, {weekdays, at} or {date}")]
    kinds = [kind for kind in _KINDS if kind in params]
    if len(kinds) != 1:
        found = f"found {', '.join(kinds)}" if kinds else "found none"
        return None, [Issue(at, f"give exactly one of duration, weekdays or date ({found})")]
    kind = kinds[0]
    issues = [
        Issue(f"{at}/{key}", f"{key!r} does not belong in a {kind} delay")
        for key in params
        if key not in _ALLOWED_KEYS[kind]
    ]
    if kind == "duration":
        value = params["duration"]
        try:
            if not isinstance(value, str):
                raise ValueError(f"{value!r} is not a duration such as 500ms, 1s, 5m, 2h or 2d")
            duration_ms = parse_duration_ms(value)
        except ValueError as error:
            return None, [*issues, Issue(f"{at}/duration", str(error))]
        return (None, issues) if issues else (definition_pb2.DelaySpec(duration_ms=duration_ms), [])

    time = _time(params, at, issues, default=DEFAULT_AT if kind == "date" else None)
    zone = _timezone(params, at, issues)
    if kind == "weekdays":
        weekdays = _weekdays(params["weekdays"], f"{at}/weekdays", issues)
        if issues or time is None or zone is None or weekdays is None:
            return None, issues
        weekly = definition_pb2.WeeklyDelay(weekdays=weekdays, at=time, timezone=zone)
        return definition_pb2.DelaySpec(weekly=weekly), []
    day = _date(params["date"], f"{at}/date", issues)
    if issues or time is None or zone is None or day is None:
        return None, issues
    return definition_pb2.DelaySpec(
        date=definition_pb2.DateDelay(date=day, at=time, timezone=zone)
    ), []


def _time(
    params: dict[str, Any], at: str, issues: list[Issue], *, default: str | None
) -> str | None:
    value = params.get("at", default)
    if value is None:
        issues.append(Issue(at, 'a weekdays delay needs "at", a time such as "09:00"'))
        return None
    if not isinstance(value, str) or not _AT.fullmatch(value):
        issues.append(Issue(f"{at}/at", f"{value!r} is not a 24-hour time HH:MM"))
        return None
    return value


def _timezone(params: dict[str, Any], at: str, issues: list[Issue]) -> str | None:
    value = params.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(value, str) or not value:
        issues.append(Issue(f"{at}/timezone", f"{value!r} is not an IANA timezone name"))
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        issues.append(
            Issue(f"{at}/timezone", f"unknown timezone {value!r} (IANA names, e.g. Europe/Berlin)")
        )
        return None
    return value


def _weekdays(value: Any, at: str, issues: list[Issue]) -> list[int] | None:
    if not isinstance(value, list) or not value:
        issues.append(
            Issue(at, "weekdays is a non-empty list of mon, tue, wed, thu, fri, sat, sun")
        )
        return None
    numbers: list[int] = []
    for index, name in enumerate(value):
        number = WEEKDAYS.get(name.lower()) if isinstance(name, str) else None
        if number is None:
            issues.append(
                Issue(
                    f"{at}/{index}",
                    f"{name!r} is not a weekday (mon, tue, wed, thu, fri, sat, sun)",
                )
            )
        elif number in numbers:
            issues.append(Issue(f"{at}/{index}", f"{name!r} repeats"))
        else:
            numbers.append(number)
    return None if len(numbers) != len(value) else sorted(numbers)


def _date(value: Any, at: str, issues: list[Issue]) -> str | None:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        issues.append(Issue(at, f"{value!r} is not a date YYYY-MM-DD"))
        return None
    try:
        date.fromisoformat(value)
    except ValueError:
        issues.append(Issue(at, f"{value!r} is not a calendar date"))
        return None
    return value
