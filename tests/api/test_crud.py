"""Lists and items through the public API, end to end: CRUD, actions, titles kept verbatim, pagination."""

from __future__ import annotations

import httpx

from tests.api.conftest import Stack, new_item, new_list


def test_list_lifecycle(client: httpx.Client) -> None:
    r = client.post("/v1/lists", json={"title": "Groceries", "description": "weekly", "tz": "Europe/Rome"})
    assert r.status_code == 201
    created = r.json()
    list_id = created["id"]
    assert r.headers["location"] == f"/v1/lists/{list_id}"
    assert r.headers["etag"] == '"1"'
    assert created["title"] == "Groceries" and created["tz"] == "Europe/Rome"
    assert created["open_count"] == 0 and created["version"] == 1

    r = client.get(f"/v1/lists/{list_id}")
    assert r.status_code == 200 and r.json() == created and r.headers["etag"] == '"1"'

    r = client.patch(f"/v1/lists/{list_id}", json={"title": "Food", "description": None})
    assert r.status_code == 200
    assert r.json()["title"] == "Food" and r.json()["description"] == "" and r.json()["tz"] == "Europe/Rome"
    assert r.headers["etag"] == '"2"'

    assert list_id in [entry["id"] for entry in client.get("/v1/lists").json()["items"]]

    r = client.delete(f"/v1/lists/{list_id}")
    assert r.status_code == 204
    assert client.get(f"/v1/lists/{list_id}").status_code == 404
    assert list_id not in [entry["id"] for entry in client.get("/v1/lists").json()["items"]]


def test_item_lifecycle(client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    r = client.post(
        f"/v1/lists/{list_id}/items",
        json={
            "title": "file taxes",
            "notes": "before April",
            "priority": 3,
            "labels": ["admin", "money"],
            "due": {"date": "2026-04-30"},
            "reminders": [{"before_due": "P1D"}],
        },
    )
    assert r.status_code == 201, r.text
    item = r.json()
    item_url = f"/v1/lists/{list_id}/items/{item['id']}"
    assert r.headers["location"] == item_url and r.headers["etag"] == '"1"'
    assert item["status"] == "open" and item["due"] == {"date": "2026-04-30"}
    assert item["labels"] == ["admin", "money"] and item["reminders"] == [{"before_due": "P1D"}]

    assert client.get(item_url).json() == item

    r = client.patch(item_url, json={"due": None, "reminders": None, "title": "file taxes!"})
    assert r.status_code == 200, r.text
    assert r.json()["due"] is None and r.json()["reminders"] == [] and r.json()["version"] == 2

    r = client.post(f"{item_url}:complete")
    assert r.status_code == 200 and r.json()["status"] == "completed" and r.json()["completed_at"]
    r = client.post(f"{item_url}:reopen")
    assert r.status_code == 200 and r.json()["status"] == "open" and r.json()["completed_at"] is None

    summary = client.get(f"/v1/lists/{list_id}").json()
    assert summary["open_count"] == 1 and summary["completed_count"] == 0

    assert client.delete(item_url).status_code == 204
    assert client.get(item_url).status_code == 404


def test_titles_round_trip_verbatim(client: httpx.Client) -> None:
    list_id = new_list(client, "2025-01-01 file taxes")["id"]
    assert client.get(f"/v1/lists/{list_id}").json()["title"] == "2025-01-01 file taxes"
    for title in ("2025-01-01 file taxes", "5m", "P1D", "12:30", "  spaced  ", "📝 ünïcödé"):
        item = new_item(client, list_id, title)
        assert item["title"] == title
        assert client.get(f"/v1/lists/{list_id}/items/{item['id']}").json()["title"] == title
    titles = [i["title"] for i in client.get(f"/v1/lists/{list_id}/items").json()["items"]]
    assert titles == ["2025-01-01 file taxes", "5m", "P1D", "12:30", "  spaced  ", "📝 ünïcödé"]


def test_filters_and_reorder(client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    a = new_item(client, list_id, "a", labels=["x"], due={"date": "2026-01-10"})
    b = new_item(client, list_id, "b", due={"datetime": "2026-02-01T09:00:00", "tz": "Europe/Rome"})
    c = new_item(client, list_id, "c", labels=["x"])
    client.post(f"/v1/lists/{list_id}/items/{c['id']}:complete").raise_for_status()
    items_url = f"/v1/lists/{list_id}/items"

    def ids(**params: str) -> list[str]:
        r = client.get(items_url, params=params)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert ids() == [a["id"], b["id"], c["id"]]
    assert ids(status="completed") == [c["id"]]
    assert ids(label="x") == [a["id"], c["id"]]
    assert ids(due_before="2026-01-31T00:00:00Z") == [a["id"]]
    assert ids(due_after="2026-01-31T00:00:00Z") == [b["id"]]
    assert ids(series_id="nope") == []
    # A naive instant would be a guessed zone: rejected.
    assert client.get(items_url, params={"due_before": "2026-01-31T00:00:00"}).status_code == 422

    r = client.post(f"/v1/lists/{list_id}/items:reorder", json={"ids": [c["id"], a["id"]]})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == f'"{r.json()["version"]}"'
    assert ids() == [c["id"], b["id"], a["id"]]


def test_pagination_of_lists_and_items(stack: Stack, client: httpx.Client) -> None:
    made = [new_list(client, f"list {n}")["id"] for n in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/lists", params=params).json()
        assert len(page["items"]) <= 2
        seen += [entry["id"] for entry in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made

    list_id = made[0]
    added = [new_item(client, list_id, f"item {n}")["id"] for n in range(7)]
    pages: list[list[str]] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/lists/{list_id}/items", params=params).json()
        pages.append([i["id"] for i in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == added
    assert client.get(f"/v1/lists/{list_id}/items", params={"cursor": "garbage!"}).status_code == 422


def test_users_never_see_each_others_lists(stack: Stack, client: httpx.Client) -> None:
    list_id = new_list(client, "mine")["id"]
    item_id = new_item(client, list_id)["id"]
    with stack.client("someone-else") as other:
        assert list_id not in [entry["id"] for entry in other.get("/v1/lists").json()["items"]]
        for method, path, body in [
            ("GET", f"/v1/lists/{list_id}", None),
            ("PATCH", f"/v1/lists/{list_id}", {"title": "stolen"}),
            ("DELETE", f"/v1/lists/{list_id}", None),
            ("GET", f"/v1/lists/{list_id}/items", None),
            ("POST", f"/v1/lists/{list_id}/items", {"title": "spam"}),
            ("GET", f"/v1/lists/{list_id}/items/{item_id}", None),
            ("PATCH", f"/v1/lists/{list_id}/items/{item_id}", {"title": "x"}),
            ("POST", f"/v1/lists/{list_id}/items/{item_id}:complete", None),
            ("DELETE", f"/v1/lists/{list_id}/items/{item_id}", None),
            ("POST", f"/v1/lists/{list_id}/items:reorder", {"ids": [item_id]}),
        ]:
            r = other.request(method, path, json=body)
            assert r.status_code == 404, (method, path, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["type"] == "/problems/not-found"
    # Nothing changed for the owner.
    summary = client.get(f"/v1/lists/{list_id}").json()
    assert summary["title"] == "mine" and summary["open_count"] == 1 and summary["version"] == 2
