"""Browser sessions through the real gateway: cookies, CSRF, refresh and sign-out.

The cookies are sent by hand (``Cookie`` header): the test IAM marks them ``Secure`` (the
default outside ``make up``), which a client keeping cookies would not send over HTTP.
"""

from __future__ import annotations

import httpx
import pytest

from interlock.common.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE

from .conftest import ADMIN, Gateway, bearer

pytestmark = pytest.mark.integration

CSRF_HEADER = "x-interlock-csrf"


class Browser:
    """The cookies a browser would keep for the gateway, from the answers it got."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}
        self.attributes: dict[str, list[str]] = {}

    def keep(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            pair, *attributes = [part.strip() for part in header.split(";")]
            name, _, value = pair.partition("=")
            self.attributes[name] = [attribute.lower() for attribute in attributes]
            if "max-age=0" in self.attributes[name] or not value.strip('"'):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def headers(self, *, csrf: str | None = None) -> dict[str, str]:
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if csrf is not None:
            headers[CSRF_HEADER] = csrf
        return headers

    @property
    def csrf(self) -> str:
        return self.cookies["interlock_csrf"]


def sign_in(gateway: Gateway, username: str, password: str) -> tuple[Browser, dict[str, object]]:
    browser = Browser()
    with gateway.client() as client:
        response = client.post(
            "/api/v1/auth/session", json={"username": username, "password": password}
        )
    assert response.status_code == 200, response.text
    browser.keep(response)
    body: dict[str, object] = response.json()
    return browser, body


def assert_problem(response: httpx.Response, status: int, problem_type: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["type"] == PROBLEM_TYPE_BASE + problem_type


def test_sign_in_sets_http_only_strict_secure_cookies_and_no_token_in_the_body(
    gateway: Gateway,
) -> None:
    browser, body = sign_in(gateway, *ADMIN)
    assert set(browser.cookies) == {"interlock_session", "interlock_refresh", "interlock_csrf"}
    for name in browser.cookies:
        assert "samesite=strict" in browser.attributes[name]
        assert "secure" in browser.attributes[name]
    assert "httponly" in browser.attributes["interlock_session"]
    assert "httponly" in browser.attributes["interlock_refresh"]
    assert "httponly" not in browser.attributes["interlock_csrf"]  # the console reads it
    assert "path=/api/v1/auth/session" in browser.attributes["interlock_refresh"]
    assert body["csrf_token"] == browser.csrf
    assert body["roles"] == ["admin"] and body["tenant"] == "default"
    assert "access_token" not in body and "refresh_token" not in body


def test_wrong_password_sets_no_cookie(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.post(
            "/api/v1/auth/session", json={"username": ADMIN[0], "password": "wrong-password"}
        )
    assert response.status_code == 401
    assert not response.headers.get_list("set-cookie")


def test_the_cookie_authenticates_reads_and_changes_need_the_csrf_header(
    any_gateway: Gateway,
) -> None:
    browser, _ = sign_in(any_gateway, *ADMIN)
    with any_gateway.client() as client:
        read = client.get("/api/v1/runs", headers=browser.headers())
        assert read.status_code == 200, read.text
        assert "x-interlock-identity" in read.json()["headers"]  # the echo saw IAM's token
        assert_problem(
            client.post("/api/v1/workflows", headers=browser.headers()), 403, "csrf-refused"
        )
        wrong = browser.headers(csrf="not-" + browser.csrf)
        assert_problem(client.post("/api/v1/workflows", headers=wrong), 403, "csrf-refused")
        assert_problem(
            client.delete("/api/v1/auth/session", headers=browser.headers()), 403, "csrf-refused"
        )
        changed = client.post("/api/v1/workflows", headers=browser.headers(csrf=browser.csrf))
        assert changed.status_code == 200, changed.text
        # A bearer token is never added by a browser on its own: no CSRF header needed.
        token = any_gateway.admin_token()
        assert client.post("/api/v1/workflows", headers=bearer(token)).status_code == 200
        assert_problem(
            client.get("/api/v1/runs", headers={"cookie": "interlock_csrf=x"}),
            401,
            "unauthenticated",
        )


def test_the_csrf_header_does_not_lift_the_roles_check(gateway: Gateway) -> None:
    username, password = gateway.create_user(["viewer"])
    browser, _ = sign_in(gateway, username, password)
    with gateway.client() as client:
        forged = client.post("/api/v1/runs/r1/cancel", headers=browser.headers(csrf=browser.csrf))
        assert_problem(forged, 403, "forbidden")
        assert client.get("/api/v1/runs/r1", headers=browser.headers()).status_code == 200


def test_refresh_needs_the_csrf_header_and_keeps_the_session(gateway: Gateway) -> None:
    browser, first = sign_in(gateway, *ADMIN)
    with gateway.client() as client:
        refused = client.post("/api/v1/auth/session/refresh", headers=browser.headers())
        assert_problem(refused, 403, "csrf-refused")
        assert_problem(client.post("/api/v1/auth/session/refresh"), 401, "unauthenticated")
        # The refused attempt used nothing up: the same refresh cookie still works.
        old_session = browser.cookies["interlock_session"]
        refreshed = client.post(
            "/api/v1/auth/session/refresh", headers=browser.headers(csrf=browser.csrf)
        )
        assert refreshed.status_code == 200, refreshed.text
        browser.keep(refreshed)
        assert browser.cookies["interlock_session"] != old_session
        assert refreshed.json()["csrf_token"] == first["csrf_token"]  # same session
        read = client.get("/api/v1/runs", headers=browser.headers())
        assert read.status_code == 200


def test_sign_out_revokes_the_session_and_clears_the_cookies(any_gateway: Gateway) -> None:
    browser, _ = sign_in(any_gateway, *ADMIN)
    stale = browser.headers(csrf=browser.csrf)
    with any_gateway.client() as client:
        signed_out = client.delete("/api/v1/auth/session", headers=stale)
        assert signed_out.status_code == 204, signed_out.text
        browser.keep(signed_out)
        assert browser.cookies == {}
        # A copy of the old cookies is worth nothing now, everywhere.
        assert_problem(client.get("/api/v1/runs", headers=stale), 401, "unauthenticated")
        refresh = client.post("/api/v1/auth/session/refresh", headers=stale)
        assert_problem(refresh, 401, "unauthenticated")
