"""The real stack the series tests run on: the embedded sidecar (own thread, manual clock, SQLite in a data
dir), an app channel hosting the todo list actors and recording pub/sub deliveries (it forwards item
completions to their series), and an in-process `WorkflowRuntime` with the series registered.

All from the factory's `restartable_sidecar`: `stop_engine()`/`start_engine()` stop and restart the sidecar
and the worker on the same data dir and the same ports, as if the engine was down; the app channel stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dapr.aio.clients import DaprClient
from dapr.ext.fastapi import DaprActor, DaprApp
from dapr.ext.workflow.aio import DaprWorkflowClient
from fastapi import Body, FastAPI

from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.harness import use_sidecar
from tests.stack import Restartable, restartable_sidecar
from todo_actors.commands import CompleteTodo, CreateList
from todo_actors.host import ActorsConfig, DaprPublisher, register_actors
from todo_actors.interface import QueryTodos, TodoListActorInterface
from todo_actors.model import TodoItem
from workflows.activities import SeriesActivities, list_actors
from workflows.completion import forward_completion
from workflows.config import SeriesSettings
from workflows.models import SeriesProgress
from workflows.presenting import workflow_input
from workflows.runtime import register_series
from workflows.series_client import SeriesService
from workflows.taskhub import close_workflow_client
from workflows.views import Series, SeriesSpec

__all__ = ["Events", "SeriesStack", "no_new_items", "spec", "step", "tomorrow_at", "wait_until"]


@dataclass
class Events:
    """Thread-safe record of the CloudEvents delivered to the app channel."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    delivered: list[dict[str, Any]] = field(default_factory=list)

    def add(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.delivered.append(event)

    def of(
        self, type_: str, predicate: Callable[[dict[str, Any]], bool] = lambda e: True
    ) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.delivered if e.get("type") == type_ and predicate(e)]


def manual_now(clock: ManualClock) -> Callable[[], dt.datetime]:
    return lambda: dt.datetime.fromtimestamp(clock.now(), dt.UTC)


class SeriesStack:
    def __init__(self, data: Path, clock: ManualClock, settings: SeriesSettings) -> None:
        self.data = data
        self.clock = clock
        self.settings = settings
        self.events = Events()
        self._engine: Restartable | None = None

    # lifecycle: the factory's restartable sidecar, this suite's channel app and the series worker -------

    @contextlib.contextmanager
    def running(self) -> Iterator[SeriesStack]:
        app, clock = self._channel_app, self.clock
        with restartable_sidecar(self.data, app, app_id="series-test", clock=clock) as engine:
            self._engine = engine
            self.start_worker()
            try:
                yield self
            finally:
                self._engine = None

    @property
    def engine(self) -> Restartable:
        assert self._engine is not None, "the series stack is not running"
        return self._engine

    @property
    def sidecar(self) -> SidecarThread:
        return self.engine.sidecar

    def start_engine(self) -> None:
        """The sidecar back on its ports and data dir, then a worker with the series' own activities."""
        self.engine.start_sidecar()
        self.use()
        self.start_worker()

    def start_worker(self, activities: SeriesActivities | None = None) -> None:
        """A new `WorkflowRuntime` (the app's worker) with the series registered."""
        activities = activities or SeriesActivities(self.settings, dapr_address=self.grpc_address)
        self.engine.start_worker(lambda runtime: register_series(runtime, activities))

    def stop_worker(self) -> None:
        self.engine.stop_worker()

    def stop_engine(self) -> None:
        """Worker and sidecar down, as if the engine was; the app channel stays up."""
        self.engine.stop_engine()

    def use(self) -> None:
        use_sidecar(self.http_port, self.grpc_port)

    @property
    def http_port(self) -> int:
        return self.engine.http_port

    @property
    def grpc_port(self) -> int:
        return self.engine.grpc_port

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    # the app channel -----------------------------------------------------------------------------

    def _channel_app(self, sidecar: SidecarThread) -> FastAPI:
        use_sidecar(sidecar.http_port, sidecar.grpc_port)  # the actor runtime and publisher read it
        holder: list[DaprActor] = []
        workflows: list[DaprWorkflowClient] = []

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            publisher = DaprPublisher()
            await register_actors(holder[0], ActorsConfig(clock=manual_now(self.clock), publisher=publisher))
            yield
            await publisher.aclose()

        app = FastAPI(lifespan=lifespan)
        holder.append(DaprActor(app))
        subscriptions = DaprApp(app)

        @subscriptions.subscribe(pubsub="pubsub", topic="task-events")  # type: ignore[untyped-decorator]
        async def task_events(event: dict[str, Any] = Body(...)) -> dict[str, str]:  # noqa: B008
            self.events.add(event)
            data = event.get("data")
            if isinstance(data, dict):
                if not workflows:
                    workflows.append(DaprWorkflowClient(host="127.0.0.1", port=str(self.grpc_port)))
                await forward_completion(workflows[0], data)
            return {"status": "SUCCESS"}

        @subscriptions.subscribe(pubsub="pubsub", topic="reminders")  # type: ignore[untyped-decorator]
        def reminders(event: dict[str, Any] = Body(...)) -> dict[str, str]:  # noqa: B008
            self.events.add(event)
            return {"status": "SUCCESS"}

        return app

    # clients for the test's own loop -------------------------------------------------------------

    @asynccontextmanager
    async def service(self) -> AsyncIterator[SeriesService]:
        self.use()
        workflows = DaprWorkflowClient(host="127.0.0.1", port=str(self.grpc_port))
        dapr = DaprClient(address=self.grpc_address)
        try:
            yield SeriesService(
                workflows, dapr, self.settings, list_actor=self.list_actor, clock=manual_now(self.clock)
            )
        finally:
            await dapr.close()  # type: ignore[no-untyped-call]
            await close_workflow_client(workflows)

    def list_actor(self, list_id: str) -> TodoListActorInterface:
        return list_actors()(list_id)

    async def new_list(self, owner: str, list_id: str, tz: str = "UTC") -> None:
        (await self.list_actor(list_id).create_list(CreateList(owner=owner, title="chores", tz=tz))).unwrap()

    async def items(self, list_id: str, series_id: str) -> list[TodoItem]:
        query = QueryTodos(series_id=series_id, limit=500)
        page = (await self.list_actor(list_id).query_todos(query)).unwrap()
        return sorted(page.items, key=lambda i: i.occurrence or 0)

    async def wait_items(
        self, list_id: str, series_id: str, count: int, timeout: float = 10
    ) -> list[TodoItem]:
        found: list[TodoItem] = []

        async def enough() -> bool:
            found[:] = await self.items(list_id, series_id)
            return len(found) >= count

        await wait_until(enough, timeout)
        return found

    async def settled(self, service: SeriesService, owner: str, series_id: str, next_index: int) -> Series:
        """The series once its workflow is parked - its current generation waits for occurrence
        `next_index` or later, or for a completion - or has ended."""
        shown: list[Series] = []

        async def parked(series: Series) -> bool:
            state = await service.workflows.get_workflow_state(series.workflow.instance_id)
            current = workflow_input(state)
            progress = None if state is None else SeriesProgress.parse(state.serialized_custom_status)
            if current is None or progress is None or progress.generation != current.generation:
                return False
            if progress.phase == "awaiting_completion":
                return progress.awaiting is not None and progress.awaiting >= next_index - 1
            return progress.phase == "waiting" and (progress.next_index or 0) >= next_index

        async def ready() -> bool:
            series = await service.get(owner, series_id)
            if series.status in ("running", "paused"):
                if not await parked(series):
                    return False
                series = await service.get(owner, series_id)  # read after parking: nothing moves now
            shown[:] = [series]
            return True

        await wait_until(ready)
        return shown[0]

    async def complete(self, list_id: str, item_id: str) -> TodoItem:
        result = (await self.list_actor(list_id).complete_todo(CompleteTodo(id=item_id))).unwrap()
        item: TodoItem | None = result.item
        assert item is not None
        return item

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.now(), dt.UTC)

    def advance_to(self, instant: dt.datetime) -> None:
        """Move the manual clock to `instant` (no-op if it is already past)."""
        delta = (instant - self.now()).total_seconds()
        if delta > 0:
            self.clock.advance(delta)


async def wait_until(condition: Callable[[], Any], timeout: float = 10, interval: float = 0.02) -> None:
    """Poll an async (or sync) condition until truthy; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def tomorrow_at(stack: SeriesStack, hour: int) -> dt.datetime:
    """Tomorrow (by the stack's clock) at `hour`:00, as a naive wall time."""
    return dt.datetime.combine((stack.now() + dt.timedelta(days=1)).date(), dt.time(hour))


async def no_new_items(stack: SeriesStack, list_id: str, series_id: str, count: int) -> None:
    """Still exactly `count` items of the series, after giving a wrongly created one time to show up."""
    await asyncio.sleep(0.5)
    assert len(await stack.items(list_id, series_id)) == count


def spec(list_id: str, rule: str, dtstart: dt.datetime, tz: str = "UTC", **fields: Any) -> SeriesSpec:
    """A new series' body (template title "task" unless given)."""
    body: dict[str, Any] = {
        "list_id": list_id,
        "template": {"title": "task"},
        "rule": rule,
        "dtstart": dtstart.isoformat(),
        "tz": tz,
    }
    return SeriesSpec.model_validate(body | fields)


async def step(
    stack: SeriesStack, service: SeriesService, owner: str, series: Series, count: int
) -> tuple[Series, list[TodoItem]]:
    """Advance the clock to the series' next occurrence, wait for its item (the `count`-th), and return
    the series once its workflow waits for the following one."""
    assert series.next_occurrence_at is not None and series.next_occurrence_index is not None
    index = series.next_occurrence_index
    stack.advance_to(series.next_occurrence_at)
    items = await stack.wait_items(series.list_id, series.id, count)
    return await stack.settled(service, owner, series.id, index + 1), items
