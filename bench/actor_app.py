"""The app side of the actor benchmarks: one no-op actor method and reminder callbacks timestamped.

Run by `bench/actors.py` as `uvicorn bench.actor_app:app`; it is not part of the product.
"""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from dapr.actor import Actor, ActorInterface, Remindable, actormethod
from dapr.ext.fastapi import DaprActor
from fastapi import FastAPI

FIRES: list[tuple[str, str, float]] = []


class BenchInterface(ActorInterface):
    @actormethod(name="Ping")
    async def ping(self) -> None: ...


class BenchActor(Actor, BenchInterface, Remindable):
    async def ping(self) -> None:
        return None

    async def receive_reminder(
        self, name: str, state: bytes, due_time: timedelta, period: timedelta, ttl: object = None
    ) -> None:
        FIRES.append((self.id.id, name, time.time()))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await actor.register_actor(BenchActor)
    yield


app = FastAPI(lifespan=lifespan)
actor = DaprActor(app)


@app.get("/bench/fires")
async def fires() -> list[tuple[str, str, float]]:
    return FIRES


@app.delete("/bench/fires")
async def clear() -> None:
    FIRES.clear()
