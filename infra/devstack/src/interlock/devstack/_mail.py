"""Read the messages the SMTP capture server stored in its Maildir."""

from __future__ import annotations

import email.policy
import mailbox
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path


def read_maildir(mail_dir: Path) -> list[EmailMessage]:
    """Return every message in the Maildir ``mail_dir``, oldest first.

    Each message carries the capture server's ``X-MailFrom`` and ``X-RcptTo``
    headers (the SMTP envelope) besides its own.
    """
    if not mail_dir.is_dir():
        return []
    box = mailbox.Maildir(mail_dir, create=False)
    parser = BytesParser(policy=email.policy.default)
    keyed: list[tuple[float, str, EmailMessage]] = []
    for key in box.iterkeys():
        delivered = box.get_message(key).get_date()
        message = parser.parsebytes(box.get_bytes(key))
        assert isinstance(message, EmailMessage)
        keyed.append((delivered, key, message))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [message for _, _, message in keyed]
