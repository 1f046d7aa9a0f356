"""daprd's actor HTTP API (`/v1.0/actors/...`): thin translation into the actor engine."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sidecar.actors import ActorState, Reminders, Timers, invoke_method
from sidecar.actors.invoke import FORWARDED_SCOPE, error_reply, under_policy
from sidecar.actors.runtime import ActorHost
from sidecar.resiliency import Resiliency

__all__ = ["routes"]

_JSON = "application/json"


def routes(
    host: ActorHost, state: ActorState, reminders: Reminders, timers: Timers, resiliency: Resiliency
) -> list[BaseRoute]:
    async def method(request: Request) -> Response:
        p = request.path_params
        actor_type, actor_id, body = p["actor_type"], p["actor_id"], await request.body()
        # A call forwarded by another sidecar had its retries and breaker applied there.
        policy = None if request.scope.get(FORWARDED_SCOPE) else resiliency.actor(actor_type, actor_id)
        reply = await under_policy(
            policy,
            lambda: invoke_method(
                host,
                actor_type,
                actor_id,
                p["method"],
                body,
                request.headers,
                request.scope["query_string"].decode("latin-1"),  # `request.url.query`, without a URL
                timeout=resiliency.actor_timeout(actor_type),
            ),
            lambda reply: error_reply(reply.headers),
        )
        return Response(reply.body, status_code=reply.status, headers=reply.headers)

    async def state_get(request: Request) -> Response:
        p = request.path_params
        value = await state.get(p["actor_type"], p["actor_id"], p["key"])
        if value is None:
            return Response(status_code=204)
        return Response(value, media_type=_JSON)

    async def state_save(request: Request) -> Response:
        p = request.path_params
        await state.transact(p["actor_type"], p["actor_id"], await request.body())
        return Response(status_code=204)

    async def reminder_put(request: Request) -> Response:
        p = request.path_params
        await reminders.create(p["actor_type"], p["actor_id"], p["name"], await request.body())
        return Response(status_code=204)

    async def reminder_get(request: Request) -> Response:
        p = request.path_params
        body = await reminders.get(p["actor_type"], p["actor_id"], p["name"])
        return Response(json.dumps(body, separators=(",", ":")), media_type=_JSON)

    async def reminder_delete(request: Request) -> Response:
        p = request.path_params
        await reminders.delete(p["actor_type"], p["actor_id"], p["name"])
        return Response(status_code=204)

    async def timer_put(request: Request) -> Response:
        p = request.path_params
        await timers.create(p["actor_type"], p["actor_id"], p["name"], await request.body())
        return Response(status_code=204)

    async def timer_delete(request: Request) -> Response:
        p = request.path_params
        await timers.delete(p["actor_type"], p["actor_id"], p["name"])
        return Response(status_code=204)

    base = "/v1.0/actors/{actor_type}/{actor_id}"
    return [
        Route(base + "/method/{method:path}", method, methods=["GET", "POST", "PUT", "DELETE"]),
        Route(base + "/state/{key:path}", state_get, methods=["GET"]),
        Route(base + "/state", state_save, methods=["POST", "PUT"]),
        Route(base + "/reminders/{name}", reminder_put, methods=["POST", "PUT"]),
        Route(base + "/reminders/{name}", reminder_get, methods=["GET"]),
        Route(base + "/reminders/{name}", reminder_delete, methods=["DELETE"]),
        Route(base + "/timers/{name}", timer_put, methods=["POST", "PUT"]),
        Route(base + "/timers/{name}", timer_delete, methods=["DELETE"]),
    ]
