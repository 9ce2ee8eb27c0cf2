"""Sends one webhook attempt: vet the target's addresses, sign, POST, judge the answer.

The SSRF guard (:mod:`interlock.common.addresses`) runs on every attempt: the host is
resolved, every address it has must be globally routable (or inside
``webhook_allowed_networks``), and the request goes to the vetted address, the URL's
host kept in ``Host`` and in TLS's server name, so a DNS answer cannot change between
check and use. Redirects are not followed (a 3xx is a failure).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx

from interlock.common import addresses
from interlock.notification.domain import (
    AttemptOutcome,
    TargetNotAllowedError,
    Verdict,
    parse_retry_after,
    signature_header,
    webhook_verdict,
)

USER_AGENT = "Interlock-Webhooks/1"
"""The ``User-Agent`` of every webhook request."""


class WebhookSender:
    """Sends webhook attempts over one connection pool.

    Args:
        timeout_s: Bound on one request, resolution and connection included.
        allowed_networks: Networks reachable although not public (CIDR strings).
        excerpt_bytes: Most bytes of the answer kept.
    """

    def __init__(
        self, *, timeout_s: float, allowed_networks: Sequence[str], excerpt_bytes: int
    ) -> None:
        self._timeout_s = timeout_s
        self._allowed = addresses.parse_networks(allowed_networks)
        self._excerpt_bytes = excerpt_bytes
        self._client: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        """Close the connection pool."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def vet(self, url: str) -> addresses.IPAddress:
        """The address ``url``'s host resolves to, once every one of them passed the guard.

        Raises:
            TargetNotAllowedError: The host is, or resolves to, an address webhooks may
                not reach, or does not resolve.
        """
        parsed = httpx.URL(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            return await addresses.resolve_reachable(
                parsed.host, port, allowed=self._allowed, timeout_s=self._timeout_s
            )
        except (addresses.AddressNotAllowed, addresses.HostNotResolved) as error:
            raise TargetNotAllowedError(f"target: {error}") from None

    async def send(
        self, url: str, *, message_id: str, secrets: Sequence[str], body: bytes
    ) -> AttemptOutcome:
        """One signed POST of ``body`` to ``url``, and what its answer means."""
        try:
            address = await self.vet(url)
        except TargetNotAllowedError as error:
            return AttemptOutcome(verdict=Verdict.RETRY, error=str(error))
        parsed = httpx.URL(url)
        timestamp = int(time.time())
        headers = {
            "Host": parsed.netloc.decode("ascii"),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, message_id, timestamp, body),
        }
        request = self._http().build_request(
            "POST",
            parsed.copy_with(host=str(address)),
            headers=headers,
            content=body,
            timeout=self._timeout_s,
            extensions={"sni_hostname": parsed.host},
        )
        try:
            response = await self._http().send(request, stream=True)
        except httpx.TimeoutException:
            return AttemptOutcome(
                verdict=Verdict.RETRY, error=f"no answer within {self._timeout_s:g} s"
            )
        except httpx.HTTPError as error:
            return AttemptOutcome(verdict=Verdict.RETRY, error=f"{type(error).__name__}: {error}")
        try:
            excerpt = await self._excerpt(response)
        finally:
            await response.aclose()
        verdict = webhook_verdict(response.status_code)
        return AttemptOutcome(
            verdict=verdict,
            status_code=response.status_code,
            error="" if verdict is Verdict.SUCCEEDED else f"answered {response.status_code}",
            response_excerpt=excerpt,
            retry_after_s=parse_retry_after(response.headers.get("retry-after")),
        )

    async def _excerpt(self, response: httpx.Response) -> str:
        kept = bytearray()
        try:
            async for chunk in response.aiter_raw():
                kept += chunk[: self._excerpt_bytes - len(kept)]
                if len(kept) >= self._excerpt_bytes:
                    break
        except httpx.HTTPError:
            pass  # the status is the answer; a broken body only shortens the excerpt
        return kept.decode("utf-8", errors="replace")

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            )
        return self._client
