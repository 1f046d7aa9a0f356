"""What the webhook tests do through the public API: register, add an item (an event), read the delivery
log (all pages) and wait for attempts, move the dev clock; and the settings they run with."""

from __future__ import annotations

from typing import Any

import httpx

from tests.harness import wait_for

__all__ = ["WEBHOOK_SETTINGS", "add_item", "advance", "attempts", "register", "wait_attempts"]

WEBHOOK_SETTINGS = {"webhooks_allow_private": True, "webhook_max_attempts": 3, "webhook_disable_after": 2}
"""Private targets allowed (the receiver is on loopback), and a short retry schedule (3 attempts, disabled
after 2 failed deliveries) so the tests walk through it quickly."""


def register(client: httpx.Client, url: str, events: list[str] | None = None) -> dict[str, Any]:
    r = client.post("/v1/webhooks", json={"url": url, "events": events or ["task.created"]})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert r.headers["location"] == f"/v1/webhooks/{body['id']}"
    return body


def add_item(client: httpx.Client, title: str = "milk") -> dict[str, Any]:
    r = client.post("/v1/lists", json={"title": "groceries"})
    assert r.status_code == 201, r.text
    r = client.post(f"/v1/lists/{r.json()['id']}/items", json={"title": title})
    assert r.status_code == 201, r.text
    item: dict[str, Any] = r.json()
    return item


def attempts(client: httpx.Client, webhook_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = "0"
    while True:
        r = client.get(f"/v1/webhooks/{webhook_id}/deliveries", params={"cursor": cursor, "limit": 2})
        assert r.status_code == 200, r.text
        page = r.json()
        out += page["attempts"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return out


def wait_attempts(client: httpx.Client, webhook_id: str, count: int) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        got = attempts(client, webhook_id)
        return got if len(got) >= count else None

    result: list[dict[str, Any]] = wait_for(enough, timeout=15, interval=0.05)
    return result


def advance(client: httpx.Client, seconds: float) -> None:
    r = client.post("/v1/dev/clock:advance", json={"seconds": seconds}, timeout=120)
    assert r.status_code == 200, r.text
