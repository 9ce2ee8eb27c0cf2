"""Sends email attempts through SMTP (aiosmtplib): plain text and HTML alternatives."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import aiosmtplib
from pydantic import SecretStr

from interlock.notification.domain import AttemptOutcome, Email, Verdict, smtp_verdict


class EmailSender:
    """Sends notification emails over a few kept-open SMTP sessions.

    A session is reused for the next message (saving the greeting, EHLO, TLS and login
    each time); one that failed in any way is closed, and a kept session the server
    closed meanwhile is replaced once, without counting as an attempt.

    Args:
        host: SMTP server.
        port: Its port.
        sender: The ``From`` address.
        username: Login, when the server wants one.
        password: Its password.
        use_tls: TLS from the first byte.
        start_tls: STARTTLS after connecting.
        timeout_s: Bound on one exchange.
        max_sessions: Sessions open at once, so messages sent in parallel. Default: 4.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None,
        password: SecretStr | None,
        use_tls: bool,
        start_tls: bool,
        timeout_s: float,
        max_sessions: int = 4,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._use_tls = use_tls
        self._start_tls = start_tls
        self._timeout_s = timeout_s
        self._sessions = asyncio.Semaphore(max_sessions)
        self._idle: list[aiosmtplib.SMTP] = []

    async def aclose(self) -> None:
        """Close the kept sessions."""
        idle, self._idle = self._idle, []
        for session in idle:
            session.close()

    async def send(
        self, recipients: Sequence[str], email: Email, *, message_id: str
    ) -> AttemptOutcome:
        """Send ``email`` to ``recipients``, and what the server's answer means."""
        message = _mime(email)
        message["From"] = self._sender
        message["To"] = ", ".join(recipients)
        message["X-Interlock-Message-Id"] = message_id
        async with self._sessions:
            try:
                refused, answer = await self._send(message)
            except aiosmtplib.SMTPRecipientsRefused as error:
                codes = [refusal.code for refusal in error.recipients]
                return AttemptOutcome(
                    verdict=smtp_verdict(max(codes, default=None)),
                    status_code=max(codes, default=None),
                    error=f"every recipient refused: {error.recipients[0].message}"[:500],
                )
            except aiosmtplib.SMTPResponseException as error:
                return AttemptOutcome(
                    verdict=smtp_verdict(error.code),
                    status_code=error.code,
                    error=f"SMTP {error.code}: {error.message}"[:500],
                )
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                return AttemptOutcome(
                    verdict=Verdict.RETRY, error=f"{type(error).__name__}: {error}"[:500]
                )
        excerpt = answer
        if refused:
            excerpt += "; refused: " + ", ".join(sorted(refused))
        return AttemptOutcome(
            verdict=Verdict.SUCCEEDED, status_code=250, response_excerpt=excerpt[:1024]
        )

    async def _send(self, message: MIMEMultipart) -> tuple[dict[str, Any], str]:
        kept = self._idle.pop() if self._idle else None
        if kept is not None:
            try:
                return await self._send_on(kept, message)
            except (aiosmtplib.SMTPServerDisconnected, OSError):
                pass  # the server closed the kept session: a new one, not a failed attempt
        return await self._send_on(await self._connect(), message)

    async def _send_on(
        self, session: aiosmtplib.SMTP, message: MIMEMultipart
    ) -> tuple[dict[str, Any], str]:
        try:
            refused, answer = await session.send_message(message)
        except BaseException:
            session.close()
            raise
        self._idle.append(session)
        return refused, answer

    async def _connect(self) -> aiosmtplib.SMTP:
        session = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password.get_secret_value() if self._password else None,
            use_tls=self._use_tls,
            start_tls=self._start_tls,
            timeout=self._timeout_s,
        )
        await session.connect()
        return session


def _mime(email: Email) -> MIMEMultipart:
    """Plain text and HTML alternatives, UTF-8.

    Built with the ``compat32`` MIME classes rather than ``EmailMessage``: the modern
    policy parses and refolds every header through its header registry, which made
    building a message cost more CPU than sending it.
    """
    message = MIMEMultipart("alternative")
    subject = email.subject
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
    message.attach(MIMEText(email.text, "plain", "utf-8"))
    message.attach(MIMEText(email.html, "html", "utf-8"))
    return message
