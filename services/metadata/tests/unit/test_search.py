"""The creation windows a newest-first search reads, one after another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from interlock.metadata.domain import CreationWindows, Window

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def read_all(windows: CreationWindows, found: list[int]) -> list[Window]:
    """Every window ``windows`` gives out, told after each that ``found`` rows were found."""
    given, total = [], 0
    while (window := windows.next(total)) is not None:
        given.append(window)
        total += found[len(given) - 1] if len(given) <= len(found) else 0
    return given


def test_a_search_without_bounds_starts_at_the_last_hour_with_no_upper_bound() -> None:
    windows = CreationWindows(newest=None, oldest=None, now=NOW, wanted=51)
    assert windows.next(0) == Window(NOW - HOUR, None)


def test_windows_follow_each_other_without_gaps_and_end_without_a_lower_bound() -> None:
    given = read_all(CreationWindows(newest=None, oldest=None, now=NOW, wanted=51), [])
    assert [w.end for w in given[1:]] == [w.start for w in given[:-1]]
    assert given[-1].start is None
    # nothing found: each window reaches back eight times what was covered, then a year
    assert given[1].start == NOW - 9 * HOUR
    assert given[2].start == NOW - 81 * HOUR
    assert len(given) == 6


def test_the_next_window_is_sized_to_fill_the_page_at_the_rate_found() -> None:
    windows = CreationWindows(newest=None, oldest=None, now=NOW, wanted=51)
    windows.next(0)
    second = windows.next(10)  # 10 rows an hour: 41 more need 4.1 h, with the margin 5.125 h
    assert second == Window(NOW - HOUR - 5.125 * HOUR, NOW - HOUR)


def test_growth_is_bounded_and_a_page_almost_full_still_reads_a_first_span() -> None:
    windows = CreationWindows(newest=None, oldest=None, now=NOW, wanted=1000)
    windows.next(0)
    assert windows.next(1) == Window(NOW - 9 * HOUR, NOW - HOUR)  # at most eight times
    windows = CreationWindows(newest=None, oldest=None, now=NOW, wanted=51)
    windows.next(0)
    assert windows.next(50) == Window(NOW - 2 * HOUR, NOW - HOUR)


def test_a_full_page_ends_the_windows() -> None:
    windows = CreationWindows(newest=None, oldest=None, now=NOW, wanted=51)
    windows.next(0)
    assert windows.next(51) is None


def test_the_search_bounds_hold_the_windows() -> None:
    before, after = NOW - 24 * HOUR, NOW - 30 * HOUR
    given = read_all(CreationWindows(newest=before, oldest=after, now=NOW, wanted=51), [])
    assert given == [
        Window(before - HOUR, before),
        Window(after, before - HOUR),
    ]


def test_a_page_cursor_is_an_inclusive_upper_bound() -> None:
    cursor = NOW - 3 * HOUR
    windows = CreationWindows(newest=cursor, newest_inclusive=True, oldest=None, now=NOW, wanted=5)
    assert windows.next(0) == Window(cursor - HOUR, cursor, end_inclusive=True)
    assert windows.next(0) == Window(cursor - 9 * HOUR, cursor - HOUR)


def test_a_search_whose_bounds_are_within_the_first_window_reads_one() -> None:
    windows = CreationWindows(newest=NOW, oldest=NOW - timedelta(minutes=5), now=NOW, wanted=5)
    assert windows.next(0) == Window(NOW - timedelta(minutes=5), NOW)
    assert windows.next(0) is None
