"""Browser sessions: the cookies a signed-in console holds and their CSRF token.

A browser cannot keep a bearer token away from scripts, so IAM hands it the session as
cookies: the access token in ``interlock_session`` and the refresh token in
``interlock_refresh`` (both HttpOnly, SameSite=Strict), and the session's CSRF token in
``interlock_csrf``, which the console's scripts read and send back in the
``x-interlock-csrf`` header of every state-changing request. A cross-site page can make
the browser send cookies (not with SameSite=Strict, but older browsers and same-site
subdomains differ) yet can neither read the token nor set a custom header without CORS,
which the gateway never grants. The token is derived from the session id, a random
UUID inside the HttpOnly access token, so it stays the same across refreshes and cannot
be computed without the session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SESSION_COOKIE = "interlock_session"
"""The access token (HttpOnly, SameSite=Strict, path ``/``)."""
REFRESH_COOKIE = "interlock_refresh"
"""The refresh token (HttpOnly, SameSite=Strict, path :data:`REFRESH_COOKIE_PATH`)."""
REFRESH_COOKIE_PATH = "/api/v1/auth/session"
"""Where the browser sends the refresh token: only to the session routes."""
CSRF_COOKIE = "interlock_csrf"
"""The session's CSRF token, readable by the console's scripts (SameSite=Strict)."""
CSRF_HEADER = "x-interlock-csrf"
"""The header a cookie-authenticated state-changing request must carry the token in."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing, so need no CSRF token."""


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session (URL-safe, 43 characters)."""
    digest = hashlib.sha256(b"interlock-csrf\0" + session_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def csrf_matches(session_id: str | None, header: str | None) -> bool:
    """Whether ``header`` is the CSRF token of the session (compared in constant time)."""
    if not session_id or not header:
        return False
    return hmac.compare_digest(csrf_token(session_id), header.strip())


def cookie_value(cookie_header: str | None, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header, or ``None`` (first one wins)."""
    if not cookie_header or name not in cookie_header:
        return None
    for pair in cookie_header.split(";"):
        key, sep, value = pair.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"') or None
    return None
