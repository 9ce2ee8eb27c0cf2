import pytest

from interlock.common.durations import MAX_DURATION_MS, is_duration, parse_duration_ms
from interlock.common.errors import InvalidDurationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", 500),
        ("1s", 1_000),
        ("5m", 300_000),
        ("2h", 7_200_000),
        ("2d", 172_800_000),
        ("1d", 86_400_000),
        ("1h30m", 5_400_000),
        ("1m30s", 90_000),
        ("0s", 0),
    ],
)
def test_the_grammar_reads_every_unit(text: str, expected: int) -> None:
    assert parse_duration_ms(text) == expected
    assert is_duration(text)


@pytest.mark.parametrize(
    "value",
    ["", "1", "40", "0.5s", "-1s", "1 s", "2 parsecs", "s", "1w", "1h\x00", True, None, 250, [1]],
)
def test_anything_else_is_refused_as_a_value_error(value: object) -> None:
    with pytest.raises(InvalidDurationError, match="not a duration") as caught:
        parse_duration_ms(value)
    assert isinstance(caught.value, ValueError)
    assert caught.value.status == 422


def test_longer_than_a_year_and_a_day_is_refused() -> None:
    assert parse_duration_ms("366d") == MAX_DURATION_MS
    with pytest.raises(InvalidDurationError, match="longer than 366 days"):
        parse_duration_ms("367d")


def test_an_overlong_text_is_refused_before_it_is_summed() -> None:
    assert not is_duration("1s" * 6)
    assert not is_duration("1" * 12 + "ms")
