"""Delay timers: durations, weekly times across DST changes, dates."""

from datetime import UTC, datetime, timedelta

import pytest

from interlock.events.v1 import definition_pb2
from interlock.scheduler.domain.delays import delay_due, next_weekly, on_date
from interlock.scheduler.domain.errors import InvalidDelayError

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_duration_is_relative_to_now() -> None:
    now = utc(2026, 1, 1, 12)
    spec = definition_pb2.DelaySpec(duration_ms=1500)
    assert delay_due(spec, now) == now + timedelta(milliseconds=1500)


def test_next_weekday_later_the_same_day() -> None:
    # 2026-03-02 is a Monday; 09:00 CET is 08:00 UTC.
    assert next_weekly([1], "09:00", BERLIN, utc(2026, 3, 2, 7)) == utc(2026, 3, 2, 8)


def test_weekday_list_picks_the_nearest_future_day() -> None:
    # Monday after 09:00 local: Wednesday (3) comes before Friday (5).
    now = utc(2026, 3, 2, 9)
    assert next_weekly([5, 3], "09:00", BERLIN, now) == utc(2026, 3, 4, 8)


def test_same_weekday_already_past_waits_a_week() -> None:
    assert next_weekly([1], "09:00", BERLIN, utc(2026, 3, 2, 8)) == utc(2026, 3, 9, 8)


def test_weekly_time_follows_the_spring_dst_change() -> None:
    # Clocks go forward on Sunday 2026-03-29 in Berlin: 09:00 is 07:00 UTC from then on.
    now = utc(2026, 3, 28, 12)
    assert next_weekly([7], "09:00", BERLIN, now) == utc(2026, 3, 29, 7)
    assert next_weekly([1], "09:00", BERLIN, now) == utc(2026, 3, 30, 7)


def test_nonexistent_local_time_is_shifted_forward_by_the_gap() -> None:
    # 02:30 does not exist on 2026-03-29 in Berlin; it fires at 03:30 CEST = 01:30 UTC.
    assert next_weekly([7], "02:30", BERLIN, utc(2026, 3, 28)) == utc(2026, 3, 29, 1, 30)


def test_ambiguous_local_time_fires_at_its_first_occurrence() -> None:
    # 01:30 happens twice on 2026-11-01 in New York; the first is EDT (UTC-4).
    assert on_date("2026-11-01", "01:30", NEW_YORK) == utc(2026, 11, 1, 5, 30)


def test_weekly_never_fires_twice_for_the_repeated_hour() -> None:
    first = next_weekly([7], "01:30", NEW_YORK, utc(2026, 10, 31))
    assert first == utc(2026, 11, 1, 5, 30)
    assert next_weekly([7], "01:30", NEW_YORK, first) == utc(2026, 11, 8, 6, 30)


def test_date_at_a_time_in_a_zone() -> None:
    spec = definition_pb2.DelaySpec(
        date=definition_pb2.DateDelay(date="2026-07-01", at="18:15", timezone=BERLIN)
    )
    assert delay_due(spec, utc(2026, 6, 1)) == utc(2026, 7, 1, 16, 15)


def test_past_date_is_due_at_once() -> None:
    now = utc(2026, 6, 1)
    spec = definition_pb2.DelaySpec(date=definition_pb2.DateDelay(date="2020-01-01", at="00:00"))
    assert delay_due(spec, now) == now


@pytest.mark.parametrize(
    "spec",
    [
        definition_pb2.DelaySpec(),
        definition_pb2.DelaySpec(weekly=definition_pb2.WeeklyDelay(weekdays=[8], at="09:00")),
        definition_pb2.DelaySpec(weekly=definition_pb2.WeeklyDelay(weekdays=[1], at="9 am")),
        definition_pb2.DelaySpec(
            weekly=definition_pb2.WeeklyDelay(weekdays=[1], at="09:00", timezone="Mars/Base")
        ),
        definition_pb2.DelaySpec(date=definition_pb2.DateDelay(date="2026-02-30", at="09:00")),
    ],
)
def test_invalid_delays_are_rejected(spec: definition_pb2.DelaySpec) -> None:
    with pytest.raises(InvalidDelayError):
        delay_due(spec, utc(2026, 1, 1))
