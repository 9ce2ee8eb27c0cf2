import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from interlock.common.errors import InvalidPageTokenError
from interlock.common.paging import MAX_TOKEN_LENGTH, PageKey

RUNS = PageKey("runs", datetime, uuid.UUID)
FILTERS = {"workflow": "etl", "status": None}
POSITION = (datetime(2026, 12, 5, 4, 0, 0, 123000, tzinfo=UTC), uuid.uuid4())


def _forge(parts: object, listing: PageKey = RUNS, filters: object = FILTERS) -> str:
    real = json.loads(base64.urlsafe_b64decode(listing.encode(POSITION, FILTERS) + "=="))
    raw = json.dumps({"k": parts, "f": real["f"]}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_token_gives_back_the_position_it_was_issued_for() -> None:
    token = RUNS.encode(POSITION, FILTERS)
    assert RUNS.decode(token, dict(FILTERS)) == POSITION
    assert "=" not in token


@pytest.mark.parametrize(
    "token",
    ["", "not base64 !", "bm90IGpzb24", base64.urlsafe_b64encode(b"[1,2]").decode(), "x" * 3000],
)
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidPageTokenError) as caught:
        RUNS.decode(token, FILTERS)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "parts",
    [
        [12345, str(POSITION[1])],  # an integer where a timestamp belongs
        ["2026-12-05T04:00:00", str(POSITION[1])],  # a timestamp without its zone
        [POSITION[0].isoformat(), "not-a-uuid"],
        [POSITION[0].isoformat(), "\x00"],
        [POSITION[0].isoformat()],
        [POSITION[0].isoformat(), str(POSITION[1]), "extra"],
        {"k": 1},
    ],
)
def test_forged_positions_are_refused(parts: object) -> None:
    with pytest.raises(InvalidPageTokenError, match="malformed"):
        RUNS.decode(_forge(parts), FILTERS)


def test_strings_with_nul_and_integers_out_of_range_are_refused() -> None:
    names = PageKey("names", str, int)
    good = names.encode(("a", 1), {})
    assert names.decode(good, {}) == ("a", 1)
    for parts in (["a\x00b", 1], ["a", 2**63], ["a", True], ["a", "1"]):
        with pytest.raises(InvalidPageTokenError):
            names.decode(_forge(parts, names, {}), {})


def test_a_token_for_other_filters_or_another_list_is_refused() -> None:
    token = RUNS.encode(POSITION, FILTERS)
    with pytest.raises(InvalidPageTokenError, match="other filters"):
        RUNS.decode(token, {**FILTERS, "workflow": "other"})
    with pytest.raises(InvalidPageTokenError, match="other filters"):
        PageKey("dead-letters", datetime, uuid.UUID).decode(token, FILTERS)


def test_tokens_stay_short() -> None:
    assert len(RUNS.encode(POSITION, FILTERS)) < MAX_TOKEN_LENGTH // 10


def test_a_page_of_rows_read_one_past_its_size_ends_with_a_token_after_its_last_row() -> None:
    rows = [(POSITION[0], uuid.uuid4()) for _ in range(4)]
    page = RUNS.page(rows, 3, lambda row: row, FILTERS)
    assert page.items == rows[:3]
    assert page.next_page_token is not None
    assert RUNS.decode(page.next_page_token, FILTERS) == rows[2]


@pytest.mark.parametrize("count", [0, 2, 3])
def test_a_page_with_no_row_past_its_size_is_the_last(count: int) -> None:
    rows = [(POSITION[0], uuid.uuid4()) for _ in range(count)]
    page = RUNS.page(rows, 3, lambda row: row, FILTERS)
    assert page.items == rows
    assert page.next_page_token is None
