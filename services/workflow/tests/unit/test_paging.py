"""Page tokens are opaque, and only work for the list and filters they came from."""

import pytest

from interlock.workflow.domain import InvalidPageTokenError
from interlock.workflow.domain.paging import decode_token, encode_token


def test_a_token_round_trips() -> None:
    token = encode_token(["2026-01-01T00:00:00+00:00", "id-1"], "runs", {"status": "failed"})
    assert "2026" not in token  # opaque to the client
    assert decode_token(token, "runs", {"status": "failed"}) == [
        "2026-01-01T00:00:00+00:00",
        "id-1",
    ]


@pytest.mark.parametrize(
    ("token", "listing", "filters"),
    [
        ("not a token", "runs", {}),
        ("", "runs", {}),
        (encode_token(["x"], "runs", {"status": "failed"}), "runs", {"status": "running"}),
        (encode_token(["x"], "runs", {}), "workflows", {}),
    ],
)
def test_foreign_or_malformed_tokens_are_refused(
    token: str, listing: str, filters: dict[str, str]
) -> None:
    with pytest.raises(InvalidPageTokenError):
        decode_token(token, listing, filters)
