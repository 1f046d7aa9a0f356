"""Events end to end: actors publish, the app channel records each event once in the owner's feed,
`/v1/changes` pages it and `/v1/events` streams it; due reminders fire when the manual clock moves."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import httpx

from tests.api.conftest import Stack, changes, new_item, new_list, wait_for_events


def _zoned(instant: dt.datetime) -> dict[str, str]:
    """A due at this instant, as a zoned wall time in UTC (whole seconds)."""
    return {"datetime": instant.replace(tzinfo=None, microsecond=0).isoformat(), "tz": "UTC"}


def _advance(client: httpx.Client, seconds: float) -> None:
    r = client.post("/v1/dev/clock:advance", json={"seconds": seconds})
    assert r.status_code == 200, r.text


def _fired(item_id: str) -> Any:
    return lambda e: e["type"] == "reminder.fired" and e["item_id"] == item_id


def test_changes_record_each_event_once_in_order(client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    item = new_item(client, list_id, "2025-01-01 file taxes")
    url = f"/v1/lists/{list_id}/items/{item['id']}"
    client.patch(url, json={"notes": "n"}).raise_for_status()
    client.post(f"{url}:complete").raise_for_status()
    client.post(f"{url}:reopen").raise_for_status()
    assert client.delete(url).status_code == 204
    events = wait_for_events(client, lambda e: e["item_id"] == item["id"], count=5)
    assert [e["type"] for e in events] == [
        "task.created",
        "task.updated",
        "task.completed",
        "task.reopened",
        "task.deleted",
    ]
    cursors = [int(e["cursor"]) for e in events]
    assert cursors == sorted(cursors) and len(set(cursors)) == 5
    assert len({e["id"] for e in events}) == 5
    assert events[0]["data"]["item"]["title"] == "2025-01-01 file taxes"
    assert all(e["list_id"] == list_id for e in events)
    # Paging from a cursor returns only what came after it.
    after = changes(client, since=events[2]["cursor"])
    assert [e["id"] for e in after] == [e["id"] for e in events[3:]]
    # Another user's feed has none of it.
    with httpx.Client(base_url=str(client.base_url)) as anonymous:
        assert anonymous.get("/v1/changes").status_code == 401


def test_other_users_feeds_stay_separate(stack: Stack, client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    new_item(client, list_id)
    wait_for_events(client, lambda e: e["list_id"] == list_id)
    with stack.client("a-stranger") as other:
        assert [e for e in changes(other) if e["list_id"] == list_id] == []


def test_due_reminder_fires_once(stack: Stack, client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    due = stack.now() + dt.timedelta(hours=1)
    item = new_item(client, list_id, "call mum", due=_zoned(due), reminders=[{"before_due": "PT15M"}])
    _advance(client, 2 * 3600)
    fired = wait_for_events(client, _fired(item["id"]), count=2)
    names = sorted(e["data"]["reminder"] for e in fired)
    assert names == [f"due:{item['id']}", f"rem:{item['id']}:0"]
    assert len({e["id"] for e in fired}) == 2
    # Moving time again delivers nothing new for this item.
    _advance(client, 3600)
    probe = new_item(client, list_id, "probe", due=_zoned(stack.now() + dt.timedelta(minutes=5)))
    _advance(client, 600)
    wait_for_events(client, _fired(probe["id"]))
    assert len([e for e in changes(client) if _fired(item["id"])(e)]) == 2


def test_reminders_rearmed_on_edit_and_gone_after_delete(stack: Stack, client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    now = stack.now()
    moved = new_item(client, list_id, "moved", due=_zoned(now + dt.timedelta(hours=1)))
    deleted = new_item(client, list_id, "deleted", due=_zoned(now + dt.timedelta(hours=1)))
    control = new_item(client, list_id, "control", due=_zoned(now + dt.timedelta(hours=1)))
    new_due = now + dt.timedelta(hours=3)
    r = client.patch(f"/v1/lists/{list_id}/items/{moved['id']}", json={"due": _zoned(new_due)})
    assert r.status_code == 200, r.text
    assert client.delete(f"/v1/lists/{list_id}/items/{deleted['id']}").status_code == 204

    _advance(client, 2 * 3600)
    wait_for_events(client, _fired(control["id"]))  # the old due time has passed and fired elsewhere
    events = changes(client)
    assert not [e for e in events if _fired(moved["id"])(e)]
    assert not [e for e in events if _fired(deleted["id"])(e)]

    _advance(client, 2 * 3600)
    fired = wait_for_events(client, _fired(moved["id"]))
    assert len(fired) == 1
    assert dt.datetime.fromisoformat(fired[0]["data"]["fire_at"]) == new_due.replace(microsecond=0)
    assert not [e for e in changes(client) if _fired(deleted["id"])(e)]


def test_sse_streams_events_and_resumes(stack: Stack, client: httpx.Client, user: str) -> None:
    list_id = new_list(client)["id"]
    first = new_item(client, list_id, "first")
    wait_for_events(client, lambda e: e["item_id"] == first["id"])
    headers = {"Authorization": f"Bearer {stack.token(user)}"}
    timeout = httpx.Timeout(10.0)

    def read_events(url: str, count: int, extra: dict[str, str], during: Any = None) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        comments: list[str] = []
        with httpx.stream("GET", url, headers={**headers, **extra}, timeout=timeout) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            current: dict[str, Any] = {}
            started = False
            for line in r.iter_lines():
                if not started and during is not None:
                    threading.Thread(target=during).start()
                started = True
                if line.startswith(":"):
                    comments.append(line)
                elif line.startswith("id: "):
                    current["id"] = line[4:]
                elif line.startswith("event: "):
                    current["event"] = line[7:]
                elif line.startswith("data: "):
                    current["data"] = json.loads(line[6:])
                elif line == "" and current:
                    got.append(current)
                    current = {}
                    if len(got) >= count:
                        break
        return got

    url = f"{stack.url}/v1/events"
    replayed = read_events(f"{url}?since=0", 1, {})
    assert replayed[0]["event"] == "task.created" and replayed[0]["data"]["item_id"] == first["id"]

    # Live: an event appended while the stream is open arrives.
    def add_second() -> None:
        with stack.client(user) as c:
            new_item(c, list_id, "second")

    live = read_events(url, 1, {}, during=add_second)
    assert live[0]["event"] == "task.created" and live[0]["data"]["data"]["item"]["title"] == "second"

    # Resume after the first event: only what came later.
    resumed = read_events(url, 1, {"Last-Event-ID": replayed[0]["id"]})
    assert resumed[0]["id"] == live[0]["id"]


def test_sse_sends_keepalives(stack: Stack, user: str) -> None:
    headers = {"Authorization": f"Bearer {stack.token(user)}"}
    with httpx.stream("GET", f"{stack.url}/v1/events", headers=headers, timeout=10) as r:
        comments = []
        for line in r.iter_lines():
            if line.startswith(":"):
                comments.append(line)
            if any("keep-alive" in c for c in comments):
                break
    assert comments[0].startswith(": connected") and comments[-1] == ": keep-alive"
