"""daprd's HTTP Workflow API (`pkg/api/http/workflow.go`) under `/v1.0`, `/v1.0-beta1` and `/v1.0-alpha1`:
path, query and body into `WorkflowAPI` (api.py), its answer rendered as daprd's protojson (202 on success,
GET 200), its `DaprError`s left to the app's one error mapping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sidecar.workflows.api import CONTROLS, WorkflowAPI, not_found

__all__ = ["routes"]

_VERSIONS = ("v1.0", "v1.0-beta1", "v1.0-alpha1")
# `{component}`: any name, unread, as daprd has ignored it since 1.15 (one workflow engine, "dapr" in docs)
_INSTANCE = "/workflows/{component}/{instance_id}"


def _protojson(message: Any, status: int) -> Response:
    """protojson as daprd writes it: json names, unset fields left out."""
    return JSONResponse(json_format.MessageToDict(message), status_code=status)


def _accepted() -> Response:
    return JSONResponse({}, status_code=202)  # daprd's protojson of google.protobuf.Empty


def routes(api: WorkflowAPI) -> list[BaseRoute]:

    def target(request: Request) -> tuple[str, str]:
        return str(request.path_params["instance_id"]), request.query_params.get("appID", "")

    async def start(request: Request) -> Response:
        params = request.path_params
        instance_id = await api.start(
            str(params["name"]),
            request.query_params.get("instanceID", ""),
            await request.body(),  # the input, as it is
            {},
            request.query_params.get("appID", ""),
        )
        return JSONResponse({"instanceID": instance_id}, status_code=202)

    async def get(request: Request) -> Response:
        instance_id, app_id = target(request)
        found = await api.get(instance_id, app_id)
        if found is None:
            raise not_found(instance_id)
        return _protojson(found, 200)

    async def raise_event(request: Request) -> Response:
        instance_id, app_id = target(request)
        event = str(request.path_params["event"])
        await api.raise_event(instance_id, event, await request.body(), app_id)
        return _accepted()

    def control(op: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            await api.control(op, *target(request))
            return _accepted()

        endpoint.__name__ = op
        return endpoint

    table: list[BaseRoute] = []
    for version in _VERSIONS:
        base = f"/{version}{_INSTANCE}"
        table += [
            Route(f"/{version}/workflows/{{component}}/{{name}}/start", start, methods=["POST"]),
            Route(base, get, methods=["GET"]),
            Route(f"{base}/raiseEvent/{{event}}", raise_event, methods=["POST"]),
        ]
        table += [Route(f"{base}/{op}", control(op), methods=["POST"]) for op in CONTROLS]
    return table
