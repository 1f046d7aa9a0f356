"""The app side of the actor benchmarks: one no-op actor method and reminder callbacks timestamped.

The actor routes are the engine's own app channel routes (`api.channel.actors.actor_routes`, what
`todo-engine` serves daprd), and a fire whose reminder data is `deliver` is published with the engine's
`DaprPublisher` to the sidecar's `pubsub` (the durable broker by default) on topic `fires`, which this app
takes in bulk as the engine's event subscriptions do: the durable-delivery burst counts the deliveries.
Run by `bench/actors.py` as `uvicorn bench.actor_app:app`; it is not part of the product.
"""

import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from dapr.actor import Actor, ActorInterface, ActorRuntime, Remindable, actormethod
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.channel.actors import actor_routes
from todo_actors.publisher import DaprPublisher
from todo_actors.sidecar_http import SidecarHttp

FIRES: list[tuple[str, str, float]] = []
DELIVERIES: list[tuple[str, float]] = []
PUBLISHER: dict[str, DaprPublisher] = {}


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
        if state == b"deliver":  # acknowledged once the broker has it (committed)
            data = json.dumps({"name": name}).encode()
            await PUBLISHER["p"].publish("pubsub", "fires", f"{self.id.id}/{name}", "bench.fired", data)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await ActorRuntime.register_actor(BenchActor)
    http = SidecarHttp(f"http://127.0.0.1:{os.environ['DAPR_HTTP_PORT']}")
    PUBLISHER["p"] = DaprPublisher(http)
    try:
        yield
    finally:
        await http.close()


async def fires(request: Request) -> Response:
    if request.method == "DELETE":
        FIRES.clear()
        DELIVERIES.clear()
        return Response(status_code=204)
    return JSONResponse(FIRES)


async def subscribe(request: Request) -> Response:
    bulk = {"enabled": True, "maxMessagesCount": 100, "maxAwaitDurationMs": 40}
    return JSONResponse(
        [{"pubsubname": "pubsub", "topic": "fires", "route": "/bench/deliveries", "bulkSubscribe": bulk}]
    )


async def deliveries(request: Request) -> Response:
    if request.method == "GET":
        return JSONResponse(DELIVERIES)
    statuses: list[dict[str, Any]] = []
    now = time.time()
    for entry in json.loads(await request.body())["entries"]:
        event = entry["event"]
        data = event["data"]
        DELIVERIES.append((str(data["name"]), now))
        statuses.append({"entryId": entry["entryId"], "status": "SUCCESS"})
    return JSONResponse({"statuses": statuses})


app = Starlette(
    routes=[
        *actor_routes(),
        Route("/bench/fires", fires, methods=["GET", "DELETE"]),
        Route("/dapr/subscribe", subscribe, methods=["GET"]),
        Route("/bench/deliveries", deliveries, methods=["GET", "POST"]),
    ],
    lifespan=lifespan,
)
