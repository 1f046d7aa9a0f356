"""Webhooks end to end over the real sidecar: registration and its checks, signed deliveries that verify
(Standard Webhooks), retries with backoff on the dev clock, disabling after failures and re-enabling,
pings, secret rotation, redirects refused, and a redelivered event delivered once."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from api.channel.app import create_channel_app
from tests.stack import Stack
from tests.webhooks.calls import add_item, advance, attempts, register, wait_attempts
from tests.webhooks.receiver import Receiver, verifies

PROBLEM = "application/problem+json"


def test_a_delivery_is_signed_and_logged(client: httpx.Client, hook_receiver: Receiver) -> None:
    hook = register(client, hook_receiver.url + "/in", ["task.created", "task.completed"])
    assert hook["secret"].startswith("whsec_") and hook["enabled"] is True
    shown = client.get(f"/v1/webhooks/{hook['id']}")
    assert shown.status_code == 200 and "secret" not in shown.json()
    assert shown.headers["etag"] == f'"{hook["version"]}"'
    assert [h["id"] for h in client.get("/v1/webhooks").json()["webhooks"]] == [hook["id"]]

    item = add_item(client)
    (attempt,) = wait_attempts(client, hook["id"], 1)
    (got,) = hook_receiver.at("/in")
    assert verifies(hook["secret"], got)
    assert not verifies("whsec_" + "A" * 44, got)
    body = json.loads(got.body)
    assert body["type"] == "task.created" and body["item_id"] == item["id"]
    assert body["data"]["item"]["title"] == "milk"
    assert got.headers["webhook-id"] == attempt["message_id"] and attempt["event_id"] == body["id"]
    assert (attempt["outcome"], attempt["status_code"], attempt["attempt"]) == ("delivered", 200, 1)
    assert 'todo_webhook_attempts_total{outcome="delivered"}' in client.get("/metrics").text


def test_deleting_a_webhook_stops_its_pending_retries(client: httpx.Client, hook_receiver: Receiver) -> None:
    hook = register(client, hook_receiver.url + "/in")
    hook_receiver.fail_next(500)
    add_item(client)
    wait_attempts(client, hook["id"], 1)
    assert client.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
    advance(client, 3600)
    assert len(hook_receiver.at("/in")) == 1
    assert 'todo_webhook_attempts_total{outcome="skipped"}' in client.get("/metrics").text  # the retry ran
    assert client.get(f"/v1/webhooks/{hook['id']}/deliveries").status_code == 404


def test_failed_attempts_are_retried_with_backoff_on_the_dev_clock(
    stack: Stack, client: httpx.Client, hook_receiver: Receiver
) -> None:
    hook = register(client, hook_receiver.url + "/in")
    hook_receiver.fail_next(500, 503)
    add_item(client)
    (first,) = wait_attempts(client, hook["id"], 1)
    assert (first["outcome"], first["status_code"]) == ("retry", 500)
    advance(client, 9)  # the first backoff is 10 s: nothing yet
    assert len(attempts(client, hook["id"])) == 1
    advance(client, 1)
    second = wait_attempts(client, hook["id"], 2)[1]
    assert (second["outcome"], second["status_code"], second["attempt"]) == ("retry", 503, 2)
    advance(client, 40)  # then 10 s * 4
    made = wait_attempts(client, hook["id"], 3)
    assert [a["outcome"] for a in made] == ["retry", "retry", "delivered"]
    got = hook_receiver.at("/in")
    assert len(got) == 3 and len({r.headers["webhook-id"] for r in got}) == 1
    assert all(verifies(hook["secret"], r) for r in got)
    stamps = [int(r.headers["webhook-timestamp"]) for r in got]
    assert stamps[1] - stamps[0] >= 10 and stamps[2] - stamps[1] >= 40
    advance(client, 3600)
    assert len(hook_receiver.at("/in")) == 3  # delivered once: no attempt after the success
    assert client.get(f"/v1/webhooks/{hook['id']}").json()["consecutive_failures"] == 0


def test_a_webhook_is_disabled_after_consecutive_failed_deliveries_and_re_enabled(
    client: httpx.Client, hook_receiver: Receiver
) -> None:
    hook = register(client, hook_receiver.url + "/in")
    hook_receiver.fail_next(*[500] * 6)  # two deliveries of three attempts each
    add_item(client, "one")
    add_item(client, "two")
    wait_attempts(client, hook["id"], 2)
    advance(client, 3600)
    made = wait_attempts(client, hook["id"], 6)
    assert sorted(a["outcome"] for a in made) == ["failed"] * 2 + ["retry"] * 4
    shown = client.get(f"/v1/webhooks/{hook['id']}").json()
    assert shown["enabled"] is False and shown["consecutive_failures"] == 2
    assert "2 consecutive failed deliveries" in shown["disabled_reason"]

    add_item(client, "while disabled")
    advance(client, 60)
    assert len(hook_receiver.at("/in")) == 6  # nothing is sent to a disabled webhook

    r = client.patch(
        f"/v1/webhooks/{hook['id']}", json={"enabled": True}, headers={"If-Match": f'"{shown["version"]}"'}
    )
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is True and r.json()["consecutive_failures"] == 0
    stale = client.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": True}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412 and stale.headers["content-type"] == PROBLEM
    add_item(client, "after")
    assert wait_attempts(client, hook["id"], 7)[-1]["outcome"] == "delivered"


def test_ping_rotation_and_the_grace_window(client: httpx.Client, hook_receiver: Receiver) -> None:
    hook = register(client, hook_receiver.url + "/in")
    r = client.post(f"/v1/webhooks/{hook['id']}:ping")
    assert r.status_code == 200, r.text
    assert r.json()["attempt"]["outcome"] == "delivered" and r.json()["attempt"]["status_code"] == 200
    (ping,) = hook_receiver.at("/in")
    assert json.loads(ping.body)["type"] == "webhook.ping" and verifies(hook["secret"], ping)

    r = client.post(f"/v1/webhooks/{hook['id']}:rotate-secret")
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["secret"] != hook["secret"] and rotated["previous_expires_at"] is not None
    client.post(f"/v1/webhooks/{hook['id']}:ping")
    during = hook_receiver.at("/in")[-1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verifies(hook["secret"], during) and verifies(rotated["secret"], during)

    r = client.post(f"/v1/webhooks/{hook['id']}:rotate-secret", params={"grace_seconds": 0})
    newest = r.json()["secret"]
    assert r.json()["previous_expires_at"] is None
    client.post(f"/v1/webhooks/{hook['id']}:ping")
    after = hook_receiver.at("/in")[-1]
    assert verifies(newest, after) and not verifies(rotated["secret"], after)
    assert not verifies(hook["secret"], after)

    hook_receiver.fail_next(503)
    failed = client.post(f"/v1/webhooks/{hook['id']}:ping").json()["attempt"]
    assert (failed["outcome"], failed["status_code"]) == ("failed", 503)
    assert [a["event_type"] for a in attempts(client, hook["id"])] == ["webhook.ping"] * 4
    assert client.get(f"/v1/webhooks/{hook['id']}").json()["consecutive_failures"] == 0


def test_a_redirect_is_a_failed_attempt_not_followed(client: httpx.Client, hook_receiver: Receiver) -> None:
    hook = register(client, hook_receiver.url + "/in")
    hook_receiver.fail_next(307)
    attempt = client.post(f"/v1/webhooks/{hook['id']}:ping").json()["attempt"]
    assert attempt["outcome"] == "failed" and attempt["status_code"] == 307
    assert "not followed" in attempt["error"]
    assert hook_receiver.at("/elsewhere") == []


def test_a_redelivered_event_is_delivered_once(
    stack: Stack, client: httpx.Client, user: str, hook_receiver: Receiver
) -> None:
    hook = register(client, hook_receiver.url + "/in", ["reminder.fired"])
    fired = {"id": f"notif-{user}", "owner": user, "list_id": "l1", "item_id": "i1", "title": "in 5 min"}
    envelope = {"specversion": "1.0", "source": "todo-engine", "type": "reminder.fired", "id": fired["id"]}
    envelope |= {"datacontenttype": "application/json", "data": fired}
    entry = {"entryId": "e1", "event": envelope, "contentType": "application/cloudevents+json"}
    bulk = {"entries": [entry], "id": "b1", "pubsubname": "pubsub", "topic": "reminders"}
    bulk |= {"metadata": {"pubsubName": "pubsub"}, "type": "com.dapr.event.sent.bulk"}
    headers = {"dapr-api-token": stack.app_token}
    with httpx.Client(base_url=stack.channel.url) as channel:
        for _ in range(3):  # at-least-once: the same event again, before and after it was sent
            r = channel.post("/events/pubsub/reminders", json=bulk, headers=headers)
            assert r.status_code == 200 and r.json() == {"statuses": [{"entryId": "e1", "status": "SUCCESS"}]}
            wait_attempts(client, hook["id"], 1)
    advance(client, 3600)
    assert len(hook_receiver.at("/in")) == 1
    assert [a["outcome"] for a in attempts(client, hook["id"])] == ["delivered"]


def test_registration_is_validated_and_owned(
    stack: Stack, client: httpx.Client, hook_receiver: Receiver
) -> None:
    r = client.post("/v1/webhooks", json={"url": hook_receiver.url, "events": ["task.nope"]})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["loc"][:2] == ["body", "events"]
    twice = client.post("/v1/webhooks", json={"url": hook_receiver.url, "events": ["task.created"] * 2})
    assert twice.status_code == 422 and twice.json()["errors"][0]["loc"][:2] == ["body", "events"]
    r = client.post("/v1/webhooks", json={"url": "ftp://example.com/x", "events": ["task.created"]})
    assert r.status_code == 422
    r = client.post(
        "/v1/webhooks", json={"url": hook_receiver.url, "events": ["task.created"], "secret": "x"}
    )
    assert r.status_code == 422

    hook = register(client, hook_receiver.url + "/in")
    with stack.client("someone-else") as stranger:
        for method, path in [
            ("GET", ""),
            ("PATCH", ""),
            ("DELETE", ""),
            ("POST", ":ping"),
            ("POST", ":rotate-secret"),
            ("GET", "/deliveries"),
        ]:
            kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
            r = stranger.request(method, f"/v1/webhooks/{hook['id']}{path}", **kwargs)
            assert r.status_code == 404, (method, path, r.text)
        assert stranger.get("/v1/webhooks").json()["webhooks"] == []
    more = [register(client, hook_receiver.url + f"/{n}")["id"] for n in range(2)]
    first = client.get("/v1/webhooks", params={"limit": 2}).json()
    assert [h["id"] for h in first["webhooks"]] == [hook["id"], more[0]] and first["next_cursor"]
    assert client.delete(f"/v1/webhooks/{more[0]}").status_code == 204  # the cursor outlives its webhook
    rest = client.get("/v1/webhooks", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [h["id"] for h in rest["webhooks"]] == [more[1]] and rest["next_cursor"] is None
    one_each = stack.serve_public(webhooks_per_user=1)
    try:
        with httpx.Client(base_url=one_each.url, headers=client.headers) as c:
            r = c.post("/v1/webhooks", json={"url": hook_receiver.url, "events": ["task.deleted"]})
            assert r.status_code == 409 and r.json()["limit"] == "webhooks_per_user", r.text
    finally:
        one_each.stop()
    assert client.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
    assert client.get(f"/v1/webhooks/{hook['id']}").status_code == 404


def test_private_targets_are_refused_unless_allowed(stack: Stack, user: str) -> None:
    strict = stack.serve_public(webhooks_allow_private=False)
    try:
        with httpx.Client(base_url=strict.url, headers={"Authorization": f"Bearer {stack.token(user)}"}) as c:
            for url, says in [
                ("http://127.0.0.1:9/hook", "https"),
                ("https://127.0.0.1/hook", "127.0.0.1"),
                ("https://[::1]/hook", "::1"),
                ("https://10.1.2.3/hook", "10.1.2.3"),
                ("https://169.254.169.254/latest", "169.254.169.254"),
                ("https://[::ffff:192.168.0.1]/x", "::ffff:c0a8:1"),
                ("https://localhost/hook", "localhost"),
                ("https://user:pw@example.com/hook", "credentials"),
            ]:
                r = c.post("/v1/webhooks", json={"url": url, "events": ["task.created"]})
                assert r.status_code == 422, (url, r.text)
                problem = r.json()
                assert problem["errors"][0]["loc"] == ["body", "url"] and says in problem["detail"], problem
            assert c.get("/v1/webhooks").json()["webhooks"] == []
    finally:
        strict.stop()


def test_a_delivery_survives_an_app_restart(
    stack: Stack, client: httpx.Client, hook_receiver: Receiver
) -> None:
    """The app channel (workflow worker included) goes down between two attempts of a delivery: the new
    one makes the next attempt when the durable timer fires, with the same `webhook-id`."""
    hook = register(client, hook_receiver.url + "/in")
    hook_receiver.fail_next(502)
    add_item(client)
    (first,) = wait_attempts(client, hook["id"], 1)
    assert first["outcome"] == "retry"
    stack.restart_channel(lambda _: create_channel_app(stack.settings, clock=stack.now))
    advance(client, 10)
    made = wait_attempts(client, hook["id"], 2)
    assert [(a["attempt"], a["outcome"]) for a in made] == [(1, "retry"), (2, "delivered")]
    got = hook_receiver.at("/in")
    assert len(got) == 2 and got[0].headers["webhook-id"] == got[1].headers["webhook-id"]
    assert all(verifies(hook["secret"], r) for r in got)


def test_a_members_webhook_gets_the_shared_lists_events(
    stack: Stack, client: httpx.Client, user: str, hook_receiver: Receiver
) -> None:
    member = f"member-{uuid.uuid4().hex[:8]}"
    with stack.client(member) as theirs:
        hook = register(theirs, hook_receiver.url + "/in", ["member.added", "task.created"])
        list_id = client.post("/v1/lists", json={"title": "team"}).json()["id"]
        r = client.post(f"/v1/lists/{list_id}/members", json={"user": member, "role": "viewer"})
        assert r.status_code == 201, r.text
        item = client.post(f"/v1/lists/{list_id}/items", json={"title": "shared milk"}).json()
        got = wait_attempts(theirs, hook["id"], 2)
    assert sorted(a["event_type"] for a in got) == ["member.added", "task.created"]
    bodies = [json.loads(d.body) for d in hook_receiver.at("/in")]
    assert {b["item_id"] for b in bodies if b["type"] == "task.created"} == {item["id"]}
