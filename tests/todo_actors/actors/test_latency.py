"""AddTodo latency through the real proxy, sidecar and app channel, on a fresh list and on one holding
5,000 items (seeded through the sidecar's actor state API). Slow: run with `-m slow -o log_cli=true`."""

from __future__ import annotations

import datetime as dt
import json
import logging
import statistics
import time

import httpx
import pytest

from tests.todo_actors.actors.conftest import Stack, new_id
from todo_actors.commands import AddTodo, CreateList
from todo_actors.interface import LIST_ACTOR_TYPE, GetList
from todo_actors.layout import dump_state
from todo_actors.model import TodoItem, TodoList

log = logging.getLogger("tests.todo_actors.latency")

CALLS = 1_000


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


async def _measure(stack: Stack, list_id: str) -> tuple[float, float]:
    proxy = stack.list_proxy(list_id)
    samples = []
    for n in range(CALLS):
        start = time.perf_counter()
        reply = await proxy.AddTodo(AddTodo(caller="bench", title=f"task {n}"))
        samples.append(time.perf_counter() - start)
        assert reply.error is None, reply.error
    return _percentiles(samples)


async def _seed(stack: Stack, list_id: str, items: int) -> None:
    now = dt.datetime.fromtimestamp(stack.clock.now(), dt.UTC)
    todo = TodoList(
        id=list_id,
        owner="bench",
        title="big",
        created_at=now,
        updated_at=now,
        version=items + 1,
        items={
            f"seed{n}": TodoItem(
                id=f"seed{n}", title=f"seeded {n}", position=(n + 1) * 1024, created_at=now, updated_at=now
            )
            for n in range(items)
        },
    )
    proxy = stack.list_proxy(list_id)
    await proxy.GetList(GetList())  # activates the actor: the sidecar accepts its state writes only then
    ops = [
        {"operation": "upsert", "request": {"key": k, "value": json.loads(v.model_dump_json())}}
        for k, v in dump_state(todo).items()
    ]
    async with httpx.AsyncClient() as http:
        r = await http.put(f"{stack.base}/actors/{LIST_ACTOR_TYPE}/{list_id}/state", json=ops)
        assert r.status_code == 204, r.text
    stack.deactivate(LIST_ACTOR_TYPE, list_id)


@pytest.mark.slow
async def test_add_todo_latency(stack: Stack) -> None:
    fresh = new_id("bench")
    reply = await stack.list_proxy(fresh).CreateList(CreateList(owner="bench", title="fresh"))
    assert reply.error is None
    p50, p99 = await _measure(stack, fresh)
    log.warning("AddTodo on a fresh list: p50 %.2f ms, p99 %.2f ms (%d calls)", p50, p99, CALLS)

    big = new_id("bench")
    await _seed(stack, big, 5_000)
    start = time.perf_counter()
    reply = await stack.list_proxy(big).GetList(GetList(caller="bench"))
    assert reply.value is not None and reply.value.open_count == 5_000
    log.warning("activating a 5,000-item list: %.0f ms", (time.perf_counter() - start) * 1000)
    p50, p99 = await _measure(stack, big)
    log.warning("AddTodo on a 5,000-item list: p50 %.2f ms, p99 %.2f ms (%d calls)", p50, p99, CALLS)
