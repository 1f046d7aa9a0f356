"""A real FastAPI app hosting test actors through the SDK's `DaprActor`, and a record of what ran."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from dapr.actor import Actor, ActorInterface, Remindable, actormethod
from dapr.actor.runtime.config import ActorReentrancyConfig, ActorRuntimeConfig, ActorTypeConfig
from dapr.actor.runtime.runtime import ActorRuntime
from dapr.ext.fastapi import DaprActor
from fastapi import FastAPI

from todo_actors.serializer import PydanticSerializer


@dataclass
class Record:
    """Thread-safe log of what the actors did, read by the tests."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: dict[str, int] = field(default_factory=dict)
    max_overlap: dict[str, int] = field(default_factory=dict)
    reminders: list[tuple[str, str, bytes, float]] = field(default_factory=list)
    timers: list[tuple[str, str, Any]] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    fail_reminders: int = 0
    # What the reminder callbacks read as "now" (the stack sets the sidecar's manual clock).
    now: Callable[[], float] = time.time

    def enter(self, key: str) -> None:
        with self.lock:
            n = self.in_flight.get(key, 0) + 1
            self.in_flight[key] = n
            self.max_overlap[key] = max(self.max_overlap.get(key, 0), n)

    def leave(self, key: str) -> None:
        with self.lock:
            self.in_flight[key] -= 1

    def reminder_fires(self, actor_id: str, name: str) -> list[tuple[str, str, bytes, float]]:
        with self.lock:
            return [r for r in self.reminders if r[0] == actor_id and r[1] == name]


RECORD = Record()


class CounterInterface(ActorInterface):
    @actormethod(name="Increment")
    async def increment(self, delay: float) -> int: ...

    @actormethod(name="GetCount")
    async def get_count(self) -> int: ...

    @actormethod(name="SetText")
    async def set_text(self, text: str) -> None: ...

    @actormethod(name="GetText")
    async def get_text(self) -> str: ...

    @actormethod(name="SetReminder")
    async def set_reminder(self, spec: dict[str, Any]) -> None: ...

    @actormethod(name="DropReminder")
    async def drop_reminder(self, name: str) -> None: ...

    @actormethod(name="SetTimer")
    async def set_timer(self, spec: dict[str, Any]) -> None: ...

    @actormethod(name="Fail")
    async def fail(self, message: str) -> None: ...

    @actormethod(name="CallSelf")
    async def call_self(self, depth: int) -> int: ...


class CounterActor(Actor, CounterInterface, Remindable):
    """Counts, stores text, registers reminders and timers, and logs overlap of its turns."""

    async def increment(self, delay: float) -> int:
        key = f"{self.id.id}"
        RECORD.enter(key)
        try:
            _, count = await self._state_manager.try_get_state("count")
            count = int(count or 0)
            await asyncio.sleep(delay)  # widen the window in which an overlapping turn would show
            await self._state_manager.set_state("count", count + 1)
            return count + 1
        finally:
            RECORD.leave(key)

    async def get_count(self) -> int:
        _, count = await self._state_manager.try_get_state("count")
        return int(count or 0)

    async def set_text(self, text: str) -> None:
        await self._state_manager.set_state("text", text)

    async def get_text(self) -> str:
        _, text = await self._state_manager.try_get_state("text")
        return text  # type: ignore[no-any-return]

    async def set_reminder(self, spec: dict[str, Any]) -> None:
        period = spec.get("period")
        await self.register_reminder(
            spec["name"],
            spec.get("data", "").encode(),
            timedelta(seconds=spec["due"]),
            timedelta(seconds=period) if period else None,
        )

    async def drop_reminder(self, name: str) -> None:
        await self.unregister_reminder(name)

    async def set_timer(self, spec: dict[str, Any]) -> None:
        period = spec.get("period")
        await self.register_timer(
            spec["name"],
            self.on_timer,
            spec.get("data"),
            timedelta(seconds=spec["due"]),
            timedelta(seconds=period) if period else timedelta(0),
        )

    async def on_timer(self, data: Any) -> None:
        with RECORD.lock:
            RECORD.timers.append((self.id.id, "timer", data))

    async def fail(self, message: str) -> None:
        raise RuntimeError(message)

    async def call_self(self, depth: int) -> int:
        return depth

    async def receive_reminder(
        self, name: str, state: bytes, due_time: timedelta, period: timedelta, ttl: Any = None
    ) -> None:
        with RECORD.lock:
            if RECORD.fail_reminders > 0:
                RECORD.fail_reminders -= 1
                raise RuntimeError("reminder callback failing on purpose")
            RECORD.reminders.append((self.id.id, name, state, RECORD.now()))

    async def _on_deactivate(self) -> None:
        with RECORD.lock:
            RECORD.deactivated.append(self.id.id)


def build_app() -> FastAPI:
    """The app channel: actor routes only (as the product mounts them on their own port)."""
    ActorRuntime.set_actor_config(
        ActorRuntimeConfig(
            actor_idle_timeout=timedelta(hours=1),
            actor_type_configs=[
                ActorTypeConfig("CounterActor", actor_idle_timeout=timedelta(minutes=10)),
                ActorTypeConfig("ReentrantActor", reentrancy=ActorReentrancyConfig(enabled=True)),
            ],
        )
    )
    holder: list[DaprActor] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        serializer = PydanticSerializer()
        await holder[0].register_actor(
            CounterActor, message_serializer=serializer, state_serializer=serializer
        )
        await holder[0].register_actor(ReentrantActor)
        yield

    app = FastAPI(lifespan=lifespan)
    holder.append(DaprActor(app))
    return app


class ReentrantInterface(ActorInterface):
    @actormethod(name="Nest")
    async def nest(self, depth: int) -> int: ...


class ReentrantActor(Actor, ReentrantInterface):
    async def nest(self, depth: int) -> int:
        if depth <= 0:
            return 0
        from dapr.actor import ActorProxy

        proxy = ActorProxy.create("ReentrantActor", self.id, ReentrantInterface)
        return 1 + int(await proxy.Nest(depth - 1))
