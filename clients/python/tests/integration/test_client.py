"""The client against the real platform: typed errors, token refresh, API keys, paging."""

from __future__ import annotations

import time
import uuid

import pytest

from interlock.client import (
    AsyncClient,
    Client,
    NotFound,
    Session,
    SessionEnded,
    Unauthenticated,
    ValidationFailed,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

NOOP = "name: {name}\nlabels: {{suite: clients}}\ntasks:\n  - id: a\n    type: noop\n"


@pytest.fixture(scope="module")
def admin(platform):
    with Client(platform.gateway) as client:
        client.login(platform.username, platform.password)
        yield client


def _fresh_session(platform) -> Session:
    with Client(platform.gateway) as client:
        return client.login(platform.username, platform.password)


def test_a_problem_is_raised_as_its_typed_error_with_every_member(admin) -> None:
    with pytest.raises(NotFound) as raised:
        admin.runs.get("no-such-run")
    error = raised.value
    assert error.status == 404
    assert error.type == "urn:interlock:problem:run-not-found"
    assert error.title and "no-such-run" in (error.detail or "")
    assert error.request_id

    with pytest.raises(ValidationFailed) as invalid:
        list(admin.runs.list(status="bogus"))
    assert [problem.pointer for problem in invalid.value.errors] == ["/query/status"]


def test_an_expiring_access_token_is_refreshed_before_use_and_the_new_session_reported(
    platform,
) -> None:
    old = _fresh_session(platform)
    told: list[Session | None] = []
    expiring = Session(old.access_token, old.refresh_token, expires_at=time.time() + 1)
    with Client(platform.gateway, session=expiring, on_session=told.append) as client:
        assert client.auth.whoami().roles == ["admin"]
        assert len(told) == 1 and told[0] is not None
        assert told[0].refresh_token != old.refresh_token
        assert client.session == told[0]


def test_a_refused_access_token_is_refreshed_once_and_the_request_sent_again(platform) -> None:
    old = _fresh_session(platform)
    stale = Session("not-a-token", old.refresh_token, expires_at=time.time() + 600)
    told: list[Session | None] = []
    with Client(platform.gateway, session=stale, on_session=told.append) as client:
        assert client.auth.whoami().tenant == "default"
    assert len(told) == 1 and told[0] is not None


def test_a_used_refresh_token_ends_the_session(platform) -> None:
    old = _fresh_session(platform)
    with Client(platform.gateway, session=old) as first:
        first.auth.whoami()
        first._transport._refresh(old.access_token)  # uses old.refresh_token once
    replayed = Session("not-a-token", old.refresh_token, expires_at=time.time() + 600)
    told: list[Session | None] = []
    with (
        Client(platform.gateway, session=replayed, on_session=told.append) as client,
        pytest.raises(SessionEnded),
    ):
        client.auth.whoami()
    assert told == [None]


def test_an_api_key_authenticates_until_revoked(admin, platform) -> None:
    key = admin.api_keys.create(f"clients-{uuid.uuid4().hex[:8]}", ["developer"])
    assert key.key
    with Client(platform.gateway, api_key=key.key) as machine:
        assert machine.auth.whoami().roles == ["developer"]
        admin.api_keys.revoke(key.id)
        with pytest.raises(Unauthenticated):
            machine.auth.whoami()


def test_lists_iterate_across_pages_and_starts_are_idempotent(admin) -> None:
    prefix = f"paging-{uuid.uuid4().hex[:6]}-"
    for index in range(3):
        admin.workflows.create(NOOP.format(name=f"{prefix}{index}"))
    names = [w.name for w in admin.workflows.list(name_prefix=prefix, page_size=1)]
    assert names == [f"{prefix}{index}" for index in range(3)]

    first = admin.runs.start(f"{prefix}0", {"n": 1}, idempotency_key="same-start")
    again = admin.runs.start(f"{prefix}0", {"n": 1}, idempotency_key="same-start")
    other = admin.runs.start(f"{prefix}0", {"n": 1})
    assert again.run_id == first.run_id
    assert other.run_id != first.run_id
    assert first.input == {"n": 1}


async def test_the_async_client_does_the_same_operations(platform) -> None:
    name = f"async-{uuid.uuid4().hex[:6]}"
    async with AsyncClient(platform.gateway) as client:
        await client.login(platform.username, platform.password)
        created = await client.workflows.create(NOOP.format(name=name))
        unchanged = await client.workflows.put(name, NOOP.format(name=name))
        assert (created.version, unchanged.version) == (1, 1)
        run = await client.runs.start(name)
        listed = [summary.run_id async for summary in client.runs.list(workflow=name)]
        assert listed == [run.run_id]
        with pytest.raises(NotFound):
            await client.workflows.get(f"{name}-missing")
