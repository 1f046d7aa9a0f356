"""Shared lists over the real stack: the roles matrix (403 for a member without the role, 404 for a
stranger), ownership handover, leaving, each member's index, the change feed and SSE of every member, and
the cut-off when a member is removed."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.api.conftest import Stack, changes, new_item, new_list, wait_for_events

PROBLEM = "application/problem+json"
_USERS: dict[int, str] = {}  # id(client) -> the user its token names


@pytest.fixture
def team(stack: Stack) -> Iterator[dict[str, httpx.Client]]:
    """Four users: `owner` shares a list with `editor` and `viewer`; `stranger` is on no list."""
    suffix = uuid.uuid4().hex[:8]
    clients = {role: stack.client(f"{role}-{suffix}") for role in ("owner", "editor", "viewer", "stranger")}
    _USERS.update({id(c): f"{role}-{suffix}" for role, c in clients.items()})
    try:
        yield clients
    finally:
        for c in clients.values():
            c.close()


def user_of(client: httpx.Client) -> str:
    return _USERS[id(client)]


def share(owner: httpx.Client, list_id: str, member: httpx.Client, role: str) -> dict[str, Any]:
    r = owner.post(f"/v1/lists/{list_id}/members", json={"user": user_of(member), "role": role})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def shared_list(team: dict[str, httpx.Client]) -> str:
    list_id: str = new_list(team["owner"], "shared")["id"]
    share(team["owner"], list_id, team["editor"], "editor")
    share(team["owner"], list_id, team["viewer"], "viewer")
    return list_id


def roles_in_index(client: httpx.Client, *, pages: bool = False) -> dict[str, str]:
    """The caller's lists with their role: the first page of 500, or (`pages`) all of them."""
    roles: dict[str, str] = {}
    params: dict[str, str | int] = {"limit": 500}
    while True:
        r = client.get("/v1/lists", params=params)
        assert r.status_code == 200, r.text
        roles.update({entry["id"]: entry["role"] for entry in r.json()["items"]})
        if not pages or r.json()["next_cursor"] is None:
            return roles
        params["cursor"] = r.json()["next_cursor"]


def assert_problem(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    kind = {403: "/problems/forbidden", 404: "/problems/not-found", 409: "/problems/invalid-input"}[status]
    assert r.json()["type"] == kind


def test_roles_matrix(team: dict[str, httpx.Client]) -> None:
    owner, editor, viewer, stranger = (team[k] for k in ("owner", "editor", "viewer", "stranger"))
    list_id = shared_list(team)
    item = new_item(owner, list_id, "milk")
    base, item_url = f"/v1/lists/{list_id}", f"/v1/lists/{list_id}/items/{item['id']}"

    # Every member reads the list, its items and its members, and sees their own role.
    for client, role in ((owner, "owner"), (editor, "editor"), (viewer, "viewer")):
        assert client.get(base).json()["role"] == role
        assert [i["id"] for i in client.get(f"{base}/items").json()["items"]] == [item["id"]]
        assert client.get(item_url).status_code == 200
        assert roles_in_index(client)[list_id] == role
    members = owner.get(f"{base}/members")
    assert members.status_code == 200 and members.headers["etag"] == '"4"'  # created, two shares, one item
    assert [(m["role"]) for m in members.json()["items"]] == ["owner", "editor", "viewer"]

    # The viewer changes nothing: 403 with a problem naming both roles.
    refused = viewer.post(f"{base}/items", json={"title": "eggs"})
    assert_problem(refused, 403)
    assert refused.json()["role"] == "viewer" and refused.json()["needed"] == "editor"
    assert_problem(viewer.patch(item_url, json={"title": "x"}), 403)
    assert_problem(viewer.post(f"{item_url}:complete"), 403)
    assert_problem(viewer.delete(item_url), 403)
    assert_problem(viewer.patch(base, json={"title": "mine"}), 403)
    assert_problem(viewer.post(f"{base}/members", json={"user": "someone", "role": "viewer"}), 403)

    # The editor changes items, their reminders and subtasks, but not the list or its members.
    sub = editor.post(f"{base}/items", json={"title": "oat milk", "parent_id": item["id"]})
    assert sub.status_code == 201, sub.text
    r = editor.patch(item_url, json={"due": {"date": "2030-01-02"}, "reminders": [{"before_due": "PT1H"}]})
    assert r.status_code == 200, r.text
    assert editor.post(f"{item_url}:complete").status_code == 200
    assert_problem(editor.patch(base, json={"title": "mine"}), 403)
    assert_problem(editor.delete(base), 403)
    assert_problem(editor.post(f"{base}/members", json={"user": "someone", "role": "viewer"}), 403)
    assert_problem(editor.patch(f"{base}/members/{user_of(viewer)}", json={"role": "editor"}), 403)

    # A stranger cannot tell the list exists.
    for r in (
        stranger.get(base),
        stranger.get(f"{base}/items"),
        stranger.get(f"{base}/members"),
        stranger.post(f"{base}/items", json={"title": "x"}),
        stranger.delete(f"{base}/members/{user_of(viewer)}"),
    ):
        assert_problem(r, 404)
    assert list_id not in roles_in_index(stranger)


def test_membership_changes_and_handover(team: dict[str, httpx.Client]) -> None:
    owner, editor, viewer = team["owner"], team["editor"], team["viewer"]
    list_id = shared_list(team)
    base = f"/v1/lists/{list_id}"
    viewer_id, editor_id, owner_id = user_of(viewer), user_of(editor), user_of(owner)

    # Adding again with the same role is a retry; with another role it conflicts with the membership
    # (PATCH changes roles), as adding the owner does: well-formed requests the list's members refuse.
    assert share(owner, list_id, viewer, "viewer") == {"user": viewer_id, "role": "viewer"}
    r = owner.post(f"{base}/members", json={"user": viewer_id, "role": "editor"})
    assert_problem(r, 409)
    assert r.json()["errors"][0]["loc"] == ["user"], r.text
    assert_problem(owner.post(f"{base}/members", json={"user": owner_id, "role": "viewer"}), 409)

    assert_problem(owner.patch(f"{base}/members/{owner_id}", json={"role": "editor"}), 409)
    r = owner.patch(f"{base}/members/{viewer_id}", json={"role": "editor"})
    assert r.status_code == 200 and r.json() == {"user": viewer_id, "role": "editor"}
    assert roles_in_index(viewer)[list_id] == "editor"
    assert viewer.post(f"{base}/items", json={"title": "now I can"}).status_code == 201

    # Handover: the editor becomes the owner, the old owner an editor; still exactly one owner.
    r = owner.patch(f"{base}/members/{editor_id}", json={"role": "owner"})
    assert r.status_code == 200, r.text
    members = editor.get(f"{base}/members").json()["items"]
    assert members == [
        {"user": editor_id, "role": "owner"},
        {"user": owner_id, "role": "editor"},
        {"user": viewer_id, "role": "editor"},
    ]
    assert roles_in_index(owner)[list_id] == "editor" and roles_in_index(editor)[list_id] == "owner"
    # The old owner's retry (say, after a lost reply) answers the same, and rewrites both indexes.
    again = owner.patch(f"{base}/members/{editor_id}", json={"role": "owner"})
    assert again.status_code == 200 and again.json() == {"user": editor_id, "role": "owner"}, again.text
    assert_problem(owner.patch(base, json={"title": "old owner"}), 403)
    assert editor.patch(base, json={"title": "new owner"}).status_code == 200

    # The owner cannot leave; a member can (and then cannot tell the list exists).
    assert_problem(editor.delete(f"{base}/members/{editor_id}"), 409)
    assert owner.delete(f"{base}/members/{owner_id}").status_code == 204
    assert_problem(owner.get(base), 404)
    assert list_id not in roles_in_index(owner)

    # The owner removes a member: their access ends with that call.
    assert editor.delete(f"{base}/members/{viewer_id}").status_code == 204
    assert_problem(viewer.get(f"{base}/items"), 404)
    assert list_id not in roles_in_index(viewer)
    assert_problem(editor.delete(f"{base}/members/{viewer_id}"), 404)


def test_deleting_a_shared_list_removes_it_from_every_index(
    stack: Stack, team: dict[str, httpx.Client]
) -> None:
    owner, editor, viewer = team["owner"], team["editor"], team["viewer"]
    list_id = shared_list(team)
    assert owner.delete(f"/v1/lists/{list_id}").status_code == 204
    for client in (owner, editor, viewer):
        assert_problem(client.get(f"/v1/lists/{list_id}"), 404)
        assert list_id not in index_entries(stack, user_of(client))


def index_entries(stack: Stack, user: str) -> set[str]:
    """The list ids in `user`'s index actor, read through the sidecar (the API hides stale entries)."""
    settings = stack.settings
    headers = {"dapr-api-token": settings.dapr_token} if settings.dapr_token else {}
    r = httpx.post(
        f"{settings.dapr_http_endpoint}/v1.0/actors/OwnerIndexActor/{user}/method/Lists",
        json={"limit": 500},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return {entry["list_id"] for entry in r.json()["value"]["lists"]}


def test_every_member_gets_the_lists_changes(team: dict[str, httpx.Client]) -> None:
    owner, editor, viewer, stranger = (team[k] for k in ("owner", "editor", "viewer", "stranger"))
    list_id = shared_list(team)
    item = new_item(editor, list_id, "by the editor")

    def created(e: dict[str, Any]) -> bool:
        return e["type"] == "task.created" and e["item_id"] == item["id"]

    for client in (owner, editor, viewer):
        (event,) = wait_for_events(client, created)
        assert event["data"]["owner"] == user_of(owner)
    added = wait_for_events(viewer, lambda e: e["type"] == "member.added" and e["list_id"] == list_id)
    assert added[-1]["data"]["user"] == user_of(viewer) and added[-1]["data"]["role"] == "viewer"
    assert not [e for e in changes(stranger) if e.get("list_id") == list_id]


def sse_reader(
    stack: Stack, user: str, stop: Callable[[dict[str, Any]], bool], ready: threading.Event
) -> tuple[threading.Thread, list[dict[str, Any]]]:
    """A thread reading `user`'s SSE stream until an event matching `stop`; `ready` is set once open."""
    got: list[dict[str, Any]] = []

    def run() -> None:
        headers = {"Authorization": f"Bearer {stack.token(user)}"}
        with httpx.stream("GET", f"{stack.url}/v1/events", headers=headers, timeout=20) as r:
            assert r.status_code == 200
            current: dict[str, Any] = {}
            for line in r.iter_lines():
                ready.set()
                if line.startswith("event: "):
                    current["event"] = line[7:]
                elif line.startswith("data: "):
                    current["data"] = json.loads(line[6:])
                elif line == "" and current:
                    got.append(current)
                    if stop(current["data"]):
                        return
                    current = {}

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, got


def test_removal_cuts_off_an_open_stream(stack: Stack, team: dict[str, httpx.Client]) -> None:
    owner, viewer = team["owner"], team["viewer"]
    list_id = shared_list(team)
    other = new_list(owner, "still shared")["id"]
    share(owner, other, viewer, "viewer")
    viewer_id = user_of(viewer)
    wait_for_events(viewer, lambda e: e["type"] == "member.added" and e["list_id"] == other)

    sentinel: dict[str, str] = {}
    ready = threading.Event()
    thread, got = sse_reader(stack, viewer_id, lambda d: d.get("item_id") == sentinel.get("id", "-"), ready)
    assert ready.wait(10)
    before = new_item(owner, list_id, "seen while a member")
    wait_for_events(viewer, lambda e: e["item_id"] == before["id"])
    assert owner.delete(f"/v1/lists/{list_id}/members/{viewer_id}").status_code == 204
    after = new_item(owner, list_id, "after the removal")
    wait_for_events(owner, lambda e: e["item_id"] == after["id"])
    sentinel["id"] = new_item(owner, other, "sentinel")["id"]
    thread.join(20)
    assert not thread.is_alive()

    seen = [(e["event"], e["data"].get("item_id") or e["data"]["data"].get("user")) for e in got]
    assert ("task.created", before["id"]) in seen
    assert ("member.removed", viewer_id) in seen
    assert ("task.created", after["id"]) not in seen
    assert seen[-1] == ("task.created", sentinel["id"])
    assert not [e for e in changes(viewer) if e["item_id"] == after["id"]]


def test_series_follow_the_lists_roles(stack: Stack, team: dict[str, httpx.Client]) -> None:
    owner, editor, viewer, stranger = (team[k] for k in ("owner", "editor", "viewer", "stranger"))
    list_id = shared_list(team)
    dtstart = dt.datetime.combine((stack.now() + dt.timedelta(days=1)).date(), dt.time(9))
    body = {
        "list_id": list_id,
        "template": {"title": "water"},
        "rule": "FREQ=DAILY",
        "dtstart": dtstart.isoformat(),
    }
    assert_problem(viewer.post("/v1/series", json=body), 403)
    assert_problem(stranger.post("/v1/series", json=body), 404)
    made = editor.post("/v1/series", json=body)
    assert made.status_code == 201, made.text
    url = f"/v1/series/{made.json()['id']}"

    # Members find it on the list and read it, editors (and the owner) control it, a viewer gets 403, a
    # stranger 404.
    for client in (owner, viewer):
        on_list = client.get("/v1/series", params={"list_id": list_id}).json()["items"]
        assert [s["id"] for s in on_list] == [made.json()["id"]]
    assert owner.get("/v1/series").json()["items"] == []  # the series the caller made
    assert_problem(stranger.get("/v1/series", params={"list_id": list_id}), 404)
    assert viewer.get(url).status_code == 200 and viewer.get(f"{url}/occurrences").status_code == 200
    assert_problem(viewer.post(f"{url}:pause"), 403)
    assert_problem(viewer.patch(url, json={"template": {"title": "tea"}}), 403)
    assert_problem(stranger.get(url), 404)
    assert owner.post(f"{url}:pause").json()["status"] == "paused"
    assert editor.post(f"{url}:resume").json()["status"] == "running"

    # Its creator leaves: they lose it, the series goes on adding occurrences to the list.
    assert editor.delete(f"/v1/lists/{list_id}/members/{user_of(editor)}").status_code == 204
    assert_problem(editor.get(url), 404)
    due = dt.datetime.fromisoformat(owner.get(url).json()["next_occurrence_at"])
    stack.clock.advance((due - stack.now()).total_seconds())
    deadline = time.monotonic() + 10
    while not (done := owner.get(f"{url}/occurrences").json()["items"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [o["outcome"] for o in done] == ["created"]
    assert viewer.post(f"{url}:cancel").status_code == 403
    assert owner.post(f"{url}:cancel").json()["status"] == "cancelled"


def test_batch_commands_respect_roles(team: dict[str, httpx.Client]) -> None:
    owner, editor, viewer = team["owner"], team["editor"], team["viewer"]
    list_id = shared_list(team)
    item = new_item(owner, list_id, "milk")

    def run(client: httpx.Client, *commands: tuple[str, dict[str, Any]]) -> list[int]:
        sent = [{"type": t, "uuid": uuid.uuid4().hex, "args": a} for t, a in commands]
        r = client.post("/v1/batch", json={"commands": sent})
        assert r.status_code == 200, r.text
        return [result["status"] for result in r.json()["results"]]

    complete = ("item_complete", {"list_id": list_id, "id": item["id"]})
    rename = ("list_update", {"id": list_id, "title": "ours"})
    assert run(viewer, ("item_add", {"list_id": list_id, "title": "x"}), complete, rename) == [403, 403, 403]
    assert run(editor, complete, rename, ("list_delete", {"id": list_id})) == [200, 403, 403]
    assert run(team["stranger"], complete) == [404]
    assert run(owner, rename, ("list_delete", {"id": list_id})) == [200, 204]
    assert list_id not in roles_in_index(editor)


def test_calendar_follows_the_lists_roles(team: dict[str, httpx.Client]) -> None:
    owner, editor, viewer = team["owner"], team["editor"], team["viewer"]
    list_id = shared_list(team)
    new_item(owner, list_id, "milk")
    base = f"/v1/lists/{list_id}"
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//t//EN", "BEGIN:VTODO", "UID:a", "SUMMARY:eggs"]
    ics = "\r\n".join([*lines, "END:VTODO", "END:VCALENDAR", ""])
    headers = {"content-type": "text/calendar"}

    assert "SUMMARY:milk" in viewer.get(f"{base}/calendar.ics").text
    assert_problem(viewer.post(f"{base}/import", content=ics, headers=headers), 403)
    assert editor.post(f"{base}/import", content=ics, headers=headers).status_code == 200
    # The secret URL exposes the list to anyone holding it: only the owner makes or revokes it.
    assert_problem(editor.post(f"{base}/calendar-feed"), 403)
    assert_problem(viewer.delete(f"{base}/calendar-feed"), 403)
    feed = owner.post(f"{base}/calendar-feed")
    assert feed.status_code == 201, feed.text
    assert "SUMMARY:eggs" in httpx.get(feed.json()["url"]).text
    assert_problem(team["stranger"].get(f"{base}/calendar.ics"), 404)


def test_any_user_id_can_be_a_member(stack: Stack, team: dict[str, httpx.Client]) -> None:
    """A `sub` is any UTF-8 string: the member's index actor (actor id = user) is reached whatever it is."""
    owner = team["owner"]
    list_id = new_list(owner, "for anyone")["id"]
    for odd in (f"ユーザー 𓽲 {uuid.uuid4().hex[:6]}", f"a%2Fb?c#:{uuid.uuid4().hex[:6]}"):
        r = owner.post(f"/v1/lists/{list_id}/members", json={"user": odd, "role": "viewer"})
        assert r.status_code == 201, r.text
        with stack.client(odd) as member:
            assert roles_in_index(member)[list_id] == "viewer"
            assert member.get(f"/v1/lists/{list_id}").json()["role"] == "viewer"
        assert owner.get(r.headers["location"]).status_code == 405  # the member's URL: PATCH or DELETE
    r = owner.patch(f"/v1/lists/{list_id}/members/{quote(odd, safe='')}", json={"role": "editor"})
    assert r.status_code == 200 and r.json()["user"] == odd
    # No `/`: an actor id is one path segment of Dapr's HTTP API.
    slash = owner.post(f"/v1/lists/{list_id}/members", json={"user": "a/b", "role": "viewer"})
    assert slash.status_code == 422
    # ... and the OpenAPI document says so (a `user` with `/` is not schema-valid input).
    schemas = owner.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["MemberCreate"]["properties"]["user"]["pattern"] == "^[^/]+$"
    assert owner.delete(f"/v1/lists/{list_id}").status_code == 204


@pytest.mark.slow
def test_a_full_index_refuses_the_share(stack: Stack, team: dict[str, httpx.Client]) -> None:
    """A member's index holds at most `lists_per_owner` shared lists (1,000); one more share is a 409 (a
    limit of state, as for owned lists) and leaves them off the list, so no one is on a list they cannot
    find."""
    owner, viewer = team["owner"], team["viewer"]
    body = {"user": user_of(viewer), "role": "viewer"}

    def one(_: int) -> str:
        list_id: str = new_list(owner, "many")["id"]
        assert owner.post(f"/v1/lists/{list_id}/members", json=body).status_code == 201
        return list_id

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(one, range(1000)))
    assert len(roles_in_index(viewer, pages=True)) == 1000
    other = team["editor"]  # the owner owns 1,000 lists now: their own limit
    extra = new_list(other, "one too many")["id"]
    r = other.post(f"/v1/lists/{extra}/members", json=body)
    assert r.status_code == 409 and r.json()["limit"] == "lists_per_owner", r.text
    assert [m["user"] for m in other.get(f"/v1/lists/{extra}/members").json()["items"]] == [user_of(other)]
    assert_problem(viewer.get(f"/v1/lists/{extra}"), 404)
    assert viewer.get(f"/v1/lists/{made[0]}").json()["role"] == "viewer"
