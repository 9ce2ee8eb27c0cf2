"""A service believes only identity tokens IAM signed: made-up headers get 401."""

import asyncio
import base64
import http.server
import json
import threading
import time

import jwt
import pytest
from fastapi import APIRouter

from interlock.common.http import create_app
from interlock.common.identity import (
    IDENTITY_HEADER,
    IDENTITY_TOKEN_TYPE,
    CurrentPrincipal,
    IdentityVerifier,
    InvalidIdentity,
    JwksKeys,
)
from interlock.common.settings import ServiceSettings
from interlock.common.testing import TEST_IDENTITY, TestIdentity, app_client, identity_headers

router = APIRouter()


@router.get("/whoami")
async def whoami(principal: CurrentPrincipal) -> dict[str, object]:
    return {
        "subject": principal.subject,
        "tenant": principal.tenant,
        "roles": sorted(principal.roles),
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forgeries() -> dict[str, dict[str, str]]:
    """Requests that must not pass for an identity, by what they try."""
    good = TEST_IDENTITY.token("acme", subject="u1", roles=["viewer"])
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    kid = jwt.get_unverified_header(good)["kid"]
    jwk = json.loads(TEST_IDENTITY.jwks)["keys"][0]
    escalated = _b64(json.dumps({**claims, "tid": "other", "roles": ["admin"]}).encode())
    none_header = _b64(json.dumps({"alg": "none", "typ": IDENTITY_TOKEN_TYPE, "kid": kid}).encode())
    hs256 = jwt.api_jws.PyJWS().encode(
        json.dumps(claims).encode(),
        jwk["x"].encode(),  # the public key as an HMAC secret: algorithm confusion
        algorithm="HS256",
        headers={"kid": kid, "typ": IDENTITY_TOKEN_TYPE},
    )
    now = int(time.time())
    return {
        "the gateway's old plain headers": {
            "x-interlock-principal": "u1",
            "x-interlock-tenant": "acme",
            "x-interlock-roles": "admin",
        },
        "garbage": {IDENTITY_HEADER: "garbage"},
        "tampered claims": {IDENTITY_HEADER: f"{header}.{escalated}.{signature}"},
        "alg none": {IDENTITY_HEADER: f"{none_header}.{payload}."},
        "HS256 with the public key": {IDENTITY_HEADER: hs256},
        "signed by another key": TestIdentity().headers("acme"),
        "expired": {
            IDENTITY_HEADER: jwt.encode(
                {**claims, "iat": now - 600, "exp": now - 300},
                TEST_IDENTITY._key,
                algorithm="EdDSA",
                headers={"kid": kid, "typ": IDENTITY_TOKEN_TYPE},
            )
        },
        "an access token (other type and audience)": {
            IDENTITY_HEADER: jwt.encode(
                {**claims, "aud": "interlock"},
                TEST_IDENTITY._key,
                algorithm="EdDSA",
                headers={"kid": kid},
            )
        },
    }


FORGERIES = _forgeries()


@pytest.mark.parametrize("headers", FORGERIES.values(), ids=FORGERIES.keys())
async def test_forged_identities_are_refused(headers: dict[str, str]) -> None:
    app = create_app(ServiceSettings(identity_jwks=TEST_IDENTITY.jwks), routers=[router])
    async with app_client(app) as client:
        refused = await client.get("/whoami", headers=headers)
        refused_again = await client.get("/whoami", headers=headers)
    assert refused.status_code == refused_again.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"


async def test_a_signed_identity_is_believed_and_remembered() -> None:
    app = create_app(ServiceSettings(identity_jwks=TEST_IDENTITY.jwks), routers=[router])
    headers = identity_headers("acme", subject="u1", roles=["viewer"])
    async with app_client(app) as client:
        refused = await client.get("/whoami")
        accepted = await client.get("/whoami", headers=headers)
        again = await client.get("/whoami", headers=headers)
    assert refused.status_code == 401
    assert (
        accepted.json() == again.json() == {"subject": "u1", "tenant": "acme", "roles": ["viewer"]}
    )


class _JwksServer(http.server.BaseHTTPRequestHandler):
    document = "{}"
    fetches = 0

    def do_GET(self) -> None:
        type(self).fetches += 1
        body = self.document.encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


async def test_keys_are_fetched_from_iam_again_after_a_rotation_at_most_once_a_second() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _JwksServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    old, new = TestIdentity(), TestIdentity()
    _JwksServer.document = old.jwks
    url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    keys = JwksKeys(url, min_refresh_s=3600.0)
    verifier = IdentityVerifier(keys)
    try:
        async with keys:
            assert (await verifier.verify(old.token("acme"))).tenant == "acme"
            _JwksServer.document = new.jwks  # IAM rotated its key
            keys._last_fetch -= 3600.0  # the last fetch was long enough ago
            assert (await verifier.verify(new.token("acme"))).tenant == "acme"
            fetches = _JwksServer.fetches
            for _ in range(3):  # made-up kids: no fetch within min_refresh_s
                with pytest.raises(InvalidIdentity):
                    await verifier.verify(TestIdentity().token("acme"))
            assert _JwksServer.fetches == fetches == 2
    finally:
        server.shutdown()
        server.server_close()


async def test_keys_iam_no_longer_lists_stop_verifying() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _JwksServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    retired = TestIdentity()
    _JwksServer.document = retired.jwks
    url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    keys = JwksKeys(url, refresh_interval_s=0.05)
    try:
        async with keys:
            assert await keys.public_key(json.loads(retired.jwks)["keys"][0]["kid"]) is not None
            _JwksServer.document = '{"keys": []}'  # the retired key's last tokens expired
            verifier = IdentityVerifier(keys)
            async with asyncio.timeout(10):  # a hang guard only
                while True:
                    try:
                        await verifier.verify(retired.token("acme"))
                    except InvalidIdentity:
                        break
                    await asyncio.sleep(0.02)
    finally:
        server.shutdown()
        server.server_close()
