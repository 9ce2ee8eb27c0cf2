"""The SSRF guard decides on webhook targets by address: resolved, vetted, never contacted."""

import pytest

from interlock.notification.domain import TargetNotAllowedError
from interlock.notification.webhooks import WebhookSender


def sender(*allowed: str) -> WebhookSender:
    return WebhookSender(timeout_s=2, allowed_networks=allowed, excerpt_bytes=64)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # link-local: cloud metadata
        "http://[fe80::1]/",
        "http://10.1.2.3/",  # private
        "http://172.16.0.1/",
        "http://192.168.0.1/",
        "http://[fd12::1]/",
        "http://100.64.0.1/",  # shared address space
        "http://127.0.0.1:8080/",  # loopback, not allowed outside the local stack
        "http://[::1]/",
        "http://localhost:8080/",  # a name resolving to loopback: judged after resolution
        "http://0.0.0.0/",
        "http://[::ffff:192.168.0.1]/",
    ],
)
async def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(TargetNotAllowedError):
        await sender().vet(url)


async def test_the_local_stack_allowance_lets_loopback_through_and_nothing_else() -> None:
    local = sender("127.0.0.0/8", "::1/128")
    assert str(await local.vet("http://localhost:9/")) in ("127.0.0.1", "::1")
    assert str(await local.vet("http://127.0.0.1:9/")) == "127.0.0.1"
    with pytest.raises(TargetNotAllowedError):
        await local.vet("http://169.254.169.254/")


async def test_a_public_address_passes() -> None:
    assert str(await sender().vet("https://93.184.215.14/hook")) == "93.184.215.14"
