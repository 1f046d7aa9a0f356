"""Prometheus counters move with real actions: requests and actor calls, a reminder fired by the sidecar
when the manual clock moves, pub/sub deliveries, and series workflows started, completed and failed."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
from dapr.ext.workflow import DaprWorkflowClient

from tests.api.conftest import Stack, new_item, new_list, wait_for_events
from tests.harness import wait_for
from tests.observability.conftest import metric


def _advance(client: httpx.Client, seconds: float) -> None:
    r = client.post("/v1/dev/clock:advance", json={"seconds": seconds})
    assert r.status_code == 200, r.text


def test_requests_and_actor_calls_are_counted(stack: Stack, client: httpx.Client) -> None:
    route = {"route": "/v1/lists/{list_id}/items", "method": "POST", "status": "201"}
    requests = metric(stack, "todo_http_request_duration_seconds_count", **route)
    calls = metric(
        stack, "todo_actor_calls_total", actor_type="TodoListActor", method="AddTodo", outcome="ok"
    )
    list_id = new_list(client)["id"]
    new_item(client, list_id)
    new_item(client, list_id, "eggs")
    assert metric(stack, "todo_http_request_duration_seconds_count", **route) == requests + 2
    after = metric(
        stack, "todo_actor_calls_total", actor_type="TodoListActor", method="AddTodo", outcome="ok"
    )
    assert after >= calls + 2, (calls, after)


def test_fired_reminders_and_their_deliveries_are_counted(stack: Stack, client: httpx.Client) -> None:
    fired = {"actor_type": "TodoListActor", "kind": "due", "outcome": "ok"}
    before = metric(stack, "todo_reminders_fired_total", **fired)
    delivered = metric(stack, "todo_feed_events_total", topic="reminders", outcome="appended")
    list_id = new_list(client)["id"]
    due = (stack.now() + dt.timedelta(minutes=30)).replace(tzinfo=None, microsecond=0)
    item = new_item(client, list_id, "call mum", due={"datetime": due.isoformat(), "tz": "UTC"})
    assert metric(stack, "todo_reminders_fired_total", **fired) == before  # not yet due
    _advance(client, 3600)
    wait_for_events(client, lambda e: e["type"] == "reminder.fired" and e["item_id"] == item["id"])
    assert metric(stack, "todo_reminders_fired_total", **fired) >= before + 1
    assert metric(stack, "todo_feed_events_total", topic="reminders", outcome="appended") >= delivered + 1
    assert metric(stack, "todo_feed_events_total", topic="task-events", outcome="appended") >= 1


def _series(stack: Stack, client: httpx.Client, rule: str) -> dict[str, str]:
    list_id = new_list(client)["id"]
    start = (stack.now() + dt.timedelta(hours=1)).replace(tzinfo=None, microsecond=0)
    body = {
        "list_id": list_id,
        "template": {"title": "water plants"},
        "rule": rule,
        "dtstart": start.isoformat(),
    }
    r = client.post("/v1/series", json=body)
    assert r.status_code == 201, r.text
    series: dict[str, str] = r.json()
    return series


def test_series_workflows_started_and_completed_are_counted(stack: Stack, client: httpx.Client) -> None:
    started = metric(stack, "todo_workflows_started_total", workflow="series")
    completed = metric(stack, "todo_workflows_completed_total", workflow="series")
    series = _series(stack, client, "FREQ=DAILY;COUNT=1")
    assert metric(stack, "todo_workflows_started_total", workflow="series") == started + 1
    assert metric(stack, "todo_workflows_completed_total", workflow="series") == completed  # not yet due
    _advance(client, 2 * 3600)  # the only occurrence falls due; then the series ends
    wait_for(lambda: metric(stack, "todo_workflows_completed_total", workflow="series") == completed + 1)
    r = client.get(f"/v1/series/{series['id']}")
    assert r.json()["status"] == "completed", r.text
    assert metric(stack, "todo_workflows_started_total", workflow="series") == started + 1


def test_failed_workflows_are_counted(stack: Stack) -> None:
    failed = metric(stack, "todo_workflows_failed_total", workflow="series")
    client = DaprWorkflowClient(host="127.0.0.1", port=str(stack.settings.dapr_grpc_port))
    try:
        # A series instance whose input is not a series state: the workflow raises on its first step.
        instance = client.schedule_new_workflow(
            "series", input={"nonsense": True}, instance_id=f"series-{uuid.uuid4().hex}"
        )
        state = client.wait_for_workflow_completion(instance, timeout_in_seconds=30)
        assert state is not None and state.runtime_status.name == "FAILED"
    finally:
        client.close()  # type: ignore[no-untyped-call]
    wait_for(lambda: metric(stack, "todo_workflows_failed_total", workflow="series") == failed + 1)
    assert metric(stack, "todo_workflows_completed_total", workflow="other") == 0
