"""The pooled actor client and the typed proxies against the real sidecar: the SDK's wire protocol and
error type, calls by Python and by actor method names, and one pool per event loop (the SDK's actor
runtime is process-wide, and workflow activities run on the worker's loop, so one client meets several)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from dapr.clients.exceptions import DaprHttpError

from tests.todo_actors.actors.conftest import Stack, new_id
from todo_actors.client import ActorProxies, PooledActorClient
from todo_actors.commands import CreateList
from todo_actors.interface import LIST_ACTOR_TYPE, GetList, ListReply, TodoListActorInterface
from todo_actors.serializer import PydanticSerializer
from todo_actors.sidecar_http import SidecarHttp


def _client(stack: Stack, calls: list[tuple[str, str, str]]) -> PooledActorClient:
    http = SidecarHttp(
        f"http://127.0.0.1:{stack.sidecar.http_port}",
        extra_headers=lambda: {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
    )
    return PooledActorClient(http, PydanticSerializer(), on_call=lambda *call: calls.append(call))


async def _title(client: PooledActorClient, list_id: str) -> str:
    proxy = ActorProxies(client, PydanticSerializer()).get(TodoListActorInterface, LIST_ACTOR_TYPE, list_id)
    by_python_name = await proxy.get_list(GetList(caller="alice"))
    by_actor_name = await proxy.GetList(GetList(caller="alice"))  # type: ignore[attr-defined]
    assert isinstance(by_python_name, ListReply) and by_actor_name == by_python_name
    return by_python_name.unwrap().title


async def test_calls_from_several_event_loops_each_get_their_own_pool(stack: Stack) -> None:
    list_id = new_id()
    (await stack.list_proxy(list_id).CreateList(CreateList(owner="alice", title="pooled"))).unwrap()
    calls: list[tuple[str, str, str]] = []
    client = _client(stack, calls)
    assert await _title(client, list_id) == "pooled"

    titles: list[str] = []

    def other_loop() -> None:
        async def run() -> None:
            titles.append(await _title(client, list_id))
            await client.close()

        for _ in range(2):  # a loop that is gone leaves nothing behind that a new one would reuse
            asyncio.run(run())

    thread = threading.Thread(target=other_loop)
    thread.start()
    await asyncio.to_thread(thread.join)
    assert titles == ["pooled", "pooled"]
    assert await _title(client, list_id) == "pooled"  # this loop's pool survived the other loop's close
    await client.close()
    assert calls == [(LIST_ACTOR_TYPE, "GetList", "ok")] * 8


async def test_sidecar_errors_raise_the_sdk_error_and_count_as_errors(stack: Stack) -> None:
    calls: list[tuple[str, str, str]] = []
    client = _client(stack, calls)
    try:
        with pytest.raises(DaprHttpError) as caught:
            await client.invoke_method("NoSuchActorType", "x", "GetList", b"{}")
        assert caught.value.status_code is not None and caught.value.status_code >= 400
        assert calls == [("NoSuchActorType", "GetList", "error")]
        assert await client.get_state(LIST_ACTOR_TYPE, new_id(), "meta") == b""
    finally:
        await client.close()
