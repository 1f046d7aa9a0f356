"""Task events and reminder notifications reach the app channel in bulk deliveries (Dapr bulk subscribe):
the app declares it, answers a status per entry, records a batch's good entries in their owners' feeds
once, drops the bad."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.api.conftest import Stack, changes


def _event(event_id: str, owner: str, **data: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "task.created",
        "specversion": "1.0",
        "source": "todo-engine",
        "datacontenttype": "application/json",
        "data": {"owner": owner, "list_id": "l-bulk", "item_id": event_id, **data},
    }


def _bulk(*events: object, topic: str = "task-events") -> bytes:
    entries = [
        {"entryId": f"e{n}", "event": event, "metadata": {}, "contentType": "application/cloudevents+json"}
        for n, event in enumerate(events)
    ]
    return json.dumps(
        {
            "entries": entries,
            "id": "b1",
            "metadata": {"pubsubName": "pubsub"},
            "pubsubname": "pubsub",
            "topic": topic,
            "type": "com.dapr.event.sent.bulk",
        }
    ).encode()


def test_task_events_and_reminders_are_subscribed_in_bulk(stack: Stack) -> None:
    r = httpx.get(f"{stack.channel.url}/dapr/subscribe", headers={"dapr-api-token": stack.app_token})
    by_topic = {s["topic"]: s for s in r.json()}
    for topic in ("task-events", "reminders"):
        assert by_topic[topic]["bulkSubscribe"] == {
            "enabled": True,
            "maxMessagesCount": stack.settings.feed_batch_max,
            "maxAwaitDurationMs": stack.settings.feed_batch_window_ms,
        }
    assert "bulkSubscribe" not in by_topic["reminders-dead"]  # dead letters come one by one


def test_a_bulk_delivery_answers_each_entry_and_records_each_event_once(stack: Stack, user: str) -> None:
    other = f"{user}-2"
    body = _bulk(
        _event(f"{user}-1", user, title="2025-01-01 file taxes"),
        _event(f"{user}-2", other),
        {"id": "no-data", "type": "task.created"},  # malformed: dropped
        "not a cloud event",  # a raw payload: dropped
        _event(f"{user}-1", user, title="2025-01-01 file taxes"),  # the same event twice in one batch
    )
    headers = {"dapr-api-token": stack.app_token, "content-type": "application/json"}
    with httpx.Client(base_url=stack.channel.url, headers=headers) as channel:
        for _ in range(2):  # redelivered whole: every entry settles the same way, nothing is added
            r = channel.post("/events/pubsub/task-events", content=body)
            assert r.status_code == 200
            statuses = {s["entryId"]: s["status"] for s in r.json()["statuses"]}
            assert statuses == {"e0": "SUCCESS", "e1": "SUCCESS", "e2": "DROP", "e3": "DROP", "e4": "SUCCESS"}
        not_bulk = channel.post("/events/pubsub/task-events", content=json.dumps(_event("x", user)))
        assert not_bulk.json() == {"statuses": []}  # no status: the sidecar redelivers
    with stack.client(user) as c:
        mine = changes(c)
    assert [(e["id"], e["data"]["title"]) for e in mine] == [(f"{user}-1", "2025-01-01 file taxes")]
    with stack.client(other) as c:
        assert [e["id"] for e in changes(c)] == [f"{user}-2"]


def test_reminder_notifications_are_recorded_once_by_cloudevent_id(stack: Stack, user: str) -> None:
    event = {
        "id": f"notif-{user}",
        "type": "reminder.fired",
        "specversion": "1.0",
        "source": "todo-engine",
        "datacontenttype": "application/json",
        "data": {"id": f"notif-{user}", "owner": user, "list_id": "l1", "item_id": "i1", "title": "5m"},
    }
    headers = {"dapr-api-token": stack.app_token, "content-type": "application/json"}
    with httpx.Client(base_url=stack.channel.url, headers=headers) as channel:
        for _ in range(3):  # at-least-once delivery: the same event again, alone and twice in one batch
            r = channel.post("/events/pubsub/reminders", content=_bulk(event, event, topic="reminders"))
            assert r.json() == {
                "statuses": [{"entryId": "e0", "status": "SUCCESS"}, {"entryId": "e1", "status": "SUCCESS"}]
            }
        bad = _bulk("not json", [1, 2], {**event, "data": "nope"}, topic="reminders")
        r = channel.post("/events/pubsub/reminders", content=bad)
        assert [s["status"] for s in r.json()["statuses"]] == ["DROP"] * 3
    with stack.client(user) as c:
        got = [e for e in changes(c) if e["type"] == "reminder.fired"]
    assert len(got) == 1 and got[0]["id"] == f"notif-{user}" and got[0]["data"]["title"] == "5m"
