"""Strict JSON: what no store can hold is refused on the way in, or replaced on the way out."""

import pytest

from interlock.common import strict_json


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "[Infinity]",
        '{"a": -Infinity}',
        "1e999999",
        "9" * 65,
        '"\\u0000"',
        '{"\\u0000": 1}',
        '["\\ud800"]',
        '"\\udc00x"',
    ],
)
def test_unstorable_values_are_refused(text: str) -> None:
    with pytest.raises(strict_json.UnacceptableJsonError):
        strict_json.loads(text)


def test_storable_values_pass() -> None:
    text = '{"a": [1, 2.5, -3e10, "é", "\\ud83d\\ude00", null, true], "' + "9" * 10 + '": 1}'
    assert strict_json.loads(text) == {
        "a": [1, 2.5, -3e10, "é", "😀", None, True],
        "9" * 10: 1,
    }


def test_storable_replaces_what_cannot_be_kept() -> None:
    value = {"a\x00": ["x\ud800y", 1, {"k": "\x00"}], "ok": "é😀"}
    assert strict_json.storable_value(value) == {
        "a\ufffd": ["x\ufffdy", 1, {"k": "\ufffd"}],
        "ok": "é😀",
    }
    strict_json.check_value(strict_json.storable_value(value))
