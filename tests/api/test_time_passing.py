"""A dev-clock advance is time passing with the engine up: every due reminder and occurrence fires on its
instant, in order, and the advance answers once the engine is quiet (no polling needed afterwards)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from tests.api.conftest import Stack, changes, new_item, new_list

DAY = 86_400


def advance(client: httpx.Client, seconds: float, **options: Any) -> dict[str, Any]:
    r = client.post("/v1/dev/clock:advance", json={"seconds": seconds, **options}, timeout=120)
    assert r.status_code == (202 if options.get("wait") is False else 200), r.text
    body: dict[str, Any] = r.json()
    return body


def items(client: httpx.Client, list_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/v1/lists/{list_id}/items", params={"limit": 200})
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["items"]
    return found


def tomorrow_at_nine(stack: Stack) -> dt.datetime:
    now = stack.now()
    return (now + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0, tzinfo=None)


def new_series(client: httpx.Client, list_id: str, start: dt.datetime, **fields: Any) -> dict[str, Any]:
    r = client.post(
        "/v1/series",
        json={
            "list_id": list_id,
            "template": {"title": "Water plants"},
            "rule": "FREQ=DAILY",
            "dtstart": start.isoformat(),
            "tz": "UTC",
            **fields,
        },
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_three_one_day_advances_create_three_occurrences_on_time(stack: Stack, client: httpx.Client) -> None:
    todo = new_list(client, "Home")
    start = tomorrow_at_nine(stack)
    series = new_series(client, todo["id"], start)
    for _ in range(3):
        advance(client, DAY)
    made = items(client, todo["id"])
    dues = sorted(dt.datetime.fromisoformat(i["due"]["datetime"]) for i in made)
    assert dues == [start + dt.timedelta(days=k) for k in range(len(dues))]
    assert len(dues) >= 2  # tomorrow 09:00 and the day after are within three days from now
    state = client.get(f"/v1/series/{series['id']}").json()
    assert state["occurrences_missed"] == 0
    assert state["occurrences_created"] == len(dues)


@pytest.mark.parametrize("catch_up", ["skip", "latest", "all"])
def test_thirty_days_in_one_advance_create_thirty_occurrences(
    stack: Stack, client: httpx.Client, catch_up: str
) -> None:
    todo = new_list(client, f"Daily {catch_up}")
    start = tomorrow_at_nine(stack)
    series = new_series(client, todo["id"], start, catch_up=catch_up)
    until = start + dt.timedelta(days=29, minutes=1)
    answer = advance(client, (until.replace(tzinfo=dt.UTC) - stack.now()).total_seconds())
    assert answer["steps"] >= 30
    made = items(client, todo["id"])
    dues = sorted(dt.datetime.fromisoformat(i["due"]["datetime"]) for i in made)
    assert dues == [start + dt.timedelta(days=k) for k in range(30)]
    state = client.get(f"/v1/series/{series['id']}").json()
    assert (state["occurrences_created"], state["occurrences_missed"]) == (30, 0)


def test_reminders_fire_in_due_order_at_their_instants(stack: Stack, client: httpx.Client) -> None:
    todo = new_list(client, "Errands")
    base = stack.now().replace(microsecond=0) + dt.timedelta(hours=2)
    offsets = [50, 10, 30, 20, 40]  # minutes after `base`, created out of order
    for minutes in offsets:
        at = base + dt.timedelta(minutes=minutes)
        new_item(client, todo["id"], f"at +{minutes}", reminders=[{"at": at.isoformat()}])
    advance(client, 3 * 3600)
    fired = [e for e in changes(client) if e["type"] == "reminder.fired" and e["list_id"] == todo["id"]]
    assert [e["data"]["title"] for e in fired] == [f"at +{m}" for m in sorted(offsets)]
    for event in fired:  # each published at its own instant, not at the end of the advance
        due = dt.datetime.fromisoformat(event["data"]["fire_at"])
        published = dt.datetime.fromisoformat(event["at"])
        assert dt.timedelta(0) <= published - due < dt.timedelta(seconds=5), event


def test_an_advance_can_answer_at_once(stack: Stack, client: httpx.Client) -> None:
    before = client.get("/v1/dev/clock").json()
    answer = advance(client, 3600, wait=False)
    assert dt.datetime.fromisoformat(answer["target"]) >= dt.datetime.fromisoformat(before["now"])
    advance(client, 0)  # waits behind the running advance, so the target is reached when it answers
    after = client.get("/v1/dev/clock").json()
    assert after["advancing"] is False
    moved = dt.datetime.fromisoformat(after["now"]) - dt.datetime.fromisoformat(before["now"])
    assert moved >= dt.timedelta(seconds=3600)


@pytest.mark.parametrize(
    "body",
    [{"seconds": False}, {"seconds": "10"}, {"seconds": -1}, {"seconds": 1, "wait": "no"}, {}],
)
def test_a_malformed_advance_is_refused(client: httpx.Client, body: dict[str, Any]) -> None:
    r = client.post("/v1/dev/clock:advance", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_a_reminder_beyond_daprs_reach_is_skipped_not_retried_forever(client: httpx.Client) -> None:
    """Dapr carries a due time as a Go duration (~292 years at most): such a reminder cannot be registered,
    and a side effect retried every few seconds would make each of them a step of every later advance."""
    todo = new_list(client, "Far future")
    item = new_item(
        client, todo["id"], "time capsule", due={"date": "5048-06-06"}, reminders=[{"before_due": "PT15M"}]
    )
    assert item["due"] == {"date": "5048-06-06"}
    answer = advance(client, DAY)
    assert answer["steps"] <= 10, answer  # the 6-hourly housekeeping, not a retry every 10 s
