"""Sends one email attempt through SMTP (aiosmtplib): plain text and HTML alternatives."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage

import aiosmtplib
from pydantic import SecretStr

from interlock.notification.domain import AttemptOutcome, Email, Verdict, smtp_verdict


class EmailSender:
    """Sends notification emails, one SMTP session per message.

    Args:
        host: SMTP server.
        port: Its port.
        sender: The ``From`` address.
        username: Login, when the server wants one.
        password: Its password.
        use_tls: TLS from the first byte.
        start_tls: STARTTLS after connecting.
        timeout_s: Bound on one exchange.
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
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._use_tls = use_tls
        self._start_tls = start_tls
        self._timeout_s = timeout_s

    async def send(
        self, recipients: Sequence[str], email: Email, *, message_id: str
    ) -> AttemptOutcome:
        """Send ``email`` to ``recipients``, and what the server's answer means."""
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = email.subject
        message["X-Interlock-Message-Id"] = message_id
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        try:
            refused, answer = await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password.get_secret_value() if self._password else None,
                use_tls=self._use_tls,
                start_tls=self._start_tls,
                timeout=self._timeout_s,
            )
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
