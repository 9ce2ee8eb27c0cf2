"""Email attempts against a real SMTP server (aiosmtpd) that refuses as told."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from interlock.devstack._process import free_ports
from interlock.notification.domain import Email, Verdict
from interlock.notification.mail import EmailSender

EMAIL = Email(subject="s", text="plain", html="<p>html</p>")


class Refusing:
    """Answers every RCPT with the reply it was given."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.reply


@pytest.fixture
def refusing_server() -> Iterator[tuple[Refusing, int]]:
    (port,) = free_ports(1)
    handler = Refusing("250 OK")
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def sender(port: int) -> EmailSender:
    return EmailSender(
        host="127.0.0.1",
        port=port,
        sender="Interlock <interlock@localhost>",
        username=None,
        password=None,
        use_tls=False,
        start_tls=False,
        timeout_s=10,
    )


async def test_a_permanent_refusal_fails_with_the_servers_answer(
    refusing_server: tuple[Refusing, int],
) -> None:
    handler, port = refusing_server
    handler.reply = "550 5.1.1 no such mailbox"
    outcome = await sender(port).send(["nobody@example.com"], EMAIL, message_id="msg_1")
    assert outcome.verdict is Verdict.FAILED
    assert outcome.status_code == 550
    assert "no such mailbox" in outcome.error


async def test_a_transient_refusal_and_a_closed_port_are_retried(
    refusing_server: tuple[Refusing, int],
) -> None:
    handler, port = refusing_server
    handler.reply = "451 4.3.0 try again later"
    outcome = await sender(port).send(["someone@example.com"], EMAIL, message_id="msg_1")
    assert (outcome.verdict, outcome.status_code) == (Verdict.RETRY, 451)
    (closed,) = free_ports(1)
    outcome = await sender(closed).send(["someone@example.com"], EMAIL, message_id="msg_1")
    assert outcome.verdict is Verdict.RETRY and outcome.status_code is None


async def test_an_accepted_message_succeeds(refusing_server: tuple[Refusing, int]) -> None:
    _, port = refusing_server
    outcome = await sender(port).send(["someone@example.com"], EMAIL, message_id="msg_1")
    assert (outcome.verdict, outcome.status_code) == (Verdict.SUCCEEDED, 250)


async def test_a_kept_session_the_server_closed_is_replaced_without_a_failed_attempt() -> None:
    (port,) = free_ports(1)
    mail = sender(port)
    for _ in range(2):  # the second server knows nothing of the first one's session
        controller = Controller(Refusing("250 OK"), hostname="127.0.0.1", port=port)
        controller.start()
        try:
            for _ in range(2):
                outcome = await mail.send(["someone@example.com"], EMAIL, message_id="msg_1")
                assert outcome.verdict is Verdict.SUCCEEDED, outcome
        finally:
            controller.stop()
    await mail.aclose()
