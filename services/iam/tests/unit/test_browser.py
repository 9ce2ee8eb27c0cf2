"""Browser-session helpers: reading the session cookie and checking the CSRF token."""

from __future__ import annotations

from interlock.iam.authorizer import request_credential
from interlock.iam.domain import cookie_value, csrf_matches, csrf_token


def test_cookie_value_finds_the_named_cookie_only() -> None:
    header = "theme=dark; interlock_session=abc.def; interlock_sessionx=no"
    assert cookie_value(header, "interlock_session") == "abc.def"
    assert cookie_value("interlock_sessionx=no", "interlock_session") is None
    assert cookie_value("interlock_session=", "interlock_session") is None
    assert cookie_value(None, "interlock_session") is None


def test_csrf_token_is_stable_per_session_and_differs_between_sessions() -> None:
    token = csrf_token("session-1")
    assert token == csrf_token("session-1") != csrf_token("session-2")
    assert csrf_matches("session-1", token)
    assert not csrf_matches("session-2", token)
    assert not csrf_matches("session-1", None)
    assert not csrf_matches(None, token)


def test_a_bearer_token_wins_over_the_cookie() -> None:
    both = request_credential("Bearer t1", "interlock_session=t2")
    assert both is not None and both.token == "t1" and not both.from_cookie
    cookie = request_credential(None, "interlock_session=t2")
    assert cookie is not None and cookie.token == "t2" and cookie.from_cookie
    assert request_credential("Basic x", "other=1") is None
