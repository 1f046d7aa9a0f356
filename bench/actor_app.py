"""The app side of the actor benchmarks: one no-op actor method and reminder callbacks timestamped.

A fire whose reminder data is `deliver` is also published to the sidecar's `pubsub` (the durable broker by
default) on topic `fires`, and this app subscribes to it: the durable-delivery burst counts the deliveries.
Run by `bench/actors.py` as `uvicorn bench.actor_app:app`; it is not part of the product.
"""

import base64
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiohttp
from dapr.actor import Actor, ActorInterface, Remindable, actormethod
from dapr.ext.fastapi import DaprActor
from fastapi import FastAPI, Request

FIRES: list[tuple[str, str, float]] = []
DELIVERIES: list[tuple[str, float]] = []
HTTP: dict[str, aiohttp.ClientSession] = {}


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
        if state == b"deliver":  # publish through the sidecar; acknowledged once the broker has it
            url = f"http://127.0.0.1:{os.environ['DAPR_HTTP_PORT']}/v1.0/publish/pubsub/fires"
            async with HTTP["session"].post(url, json={"name": name}) as r:
                if r.status != 204:
                    raise RuntimeError(f"publish failed: {r.status}")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await actor.register_actor(BenchActor)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
        HTTP["session"] = session
        yield


app = FastAPI(lifespan=lifespan)
actor = DaprActor(app)


@app.get("/bench/fires")
async def fires() -> list[tuple[str, str, float]]:
    return FIRES


@app.delete("/bench/fires")
async def clear() -> None:
    FIRES.clear()
    DELIVERIES.clear()


@app.get("/dapr/subscribe")
async def subscribe() -> list[dict[str, Any]]:
    return [{"pubsubname": "pubsub", "topic": "fires", "route": "/bench/deliveries"}]


@app.post("/bench/deliveries")
async def delivered(request: Request) -> dict[str, str]:
    event = json.loads(await request.body())
    data = event.get("data")
    if data is None and "data_base64" in event:
        data = json.loads(base64.b64decode(event["data_base64"]))
    DELIVERIES.append((str(data["name"]), time.time()))
    return {"status": "SUCCESS"}


@app.get("/bench/deliveries")
async def deliveries() -> list[tuple[str, float]]:
    return DELIVERIES
