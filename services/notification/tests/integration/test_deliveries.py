"""Deliveries end to end inside the service: events in Kafka → webhooks and email out.

Every webhook the receiver gets is verified with ``standardwebhooks`` (PyPI).
"""

from __future__ import annotations

import email
import email.policy
import uuid
from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import WebhookVerificationError

from interlock.common.kafka import EventPublisher

from .conftest import (
    TENANT,
    Answer,
    Receiver,
    eventually,
    failed,
    gateway_headers,
    started,
    succeeded,
    unique_path,
)


async def subscribe(
    client: httpx.AsyncClient, target: Any, *, channel: str = "webhook", **fields: Any
) -> dict[str, Any]:
    body = {
        "name": fields.pop("name", "ops"),
        "channel": channel,
        "target": target,
        "events": fields.pop("events", ["run.failed", "run.succeeded"]),
        **fields,
    }
    response = await client.post("/api/v1/subscriptions", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliveries(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/deliveries", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["deliveries"]
    return found


async def finished_delivery(client: httpx.AsyncClient, subscription_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        found = await deliveries(client, subscription=subscription_id)
        return found[0] if found and found[0]["status"] != "pending" else None

    result: dict[str, Any] = await eventually(done)
    return result


async def test_a_failed_run_reaches_the_webhook_and_the_mailbox(
    client: httpx.AsyncClient, publisher: EventPublisher, receiver: Receiver, smtp_server: Any
) -> None:
    path = unique_path()
    hook = await subscribe(client, receiver.url(path), filter={"workflows": ["etl"]})
    mailbox = f"{uuid.uuid4().hex[:8]}@example.com"
    mail = await subscribe(client, [mailbox], channel="email")
    assert hook["secret"].startswith("whsec_") and mail["secret"] is None
    run_id = str(uuid.uuid4())
    await publisher.publish([started(TENANT, run_id, "etl"), failed(TENANT, run_id, "etl")])

    (request,) = await eventually(lambda: receiver.at(path))
    body = request.verify(hook["secret"])
    assert body["type"] == "run.failed"
    data = body["data"]
    assert (data["run_id"], data["workflow"], data["version"], data["status"]) == (
        run_id,
        "etl",
        1,
        "failed",
    )
    assert data["failed_tasks"] == [
        {
            "task_id": "load",
            "attempts": None,
            "error": {"type": "TimeoutError", "message": "no answer in 30 s"},
        }
    ]
    assert data["duration_ms"] >= 90_000
    assert data["links"]["run"] == f"http://gateway.test:8080/api/v1/runs/{run_id}"

    def delivered_mail() -> list[email.message.EmailMessage]:
        return [m for m in smtp_server.messages() if mailbox in str(m["To"])]

    (message,) = await eventually(delivered_mail)
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "[Interlock] Run of etl failed"
    plain = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert plain is not None and html is not None
    for part in (plain.get_content(), html.get_content()):
        assert "TimeoutError" in part and "no answer in 30 s" in part
        assert f"http://gateway.test:8080/api/v1/runs/{run_id}" in part
    assert "<a href=" in html.get_content()

    history = await finished_delivery(client, hook["id"])
    assert history["status"] == "succeeded" and history["webhook_id"] == request.webhook_id
    assert [(a["number"], a["status_code"]) for a in history["attempts"]] == [(1, 200)]
    assert (await finished_delivery(client, mail["id"]))["status"] == "succeeded"


async def test_a_receiver_failing_twice_gets_three_attempts_with_one_webhook_id(
    client: httpx.AsyncClient, publisher: EventPublisher, receiver: Receiver
) -> None:
    path = unique_path()
    receiver.script(path, Answer(500), Answer(502))
    hook = await subscribe(client, receiver.url(path))
    run_id = str(uuid.uuid4())
    await publisher.publish([succeeded(TENANT, run_id, "etl")])

    history = await finished_delivery(client, hook["id"])
    requests = receiver.at(path)
    assert len(requests) == 3
    assert len({request.webhook_id for request in requests}) == 1
    for request in requests:
        assert request.verify(hook["secret"])["type"] == "run.succeeded"
    assert history["status"] == "succeeded"
    assert [a["status_code"] for a in history["attempts"]] == [500, 502, 200]
    subscription = (await client.get(f"/api/v1/subscriptions/{hook['id']}")).json()
    assert subscription["enabled"] and subscription["consecutive_failures"] == 0


async def test_410_gone_disables_the_subscription(
    client: httpx.AsyncClient, publisher: EventPublisher, receiver: Receiver
) -> None:
    path = unique_path()
    receiver.script(path, Answer(410))
    hook = await subscribe(client, receiver.url(path))
    await publisher.publish([succeeded(TENANT, str(uuid.uuid4()), "etl")])

    history = await finished_delivery(client, hook["id"])
    assert history["status"] == "failed" and len(history["attempts"]) == 1
    subscription = (await client.get(f"/api/v1/subscriptions/{hook['id']}")).json()
    assert subscription["enabled"] is False
    assert "410" in subscription["disabled_reason"]

    await publisher.publish([succeeded(TENANT, str(uuid.uuid4()), "etl")])
    marker = unique_path()
    probe = await subscribe(client, receiver.url(marker))
    await publisher.publish([succeeded(TENANT, str(uuid.uuid4()), "etl")])
    await finished_delivery(client, probe["id"])  # events after the 410 were consumed
    assert len(receiver.at(path)) == 1


async def test_failures_in_a_row_disable_the_subscription(
    client: httpx.AsyncClient, publisher: EventPublisher, receiver: Receiver
) -> None:
    path = unique_path()
    receiver.script(path, *[Answer(500)] * 10)
    hook = await subscribe(client, receiver.url(path))
    await publisher.publish([succeeded(TENANT, str(uuid.uuid4()), "etl")])

    history = await finished_delivery(client, hook["id"])
    assert history["status"] == "failed"
    assert len(receiver.at(path)) == 4  # max_consecutive_failures
    subscription = (await client.get(f"/api/v1/subscriptions/{hook['id']}")).json()
    assert subscription["enabled"] is False
    assert subscription["disabled_reason"] == "4 failed attempts in a row"

    enabled = await client.patch(f"/api/v1/subscriptions/{hook['id']}", json={"enabled": True})
    assert enabled.json()["enabled"] and enabled.json()["consecutive_failures"] == 0


async def test_retry_after_is_honoured(
    client: httpx.AsyncClient, publisher: EventPublisher, receiver: Receiver
) -> None:
    path = unique_path()
    receiver.script(path, Answer(503, {"Retry-After": "2"}))
    hook = await subscribe(client, receiver.url(path))
    await publisher.publish([succeeded(TENANT, str(uuid.uuid4()), "etl")])

    async def waiting() -> dict[str, Any] | None:
        found = await deliveries(client, subscription=hook["id"])
        return found[0] if found and found[0]["attempts"] else None

    first = await eventually(waiting)
    assert first["status"] == "pending"
    tried = datetime.fromisoformat(first["attempts"][0]["started_at"])
    due = datetime.fromisoformat(first["next_attempt_at"])
    assert (due - tried).total_seconds() >= 2.0  # not the schedule's 100 ms
    history = await finished_delivery(client, hook["id"])
    assert history["status"] == "succeeded"
    assert [a["status_code"] for a in history["attempts"]] == [503, 200]


async def test_both_secrets_sign_during_a_rotation_and_only_the_new_one_after(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    path = unique_path()
    hook = await subscribe(client, receiver.url(path))
    rotated = await client.post(
        f"/api/v1/subscriptions/{hook['id']}/rotate-secret", json={"grace_period": "1h"}
    )
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != hook["secret"]
    await client.post(f"/api/v1/subscriptions/{hook['id']}/test")
    (during,) = await eventually(lambda: receiver.at(path))
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert during.verify(hook["secret"], new_secret)["type"] == "interlock.test"

    newest = (
        await client.post(
            f"/api/v1/subscriptions/{hook['id']}/rotate-secret", json={"grace_period": "0s"}
        )
    ).json()["secret"]
    await client.post(f"/api/v1/subscriptions/{hook['id']}/test")
    after = (await eventually(lambda: receiver.at(path)[1:]))[0]
    after.verify(newest)
    try:
        after.verify(new_secret)
    except WebhookVerificationError:
        pass
    else:
        raise AssertionError("the rotated-out secret still signs after its grace period")


async def test_an_event_delivered_twice_makes_one_delivery_and_redeliver_repeats_it(
    client: httpx.AsyncClient, publisher: EventPublisher, receiver: Receiver
) -> None:
    path = unique_path()
    hook = await subscribe(client, receiver.url(path), filter={"workflows": ["twice"]})
    event = succeeded(TENANT, str(uuid.uuid4()), "twice")
    await publisher.publish([event])
    await publisher.publish([event])
    first = await finished_delivery(client, hook["id"])
    probe = await subscribe(client, receiver.url(unique_path()), filter={"workflows": ["probe"]})
    await publisher.publish([succeeded(TENANT, str(uuid.uuid4()), "probe")])
    await finished_delivery(client, probe["id"])  # the repeat was consumed by now
    assert len(await deliveries(client, subscription=hook["id"])) == 1
    assert len(receiver.at(path)) == 1

    again = await client.post(f"/api/v1/deliveries/{first['id']}/redeliver")
    assert again.status_code == 202
    await eventually(lambda: len(receiver.at(path)) == 2)
    assert {request.webhook_id for request in receiver.at(path)} == {first["webhook_id"]}


async def test_filters_pick_exactly_the_runs_they_name(
    client: httpx.AsyncClient, publisher: EventPublisher, receiver: Receiver
) -> None:
    filters = {
        "by-name": {"workflows": ["billing"]},
        "by-prefix": {"workflow_prefix": "bill"},
        "by-label": {"labels": {"team": "finance"}},
        "run-failed-only": {},
    }
    subs = {
        key: await subscribe(
            client,
            receiver.url(unique_path()),
            filter=value,
            events=["run.failed"] if key == "run-failed-only" else ["run.succeeded"],
        )
        for key, value in filters.items()
    }
    runs = {
        "billing": ("billing", {"team": "finance"}),
        "billing-eu": ("billing-eu", {"team": "ops"}),
        "payroll": ("payroll", {"team": "finance"}),
    }
    run_ids = {run_key + uuid.uuid4().hex: workflow for run_key, (workflow, _) in runs.items()}
    await publisher.publish(
        [
            started(TENANT, run_id, workflow, labels=runs[workflow][1])
            for run_id, workflow in run_ids.items()
        ]
    )
    await publisher.publish(
        [succeeded(TENANT, run_id, workflow) for run_id, workflow in run_ids.items()]
    )
    last = await subscribe(client, receiver.url(unique_path()), events=["run.succeeded"])
    await publisher.publish([succeeded(TENANT, str(uuid.uuid4()), "marker")])
    await finished_delivery(client, last["id"])

    async def workflows(key: str) -> set[str]:
        found = await deliveries(client, subscription=subs[key]["id"])
        return {d["run_id"].rstrip("0123456789abcdef") for d in found}

    assert await workflows("by-name") == {"billing"}
    assert await workflows("by-prefix") == {"billing", "billing-eu"}
    assert await workflows("by-label") == {"billing", "payroll"}
    assert await workflows("run-failed-only") == set()


async def test_another_tenant_sees_and_receives_nothing(
    client: httpx.AsyncClient, publisher: EventPublisher, receiver: Receiver
) -> None:
    path = unique_path()
    hook = await subscribe(client, receiver.url(path))
    other = gateway_headers("globex")
    for method, url in [
        ("GET", f"/api/v1/subscriptions/{hook['id']}"),
        ("PATCH", f"/api/v1/subscriptions/{hook['id']}"),
        ("DELETE", f"/api/v1/subscriptions/{hook['id']}"),
        ("POST", f"/api/v1/subscriptions/{hook['id']}/rotate-secret"),
        ("POST", f"/api/v1/subscriptions/{hook['id']}/test"),
    ]:
        response = await client.request(method, url, headers=other, json={})
        assert response.status_code == 404, (method, url, response.text)
    listed = await client.get("/api/v1/subscriptions", headers=other)
    assert hook["id"] not in {s["id"] for s in listed.json()["subscriptions"]}

    await publisher.publish([succeeded("globex", str(uuid.uuid4()), "etl")])
    await publisher.publish([succeeded(TENANT, str(uuid.uuid4()), "etl")])
    delivered = await finished_delivery(client, hook["id"])
    assert len(await deliveries(client, subscription=hook["id"])) == 1
    response = await client.get(f"/api/v1/deliveries/{delivered['id']}", headers=other)
    assert response.status_code == 404
    none = await client.get(
        "/api/v1/deliveries", headers=other, params={"subscription": hook["id"]}
    )
    assert none.json()["deliveries"] == []


async def test_targets_the_address_guard_refuses_are_422(client: httpx.AsyncClient) -> None:
    for url in (
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
        "http://10.0.0.5/hook",  # private
        "http://192.168.1.10/hook",
        "http://[fd00::1]/hook",  # unique local IPv6
        "http://100.100.100.200/hook",  # shared address space (some clouds' metadata)
        "http://[::ffff:10.0.0.5]/hook",  # private IPv4 inside IPv6
    ):
        response = await client.post(
            "/api/v1/subscriptions",
            json={"name": "x", "channel": "webhook", "target": url, "events": ["run.failed"]},
        )
        assert response.status_code == 422, url
        assert response.json()["type"].endswith("target-not-allowed"), url


async def test_bad_requests_are_clear_problems(client: httpx.AsyncClient) -> None:
    bad_bodies: list[dict[str, Any]] = [
        {"name": "x", "channel": "sms", "target": "x", "events": ["run.failed"]},
        {"name": "x", "channel": "webhook", "target": "ftp://x/", "events": ["run.failed"]},
        {"name": "x", "channel": "webhook", "target": "http://127.0.0.1/", "events": []},
        {"name": "x", "channel": "email", "target": ["nobody"], "events": ["run.failed"]},
        {"name": "x" * 201, "channel": "email", "target": ["a@b.io"], "events": ["run.failed"]},
        {"name": "x", "channel": "webhook", "target": "http://127.0.0.1/", "events": ["x.y"]},
    ]
    for body in bad_bodies:
        response = await client.post("/api/v1/subscriptions", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/api/v1/subscriptions/not-a-uuid")).status_code == 422
    assert (await client.get(f"/api/v1/subscriptions/{uuid.uuid4()}")).status_code == 404
    assert (
        await client.get("/api/v1/deliveries", params={"page_token": "junk"})
    ).status_code == 400
    email_sub = await subscribe(client, ["a@example.com"], channel="email")
    rotate = await client.post(f"/api/v1/subscriptions/{email_sub['id']}/rotate-secret")
    assert rotate.status_code == 409
    grace = await client.post(
        f"/api/v1/subscriptions/{email_sub['id']}/rotate-secret", json={"grace_period": "soon"}
    )
    assert grace.status_code == 422


async def test_lists_page_with_tokens(client: httpx.AsyncClient) -> None:
    headers = gateway_headers("paging-tenant")
    for index in range(3):
        response = await client.post(
            "/api/v1/subscriptions",
            headers=headers,
            json={
                "name": f"s{index}",
                "channel": "email",
                "target": ["a@example.com"],
                "events": ["run.failed"],
            },
        )
        assert response.status_code == 201
    first = (
        await client.get("/api/v1/subscriptions", headers=headers, params={"page_size": 2})
    ).json()
    assert len(first["subscriptions"]) == 2 and first["next_page_token"]
    second = (
        await client.get(
            "/api/v1/subscriptions",
            headers=headers,
            params={"page_size": 2, "page_token": first["next_page_token"]},
        )
    ).json()
    assert [s["name"] for s in second["subscriptions"]] == ["s2"]
    assert second["next_page_token"] is None
    assert "secret" not in second["subscriptions"][0]
