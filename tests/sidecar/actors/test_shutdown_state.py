"""A sidecar that stops deactivates its actors, and their deactivation hooks may still save state (the SDK's
`_on_deactivate` runs inside the app's answer to that DELETE): the save is accepted and survives a restart,
while a new actor cannot be reached through the stopping runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sidecar.thread import SidecarThread
from tests.harness import ServedApp, bound_socket
from tests.stack import sidecar_thread

ACTOR = "FarewellActor"


def farewell_app(sidecar: dict[str, int], outcomes: list[tuple[str, int]]) -> Starlette:
    """The app channel of one actor type whose deactivation writes a `farewell` key and, for
    comparison, reads the state of an actor that was never activated."""

    async def config(request: Request) -> Response:
        return JSONResponse({"entities": [ACTOR]})

    async def method(request: Request) -> Response:
        return Response(b"null", media_type="application/json")

    async def deactivate(request: Request) -> Response:
        actor_id = request.path_params["id"]
        base = f"http://127.0.0.1:{sidecar['http']}/v1.0/actors/{ACTOR}"
        ops = [{"operation": "upsert", "request": {"key": "farewell", "value": {"bye": actor_id}}}]
        async with httpx.AsyncClient(timeout=10) as c:
            saved = await c.put(f"{base}/{actor_id}/state", content=json.dumps(ops))
            outcomes.append(("save", saved.status_code))
            other = await c.get(f"{base}/never-active/state/farewell")
            outcomes.append(("other", other.status_code))
        return Response(status_code=200)

    return Starlette(
        routes=[
            Route("/dapr/config", config),
            Route("/actors/{type}/{id}/method/{name}", method, methods=["PUT"]),
            Route("/actors/{type}/{id}", deactivate, methods=["DELETE"]),
        ]
    )


def start_sidecar(data: Path, app_port: int) -> SidecarThread:
    sidecar = sidecar_thread(data, app_id="farewell", app_port=app_port).start()
    sidecar.wait_ready()
    return sidecar


def test_deactivation_at_shutdown_can_save_state(tmp_path: Path) -> None:
    ports: dict[str, int] = {}
    outcomes: list[tuple[str, int]] = []
    sock = bound_socket()
    app = ServedApp(farewell_app(ports, outcomes), sock, lifespan="off").start()
    try:
        sidecar = start_sidecar(tmp_path, app.port)
        ports["http"] = sidecar.http_port
        called = httpx.put(f"http://127.0.0.1:{sidecar.http_port}/v1.0/actors/{ACTOR}/a1/method/hello")
        assert called.status_code == 200
        sidecar.stop()
        assert outcomes == [("save", 204), ("other", 503)]

        again = start_sidecar(tmp_path, app.port)
        ports["http"] = again.http_port
        try:
            got: Any = httpx.get(
                f"http://127.0.0.1:{again.http_port}/v1.0/actors/{ACTOR}/a1/state/farewell"
            ).json()
            assert got == {"bye": "a1"}
        finally:
            again.stop()
    finally:
        app.stop()
