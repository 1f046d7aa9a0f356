"""One real stack for the todo actor tests: the embedded sidecar (own thread, manual clock, temp SQLite)
and the app channel hosting `TodoListActor`/`OwnerIndexActor` plus event subscriptions, on loopback."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dapr.actor import ActorId, ActorProxy, ActorProxyFactory

from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.harness import ServedApp, use_sidecar, wait_for_async
from tests.stack import running_sidecar
from tests.todo_actors.actors.app import Events, build_app
from todo_actors.interface import (
    LIST_ACTOR_TYPE,
    OWNER_ACTOR_TYPE,
    OwnerIndexActorInterface,
    TodoListActorInterface,
)
from todo_actors.serializer import PydanticSerializer
from todo_actors.transitions import Limits


class Stack:
    def __init__(self, sidecar: SidecarThread, app: ServedApp, clock: ManualClock, events: Events) -> None:
        self.sidecar = sidecar
        self.app = app
        self.clock = clock
        self.events = events

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.sidecar.http_port}/v1.0"

    def factory(self) -> ActorProxyFactory:
        # Built per test: the constructor probes the sidecar's health.
        return ActorProxyFactory(message_serializer=PydanticSerializer())

    def list_proxy(self, list_id: str, factory: ActorProxyFactory | None = None) -> ActorProxy:
        return ActorProxy.create(
            LIST_ACTOR_TYPE, ActorId(list_id), TodoListActorInterface, factory or self.factory()
        )

    def owner_proxy(self, user: str, factory: ActorProxyFactory | None = None) -> ActorProxy:
        return ActorProxy.create(
            OWNER_ACTOR_TYPE, ActorId(user), OwnerIndexActorInterface, factory or self.factory()
        )

    async def advance(self, seconds: float) -> None:
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"http://127.0.0.1:{self.sidecar.http_port}/v1.0-dev/clock/advance", json={"seconds": seconds}
            )
            r.raise_for_status()

    async def reminder(self, list_id: str, name: str) -> dict[str, object]:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{self.base}/actors/{LIST_ACTOR_TYPE}/{list_id}/reminders/{name}")
            r.raise_for_status()
            body = r.json()
            assert isinstance(body, dict)
            return body

    async def state(self, list_id: str, key: str, actor_type: str = LIST_ACTOR_TYPE) -> Any:
        """A stored actor state value as JSON (None when the key is absent)."""
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{self.base}/actors/{actor_type}/{list_id}/state/{key}")
            r.raise_for_status()
            return None if r.status_code == 204 else r.json()

    async def write_state(
        self, actor_id: str, values: dict[str, Any], actor_type: str = LIST_ACTOR_TYPE
    ) -> None:
        """Upsert actor state keys through the sidecar (the actor must be active)."""
        ops = [{"operation": "upsert", "request": {"key": k, "value": v}} for k, v in values.items()]
        async with httpx.AsyncClient() as http:
            r = await http.put(f"{self.base}/actors/{actor_type}/{actor_id}/state", json=ops)
            assert r.status_code == 204, r.text

    async def wait_events(
        self, topic: str, list_id: str, count: int, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """The events of `list_id` on `topic`, once at least `count` have arrived."""
        await wait_for_async(lambda: len(self.events.for_list(topic, list_id)) >= count, timeout)
        return self.events.for_list(topic, list_id)

    def deactivate(self, actor_type: str, actor_id: str) -> None:
        """Deactivate an actor through the sidecar (as its idle timeout would)."""
        self.sidecar.call(self.sidecar.sidecar.actor_host.deactivate(actor_type, actor_id))


# Small enough that the owner-index limit test stays fast.
OWNER_LIMIT = 25
# The zone of a list created without one (not UTC, so the tests see it applied).
DEFAULT_ZONE = "America/New_York"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll an async check until it holds (for effects that happen asynchronously, like a timer's)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


def new_id(prefix: str = "l") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data: Path = tmp_path_factory.mktemp("todo-actors-sidecar")
    clock = ManualClock()
    events = Events()

    def app(sidecar: SidecarThread) -> Any:
        use_sidecar(sidecar.http_port, sidecar.grpc_port)
        # Room above 5,000 items so the latency run can add to a full-size list.
        return build_app(
            clock,
            events,
            limits=Limits(items_per_list=6_000),
            lists_per_owner=OWNER_LIMIT,
            default_list_zone=DEFAULT_ZONE,
        )

    with running_sidecar(data, app, app_id="todo-actors-test", clock=clock, dev_clock=True) as (
        sidecar,
        served,
    ):
        yield Stack(sidecar, served, clock, events)


@pytest.fixture(autouse=True)
def _this_sidecar(stack: Stack) -> None:
    use_sidecar(stack.sidecar.http_port, stack.sidecar.grpc_port)
