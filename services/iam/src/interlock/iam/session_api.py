"""Browser sessions over REST (thin): sign in, refresh and sign out with cookies.

The console signs in here instead of at ``/api/v1/auth/login``: the tokens travel only
as HttpOnly cookies, never in a body a script could read, and the session's CSRF token
comes back in the body and in a cookie the console's scripts read
(:mod:`interlock.iam.domain._browser` says why the cookies look as they do).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Header, Response
from pydantic import BaseModel

from interlock.common.problems import (
    GATEWAY_PROBLEMS,
    PUBLIC_PROBLEMS,
    PUBLIC_ROUTE,
    problem_responses,
)
from interlock.iam.accounts import Accounts, TokenPair
from interlock.iam.api import Caller, LoginRequest, authorization_token
from interlock.iam.credentials import Credentials
from interlock.iam.domain import (
    CSRF_COOKIE,
    CSRF_HEADER,
    REFRESH_COOKIE,
    REFRESH_COOKIE_PATH,
    SESSION_COOKIE,
    csrf_matches,
    csrf_token,
)
from interlock.iam.errors import CsrfRefused, Unauthenticated
from interlock.iam.settings import IamSettings


class SessionResponse(BaseModel):
    """A browser session: who signed in, and the CSRF token to send with changes."""

    id: str
    tenant: str
    roles: list[str]
    csrf_token: str
    """Send it in the ``x-interlock-csrf`` header of every POST, PUT, PATCH and DELETE
    (it is also in the ``interlock_csrf`` cookie)."""
    expires_in: int
    """Seconds until the access cookie expires; refresh before then."""


class _Cookies:
    """Sets and clears the session's cookies on a response."""

    def __init__(self, settings: IamSettings) -> None:
        self._secure = settings.session_cookie_secure
        self._access_ttl_s = settings.access_token_ttl_s
        self._refresh_ttl_s = settings.refresh_token_ttl_s

    def set(self, response: Response, pair: TokenPair, csrf: str) -> None:
        self._set(response, SESSION_COOKIE, pair.access_token, "/", self._access_ttl_s)
        self._set(response, REFRESH_COOKIE, pair.refresh_token, REFRESH_COOKIE_PATH)
        self._set(response, CSRF_COOKIE, csrf, "/", http_only=False)

    def clear(self, response: Response) -> None:
        for name, path in (
            (SESSION_COOKIE, "/"),
            (REFRESH_COOKIE, REFRESH_COOKIE_PATH),
            (CSRF_COOKIE, "/"),
        ):
            response.delete_cookie(
                name, path=path, secure=self._secure, httponly=True, samesite="strict"
            )

    def _set(
        self,
        response: Response,
        name: str,
        value: str,
        path: str,
        max_age_s: int | None = None,
        *,
        http_only: bool = True,
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=self._refresh_ttl_s if max_age_s is None else max_age_s,
            path=path,
            secure=self._secure,
            httponly=http_only,
            samesite="strict",
        )


def build_session_router(
    accounts: Accounts, credentials: Credentials, settings: IamSettings
) -> APIRouter:
    """The browser-session routes, bound to IAM's use cases."""
    router = APIRouter()
    cookies = _Cookies(settings)

    async def opened(pair: TokenPair, response: Response) -> SessionResponse:
        principal = await credentials.validate(pair.access_token)
        assert principal.session_id is not None  # a login's token always names its session
        csrf = csrf_token(principal.session_id)
        cookies.set(response, pair, csrf)
        response.headers["cache-control"] = "no-store"
        return SessionResponse(
            id=principal.subject,
            tenant=principal.tenant,
            roles=sorted(principal.roles),
            csrf_token=csrf,
            expires_in=pair.expires_in,
        )

    @router.post(
        "/api/v1/auth/session",
        response_model=SessionResponse,
        responses=problem_responses(*PUBLIC_PROBLEMS, 401, 403, 422),
        openapi_extra=PUBLIC_ROUTE,
    )
    async def sign_in(body: LoginRequest, response: Response) -> SessionResponse:
        """Sign a browser in: the tokens are set as HttpOnly, SameSite=Strict cookies."""
        pair = await accounts.login(body.username, body.password, body.tenant)
        return await opened(pair, response)

    @router.post(
        "/api/v1/auth/session/refresh",
        response_model=SessionResponse,
        responses=problem_responses(*PUBLIC_PROBLEMS, 401, 403),
        openapi_extra=PUBLIC_ROUTE,
    )
    async def refresh_session(
        response: Response,
        refresh_cookie: Annotated[str | None, Cookie(alias=REFRESH_COOKIE)] = None,
        csrf: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
    ) -> SessionResponse:
        """New session cookies for the refresh cookie; needs the session's CSRF header."""
        if not refresh_cookie:
            raise Unauthenticated("No session to refresh: sign in again.")

        def check_csrf(session_id: str) -> None:
            if not csrf_matches(session_id, csrf):
                raise CsrfRefused()

        pair = await accounts.refresh(refresh_cookie, check_session=check_csrf)
        return await opened(pair, response)

    @router.delete(
        "/api/v1/auth/session",
        status_code=204,
        responses=problem_responses(*GATEWAY_PROBLEMS),
    )
    async def sign_out(
        _: Caller,
        session_cookie: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        """End the session (every token of it, everywhere) and clear the cookies."""
        await accounts.logout(session_cookie or authorization_token(authorization))
        response = Response(status_code=204)
        cookies.clear(response)
        return response

    return router
