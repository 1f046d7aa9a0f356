"""The API suite's stack (`tests.stack`) and what its tests share: creating lists and items, reading the
feed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.harness import wait_for
from tests.stack import Stack, stack_fixture

__all__ = ["Stack", "changes", "new_item", "new_list", "wait_for_events"]

stack = stack_fixture("api-sidecar")


def new_list(client: httpx.Client, title: str = "groceries", **fields: Any) -> dict[str, Any]:
    r = client.post("/v1/lists", json={"title": title, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def new_item(client: httpx.Client, list_id: str, title: str = "milk", **fields: Any) -> dict[str, Any]:
    r = client.post(f"/v1/lists/{list_id}/items", json={"title": title, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def changes(client: httpx.Client, since: str = "0") -> list[dict[str, Any]]:
    """Every event in the caller's feed after `since`, following pages."""
    out: list[dict[str, Any]] = []
    while True:
        r = client.get("/v1/changes", params={"since": since, "limit": 500})
        assert r.status_code == 200, r.text
        page = r.json()
        out += page["events"]
        since = page["next_cursor"]
        if not page["has_more"]:
            return out


def wait_for_events(
    client: httpx.Client, predicate: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 10
) -> list[dict[str, Any]]:
    """Wait until at least `count` feed events match (events are delivered asynchronously)."""

    def found() -> list[dict[str, Any]] | None:
        matching = [e for e in changes(client) if predicate(e)]
        return matching if len(matching) >= count else None

    result: list[dict[str, Any]] = wait_for(found, timeout=timeout, interval=0.05)
    return result
