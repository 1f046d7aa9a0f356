"""The app channel the list-actor tests serve: `DaprActor` with the todo actors registered through
`register_actors`, and `DaprApp` subscriptions that record every `task-events` and `reminders` delivery."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from dapr.ext.fastapi import DaprActor, DaprApp
from fastapi import Body, FastAPI

from sidecar import ManualClock
from todo_actors.host import ActorsConfig, DaprPublisher, register_actors


@dataclass
class Events:
    """Thread-safe record of the CloudEvents delivered to the app, by topic."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    delivered: list[dict[str, Any]] = field(default_factory=list)

    def add(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.delivered.append(event)

    def of(
        self, topic: str, predicate: Callable[[dict[str, Any]], bool] = lambda e: True
    ) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.delivered if e.get("topic") == topic and predicate(e)]

    def for_list(self, topic: str, list_id: str) -> list[dict[str, Any]]:
        return self.of(topic, lambda e: e.get("data", {}).get("list_id") == list_id)


def manual_now(clock: ManualClock) -> Callable[[], dt.datetime]:
    """The actors' clock, following the sidecar's manual clock (so reminder delays line up)."""
    return lambda: dt.datetime.fromtimestamp(clock.now(), dt.UTC)


def build_app(clock: ManualClock, events: Events, **config: Any) -> FastAPI:
    holder: list[DaprActor] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        publisher = DaprPublisher()
        await register_actors(holder[0], ActorsConfig(clock=manual_now(clock), publisher=publisher, **config))
        yield
        await publisher.aclose()

    app = FastAPI(lifespan=lifespan)
    holder.append(DaprActor(app))
    subscriptions = DaprApp(app)

    @subscriptions.subscribe(pubsub="pubsub", topic="task-events")  # type: ignore[untyped-decorator]
    def task_events(event: dict[str, Any] = Body(...)) -> dict[str, str]:  # noqa: B008
        events.add(event)
        return {"status": "SUCCESS"}

    @subscriptions.subscribe(pubsub="pubsub", topic="reminders")  # type: ignore[untyped-decorator]
    def reminders(event: dict[str, Any] = Body(...)) -> dict[str, str]:  # noqa: B008
        events.add(event)
        return {"status": "SUCCESS"}

    return app
