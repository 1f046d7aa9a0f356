"""Dead letters end to end over the embedded sidecar: each subscription declares a dead-letter topic, an
event the handler rejects is dead-lettered there by the sidecar, kept once and counted by the app, and an
administrator (only) lists, redrives and discards it through `/v1/admin/dead-letters`."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.channel.dead_letters import DeadLetters
from api.process.cli import main
from api.routes.lists import new_list_id
from tests.api.conftest import Stack, changes
from tests.harness import ServedApp, wait_for
from todo_actors.sidecar_http import SidecarHttp

ADMIN = f"ops-{uuid.uuid4().hex[:8]}"
BASE = "/v1/admin/dead-letters"


@pytest.fixture(scope="module")
def admin_app(stack: Stack) -> Iterator[ServedApp]:
    app = stack.serve_public(admin_users=frozenset({ADMIN}))
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture
def admin(stack: Stack, admin_app: ServedApp) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {stack.token(ADMIN)}"}
    with httpx.Client(base_url=admin_app.url, headers=headers, timeout=30) as client:
        yield client


def _sidecar(stack: Stack) -> httpx.Client:
    token = stack.settings.dapr_token or ""
    return httpx.Client(base_url=stack.settings.dapr_http_endpoint, headers={"dapr-api-token": token})


def _publish(stack: Stack, topic: str, event_id: str, data: dict[str, Any]) -> None:
    """Publish straight to the sidecar, as any publisher on the topic could."""
    with _sidecar(stack) as sidecar:
        r = sidecar.post(
            f"/v1.0/publish/pubsub/{topic}",
            json=data,
            params={"metadata.cloudevent.id": event_id, "metadata.cloudevent.type": "task.created"},
        )
    assert r.status_code == 204, r.text


def _all(admin: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Every dead letter listed, following pages."""
    out: list[dict[str, Any]] = []
    cursor = "0"
    while True:
        r = admin.get(BASE, params={"cursor": cursor, **params})
        assert r.status_code == 200, r.text
        page = r.json()
        out += page["dead_letters"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return out


def _dead_letter(admin: httpx.Client, event_id: str, **match: Any) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        mine = [d for d in _all(admin) if d["event_id"] == event_id]
        assert len(mine) <= 1, mine
        return mine[0] if mine and all(mine[0][k] == v for k, v in match.items()) else None

    result: dict[str, Any] = wait_for(found, timeout=10, interval=0.05)
    return result


def _counted(stack: Stack, topic: str) -> float:
    text = httpx.get(f"{stack.url}/metrics").text
    found = re.search(rf'^todo_dead_letters_total{{topic="{topic}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _problem(r: httpx.Response, status: int, kind: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == f"/problems/{kind}"


def test_each_subscription_declares_its_dead_letter_topic_and_the_app_subscribes_to_it(stack: Stack) -> None:
    with _sidecar(stack) as sidecar:
        subscriptions = sidecar.get("/v1.0/metadata").json()["subscriptions"]
    by_topic = {s["topic"]: s for s in subscriptions}
    assert by_topic["task-events"]["deadLetterTopic"] == "task-events-dead"
    assert by_topic["reminders"]["deadLetterTopic"] == "reminders-dead"
    for dead in ("task-events-dead", "reminders-dead"):
        assert not by_topic[dead].get("deadLetterTopic")  # never a loop of dead letters


def test_a_rejected_event_is_kept_counted_redriven_and_discarded(stack: Stack, admin: httpx.Client) -> None:
    event_id = f"orphan-{uuid.uuid4().hex}"
    before = _counted(stack, "task-events")
    # No owner and no list: the handler answers DROP, the sidecar dead-letters it.
    _publish(stack, "task-events", event_id, {"title": "orphan"})
    dead = _dead_letter(admin, event_id)
    assert dead["topic"] == "task-events" and dead["dead_letter_topic"] == "task-events-dead"
    assert dead["times"] == 1 and not dead["redriving"]
    assert dead["event"]["id"] == event_id and dead["event"]["data"] == {"title": "orphan"}
    assert dead["event"]["topic"] == "task-events"  # the original CloudEvent, as published
    assert _counted(stack, "task-events") == before + 1
    assert admin.get(f"{BASE}/{dead['id']}").json() == dead

    # The dead letter delivered again (say its answer was lost): kept once, counted once.
    headers = {"dapr-api-token": stack.app_token, "content-type": "application/cloudevents+json"}
    for _ in range(2):
        r = httpx.post(
            f"{stack.channel.url}/events/pubsub/task-events-dead", json=dead["event"], headers=headers
        )
        assert r.json() == {"status": "SUCCESS"}
    assert [d for d in _all(admin) if d["event_id"] == event_id] == [dead]
    assert _counted(stack, "task-events") == before + 1

    # Redriven, it is rejected again and comes back (still the same event), counted again.
    r = admin.post(f"{BASE}/{dead['id']}/redrive")
    assert r.status_code == 200, r.text
    assert r.json()["event_id"] == event_id and r.json()["topic"] == "task-events"
    if r.json()["removed"]:
        again = _dead_letter(admin, event_id)
        assert int(again["cursor"]) > int(dead["cursor"])
    else:
        again = _dead_letter(admin, event_id, times=2, redriving=False)
    assert again["event"]["id"] == event_id
    wait_for(lambda: _counted(stack, "task-events") == before + 2, timeout=10)

    r = admin.delete(f"{BASE}/{dead['id']}")
    assert r.status_code == 204
    assert not [d for d in _all(admin) if d["event_id"] == event_id]
    _problem(admin.get(f"{BASE}/{dead['id']}"), 404, "not-found")
    _problem(admin.delete(f"{BASE}/{dead['id']}"), 404, "not-found")
    _problem(admin.post(f"{BASE}/{dead['id']}/redrive"), 404, "not-found")


def test_a_redriven_event_is_handled_once_its_cause_is_fixed(
    stack: Stack, admin: httpx.Client, client: httpx.Client, user: str
) -> None:
    key = uuid.uuid4().hex
    list_id = new_list_id(user, key)  # the id the list will get once created with this Idempotency-Key
    event_id = f"early-{uuid.uuid4().hex}"
    # An event about a list that does not exist yet: its owner is unknown, so it is dead-lettered.
    _publish(stack, "task-events", event_id, {"list_id": list_id, "item_id": "i1", "title": "early"})
    dead = _dead_letter(admin, event_id)
    r = client.post("/v1/lists", json={"title": "late"}, headers={"Idempotency-Key": key})
    assert r.status_code == 201 and r.json()["id"] == list_id

    r = admin.post(f"{BASE}/{dead['id']}/redrive")
    assert r.status_code == 200 and r.json()["removed"] is True
    wait_for(lambda: any(e["id"] == event_id for e in changes(client)), timeout=10)
    assert not [d for d in _all(admin) if d["event_id"] == event_id]


def test_dead_letters_page_in_arrival_order_and_by_topic(stack: Stack, admin: httpx.Client) -> None:
    run = uuid.uuid4().hex[:8]
    headers = {"dapr-api-token": stack.app_token, "content-type": "application/cloudevents+json"}
    sent = [("task-events", f"{run}-a"), ("reminders", f"{run}-b"), ("task-events", f"{run}-c")]
    for topic, event_id in sent:
        event = {"id": event_id, "type": "x", "specversion": "1.0", "source": "t", "data": {}}
        r = httpx.post(f"{stack.channel.url}/events/pubsub/{topic}-dead", json=event, headers=headers)
        assert r.json() == {"status": "SUCCESS"}
    pages = []
    cursor = "0"
    while True:
        page = admin.get(BASE, params={"cursor": cursor, "limit": 1}).json()
        assert len(page["dead_letters"]) <= 1
        pages.append(page)
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    listed = [(d["topic"], d["event_id"]) for p in pages for d in p["dead_letters"]]
    assert [x for x in listed if x[1].startswith(run)] == sent
    reminders = [d["event_id"] for d in _all(admin, topic="reminders")]
    assert f"{run}-b" in reminders and f"{run}-a" not in reminders
    _problem(admin.get(BASE, params={"topic": "other"}), 422, "validation-error")
    _problem(admin.get(BASE, params={"limit": 0}), 422, "validation-error")
    _problem(admin.get(f"{BASE}/not-an-id"), 422, "validation-error")


def test_only_admins_see_dead_letters(stack: Stack, admin_app: ServedApp, user: str) -> None:
    some_id = "0" * 40
    with httpx.Client(base_url=admin_app.url) as anonymous:
        _problem(anonymous.get(BASE), 401, "unauthorized")
    for url in (admin_app.url, stack.url):  # the stack's own app has no admins at all
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {stack.token(user)}"}) as c:
            _problem(c.get(BASE), 403, "forbidden")
            _problem(c.get(f"{BASE}/{some_id}"), 403, "forbidden")
            _problem(c.post(f"{BASE}/{some_id}/redrive"), 403, "forbidden")
            _problem(c.delete(f"{BASE}/{some_id}"), 403, "forbidden")
    with stack.client(ADMIN) as c:
        _problem(c.get(BASE), 403, "forbidden")  # an admin of another instance is nobody here
    paths = httpx.get(f"{admin_app.url}/openapi.json").json()["paths"]
    assert "403" in paths[BASE]["get"]["responses"]
    assert set(paths[f"{BASE}/{{dead_letter_id}}"]) == {"get", "delete"}


async def test_the_oldest_dead_letter_is_evicted_beyond_the_limit(stack: Stack) -> None:
    http = SidecarHttp(stack.settings.dapr_http_endpoint, api_token=stack.settings.dapr_token)
    try:
        kept = len((await DeadLetters(http, "statestore", max_kept=10_000).page(0, 10_000)).dead_letters)
        dead_letters = DeadLetters(http, "statestore", max_kept=kept + 2)
        run = uuid.uuid4().hex[:8]
        for n in range(3):
            event: dict[str, Any] = {"id": f"{run}-{n}", "data": {}}
            assert await dead_letters.keep("reminders", "reminders-dead", event, f"{run}-{n}") == "new"
        listed = (await dead_letters.page(0, 10_000)).dead_letters
        assert len(listed) == kept + 2
        assert [d.event_id for d in listed[-2:]] == [f"{run}-1", f"{run}-2"]
        assert await dead_letters.keep("reminders", "reminders-dead", {}, f"{run}-2") == "duplicate"
        for d in listed:
            if d.event_id.startswith(run):
                assert await dead_letters.discard(d.id)
    finally:
        await http.close()


def test_a_rejected_reminder_is_kept_too(stack: Stack, admin: httpx.Client) -> None:
    event_id = f"reminder-{uuid.uuid4().hex}"
    before = _counted(stack, "reminders")
    _publish(stack, "reminders", event_id, {"item_id": "i1"})  # whose? nobody knows: DROP
    dead = _dead_letter(admin, event_id)
    assert dead["topic"] == "reminders" and dead["dead_letter_topic"] == "reminders-dead"
    assert _counted(stack, "reminders") == before + 1
    assert admin.delete(f"{BASE}/{dead['id']}").status_code == 204


class _DeadAgainWhilePublishing(SidecarHttp):
    """The real sidecar, with the redriven event dead-lettered again right after its publish (the race a
    redrive loses when the handler rejects the event before the dead letter is removed)."""

    dead_letters: DeadLetters | None = None

    async def request(self, method: str, path: str, data: bytes | None = None, **kw: Any) -> Any:
        result = await super().request(method, path, data, **kw)
        if path.startswith("/v1.0/publish/") and self.dead_letters is not None:
            event = json.loads(data or b"{}")
            assert await self.dead_letters.keep("nobody-listens", "x", event, event["id"]) == "again"
        return result


async def test_a_redrive_keeps_a_dead_letter_that_comes_back_before_it_is_removed(stack: Stack) -> None:
    racing = _DeadAgainWhilePublishing(stack.settings.dapr_http_endpoint, api_token=stack.settings.dapr_token)
    plain = SidecarHttp(stack.settings.dapr_http_endpoint, api_token=stack.settings.dapr_token)
    try:
        racing.dead_letters = DeadLetters(plain, "statestore", max_kept=1000)
        dead_letters = DeadLetters(racing, "statestore", max_kept=1000)
        event_id = f"race-{uuid.uuid4().hex}"
        event: dict[str, Any] = {"id": event_id, "specversion": "1.0", "type": "t", "source": "s", "data": {}}
        assert await dead_letters.keep("nobody-listens", "x", event, event_id) == "new"
        (dead,) = [d for d in (await dead_letters.page(0, 10_000)).dead_letters if d.event_id == event_id]
        redriven = await dead_letters.redrive(dead.id, "pubsub")
        assert redriven is not None and redriven.removed is False
        again = await dead_letters.get(dead.id)
        assert again is not None and again.times == 2 and not again.redriving
        racing.dead_letters = None
        redriven = await dead_letters.redrive(dead.id, "pubsub")
        assert redriven is not None and redriven.removed is True
        assert await dead_letters.get(dead.id) is None
    finally:
        await racing.close()
        await plain.close()


def test_the_cli_operates_dead_letters_through_the_route(
    stack: Stack, admin: httpx.Client, admin_app: ServedApp, user: str, capsys: pytest.CaptureFixture[str]
) -> None:
    event_id = f"cli-{uuid.uuid4().hex}"
    _publish(stack, "reminders", event_id, {"item_id": "i1"})
    dead = _dead_letter(admin, event_id)
    cli = ["dead-letters", "--url", admin_app.url, "--token", stack.token(ADMIN)]

    assert main([*cli, "list", "--topic", "reminders", "--limit", "500"]) == 0
    listed = json.loads(capsys.readouterr().out)["dead_letters"]
    assert dead in listed
    assert main([*cli, "show", dead["id"]]) == 0
    assert json.loads(capsys.readouterr().out) == dead
    assert main([*cli, "redrive", dead["id"]]) == 0
    assert json.loads(capsys.readouterr().out)["event_id"] == event_id
    dead = _dead_letter(admin, event_id)  # rejected again: back
    assert main([*cli, "discard", dead["id"]]) == 0
    assert main([*cli, "discard", dead["id"]]) == 1
    assert "404 Not found: no dead letter" in capsys.readouterr().err
    not_admin = ["dead-letters", "--url", admin_app.url, "--token", stack.token(user), "list"]
    assert main(not_admin) == 1
    assert "403 Forbidden" in capsys.readouterr().err
