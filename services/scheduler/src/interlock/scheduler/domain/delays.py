"""When a delay task's timer is due: a duration, the next of some weekdays, or a date.

Local times follow the IANA time zone database (:mod:`zoneinfo`). Daylight-saving
policy, chosen so a delay fires exactly once and never earlier than asked:

* A local time that does not exist (the hour skipped when clocks go forward, e.g.
  02:30 in Europe/Berlin on the last Sunday of March) fires at the same distance past
  the gap's start as asked for, i.e. shifted forward by the gap (02:30 → 03:30 CEST).
* A local time that occurs twice (the hour repeated when clocks go back) fires at its
  first occurrence (the earlier instant, still daylight-saving time).
* A date in the past is due at once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from interlock.events.v1 import definition_pb2
from interlock.scheduler.domain.errors import InvalidDelayError


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of ``day`` at ``at`` in ``zone``, by the module's DST policy."""
    # fold=0 resolves an ambiguous time to its first occurrence, and a nonexistent one
    # with the offset before the gap, which lands the gap's length later: the policy.
    local = datetime.combine(day, at, tzinfo=zone).replace(fold=0)
    return local.astimezone(UTC)


def _parse_at(text: str) -> time:
    try:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except ValueError as error:
        raise InvalidDelayError(f"{text!r} is not HH:MM") from error


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidDelayError(f"unknown time zone {name!r}") from error


def next_weekly(weekdays: list[int], at: str, timezone: str, now: datetime) -> datetime:
    """The first instant after ``now`` that is one of ``weekdays`` at ``at`` in ``timezone``.

    Args:
        weekdays: ISO weekdays, 1 = Monday … 7 = Sunday.
        at: ``"HH:MM"``, local.
        timezone: IANA name; empty means UTC.
        now: The current instant (aware).

    Raises:
        InvalidDelayError: No weekday in 1..7, or a bad time or zone.
    """
    days = {day for day in weekdays if 1 <= day <= 7}
    if not days or len(days) != len(weekdays):
        raise InvalidDelayError(f"weekdays must be ISO numbers 1..7, got {list(weekdays)}")
    local_time, zone = _parse_at(at), _zone(timezone)
    today = now.astimezone(zone).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        if day.isoweekday() not in days:
            continue
        instant = local_instant(day, local_time, zone)
        if instant > now:
            return instant
    raise AssertionError("a weekday recurs within 8 days")  # pragma: no cover


def on_date(day: str, at: str, timezone: str) -> datetime:
    """The instant of ``day`` (``YYYY-MM-DD``) at ``at`` in ``timezone``.

    Raises:
        InvalidDelayError: A bad date, time or zone.
    """
    try:
        parsed = date.fromisoformat(day)
    except ValueError as error:
        raise InvalidDelayError(f"{day!r} is not YYYY-MM-DD") from error
    return local_instant(parsed, _parse_at(at or "00:00"), _zone(timezone))


def delay_due(spec: definition_pb2.DelaySpec, now: datetime) -> datetime:
    """When a delay that becomes ready at ``now`` is due (never before ``now``).

    Raises:
        InvalidDelayError: The spec sets no kind, or an invalid one.
    """
    kind = spec.WhichOneof("kind")
    if kind == "duration_ms":
        return now + timedelta(milliseconds=max(spec.duration_ms, 0))
    if kind == "weekly":
        return next_weekly(list(spec.weekly.weekdays), spec.weekly.at, spec.weekly.timezone, now)
    if kind == "date":
        return max(now, on_date(spec.date.date, spec.date.at, spec.date.timezone))
    raise InvalidDelayError("a delay needs duration_ms, weekly or date")
