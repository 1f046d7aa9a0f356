"""Series through the whole app over HTTP: deleting a list ends its series at once, terminating a series'
workflow through `/v1/workflows` records why it ended, and `GET /v1/series/{id}/history` (owner-scoped,
problem+json, paginated, in the OpenAPI document) shows the workflow steps behind each occurrence."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx

from tests.api.conftest import Stack, new_list


def new_series(client: httpx.Client, stack: Stack, list_id: str, **fields: Any) -> dict[str, Any]:
    dtstart = dt.datetime.combine((stack.now() + dt.timedelta(days=1)).date(), dt.time(9))
    body = {"list_id": list_id, "template": {"title": "water"}, "rule": "FREQ=DAILY"}
    r = client.post("/v1/series", json=body | {"dtstart": dtstart.isoformat()} | fields)
    assert r.status_code == 201, r.text
    series: dict[str, Any] = r.json()
    return series


def test_deleting_a_list_ends_its_series_at_once(client: httpx.Client, stack: Stack) -> None:
    list_id = new_list(client)["id"]
    series = new_series(client, stack, list_id)
    assert series["status"] == "running"
    assert client.delete(f"/v1/lists/{list_id}").status_code == 204
    # No clock moved: the series ended with the list, not at its next date.
    ended = client.get(f"/v1/series/{series['id']}").json()
    assert ended["status"] == "completed" and ended["ended_reason"] == "list_deleted"
    assert ended["next_occurrence_at"] is None and ended["workflow"]["runtime_status"] == "COMPLETED"


def test_terminating_the_workflow_ends_the_series_as_terminated(client: httpx.Client, stack: Stack) -> None:
    series = new_series(client, stack, new_list(client)["id"])
    r = client.post(f"/v1/workflows/series-{series['id']}:terminate")
    assert r.status_code == 200 and r.json()["runtime_status"] == "TERMINATED", r.text
    ended = client.get(f"/v1/series/{series['id']}").json()
    assert ended["status"] == "cancelled" and ended["ended_reason"] == "terminated"
    other = new_series(client, stack, new_list(client)["id"])
    cancelled = client.post(f"/v1/series/{other['id']}:cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["ended_reason"] == "cancelled"


def test_series_history(client: httpx.Client, stack: Stack, user: str) -> None:
    list_id = new_list(client)["id"]
    series = new_series(client, stack, list_id)
    url = f"/v1/series/{series['id']}/history"
    assert client.get(url).json() == {"series_id": series["id"], "items": [], "next_cursor": None}

    due = dt.datetime.fromisoformat(series["next_occurrence_at"])
    stack.clock.advance((due - stack.now()).total_seconds())
    deadline = time.monotonic() + 10
    while not (items := client.get(url).json()["items"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [i["index"] for i in items] == [0] and items[0]["outcome"] == "created"
    kinds = [(s["kind"], s["event"]) for s in items[0]["steps"]]
    assert kinds[:2] == [("timer", "set"), ("timer", "fired")] and kinds[-1] == ("recreate", "completed")

    with stack.client(f"{user}-other") as stranger:
        r = stranger.get(url)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = client.get(url, params={"cursor": "x"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    paths = client.get("/openapi.json").json()["paths"]
    assert "SeriesHistory" in str(paths["/v1/series/{series_id}/history"]["get"]["responses"]["200"])
