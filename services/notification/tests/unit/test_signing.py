"""Signatures are checked with the ``standardwebhooks`` package, which nobody here wrote."""

import base64
import json
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from interlock.notification.domain import new_secret, signature_header


def _headers(message_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_a_secret_is_whsec_and_the_base64_of_at_least_24_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert new_secret() != secret


def test_a_signature_verifies_with_the_reference_implementation() -> None:
    secret = new_secret()
    body = json.dumps({"type": "run.failed", "data": {"run_id": "r1"}}).encode()
    now = int(time.time())
    header = signature_header([secret], "msg_1", now, body)
    assert header.startswith("v1,")
    assert Webhook(secret).verify(body, _headers("msg_1", now, header)) == json.loads(body)


def test_a_changed_body_or_id_or_another_secret_fails_verification() -> None:
    secret = new_secret()
    body = b'{"type":"run.succeeded"}'
    now = int(time.time())
    header = signature_header([secret], "msg_1", now, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"type":"run.failed"}', _headers("msg_1", now, header))
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, _headers("msg_2", now, header))
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, _headers("msg_1", now, header))


def test_during_a_rotation_both_secrets_verify_the_same_message() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"type":"run.succeeded"}'
    now = int(time.time())
    header = signature_header([new, old], "msg_1", now, body)
    assert len(header.split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(body, _headers("msg_1", now, header))
