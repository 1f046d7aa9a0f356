"""Task events reach the app channel in bulk deliveries (Dapr bulk subscribe): the app declares it,
answers a status per entry, records a batch's good entries in their owners' feeds once, drops the bad."""

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


def _bulk(*events: object) -> bytes:
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
            "topic": "task-events",
            "type": "com.dapr.event.sent.bulk",
        }
    ).encode()


def test_task_events_are_subscribed_in_bulk(stack: Stack) -> None:
    r = httpx.get(f"{stack.channel.url}/dapr/subscribe", headers={"dapr-api-token": stack.app_token})
    by_topic = {s["topic"]: s for s in r.json()}
    bulk = by_topic["task-events"]["bulkSubscribe"]
    assert bulk == {
        "enabled": True,
        "maxMessagesCount": stack.settings.feed_batch_max,
        "maxAwaitDurationMs": stack.settings.feed_batch_window_ms,
    }
    assert "bulkSubscribe" not in by_topic["reminders"]


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
