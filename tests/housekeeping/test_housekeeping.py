"""Housekeeping end to end: the sidecar's built-in `housekeeping` cron binding (`@every 6h`) fires into the
real app channel as the dev clock advances; finished workflows created before the retention (30 days) are
purged and younger ones kept; feed events older than the feed's retention are deleted; each run is counted."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import httpx

from tests.api.conftest import Stack, changes, new_item, new_list
from tests.harness import wait_for

DAY = 86_400.0
PERIOD = 6 * 3600.0  # the built-in binding's `@every 6h`


def _metric(stack: Stack, name: str, **labels: str) -> float:
    with httpx.Client(base_url=stack.url, timeout=10) as http:
        text = http.get("/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.search(rf"^{re.escape(name)}\{{{re.escape(want)}\}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _runs(stack: Stack) -> float:
    return _metric(stack, "todo_housekeeping_runs_total", outcome="ok")


def _cancelled_series(client: httpx.Client, stack: Stack, list_id: str) -> dict[str, Any]:
    start = (stack.now() + dt.timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    r = client.post(
        "/v1/series",
        json={
            "list_id": list_id,
            "template": {"title": "water"},
            "rule": "FREQ=DAILY",
            "dtstart": start.isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    series: dict[str, Any] = r.json()
    r = client.post(f"/v1/series/{series['id']}:cancel")
    assert r.status_code == 200, r.text
    assert r.json()["workflow"]["runtime_status"] == "TERMINATED"
    return series


def _workflow_status(client: httpx.Client, series: dict[str, Any]) -> str | None:
    r = client.get(f"/v1/series/{series['id']}")
    assert r.status_code == 200, r.text
    status: str | None = r.json()["workflow"]["runtime_status"]
    return status


def _advance_through_tick(stack: Stack, days: float) -> None:
    """Move the dev clock by `days` in steps shorter than the period, then wait for the last run."""
    target = stack.clock.now() + days * DAY
    while stack.clock.now() < target - PERIOD:
        stack.clock.advance(min(PERIOD / 2, target - PERIOD - stack.clock.now()))
    before = _runs(stack)
    stack.clock.advance(target - stack.clock.now())
    wait_for(lambda: _runs(stack) > before or None, timeout=20)


def test_the_binding_is_read_and_fires_every_six_hours(stack: Stack) -> None:
    sidecar = stack.sidecar.sidecar
    assert "housekeeping" in sidecar.bindings.reading  # the channel answered daprd's OPTIONS probe
    before = _runs(stack)
    stack.clock.advance(PERIOD + 1)
    wait_for(lambda: _runs(stack) >= before + 1 or None, timeout=20)
    fired = sidecar.bindings.fired["housekeeping"]
    stack.clock.advance(PERIOD)
    wait_for(lambda: sidecar.bindings.fired["housekeeping"] == fired + 1 or None, timeout=20)


def test_old_finished_workflows_are_purged_young_ones_kept_and_the_feed_compacted(stack: Stack) -> None:
    user = f"user-{uuid.uuid4().hex[:10]}"
    with stack.client(user) as client:
        list_id = new_list(client, "old")["id"]
        old = _cancelled_series(client, stack, list_id)
        new_item(client, list_id, "old milk")
        wait_for(lambda: len(changes(client)) >= 1 or None)
        old_events = changes(client)
        purged_before = _metric(stack, "todo_housekeeping_items_total", kind="workflows_purged")
        deleted_before = _metric(stack, "todo_housekeeping_items_total", kind="feed_events_deleted")

        _advance_through_tick(stack, 20)  # runs meanwhile: nothing is 30 days old yet
        assert _workflow_status(client, old) == "TERMINATED"
        assert changes(client) == old_events
        young_list = new_list(client, "young")["id"]
        young = _cancelled_series(client, stack, young_list)
        new_item(client, young_list, "young milk")
        wait_for(lambda: len(changes(client)) > len(old_events) or None)

        _advance_through_tick(stack, 11)  # the old series' workflow is now 31 days old, the young one 11
        assert _workflow_status(client, old) is None
        assert _workflow_status(client, young) == "TERMINATED"
        remaining = changes(client)
        assert remaining and all(e["id"] not in {o["id"] for o in old_events} for e in remaining)
    assert _metric(stack, "todo_housekeeping_items_total", kind="workflows_purged") >= purged_before + 1
    assert _metric(
        stack, "todo_housekeeping_items_total", kind="feed_events_deleted"
    ) >= deleted_before + len(old_events)
